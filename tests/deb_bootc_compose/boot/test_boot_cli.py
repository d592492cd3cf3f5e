"""``boot-test`` on a compose directory through its command line. The successful real boot of a compose runs
in test_update_rollback.py (one VM session for the boot test, the update and the rollback); here the CLI
meets an image that never boots (a cheap, short run) and everything it must refuse before booting."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import imagefixtures
import pytest

from deb_bootc_compose.boot import cli

pytestmark = pytest.mark.boot
TIMEOUT = 10  # the firmware alone takes ~4 s under TCG; the VM is killed at the timeout


def test_boot_test_cli_on_an_unbootable_compose(boot_commit_v1: imagefixtures.FixtureCommit, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ctx = imagefixtures.make_context(tmp_path / "target", boot_commit_v1, "blank-1-20260101.t.0",
                                     imagefixtures.fixture_manifest())
    compose = ctx.paths.topdir
    blank = ctx.paths.images_dir("base", "amd64") / "blank.qcow2"
    blank.parent.mkdir(parents=True)
    # an empty disk, no partition table: the firmware finds nothing to boot
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "64M"], check=True)
    ctx.paths.status.write_text("FINISHED\n")
    start = time.monotonic()
    rc = cli.main([str(compose), "--command", "hello", "--timeout", str(TIMEOUT)])
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    assert rc == 1, out
    assert elapsed < TIMEOUT + 90, f"the failing boot test took {elapsed:.0f}s for a {TIMEOUT}s timeout"
    assert f"booting {blank}" in out and f"did not reach a shell within {TIMEOUT}s" in out
    report = json.loads((compose / "logs/boot-test.json").read_text())
    assert report["ok"] is False and report["image"] == str(blank)
    serial = compose / "logs/boot-test-serial.log"
    assert report["serial_log"] == str(serial) and serial.stat().st_size > 0  # the console log is kept
    assert not list(compose.glob("logs/.boot-test-*"))  # the overlay and firmware copy are gone


def test_boot_test_cli_rejects_what_it_cannot_boot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([str(tmp_path / "missing.qcow2")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main([str(tmp_path)]) == 2
    assert "not a compose" in capsys.readouterr().err
    compose = tmp_path / "c"
    (compose / "compose/base/amd64/images").mkdir(parents=True)
    (compose / "STATUS").write_text("FINISHED\n")
    assert cli.main([str(compose)]) == 2
    assert "no disk image" in capsys.readouterr().err
    image = tmp_path / "some.qcow2"
    image.write_bytes(b"")
    assert cli.main([str(image), "--disk", str(tmp_path / "updates.img")]) == 2
    assert f"--disk {tmp_path / 'updates.img'}: no such file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*serial.log"))  # refused before QEMU started
