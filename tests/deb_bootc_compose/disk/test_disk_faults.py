"""Faults of a disk build: too little space (refused before any work) and an interruption (nothing left behind)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import imagefixtures
import pytest

from deb_bootc_compose.disk import cli
from deb_bootc_compose.disk.builder import build_disk
from deb_bootc_compose.disk.errors import NotEnoughSpace
from deb_bootc_compose.disk.sysroot import InstallSource
from deb_bootc_compose.phases.disk import DiskPhase
from debsandbox.commands import CommandCancelled

pytestmark = pytest.mark.integration


def mounts_under(path: Path) -> list[str]:
    out = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], check=True, capture_output=True, text=True).stdout
    return [m for m in out.splitlines() if m.startswith(str(path))]


def loop_devices() -> str:
    return subprocess.run(["losetup", "-a"], check=True, capture_output=True, text=True).stdout


def test_not_enough_space_is_refused_before_any_work(commit_v1: imagefixtures.FixtureCommit, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(small)], check=True)
    try:
        src = InstallSource(commit_v1.repo, commit_v1.ref, commit_v1.commit, f"file://{commit_v1.repo}")
        start = time.monotonic()
        with pytest.raises(NotEnoughSpace, match=r"need about \d+ MiB, the filesystem has \d+ MiB free"):
            build_disk(src, {"raw": small / "d.raw"}, small, small / "log")
        assert time.monotonic() - start < 30
        assert list(small.iterdir()) == []  # not even the log: nothing was written
        rc = cli.main([f"ostree:{commit_v1.repo}", str(small / "d.qcow2")])
        assert rc == 2 and "not enough free space" in capsys.readouterr().err
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_interrupted_disk_phase_leaves_nothing(commit_v1: imagefixtures.FixtureCommit, tmp_path: Path) -> None:
    """Interrupted while the raw image is being written: no image, no partial file, no staging directory,
    no mount or loop device, and nothing for the metadata phase to list."""
    loops = loop_devices()
    ctx = imagefixtures.make_context(tmp_path / "target", commit_v1, "debian-1-20260101.t.7",
                                     imagefixtures.fixture_manifest(free_space="64MiB"))
    images = ctx.paths.images_dir("base", "amd64")
    partial = images / f".{ctx.compose_id}-base-amd64.raw.partial"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            DiskPhase(ctx).run()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=build)
    worker.start()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and worker.is_alive() and not partial.exists():
        time.sleep(0.05)
    assert partial.exists(), "the build never started writing the raw image"
    ctx.cancel.set()
    worker.join(timeout=300)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], KeyboardInterrupt | CommandCancelled), errors
    assert ctx.variants[0].images == []  # nothing recorded for checksums/metadata to list
    assert list(images.iterdir()) == []  # no image, no partial file
    assert [p.name for p in (ctx.paths.work / "base" / "amd64").iterdir()] == []  # the staging sysroot is gone
    assert not (ctx.paths.metadata / "images.json").exists()
    assert mounts_under(tmp_path) == [] and loop_devices() == loops
