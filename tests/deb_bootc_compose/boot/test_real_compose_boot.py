"""The real thing: the session's compose of examples/minimal.yaml, installed with ``install-to-disk`` from its
compose directory and booted with the full boot-test checks (its commit, its packages, ``hello``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_bootc_compose.boot.runner import BootTestSpec, boot_test, packages_from_metadata
from deb_bootc_compose.disk import cli as disk_cli
from deb_bootc_compose.disk import source

pytestmark = pytest.mark.boot


def test_minimal_compose_installs_and_boots(minimal_compose: object, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    topdir: Path = minimal_compose.topdir  # type: ignore[attr-defined]
    disk = tmp_path / "minimal.qcow2"
    rc = disk_cli.main([str(topdir), str(disk), "--free-space", "512MiB"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    src = source.from_compose(topdir, None)
    assert src.remote_url == f"file://{topdir.parent.resolve()}/ostree/repo"
    expected = packages_from_metadata(topdir, "base", "amd64")
    report = boot_test(BootTestSpec(image=disk, log_dir=tmp_path / "logs", expected_commit=src.commit,
                                    expected_packages=expected, commands=["hello"], timeout=1500))
    assert report.ok, f"{report.summary()}\nserial log: {report.serial_log}"
    assert report.booted_commit == src.commit
    print(f"\nFIGURE minimal compose: {out.splitlines()[0]}; shell after {report.boot_seconds}s; "
          f"{report.userspace_seconds}")
