"""deb-mock's build options on real builds, as users run them: --nocheck, --profile, -D, --addrepo and the
config's [[repos]] (a real signed apt repository served over HTTP), --postinstall, --no-clean and
--cleanup-after, --copyin/--copyout (with links planted in the chroot pointing at a host directory)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deb_mock.config import BUILTIN_DIR
from debarchive import aptrepo
from debarchive.signing import SigningKey
from httpserve import serve_directory
from srcpkg import make_source

pytestmark = pytest.mark.integration

CONFIG = "debian-trixie-amd64"


def said(run) -> str:  # type: ignore[no-untyped-def]
    """What deb-mock printed, with rich's line wrapping (80 columns when not on a terminal) undone."""
    return " ".join(run.out.split())
ECHO_ENV = '\t@echo "DBO=$$DEB_BUILD_OPTIONS DBP=$$DEB_BUILD_PROFILES"\n'


@pytest.fixture(scope="module")
def flag_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("flagsrc")
    rules = "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_auto_build:\n" + ECHO_ENV
    return {
        # its test suite fails: debhelper's dh_auto_test runs `make check`, unless DEB_BUILD_OPTIONS has nocheck
        "checkfail": make_source(
            d, "dm-checkfail", "1.0", rules=rules + "\tdh_auto_build\n",
            files={"Makefile": "all:\n\ttrue\ncheck:\n\t@echo DM-TESTS-RUN\n\tfalse\ninstall:\n"},
        ),
        # a build-dependency that exists nowhere, except under the profile, which needs hello instead
        "profiled": make_source(
            d, "dm-profiled", "1.0",
            build_depends="debhelper-compat (= 13), deb-mock-no-such-package <!pkg.dm-profiled.stage1>, "
            "hello <pkg.dm-profiled.stage1>",
            rules=rules + "\ttest -x /usr/bin/hello && echo HELLO-FROM-PROFILE-DEP\n",
        ),
        # a build-dependency that is in no Debian archive, only in the test's own signed repository
        "needs-extra": make_source(
            d, "dm-needs-extra", "1.0", build_depends="debhelper-compat (= 13), dm-extra-dev",
            rules=rules + "\ttest -f /usr/share/dm-extra/marker && echo EXTRA-DEP-PRESENT\n",
        ),
        "simple": make_source(
            d, "dm-flagsimple", "1.0", files={"README": "FLAGSIMPLE-README\n"},
            install={"dm-flagsimple": "README usr/share/doc/dm-flagsimple-data\n"},
        ),
        "uninstallable": make_source(
            d, "dm-uninstallable", "1.0", binaries={"dm-uninstallable": "Depends: deb-mock-no-such-package"},
        ),
    }


def _deb(tmp: Path, name: str, files: dict[str, str]) -> Path:
    tree = tmp / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: deb-mock tests <t@example.org>\n"
        "Description: in the test's extra repository only\n"
    )
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    out = tmp / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def extra_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A signed apt repository (debarchive.aptrepo) with dm-extra-dev, served on 127.0.0.1; its key armoured
    and binary, and another key that did not sign it."""
    d = tmp_path_factory.mktemp("extrarepo")
    key = SigningKey.ensure(d / "gpg")
    root = d / "repo"
    filename = aptrepo.pool_path("dm-extra", "dm-extra-dev_1.0_all.deb")
    aptrepo.add_to_pool(root, _deb(d, "dm-extra-dev", {"usr/share/dm-extra/marker": "x\n"}), filename)
    aptrepo.publish(root, "dm-extra", packages=[aptrepo.scan_deb(root / filename, filename)], key=key,
                    origin="deb-mock tests")
    asc = key.export_public(d / "keys" / "extra.asc")
    gpg = d / "keys" / "extra.gpg"
    subprocess.run(["gpg", "--dearmor", "--output", str(gpg), str(asc)], check=True, capture_output=True)
    wrong = SigningKey.ensure(d / "gpg-other").export_public(d / "keys" / "other.asc")
    with serve_directory(root) as url:
        yield {"url": url, "asc": str(asc), "gpg": str(gpg), "wrong": str(wrong), "keys": str(d / "keys")}


def test_nocheck_skips_a_failing_test_suite(deb_mock, flag_sources, mock_cache) -> None:  # type: ignore[no-untyped-def]
    failing = deb_mock("--cleanup-after", "--rebuild", str(flag_sources["checkfail"]))
    assert failing.rc == 1, failing.out
    assert "DM-TESTS-RUN" in failing.log("build.log")
    assert "kept_root" not in failing.result  # --cleanup-after: not even a failed root is kept
    assert not (mock_cache / "failed" / CONFIG).exists()
    run = deb_mock("--nocheck", "--rebuild", str(flag_sources["checkfail"]))
    assert run.rc == 0, run.out
    log = run.log("build.log")
    assert "DM-TESTS-RUN" not in log
    assert "DBP=nocheck" in log and " nocheck DBP=" in log  # DEB_BUILD_OPTIONS=parallel=N nocheck
    buildinfo = run.log("dm-checkfail_1.0_amd64.buildinfo")
    assert 'DEB_BUILD_OPTIONS="parallel=' in buildinfo and 'nocheck"' in buildinfo
    assert 'DEB_BUILD_PROFILES="nocheck"' in buildinfo


def test_profile_selects_the_build_dependencies(deb_mock, flag_sources) -> None:  # type: ignore[no-untyped-def]
    plain = deb_mock("--rebuild", str(flag_sources["profiled"]))
    assert plain.rc == 3, plain.out
    assert [m["relation"] for m in plain.result["missing"]] == ["deb-mock-no-such-package"]
    src = str(flag_sources["profiled"])
    run = deb_mock("--profile", "pkg.dm-profiled.stage1", "-D", "parallel=1", "--rebuild", src)
    assert run.rc == 0, run.out
    log = run.log("build.log")
    assert "HELLO-FROM-PROFILE-DEP" in log  # the <pkg.dm-profiled.stage1> dependency was installed
    assert "DBO=parallel=1 DBP=pkg.dm-profiled.stage1" in log  # and -D parallel=1 reached DEB_BUILD_OPTIONS
    assert "hello" in {b["package"] for b in run.result["buildroot"]}


def test_addrepo_and_config_repos_provide_a_build_dependency(  # type: ignore[no-untyped-def]
    deb_mock, flag_sources, extra_repo, tmp_path
) -> None:
    src = str(flag_sources["needs-extra"])
    alone = deb_mock("--rebuild", src)
    assert alone.rc == 3 and alone.result["missing"][0]["packages"] == ["dm-extra-dev"], alone.out
    line = f"deb [signed-by={extra_repo['asc']}] {extra_repo['url']} dm-extra main"
    run = deb_mock("--addrepo", line, "--rebuild", src)
    assert run.rc == 0, run.out
    assert "EXTRA-DEP-PRESENT" in run.log("build.log")
    assert "dm-extra-dev" in {b["package"] for b in run.result["buildroot"]}
    # signed by another key: apt refuses the repository, deb-mock says so (bad input, not worth a retry)
    wrong = deb_mock("--addrepo", line.replace(extra_repo["asc"], extra_repo["wrong"]), "--rebuild", src)
    assert wrong.rc == 2, wrong.out
    assert "could not be verified with its key" in wrong.result["error"]
    assert "NO_PUBKEY" in wrong.log("root.log") or "not signed" in wrong.log("root.log")
    missing = deb_mock("--addrepo", line.replace("extra.asc", "nothere.asc"), "--rebuild", src)
    assert missing.rc == 2 and "nothere.asc does not exist" in missing.result["error"], missing.out
    # the same repository from a config's [[repos]], its (binary) key relative to the config file
    confdir = tmp_path / "configs"
    confdir.mkdir()
    (confdir / "keys").symlink_to(extra_repo["keys"])
    (confdir / f"{CONFIG}.toml").write_text(
        f'include = "{BUILTIN_DIR / f"{CONFIG}.toml"}"\n\n[[repos]]\nurl = "{extra_repo["url"]}"\n'
        'suite = "dm-extra"\ncomponents = ["main"]\nkey = "keys/extra.gpg"\n'
    )
    conf = deb_mock("--configdir", str(confdir), "-r", CONFIG, "--rebuild", src)
    assert conf.rc == 0, conf.out
    assert "EXTRA-DEP-PRESENT" in conf.log("build.log")
    assert "build-dependency cache: hit" in conf.log("state.log")  # the same set, and the same root cache


def test_postinstall_no_clean_copyin_copyout(  # type: ignore[no-untyped-def]
    deb_mock, flag_sources, mock_cache, tmp_path, host_dir
) -> None:
    kept = mock_cache / "failed" / CONFIG
    run = deb_mock("--postinstall", "--no-clean", "--rebuild", str(flag_sources["simple"]))
    assert run.rc == 0, run.out
    assert run.result["kept_root"] == str(kept) and f"root is kept in {kept}" in said(run)
    assert "postinstall" in run.result["phases"]
    assert "postinstall: 1 package(s) installed" in run.log("root.log")
    shell = deb_mock("--shell", "dpkg-query -W -f '${Status}\\n' dm-flagsimple")
    assert shell.rc == 0 and "install ok installed" in said(shell), shell.out
    assert "kept with --no-clean" in said(shell)
    # --copyin: a file into a directory, a directory to a new name
    (tmp_path / "in.txt").write_text("COPIED-IN\n")
    (tmp_path / "indir").mkdir()
    (tmp_path / "indir" / "x").write_text("X-IN-DIR\n")
    assert deb_mock("--copyin", str(tmp_path / "in.txt"), "/root/").rc == 0
    assert deb_mock("--copyin", str(tmp_path / "indir"), "/root/copied").rc == 0
    check = deb_mock("--shell", "cat /root/in.txt /root/copied/x")
    assert "COPIED-IN" in said(check) and "X-IN-DIR" in said(check), check.out
    # --copyout: a file the package installed and a directory, into a host directory
    out = tmp_path / "out"
    out.mkdir()
    got = deb_mock("--copyout", "/usr/share/doc/dm-flagsimple-data/README", "/root/copied", str(out))
    assert got.rc == 0, got.out
    assert (out / "README").read_text() == "FLAGSIMPLE-README\n" and (out / "copied" / "x").read_text() == "X-IN-DIR\n"
    _planted_links_are_refused(deb_mock, tmp_path, host_dir)
    # a package that does not install: the build fails, its .deb is kept, and so is the root
    bad = deb_mock("--postinstall", "--rebuild", str(flag_sources["uninstallable"]))
    assert bad.rc == 1, bad.out
    res = bad.result
    assert res["state"] == "failed" and "--postinstall: the built packages do not install" in res["error"]
    assert "deb-mock-no-such-package" in res["error"]
    assert (bad.resultdir / "dm-uninstallable_1.0_all.deb").is_file()
    assert res["kept_root"] == str(kept) and "failed build" in said(deb_mock("--shell", "true"))
    assert deb_mock("--clean").rc == 0 and not kept.exists()


def _planted_links_are_refused(deb_mock, tmp_path: Path, host_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Links planted in the chroot (by a build, a maintainer script, a shell) that point at a host directory."""
    plant = deb_mock(
        "--shell",
        f"ln -s {host_dir}/marker /root/leak; mkdir /root/d; echo ok > /root/d/f; ln -s {host_dir} /root/d/hostdir;"
        f" ln -s {host_dir} /root/hostlink; ln -s {host_dir}/planted /root/target; mkfifo /root/d/pipe",
    )
    assert plant.rc == 0, plant.out
    out = tmp_path / "out2"
    out.mkdir()
    for path, expected in (
        ("/root/leak", "leads through a symbolic link"),
        ("/root/hostlink/marker", "leads through a symbolic link"),
        ("/root/d", "/root/d/hostdir: is a symbolic link"),
    ):
        run = deb_mock("--copyout", path, str(out))
        assert run.rc == 1 and expected in said(run), run.out
    assert "/root/d/pipe: is a FIFO" in said(run) and "nothing was copied" in said(run)
    assert list(out.iterdir()) == []
    escape = deb_mock("--copyout", "/root/../../etc/passwd", str(out))
    assert escape.rc == 2 and "may not leave the chroot" in said(escape)
    (tmp_path / "payload").write_text("PAYLOAD\n")
    for dest in ("/root/target", "/root/hostlink/", "/root/hostlink/planted"):
        run = deb_mock("--copyin", str(tmp_path / "payload"), dest)
        assert run.rc == 1 and "leads through a symbolic link" in said(run), run.out
    # /deb-mock itself, where deb-mock binds what it copies, turned into a link to the host directory
    assert deb_mock("--shell", f"rm -rf /deb-mock && ln -s {host_dir} /deb-mock").rc == 0
    for run in (deb_mock("--copyout", "/root/copied", str(out)), deb_mock("--copyin", str(tmp_path / "payload"), "/")):
        assert run.rc == 1 and "/deb-mock is a symbolic link in the root; refusing to use it" in said(run), run.out
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in host_dir.iterdir()) == ["marker"]
    assert (host_dir / "marker").read_text() == "HOST-SECRET-MARKER\n"
