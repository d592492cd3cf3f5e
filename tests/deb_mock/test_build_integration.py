"""deb-mock building real source packages in real chroots, as users run it (the CLI)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
from dm_helpers import HELLO, deb_contents

from debsandbox.sandbox import remove_tree
from srcpkg import make_source

pytestmark = pytest.mark.integration


def _status_digest(cache: Path) -> str:
    from deb_mock.config import load_config

    key = load_config("debian-trixie-amd64", []).root_cache_key()
    status = cache / "root-cache" / f"debian-trixie-amd64-{key}" / "current" / "root" / "var/lib/dpkg/status"
    return hashlib.sha256(status.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hello(deb_mock):  # type: ignore[no-untyped-def]
    return deb_mock("-r", "debian-trixie-amd64", "--rebuild", HELLO)


def test_hello_builds_from_the_mirror(hello) -> None:  # type: ignore[no-untyped-def]
    assert hello.rc == 0, hello.out
    res = hello.result
    assert res["state"] == "success" and res["exit_code"] == 0
    assert res["source"] == {"name": "hello", "version": "2.10-3"}
    assert res["arch"] == "amd64"
    # authenticated: hello 2.10-3 lives only in bookworm's signed index (searched after trixie's, the config's)
    assert res["source_verified"] is True and res["source_trust"] == "archive"
    assert "bookworm main" in res["source_verification"]
    assert "source: trusted (archive)" in hello.log("root.log")
    names = {f["name"] for f in res["files"]}
    assert {"hello_2.10-3_amd64.deb", "hello_2.10-3_amd64.changes", "hello_2.10-3_amd64.buildinfo"} <= names
    for f in res["files"]:
        data = (hello.resultdir / f["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
    assert "./usr/bin/hello" in deb_contents(hello.resultdir / "hello_2.10-3_amd64.deb")
    buildroot = {b["package"]: b for b in res["buildroot"]}
    assert "gcc" in buildroot and "debhelper" in buildroot and "dpkg-dev" in buildroot
    assert set(res["phases"]) >= {"source", "root-cache", "deps", "build", "results"}
    assert "dpkg-buildpackage" in hello.log("build.log")
    assert "build-dependency set: " in hello.log("root.log")
    assert "  debhelper=" in hello.log("root.log")
    state = hello.log("state.log")
    assert "Start: build" in state and "Finish: build" in state
    buildinfo = hello.log("hello_2.10-3_amd64.buildinfo")
    assert "Installed-Build-Depends:" in buildinfo


def test_second_build_hits_the_dependency_cache_and_never_touches_the_root_cache(  # type: ignore[no-untyped-def]
    hello, deb_mock, mock_cache
) -> None:
    assert hello.rc == 0
    before = _status_digest(mock_cache)
    # the root of a build whose process was killed -9 (nobody holds its lock) is removed by the next build
    abandoned = mock_cache / "builds" / "debian-trixie-amd64" / "20000101-000000-deadbeef" / "upper"
    abandoned.mkdir(parents=True)
    again = deb_mock("--rebuild", HELLO)
    assert again.rc == 0, again.out
    assert "build-dependency cache: hit" in again.log("state.log")
    assert _status_digest(mock_cache) == before
    # reproducible: the same .deb from the cached build-dependency root
    a = (hello.resultdir / "hello_2.10-3_amd64.deb").read_bytes()
    b = (again.resultdir / "hello_2.10-3_amd64.deb").read_bytes()
    assert a == b
    assert not abandoned.parent.exists()
    assert not any((mock_cache / "builds").rglob("upper")), "throw-away roots must be removed after success"


def test_stale_apt_lists_are_refreshed_once_for_the_builds_that_follow(  # type: ignore[no-untyped-def]
    hello, deb_mock, mock_cache, tmp_path
) -> None:
    """apt lists older than apt_lists_max_age_hours: the first build refreshes them into a snapshot next to the
    root cache (bound read-only where apt resolves and installs), the next one reuses it, and its resolution is
    memoised again (no apt run at all in its deps phase)."""
    assert hello.rc == 0
    from deb_mock.config import load_config

    key = load_config("debian-trixie-amd64", []).root_cache_key()
    gen = (mock_cache / "root-cache" / f"debian-trixie-amd64-{key}" / "current").resolve()
    age = time.time() - json.loads((gen / "meta.json").read_text())["created"]
    max_age = 0.9 * age  # the root cache's lists are too old for these builds
    assert max_age > 30, f"the root cache is only {age:.0f}s old"
    remove_tree(gen / "lists")  # a snapshot the earlier builds made (this group's builds run one at a time)
    src = make_source(tmp_path, "dm-lists", "1.0", build_depends="debhelper-compat (= 13), tree")
    runs = [deb_mock("-D", f"apt_lists_max_age_hours={max_age / 3600:.6f}", "--rebuild", str(src)) for _ in "12"]
    for run in runs:
        assert run.rc == 0, run.out
    first, second = (run.log("root.log") for run in runs)
    assert "refreshing them for this and later builds" in first
    snapshot = first.split("apt lists: snapshot ", 1)[1].split()[0]
    assert f"apt lists: snapshot {snapshot} " in second and "refreshing" not in second
    assert "apt-get update" not in second and "@@@ simulate" not in second  # memoised with the snapshot
    assert [d.name for d in (gen / "lists").iterdir()] == [snapshot]  # older ones removed once unused


def test_arch_all_package_from_the_mirror(deb_mock) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--rebuild", "http://deb.debian.org/debian/pool/main/p/python-hashids/python-hashids_1.3.1-5.dsc")
    assert run.rc == 0, run.out
    debs = [f["name"] for f in run.result["files"] if f["name"].endswith(".deb")]
    assert debs == ["python3-hashids_1.3.1-5_all.deb"]
    assert "dist-packages/hashids" in deb_contents(run.resultdir / debs[0])


def test_package_with_a_larger_dependency_tree(deb_mock) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--rebuild", "http://deb.debian.org/debian/pool/main/g/grim/grim_1.4.0+ds-2.dsc")
    assert run.rc == 0, run.out
    assert "./usr/bin/grim" in deb_contents(run.resultdir / "grim_1.4.0+ds-2_amd64.deb")
    packages = {b["package"] for b in run.result["buildroot"]}
    assert {"meson", "libwayland-dev", "libpng-dev"} <= packages
    assert len(packages) > 150


def test_dep_wait_names_each_missing_relation(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--rebuild", str(sources["depwait"]))
    assert run.rc == 3, run.out
    res = run.result
    assert res["state"] == "dep-wait"
    assert res["missing"] == [
        {
            "relation": "deb-mock-no-such-package (>= 1) | deb-mock-nor-this",
            "packages": ["deb-mock-no-such-package", "deb-mock-nor-this"],
        }
    ]
    assert "deb-mock-no-such-package" in res["error"]
    assert "missing: deb-mock-no-such-package (>= 1) | deb-mock-nor-this" in run.out


def test_gcc14_failure_keeps_logs_and_root_for_shell(deb_mock, sources, mock_cache) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--rebuild", str(sources["gcc14"]))
    assert run.rc == 1, run.out
    res = run.result
    assert res["state"] == "failed" and res["exit_code"] == 1
    assert "dpkg-buildpackage" in res["error"]
    assert "implicit declaration of function" in run.log("build.log")
    assert not [f for f in res["files"] if f["name"].endswith(".deb")]
    # the failed root is kept: --shell enters it
    shell = deb_mock("--shell", "test -f /build/reproducible-path/dm-gcc14-1.0/main.c && echo FOUND-IT")
    assert shell.rc == 0 and "FOUND-IT" in shell.out and "failed build" in shell.out
    clean = deb_mock("--clean")
    assert clean.rc == 0
    assert not (mock_cache / "failed" / "debian-trixie-amd64").exists()


def test_build_is_unprivileged_and_offline_unless_asked(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("-v", "--rebuild", str(sources["probe"]))
    assert run.rc == 0, run.out
    log = run.log("build.log")
    assert "BUILD-UID=1000" in log
    uid_map = next(line for line in log.splitlines() if line.startswith("UID-MAP="))
    assert not uid_map.startswith("UID-MAP=,0,0,") and ",0,0," not in uid_map  # ns-root is never host root
    assert "NETWORK-OFF" in log
    assert "NETWORK-OFF" in run.out  # -v streams the build log
    online = deb_mock("--enable-network", "--rebuild", str(sources["probe"]))
    assert online.rc == 0, online.out
    assert "NETWORK-ON" in online.log("build.log")


def test_buildsrc_builds_an_unpacked_tree(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--buildsrc", str(sources["tree"]))
    assert run.rc == 0, run.out
    assert run.result["source"] == {"name": "dm-tree", "version": "2.0"}
    assert (run.resultdir / "dm-tree_2.0_all.deb").is_file()


def test_chain_builds_against_earlier_results(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    alone = deb_mock("--rebuild", str(sources["app"]))
    assert alone.rc == 3 and alone.result["missing"][0]["packages"] == ["libdmlib-dev"]
    run = deb_mock("--chain", str(sources["lib"]), str(sources["app"]))
    assert run.rc == 0, run.out
    summary = json.loads((run.resultdir / "result.json").read_text())
    assert [b["state"] for b in summary["builds"]] == ["success", "success"]
    app_dir = run.resultdir / summary["builds"][1]["resultdir"]
    assert json.loads((app_dir / "result.json").read_text())["state"] == "success"
    assert "libdmlib-dev" in {b["package"] for b in json.loads((app_dir / "result.json").read_text())["buildroot"]}
    repo = run.resultdir / "chain-repo"
    assert (repo / "dists" / "chain" / "InRelease").is_file() and (repo / "key.asc").is_file()


def test_chain_stops_at_the_first_failure_unless_recurse(deb_mock, sources) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("--chain", str(sources["app"]), str(sources["lib"]))
    assert run.rc == 5, run.out
    summary = json.loads((run.resultdir / "result.json").read_text())
    assert [b["state"] for b in summary["builds"]] == ["dep-wait"]
    assert summary["not_built"] == [str(sources["lib"])]
    again = deb_mock("--chain", "--recurse", str(sources["app"]), str(sources["lib"]))
    assert again.rc == 0, again.out  # app is retried after lib was built
    summary = json.loads((again.resultdir / "result.json").read_text())
    assert [b["state"] for b in summary["builds"]] == ["success", "success"]


NETCHECK_POSTINST = """#!/bin/sh
# a maintainer script is untrusted code: it must find only the loopback interface
n=$(grep -c : /proc/net/dev)
echo "DM-NETCHECK: $n interface(s)" | tee /var/lib/dm-netcheck
[ "$n" -eq 1 ] || { echo "DM-NETCHECK: NETWORK"; exit 1; }
"""


def netcheck_deb(tmp: Path) -> Path:
    """A local .deb that depends on hello (apt downloads it) and whose postinst fails if it sees a network."""
    tree = tmp / "dm-netcheck"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: dm-netcheck\nVersion: 1.0\nArchitecture: all\nMaintainer: deb-mock tests <t@example.org>\n"
        "Depends: hello\nDescription: postinst checks it runs without network\n"
    )
    (tree / "DEBIAN" / "postinst").write_text(NETCHECK_POSTINST)
    (tree / "DEBIAN" / "postinst").chmod(0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(tmp / "dm-netcheck_1.0_all.deb")],
                   check=True, capture_output=True)
    return tmp / "dm-netcheck_1.0_all.deb"


def test_working_chroot_init_install_shell_clean(deb_mock, mock_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert deb_mock("--clean").rc == 0
    init = deb_mock("--init")
    assert init.rc == 0 and "made the working chroot" in init.out
    # --install: apt downloads hello with network; dpkg and the postinst run without it
    inst = deb_mock("--install", str(netcheck_deb(tmp_path)))
    assert inst.rc == 0, inst.out
    shell = deb_mock("--shell", "cat /var/lib/dm-netcheck; hello")
    assert shell.rc == 0 and "Hello, world!" in shell.out
    assert "DM-NETCHECK: 1 interface(s)" in shell.out, shell.out  # the postinst ran, and saw only loopback
    assert "working chroot" in shell.out
    assert deb_mock("--init").out.count("kept the working chroot") == 1
    assert deb_mock("--clean").rc == 0
    assert not (mock_cache / "chroots" / "debian-trixie-amd64").exists()


def test_sid_is_a_build_target_too(deb_mock) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("-r", "debian-sid-amd64", "--rebuild", HELLO)
    assert run.rc == 0, run.out
    assert run.result["state"] == "success"
    assert "./usr/bin/hello" in deb_contents(run.resultdir / "hello_2.10-3_amd64.deb")
