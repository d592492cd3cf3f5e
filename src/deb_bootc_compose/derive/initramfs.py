"""A derived image keeps its base's initramfs when nothing that makes it changed (as ``FROM`` does: the base
image's file stays until someone regenerates it): the same kernel, dracut, ostree and systemd versions, and no
package, file or script of the derived manifest's own that reaches what dracut reads (its configuration and
modules, kernel modules, firmware). Then ``usr/lib/modules/$kver/initramfs.img`` is taken from the base image (the
topmost layer holding it) and dracut does not run; the derived image's own layer does not carry a new one.
Otherwise it is regenerated like any compose's. (The initramfs's ``initrd-release`` is then the base's identity.)"""

from __future__ import annotations

import tarfile
from typing import TYPE_CHECKING

from isal import igzip

from deb_bootc_compose.derive.fileindex import WHITEOUT
from deb_bootc_compose.derive.layers import BaseLayers
from deb_bootc_compose.oci.errors import OciError

if TYPE_CHECKING:
    from deb_bootc_compose.prepare.base import PrepareJob

MAKERS = ("dracut", "dracut-core", "ostree-boot", "ostree", "libostree-1-1", "systemd", "udev", "systemd-udev",
          "libc6", "kmod", "busybox", "bash")
READ_BY_DRACUT = ("/etc/dracut.conf", "/etc/dracut.conf.d/", "/usr/lib/dracut/", "/lib/dracut/", "/usr/lib/modules/",
                  "/lib/modules/", "/usr/lib/firmware/", "/lib/firmware/", "/etc/modprobe.d/", "/usr/lib/modprobe.d/")
MAX_INITRAMFS = 1 << 30


def why_not(job: PrepareJob) -> str | None:
    """None when the base's initramfs serves; else why it is made again."""
    base, lock = job.manifest.derived_from, job.vs.lock
    if base is None or lock is None:
        return "not a derived image"
    theirs = {p.name: p.version for p in base.lockfile.variant(base.variant, job.vs.arch).packages}
    mine = {p.name: p.version for p in lock.packages}
    kernel = {n for n in mine if n.startswith("linux-image-")} | {n for n in theirs if n.startswith("linux-image-")}
    changed = sorted(n for n in (*MAKERS, *kernel) if mine.get(n) != theirs.get(n))
    if changed:
        return f"{', '.join(changed)} differ from the base's"
    for name in sorted(n for n in mine if mine[n] != theirs.get(n)):  # added or other versions
        listed = f"var/lib/dpkg/info/{name}.list"
        for arch_listed in (listed, f"var/lib/dpkg/info/{name}:{job.vs.arch}.list"):
            if job.tree.is_file(arch_listed):
                text = job.tree.read_text(arch_listed, errors="replace", limit=16 << 20)
                if any(line.startswith(READ_BY_DRACUT) for line in text.splitlines()):
                    return f"{name} brings files dracut reads"
    files, scripts = _base_counts(job)
    if any(k.spec.path.startswith(READ_BY_DRACUT) for k in job.settings.files[files:]):
        return "the manifest's own files include dracut's configuration or modules"
    if len(job.settings.postprocess) > scripts:
        return "the manifest has postprocess scripts of its own"
    return None


def _base_counts(job: PrepareJob) -> tuple[int, int]:
    """How many of the variant's files and scripts come from the base (they come first)."""
    from deb_bootc_compose.derive.inherit import base_manifest

    base = job.manifest.derived_from
    assert base is not None
    theirs = base_manifest(base).for_variant(base.variant)
    return len(theirs.files), len(theirs.postprocess)


def base_initramfs(job: PrepareJob) -> bytes | None:
    """The base image's ``usr/lib/modules/$kver/initramfs.img`` (None: not there, or whited out)."""
    base = job.manifest.derived_from
    assert base is not None
    want = f"usr/lib/modules/{job.kver}/initramfs.img"
    parent, _, leaf = want.rpartition("/")
    layers = BaseLayers.read(base.images[job.vs.arch])
    for blob in reversed(layers.blobs):
        try:
            with igzip.open(blob, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for info in tar:
                    name = info.name.rstrip("/").removeprefix("./")
                    if name in (f"{parent}/{WHITEOUT}{leaf}", f"{parent}/.wh..wh..opq"):
                        return None
                    if name == want and info.isreg() and info.size <= MAX_INITRAMFS:
                        fh = tar.extractfile(info)
                        return fh.read() if fh is not None else None
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise OciError(f"the base image's layer {blob} cannot be read ({exc})") from None
    return None


def reuse(job: PrepareJob) -> bool:
    """Write the base's initramfs into the tree when it serves (see the module docstring); True when it did."""
    reason = why_not(job)
    if reason is None:
        try:
            data = base_initramfs(job)
        except OciError as exc:
            data, reason = None, f"the base image's initramfs cannot be read ({exc})"
        if data is not None:
            job.tree.write_bytes(f"usr/lib/modules/{job.kver}/initramfs.img", data, mode=0o644)
            job.progress(f"{job.label}: the base image's initramfs ({len(data) / 1e6:.1f} MB): its kernel, dracut, "
                         "ostree and systemd are the base's and nothing dracut reads changed")
            return True
        reason = reason or "the base image has no initramfs for this kernel"
    if reason != "not a derived image":
        job.progress(f"{job.label}: initramfs made again: {reason}")
    return False
