"""Small synthetic images for the tests of ``deb-bootc-compose lint IMAGE``: initramfs cpio archives, a good
image tree (the tree lint's good tree plus what the image rules look at) and OCI layouts made of tar layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

from test_compose_lint import KVER, good_tree


def newc(names: Iterable[str], data: bytes = b"x") -> bytes:
    """A cpio archive (newc) holding ``names`` (directories for names ending in '/', files otherwise)."""
    out = bytearray()
    for ino, name in enumerate([*names, "TRAILER!!!"], start=1):
        is_dir = name.endswith("/")
        name = name.rstrip("/")
        body = b"" if is_dir or name == "TRAILER!!!" else data
        mode = 0o40755 if is_dir else 0o100644
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(raw), 0]
        out += b"070701" + b"".join(b"%08x" % f for f in fields) + raw
        out += b"\0" * ((4 - (110 + len(raw)) % 4) % 4)
        out += body + b"\0" * ((4 - len(body) % 4) % 4)
    return bytes(out)


def initramfs(kver: str = KVER, *, ostree: bool = True, compress: str = "gzip", early: bool = False) -> bytes:
    """An initramfs the way dracut makes one: an optional uncompressed early cpio, then the main one."""
    names = ["usr/", "usr/lib/", "usr/lib/modules/", f"usr/lib/modules/{kver}/", f"usr/lib/modules/{kver}/modules.dep",
             "usr/bin/systemd"]
    if ostree:
        names += ["usr/lib/ostree/", "usr/lib/ostree/ostree-prepare-root"]
    main = newc(names)
    packed = {"gzip": lambda b: gzip.compress(b, mtime=0), "xz": lzma.compress, "none": lambda b: b,
              "zstd": lambda b: subprocess.run(["zstd", "-q", "-c"], input=b, capture_output=True, check=True).stdout
              }[compress](main)
    head = newc(["kernel/", "kernel/x86/", "kernel/x86/microcode/", "early_cpio"]) + b"\0" * 300 if early else b""
    return head + packed


def good_image_tree(t: Path) -> Path:
    """The tree lint's good tree, with what a real image also has: modules.dep, a real initramfs, tmpfiles."""
    good_tree(t)
    (t / f"usr/lib/modules/{KVER}/modules.dep").write_text("")
    (t / f"usr/lib/modules/{KVER}/initramfs.img").write_bytes(initramfs())
    (t / "usr/lib/tmpfiles.d/autovar.conf").write_text(
        "L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg\nd /var/lib/apt 0755 0 0 - -\n"
        "d /var/lib/apt/lists 0755 0 0 - -\nd /var/cache/apt 0755 0 0 - -\n")
    (t / "etc/apt/sources.list.d").mkdir(parents=True)
    (t / "usr/share/keyrings").mkdir(parents=True)
    (t / "usr/share/keyrings/debian-archive-keyring.gpg").write_bytes(b"keys")
    (t / "etc/apt/sources.list.d/compose.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return t


def tar_layer(entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """A gzip-compressed tar layer of ``entries`` (TarInfo, or TarInfo with the file's bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info, data = e if isinstance(e, tuple) else (e, b"")
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return gzip.compress(buf.getvalue(), mtime=0)


def tree_layer(root: Path) -> bytes:
    """One layer holding the tree ``root`` (links as links)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(root.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(root)), recursive=False)
    return gzip.compress(buf.getvalue(), mtime=0)


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def write_layout(layout: Path, layers: list[bytes], labels: dict[str, str] | None = None, tag: str = "1") -> Path:
    """An OCI image layout of ``layers`` (gzip blobs), tagged ``tag``."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = {"architecture": "amd64", "os": "linux",
              "config": {"Labels": {"containers.bootc": "1", **(labels or {})}},
              "rootfs": {"type": "layers",  # umoci checks them
                         "diff_ids": [f"sha256:{hashlib.sha256(gzip.decompress(x)).hexdigest()}" for x in layers]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **blob(json.dumps(config).encode())},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(x)} for x in layers]}
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                **blob(json.dumps(manifest).encode()),
                                                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout
