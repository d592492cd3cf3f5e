"""deb-mock and sbuild (unshare mode) build hello 2.10-3 for bookworm into bit-identical .deb files.

sbuild is Debian's reference builder and its output for hello is reproducible, so any difference means
deb-mock's build environment differs from the one Debian expects (build path, environment, tools).
sbuild refuses to run as root in unshare mode: it runs as ``debmock-test`` (made with subordinate ids if
missing) from an ``mmdebstrap --variant=buildd`` tarball kept in a directory that user can read
(``$DEB_TEST_SBUILD_DIR``, default /var/cache/deb-bootc-tests/sbuild; kept between runs).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from dm_helpers import HELLO, deb_contents

BENCH = Path(__file__).resolve().parents[2] / "bench" / "deb_mock_vs_sbuild.py"
DEB = "hello_2.10-3_amd64.deb"


def bench_module() -> ModuleType:
    """The benchmark script holds the sbuild driver (user, tarball, staging); load it as a module."""
    spec = importlib.util.spec_from_file_location("deb_mock_vs_sbuild", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def field_lines(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout


@pytest.mark.integration
def test_hello_deb_is_bit_identical_to_sbuild(deb_mock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bench = bench_module()
    sbuild = bench.Sbuild()
    sbuild.prepare()
    pkg = sbuild.stage(HELLO)
    sb_out = sbuild.dir / "runs" / f"identity-test-{os.getpid()}"
    try:
        sbuild.build(pkg, sb_out, os.cpu_count() or 1)
        theirs = tmp_path / "sbuild" / DEB
        theirs.parent.mkdir()
        shutil.copyfile(sb_out / DEB, theirs)
    finally:
        shutil.rmtree(sb_out, ignore_errors=True)

    run = deb_mock("-r", "debian-bookworm-amd64", "--rebuild", str(pkg.dsc_path), resultdir=tmp_path / "deb-mock")
    assert run.rc == 0, run.out
    assert run.result["state"] == "success"

    ours = run.resultdir / DEB
    assert ours.is_file(), sorted(p.name for p in run.resultdir.iterdir())
    assert "Package: hello\n" in field_lines(ours)
    assert "./usr/bin/hello" in deb_contents(ours)
    if ours.read_bytes() != theirs.read_bytes():
        # say how they differ before failing: control fields, then the file lists
        assert field_lines(ours) == field_lines(theirs)
        assert deb_contents(ours) == deb_contents(theirs)
        pytest.fail(f"{ours} and {theirs} differ in content (same fields and file list); try diffoscope")
    sha = next(f["sha256"] for f in run.result["files"] if f["name"] == DEB)
    assert sha == bench.sha256(theirs)
