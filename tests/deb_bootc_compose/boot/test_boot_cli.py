"""``boot-test`` on a compose directory: a real TCG boot of the image the disk phase built."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import imagefixtures
import pytest

from deb_bootc_compose.boot import cli

pytestmark = pytest.mark.boot


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def test_boot_test_cli_on_a_compose(boot_compose_v1: imagefixtures.FixtureCompose,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    compose = boot_compose_v1.topdir
    image = next((compose / "compose/base/amd64/images").glob("*.qcow2"))
    before = sha256(image)
    start = time.monotonic()
    rc = cli.main([str(compose), "--command", "hello", "--command", 'test "$(hello)" = "Hello, world!"',
                   "--timeout", "1500"])
    seconds = time.monotonic() - start
    out = capsys.readouterr().out
    report = json.loads((compose / "logs/boot-test.json").read_text())
    assert rc == 0, out
    assert report["ok"] and report["booted_commit"] == boot_compose_v1.commit.commit
    names = {c["name"]: c["ok"] for c in report["checks"]}
    for expected in ("multi-user.target reached", "systemctl is-system-running", "/usr is read-only",
                     "/etc is writable", "/var is writable", "booted deployment is this compose's commit",
                     "dpkg -l lists the image's packages", "command: hello"):
        assert names.get(expected) is True, (expected, out)
    serial = (compose / "logs/boot-test-serial.log").read_text(errors="replace")
    assert "Reached target" in serial and "multi-user.target" in serial  # the full console log is kept
    assert sha256(image) == before  # the shipped image was never written
    assert not list(compose.glob("logs/.boot-test-*"))  # the overlay and firmware copy are gone
    print(f"\nFIGURE boot-test CLI: {seconds:.0f}s total, shell after {report['boot_seconds']}s under "
          f"{report['accel']}; {report['userspace_seconds']}")


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
