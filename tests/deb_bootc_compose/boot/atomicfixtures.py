"""What the Debian Atomic boot test hands its VMs: a tiny container image as an OCI archive on a disk (for the
container host) and a NoCloud seed disk (for the cloud image).

The container's one file is a static x86-64 program of 160 bytes made here (write a line, exit 0): no
download, no compiler, and nothing of the host's in it. The archive is written as an OCI layout and copied to
``oci-archive:`` by skopeo, which checks it on the way.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import tarfile
from pathlib import Path

CONTAINER_SAYS = "hello from a container"
SEED_HOSTNAME = "atomic-cloud"


def hello_elf(message: bytes) -> bytes:
    """A static ELF64 x86-64 executable: write(1, message), exit(0)."""
    base, head = 0x400000, 64 + 56
    code = (b"\xb8\x01\x00\x00\x00"  # mov eax, 1 (write)
            b"\xbf\x01\x00\x00\x00"  # mov edi, 1
            b"\x48\x8d\x35" + struct.pack("<i", 16)  # lea rsi, [rip + 16] (the message after the code)
            + b"\xba" + struct.pack("<I", len(message))  # mov edx, len
            + b"\x0f\x05"  # syscall
            b"\xb8\x3c\x00\x00\x00"  # mov eax, 60 (exit)
            b"\x31\xff"  # xor edi, edi
            b"\x0f\x05")  # syscall
    body = code + message
    total = head + len(body)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 2, 0x3E, 1, base + head, 64, 0, 0,
                       64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return ehdr + phdr + body


def _blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def tiny_container_disk(work: Path) -> Path:
    """A raw disk image whose bytes are an OCI archive of ``localhost/tiny:1`` (entrypoint /hello)."""
    layout = work / "tiny-layout"
    (layout / "blobs/sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    program = hello_elf(f"{CONTAINER_SAYS}\n".encode())
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello")
        info.size, info.mode, info.mtime = len(program), 0o755, 1764892800
        tar.addfile(info, io.BytesIO(program))
    layer = raw.getvalue()
    layer_digest = _blob(layout, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _blob(layout, config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }).encode()
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _blob(layout, manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "tiny"}}]}))
    archive = work / "tiny.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:tiny", f"oci-archive:{archive}:localhost/tiny:1"],
                   check=True, capture_output=True, timeout=300)
    disk = work / "tiny-oci.img"
    data = archive.read_bytes()
    disk.write_bytes(data + b"\0" * (-len(data) % 512 + 512 * 16))  # whole sectors; the tar ends before
    return disk


def nocloud_seed_disk(work: Path) -> Path:
    """A NoCloud seed (a VFAT file system labelled CIDATA): an instance ID and hostname, a file and a command."""
    files = work / "seed"
    files.mkdir()
    (files / "meta-data").write_text(f"instance-id: debian-atomic-test-1\nlocal-hostname: {SEED_HOSTNAME}\n")
    (files / "user-data").write_text(
        "#cloud-config\n"
        "growpart: {mode: 'off'}\n"  # the disk image's size is the test's, not a cloud's
        "resize_rootfs: false\n"
        "write_files:\n"
        "  - {path: /etc/debian-atomic-seeded, content: \"seeded by cloud-init\\n\"}\n"
        "runcmd:\n"
        "  - [sh, -c, 'echo ran > /var/lib/debian-atomic-runcmd']\n"
    )
    disk = work / "seed.img"
    subprocess.run(["mkfs.vfat", "-n", "CIDATA", "-C", str(disk), "2048"], check=True, capture_output=True)
    for name in ("meta-data", "user-data"):
        subprocess.run(["mcopy", "-i", str(disk), str(files / name), f"::{name}"], check=True, capture_output=True)
    return disk
