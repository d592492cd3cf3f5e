"""deb-mock integration fixtures: one shared cache, the CLI as users run it, test source packages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dm_helpers import DEB_MOCK, Run

from srcpkg import make_source


@pytest.fixture(scope="session")
def mock_cache(test_cache: Path) -> Path:
    """deb-mock's cache for these tests only: they assert on what is in it (no build root left, which deps
    snapshots exist), so no other test's builds may run in it meanwhile (the orchestrator's and the e2e tests'
    builders use ``test_cache/deb-mock``); the tests using it form one xdist group (tests/conftest.py)."""
    d = test_cache / "deb-mock-tests"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def deb_mock(mock_cache: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Run the deb-mock CLI with the shared test cache; returns a :class:`Run`."""

    def run(*args: str, resultdir: Path | None = None, timeout: float = 1800, cache: Path | None = None) -> Run:
        rd = resultdir or tmp_path_factory.mktemp("result")
        argv = [DEB_MOCK, "--cache-dir", str(cache or mock_cache), "--resultdir", str(rd), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Run(proc.returncode, proc.stdout + proc.stderr, rd)

    return run


C_RULES = "#!/usr/bin/make -f\n%:\n\tdh $@\n"
C_MAKEFILE = "all: demo\ndemo: main.c\n\t$(CC) $(CFLAGS) -o demo main.c\ninstall:\n"


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real source packages (dpkg-source -b) covering the cases the tests need."""
    d = tmp_path_factory.mktemp("srcpkgs")
    out: dict[str, Path] = {}
    out["simple"] = make_source(
        d,
        "dm-simple",
        "1.0",
        files={"README": "simple\n"},
        install={"dm-simple": "README usr/share/doc/dm-simple-data\n"},
    )
    out["depwait"] = make_source(
        d,
        "dm-depwait",
        "1.0",
        build_depends="debhelper-compat (= 13), deb-mock-no-such-package (>= 1) | deb-mock-nor-this, "
        "libc6-dev [!amd64], make",
    )
    out["gcc14"] = make_source(
        d,
        "dm-gcc14",
        "1.0",
        architecture="any",
        files={
            # an implicit function declaration: a warning before GCC 14, an error from trixie's GCC 14 on
            "main.c": "int main(void) { return undeclared_helper(); }\n",
            "Makefile": C_MAKEFILE,
        },
    )
    probe = (
        "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_auto_build:\n"
        '\t@echo "BUILD-UID=$$(id -u)"\n'
        "\t@echo \"UID-MAP=$$(cat /proc/self/uid_map | tr -s ' ' | tr ' ' ,)\"\n"
        "\t@if getent ahosts deb.debian.org >/dev/null 2>&1; then echo NETWORK-ON; else echo NETWORK-OFF; fi\n"
    )
    out["probe"] = make_source(d, "dm-probe", "1.0", rules=probe)
    slow = "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_auto_build:\n\techo SLOW-BUILD-STARTED\n\tsleep 600\n"
    out["slow"] = make_source(d, "dm-slow", "1.0", rules=slow)
    out["lib"] = make_source(
        d,
        "dm-lib",
        "1.0",
        binaries={"libdmlib-dev": ""},
        files={"dmlib.h": "#define DMLIB 1\n"},
        install={"libdmlib-dev": "dmlib.h usr/include\n"},
    )
    out["app"] = make_source(
        d,
        "dm-app",
        "1.0",
        build_depends="debhelper-compat (= 13), libdmlib-dev (>= 1.0)",
        architecture="any",
        files={"main.c": "#include <dmlib.h>\nint main(void) { return DMLIB - 1; }\n", "Makefile": C_MAKEFILE},
        install={"dm-app": "demo usr/bin\n"},
    )
    out["tree"] = make_source(d, "dm-tree", "2.0", files={"data.txt": "x\n"}, build_source=False)
    out["concurrent"] = make_source(d, "dm-concurrent", "1.0", build_depends="debhelper-compat (= 13), python3-six")
    # hostile builds: results that lead out of the build tree (the host must refuse them, never follow them)
    marker = d / "host-secret"  # a host file the build cannot see but names in a symbolic link
    marker.write_text("HOST-SECRET-NOT-FOR-RESULTS\n")
    out["host-secret"] = marker
    hostdir = d / "host-dir"  # a host directory with a result-looking file in it
    hostdir.mkdir()
    (hostdir / "stolen_1.0_all.deb").write_text("HOST-SECRET-NOT-FOR-RESULTS\n")
    out["host-dir"] = hostdir
    plant = (
        "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_builddeb:\n\tdh_builddeb\n"
        f"\tln -s {marker} ../leak_1.0_all.deb\n"
        "\tmkfifo ../fifo_1.0_all.deb\n"
        "\techo linked > ../hl-source\n\tln ../hl-source ../hardlink_1.0_all.deb\n"
    )
    out["plant"] = make_source(d, "dm-plant", "1.0", rules=plant)
    swap = (
        "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_builddeb:\n\tdh_builddeb\n"
        f"\tmv /build/reproducible-path /build/moved-away\n\tln -s {hostdir} /build/reproducible-path\n"
    )
    out["swapdir"] = make_source(d, "dm-swapdir", "1.0", rules=swap)
    # a build-dependency whose postinst (ns-root in the dependency sandbox) turns the directory of deb-mock's
    # package list into a link to a host path, where the host has a file of its own
    host_lists = d / "host-var-lib"
    host_lists.mkdir()
    (host_lists / "buildroot.tsv").write_text("HOST-SECRET-NOT-FOR-RESULTS\t1\tamd64\n")
    postinst = f"#!/bin/sh\nset -e\nmkdir -p {host_lists}\nln -s {host_lists} /var/lib/deb-mock\n"
    out["evil-dep"] = make_source(d, "dm-evil-dep", "1.0", files={"debian/dm-evil-dep.postinst": postinst})
    out["evil-user"] = make_source(d, "dm-evil-user", "1.0", build_depends="debhelper-compat (= 13), dm-evil-dep")
    return out
