"""CHECKSUM files (Pungi's BSD style) and the checksums phase."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from composefixtures import make_context

from deb_bootc_compose.checksums import (
    ChecksumError,
    FileChecksum,
    checksum,
    read_checksum_file,
    verify_checksum_file,
    write_checksum_file,
)
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phases.base import ImageRecord
from deb_bootc_compose.phases.checksums import ChecksumsPhase
from deb_bootc_compose.phases.oci import OciPhase


def test_checksum_file_format_and_sha256sum_reads_it(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images/disk.qcow2").write_bytes(b"qcow2 data")
    (tmp_path / "oci").mkdir()
    (tmp_path / "oci/img.oci-archive").write_bytes(b"oci data" * 1000)
    items = [checksum(tmp_path / "oci/img.oci-archive", tmp_path), checksum(tmp_path / "images/disk.qcow2", tmp_path)]
    write_checksum_file(tmp_path / "CHECKSUM", items)
    text = (tmp_path / "CHECKSUM").read_text()
    digest = hashlib.sha256(b"qcow2 data").hexdigest()
    assert text.splitlines()[:2] == ["# disk.qcow2: 10 bytes", f"SHA256 (images/disk.qcow2) = {digest}"]
    assert read_checksum_file(tmp_path / "CHECKSUM") == {i.name: i.sha256 for i in items}
    done = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "images/disk.qcow2: OK" in done.stdout and "oci/img.oci-archive: OK" in done.stdout
    assert verify_checksum_file(tmp_path / "CHECKSUM") == []
    (tmp_path / "images/disk.qcow2").write_bytes(b"tampered")
    assert verify_checksum_file(tmp_path / "CHECKSUM") == [
        f"{tmp_path}/images/disk.qcow2: SHA256 does not match {tmp_path}/CHECKSUM"
    ]
    assert subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=tmp_path, capture_output=True).returncode == 1


def test_checksum_errors(tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match="nothing to checksum"):
        checksum(tmp_path / "missing.qcow2", tmp_path)
    bad = tmp_path / "CHECKSUM"
    bad.write_text("# comment\nMD5 (x) = 123\n")
    with pytest.raises(ChecksumError, match=r"CHECKSUM:2: not a 'SHA256 \(name\) = hex' line"):
        read_checksum_file(bad)
    with pytest.raises(ChecksumError, match="does not exist"):
        read_checksum_file(tmp_path / "nope")
    write_checksum_file(bad, [FileChecksum("gone.raw", 1, "0" * 64)])
    assert verify_checksum_file(bad) == [f"{tmp_path}/gone.raw: listed in {bad} but missing"]


def test_checksums_phase_fills_records_and_writes_checksum_files(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    OciPhase(ctx).run()
    base = ctx.variants[0]
    disk = ctx.paths.images_dir("base", "amd64") / "debian-bootc-base-13.amd64.qcow2"
    disk.parent.mkdir(parents=True)
    disk.write_bytes(b"a disk image")
    base.images.append(ImageRecord("base", "amd64", disk, "qcow2", "qcow2"))
    ChecksumsPhase(ctx).run()
    for vs in ctx.variants:
        listed = read_checksum_file(ctx.paths.checksum_file(vs.variant, vs.arch))
        assert len(listed) == len(vs.images)
        for img in vs.images:
            assert img.checksums["sha256"] == hashlib.sha256(img.path.read_bytes()).hexdigest()
            assert img.size == img.path.stat().st_size
        assert verify_checksum_file(ctx.paths.checksum_file(vs.variant, vs.arch)) == []
    assert "images/debian-bootc-base-13.amd64.qcow2" in read_checksum_file(ctx.paths.checksum_file("base", "amd64"))
    disk.unlink()
    with pytest.raises(ComposeError, match=r"base/amd64: deliverable .*qcow2 does not exist"):
        ChecksumsPhase(ctx).run()


def test_checksums_phase_trusts_a_reused_hard_link_only_while_it_is_that_file(tmp_path: Path) -> None:
    """A no-op recompose records (inode, size, sha256) of the deliverables it hard-linked: trusted as long as
    the path is still that inode with that size; a replaced file is read again."""
    ctx = make_context(tmp_path)
    disk = ctx.paths.images_dir("base", "amd64") / "disk.raw"
    disk.parent.mkdir(parents=True)
    disk.write_bytes(b"reused disk")
    for vs in ctx.variants:
        vs.images = []
    ctx.variants[0].images = [ImageRecord("base", "amd64", disk, "raw", "raw")]
    st = disk.stat()
    ctx.reused_checksums = {str(disk): (st.st_ino, st.st_size, "f" * 64)}
    ChecksumsPhase(ctx).run()
    assert ctx.variants[0].images[0].checksums["sha256"] == "f" * 64  # trusted, not read
    # the path now holds another file (a new inode): hashed for real
    disk.unlink()
    disk.write_bytes(b"reused disk")
    if disk.stat().st_ino == st.st_ino:  # the file system gave the inode back: force a different one
        other = disk.with_name("other")
        other.write_bytes(b"reused disk")
        disk.unlink()
        other.rename(disk)
    ChecksumsPhase(ctx).run()
    assert ctx.variants[0].images[0].checksums["sha256"] == hashlib.sha256(b"reused disk").hexdigest()
