"""A VM that never reaches its target: the boot-test phase fails within its timeout, keeps the serial log
and marks the compose incomplete instead of aborting it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import imagefixtures
import pytest

from deb_bootc_compose.phases.base import ImageRecord
from deb_bootc_compose.phases.boot_test import BootTestPhase

pytestmark = pytest.mark.boot
TIMEOUT = 10  # the firmware alone takes ~4 s under TCG; the VM is killed at the timeout


def test_unbootable_image_fails_in_time_and_marks_the_compose(
        boot_commit_v1: imagefixtures.FixtureCommit, tmp_path: Path) -> None:
    ctx = imagefixtures.make_context(tmp_path / "target", boot_commit_v1, "broken-1-20260101.t.0",
                                     imagefixtures.fixture_manifest(timeout=TIMEOUT))
    blank = ctx.paths.images_dir("base", "amd64") / "blank.raw"
    blank.parent.mkdir(parents=True)
    with open(blank, "wb") as fh:
        fh.truncate(64 << 20)  # no partition table: the firmware finds nothing to boot
    ctx.variants[0].images.append(ImageRecord("base", "amd64", blank, "raw", "raw", blank.stat().st_size))
    phase = BootTestPhase(ctx)
    assert phase.skip_reason() is None
    start = time.monotonic()
    phase.run()  # does not raise: the compose goes on and ends FINISHED_INCOMPLETE
    elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT + 90, f"the failing boot test took {elapsed:.0f}s for a {TIMEOUT}s timeout"
    reasons = ctx.incomplete
    assert len(reasons) == 1 and "boot-test base/amd64 failed" in reasons[0] and f"within {TIMEOUT}s" in reasons[0]
    serial = ctx.paths.logs / "boot-test-base-amd64-serial.log"
    assert serial.is_file() and serial.stat().st_size > 0 and str(serial) in reasons[0]
    report = json.loads((ctx.paths.logs / "boot-test-base-amd64.json").read_text())
    assert report["ok"] is False and f"did not reach a shell within {TIMEOUT}s" in report["error"]
    assert "boot-test" in (ctx.paths.logs / "boot_test.log").read_text()


def test_boot_test_phase_is_skipped_unless_enabled(boot_commit_v1: imagefixtures.FixtureCommit,
                                                   tmp_path: Path) -> None:
    manifest = imagefixtures.fixture_manifest()
    manifest.boot_test.enabled = False
    ctx = imagefixtures.make_context(tmp_path / "t", boot_commit_v1, "x-1-20260101.t.0", manifest)
    assert BootTestPhase(ctx).skip_reason() == "boot_test.enabled is false"
    manifest.boot_test.enabled = True
    manifest.outputs = ["oci"]
    assert "no disk image to boot" in (BootTestPhase(ctx).skip_reason() or "")
