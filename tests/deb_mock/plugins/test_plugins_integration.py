"""deb-mock's plugins on real builds: a third-party plugin installed from docs/plugins.md's example (runs only
when enabled, reports, fails the build when told to), tmpfs (where the build tree and /tmp live, a tmpfs too
small for the build), sign (debsign's format, verified with gpgv; a passphrase-protected key; the secret in
no log), lintian (the target's own lintian finds the error tag of a package made to have one; fail-on),
autopkgtest (a package's real tests against the built package, one passing, one failing)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from dm_helpers import DEB_MOCK, Run

from srcpkg import make_source

pytestmark = pytest.mark.integration

CONFIG = "debian-trixie-amd64"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


TESTS = """\
Test-Command: hello && test -f /usr/share/doc/dm-tested-data/README && echo SMOKE-OK
Depends: @, hello
Features: test-name=smoke

Test-Command: echo BROKEN-TEST-RAN; exit 1
Depends: @
Features: test-name=broken
"""


@pytest.fixture(scope="module")
def plugin_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("plugsrc")
    probe = (
        "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_auto_build:\n"
        '\t@echo "FS-TREE=$$(stat -f -c %T .) FS-TMP=$$(stat -f -c %T /tmp)"\n'
        "\tif [ -n \"$$DM_FILL\" ]; then dd if=/dev/zero of=fill bs=1M count=$$DM_FILL; fi\n"
    )
    return {
        "simple": make_source(d, "dm-plugsimple", "1.0", files={"README": "plugins\n"},
                              install={"dm-plugsimple": "README usr/share/doc/dm-plugsimple-data\n"}),
        "fsprobe": make_source(d, "dm-fsprobe", "1.0", rules=probe),
        # a file in /home: lintian's error tag dir-or-file-in-home
        # two real autopkgtests: one needs the built package and hello (from the mirror) and passes, one fails
        "tested": make_source(d, "dm-tested", "1.0", files={"README": "tested\n", "debian/tests/control": TESTS},
                              install={"dm-tested": "README usr/share/doc/dm-tested-data\n"}),
        "lint": make_source(d, "dm-lint", "1.0", files={"README": "lint\n"},
                            install={"dm-lint": "README home/dm-lint\n"}),
    }


def run(mock_cache: Path, resultdir: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    argv = [DEB_MOCK, "--cache-dir", str(mock_cache), "--resultdir", str(resultdir), "-r", CONFIG, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})
    return Run(proc.returncode, proc.stdout + proc.stderr, resultdir)


def debs(resultdir: Path) -> list[str]:
    return sorted(p.name for p in resultdir.glob("*.deb"))


@pytest.fixture(scope="module")
def hello_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/plugins.md's example plugin, installed as a distribution (a .dist-info with its entry point) in a
    directory for PYTHONPATH."""
    text = DOCS.read_text()
    code = re.search(r"<!-- deb-mock-example-plugin -->\n```python\n(.*?)```", text, re.S)
    assert code, "docs/plugins.md has lost its example plugin"
    site = tmp_path_factory.mktemp("site")
    (site / "deb_mock_hello.py").write_text(code.group(1))
    info = site / "deb_mock_hello-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: deb-mock-hello\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[deb_mock.plugins]\nhello = deb_mock_hello:HelloPlugin\n")
    return site


def test_a_third_party_plugin_runs_only_when_enabled(  # type: ignore[no-untyped-def]
    mock_cache, plugin_sources, hello_plugin, tmp_path
) -> None:
    env = {"PYTHONPATH": str(hello_plugin)}
    dsc = str(plugin_sources["simple"])
    off = run(mock_cache, tmp_path / "off", "--rebuild", dsc, env=env)
    assert off.rc == 0, off.out
    assert list(off.result["plugins"]) == ["tmpfs"]  # installed, not enabled: not run
    assert not (off.resultdir / "hello.log").exists()

    on = run(mock_cache, tmp_path / "on", "-D", "plugins.hello.enabled=true", "--plugin-option", "hello:greeting=hi",
             "--rebuild", dsc, env=env)
    assert on.rc == 0, on.out
    hello = on.result["plugins"]["hello"]
    # ran in the target's root as the build user (uid 1000 in the sandbox), not on this host
    assert hello == {"state": "ok", "greeting": "hi", "uid": 1000, "codename": "trixie",
                     "debs": ["dm-plugsimple_1.0_all.deb"]}
    assert on.result["logs"]["plugin-hello"] == "hello.log"
    assert f"hi from {CONFIG}" in on.log("hello.log")
    assert "plugin hello: after_build" in on.log("state.log") and "plugins" in on.result["phases"]

    failed = run(mock_cache, tmp_path / "failed", "--enable-plugin", "hello", "--plugin-option", "hello:fail=true",
                 "--rebuild", dsc, env=env)
    assert failed.rc == 1, failed.out
    res = failed.result
    assert res["state"] == "failed" and res["error"].startswith("plugin hello: asked to fail")
    assert res["plugins"]["hello"]["state"] == "failed"
    assert debs(failed.resultdir) == ["dm-plugsimple_1.0_all.deb"]  # the build's files are kept
    assert [f["name"] for f in res["files"] if f["name"].endswith(".deb")] == ["dm-plugsimple_1.0_all.deb"]

    unknown = run(mock_cache, tmp_path / "unknown", "--enable-plugin", "hello", "--rebuild", dsc)  # not installed
    assert unknown.rc == 2 and "unknown plugin(s): hello" in unknown.result["error"]


def test_tmpfs_puts_tmp_and_the_build_tree_in_ram_and_names_its_size_when_full(  # type: ignore[no-untyped-def]
    mock_cache, plugin_sources, tmp_path
) -> None:
    dsc = str(plugin_sources["fsprobe"])
    default = run(mock_cache, tmp_path / "default", "--rebuild", dsc)
    assert default.rc == 0, default.out
    assert "FS-TREE=overlayfs FS-TMP=tmpfs" in default.log("build.log")
    assert default.result["plugins"]["tmpfs"] == {"state": "ok", "mounts": ["/tmp"]}

    ram = run(mock_cache, tmp_path / "ram", "--plugin-option", "tmpfs:build_tree=true", "--plugin-option",
              "tmpfs:size=256m", "--rebuild", dsc)
    assert ram.rc == 0, ram.out
    assert "FS-TREE=tmpfs FS-TMP=tmpfs" in ram.log("build.log")
    assert debs(ram.resultdir) == ["dm-fsprobe_1.0_all.deb"]  # copied out of the tmpfs before it went
    assert {f["name"] for f in ram.result["files"]} >= {"dm-fsprobe_1.0_all.deb", "dm-fsprobe_1.0_amd64.changes"}

    disk = run(mock_cache, tmp_path / "disk", "--disable-plugin", "tmpfs", "--rebuild", dsc)
    assert disk.rc == 0, disk.out
    assert "FS-TREE=overlayfs FS-TMP=overlayfs" in disk.log("build.log")
    assert "tmpfs" not in disk.result["plugins"]

    full = run(mock_cache, tmp_path / "full", "--plugin-option", "tmpfs:build_tree=true", "--plugin-option",
               "tmpfs:size=8m", "-D", 'environment.DM_FILL="32"', "--rebuild", dsc)
    assert full.rc == 1, full.out
    assert full.result["error"].startswith(
        "the build ran out of space on its tmpfs /build/reproducible-path (size 8m): raise the tmpfs plugin's "
        "size option (--plugin-option tmpfs:size=8G"
    ), full.result["error"]
    assert "No space left on device" in full.log("build.log")


@pytest.fixture(scope="module")
def secret_key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """A passphrase-protected signing key exported to a file, its passphrase in another, its public keyring."""
    d = tmp_path_factory.mktemp("signkey")
    home = d / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "dm-secret-pass"]
    subprocess.run([*gpg, "--quick-gen-key", "deb-mock plugin test <sign@example.org>", "ed25519", "sign", "never"],
                   check=True, capture_output=True)
    (d / "secret.asc").write_bytes(subprocess.run([*gpg, "--armor", "--export-secret-keys"], check=True,
                                                  capture_output=True).stdout)
    subprocess.run([*gpg, "--output", str(d / "public.gpg"), "--export"], check=True, capture_output=True)
    (d / "secret.asc").chmod(0o600)
    (d / "pass").write_text("dm-secret-pass\n")
    (d / "pass").chmod(0o600)
    colons = subprocess.run([*gpg, "--with-colons", "--list-secret-keys"], check=True, capture_output=True, text=True)
    fpr = re.search(r"^fpr:+([0-9A-F]{40}):", colons.stdout, re.M)
    assert fpr
    # gpg started an agent for this home: stop it (the session guards fail on agents left running)
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True)
    return {"secret": d / "secret.asc", "pass": d / "pass", "public": d / "public.gpg", "fpr": fpr.group(1)}


def _sums(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {a: hashlib.new(a, data).hexdigest() for a in ("md5", "sha1", "sha256")} | {"size": str(len(data))}


def test_sign_signs_buildinfo_and_changes_like_debsign(  # type: ignore[no-untyped-def]
    mock_cache, plugin_sources, secret_key, tmp_path
) -> None:
    signed = run(mock_cache, tmp_path / "signed", "--enable-plugin", "sign",
                 "--plugin-option", f"sign:key={secret_key['secret']}",
                 "--plugin-option", f"sign:passphrase-file={secret_key['pass']}",
                 "--rebuild", str(plugin_sources["simple"]))
    assert signed.rc == 0, signed.out
    rd = signed.resultdir
    changes, buildinfo = rd / "dm-plugsimple_1.0_amd64.changes", rd / "dm-plugsimple_1.0_amd64.buildinfo"
    for f in (changes, buildinfo):
        assert f.read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----\n")
        check = subprocess.run(["gpgv", "--keyring", str(secret_key["public"]), str(f)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        assert secret_key["fpr"] in check.stderr.replace(" ", "")
    # the .changes lists the signed .buildinfo (debsign's order), and result.json the signed files
    s = _sums(buildinfo)
    text = changes.read_text()
    assert f" {s['sha256']} {s['size']} {buildinfo.name}\n" in text
    assert f" {s['sha1']} {s['size']} {buildinfo.name}\n" in text
    assert re.search(rf"^ {s['md5']} {s['size']} \S+ \S+ {re.escape(buildinfo.name)}$", text, re.M)
    recorded = {f["name"]: f["sha256"] for f in signed.result["files"]}
    assert recorded[changes.name] == _sums(changes)["sha256"] and recorded[buildinfo.name] == s["sha256"]
    assert signed.result["plugins"]["sign"] == {"state": "ok", "fingerprint": secret_key["fpr"],
                                                 "signed": [buildinfo.name, changes.name]}
    # the secret key and its passphrase are nowhere in the results or logs
    key_lines = [ln for ln in Path(secret_key["secret"]).read_text().splitlines()[2:-2] if len(ln) > 20]
    for f in rd.iterdir():
        content = f.read_text(errors="replace")
        assert "dm-secret-pass" not in content, f
        assert not any(ln in content for ln in key_lines), f

    missing = run(mock_cache, tmp_path / "missing", "--enable-plugin", "sign", "--plugin-option",
                  f"sign:key={tmp_path / 'no-such-key.asc'}", "--rebuild", str(plugin_sources["simple"]))
    assert missing.rc == 2, missing.out
    assert missing.result["error"].startswith(f"plugin sign: cannot read the key file {tmp_path / 'no-such-key.asc'}")
    assert "build" not in missing.result["phases"]  # found before the build


def test_lintian_finds_the_error_of_a_package_made_to_have_one(  # type: ignore[no-untyped-def]
    mock_cache, plugin_sources, tmp_path
) -> None:
    dsc = str(plugin_sources["lint"])
    failed = run(mock_cache, tmp_path / "failed", "--run-lintian", "--rebuild", dsc)
    assert failed.rc == 1, failed.out
    res = failed.result
    lint = res["plugins"]["lintian"]
    assert res["state"] == "failed" and res["error"].startswith("plugin lintian: "), res["error"]
    assert "error tag(s) (fail-on: error): dir-or-file-in-home" in res["error"]
    assert lint["state"] == "failed" and lint["counts"]["error"] >= 1 and "dir-or-file-in-home" in lint["tags"]["error"]
    assert lint["version"].startswith("Lintian v2.")  # the target's own lintian (this host has none)
    assert "dir-or-file-in-home" in failed.log("lintian.log")
    assert debs(failed.resultdir) == ["dm-lint_1.0_all.deb"]

    passed = run(mock_cache, tmp_path / "passed", "--run-lintian", "--plugin-option", "lintian:fail-on=none",
                 "--rebuild", dsc)
    assert passed.rc == 0, passed.out
    assert passed.result["plugins"]["lintian"]["counts"] == lint["counts"]
    assert "cached layer" in passed.log("lintian.log")  # lintian was installed once, for both builds


def test_autopkgtest_runs_the_packages_own_tests_against_what_was_built(  # type: ignore[no-untyped-def]
    mock_cache, plugin_sources, tmp_path
) -> None:
    tested = run(mock_cache, tmp_path / "tested", "--run-autopkgtest", "--rebuild", str(plugin_sources["tested"]))
    assert tested.rc == 1, tested.out
    res = tested.result
    at = res["plugins"]["autopkgtest"]
    assert at["tests"] == {"smoke": "PASS", "broken": "FAIL"}, tested.log("autopkgtest.log")[-3000:]
    assert res["error"] == "plugin autopkgtest: 1 of 2 test(s) failed (fail-on: failure): broken (see autopkgtest.log)"
    log = tested.log("autopkgtest.log")
    assert "SMOKE-OK" in log and "BROKEN-TEST-RAN" in log  # hello came from the mirror for the testbed
    assert debs(tested.resultdir) == ["dm-tested_1.0_all.deb"]
