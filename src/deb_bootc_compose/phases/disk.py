"""Phase ``disk``: raw and/or qcow2 images from each variant's OSTree commit (``outputs: [oci, raw, qcow2]``, the
manifest's or the variant's own: a variant whose outputs name no disk format gets none).

Reads ``VariantState.ref``/``.commit`` (set by ``ostree_commit``), the manifest's ``kernel_args`` and
``disk: {free_space, size}``; writes ``compose/<variant>/<arch>/images/<compose_id>-<variant>-<arch>.{raw,qcow2}``
and appends one :class:`ImageRecord` per file (type and format ``raw``/``qcow2``, size; the checksums phase
adds the SHA-256). A
failed or interrupted build lists nothing and leaves no partial file.
"""

from __future__ import annotations

from deb_bootc_compose.disk import errors as disk_errors
from deb_bootc_compose.disk.builder import build_disk
from deb_bootc_compose.disk.install import parse_size
from deb_bootc_compose.disk.layout import DiskOptions, MiB
from deb_bootc_compose.disk.sysroot import InstallSource
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.phases.base import ImageRecord, Phase

DISK_FORMATS = ("raw", "qcow2")  # the order of variants.VariantSettings.disk_formats


def disk_options(manifest: Manifest) -> tuple[DiskOptions, int | None]:
    """DiskOptions from the manifest, and the fixed total size when ``disk.size`` asks for one."""
    free = parse_size(manifest.disk.free_space or "1GiB", "disk.free_space")
    total = manifest.disk.size
    return (DiskOptions(free_space=free, kernel_args=tuple(manifest.kernel_args)),
            parse_size(total, "disk.size") if total else None)


class DiskPhase(Phase):
    name = "disk"
    skippable = True

    def formats(self, variant: str) -> list[str]:
        return list(self.ctx.manifest.for_variant(variant).disk_formats)

    def skip_reason(self) -> str | None:
        if not any(self.formats(v) for v in self.ctx.manifest.variants):
            return "the manifest's outputs ask for no disk image (add raw and/or qcow2)"
        return None

    def run(self) -> None:
        options, total = disk_options(self.ctx.manifest)
        osname = self.ctx.manifest.name
        repo = self.ctx.target.ostree_repo
        figures = self.ctx.disk
        for v in self.ctx.variants:
            self.check_cancelled()
            formats = self.formats(v.variant)
            if not formats:
                self.progress(f"{v.variant}/{v.arch}: no disk image (the variant's outputs name none)")
                continue
            if not v.ref or not v.commit:
                raise ComposeError(f"disk: variant {v.variant}/{v.arch} has no OSTree commit (did ostree_commit run?)")
            images = self.ctx.paths.images_dir(v.variant, v.arch)
            outputs = {fmt: images / f"{self.ctx.compose_id}-{v.variant}-{v.arch}.{fmt}" for fmt in formats}
            # the deployment follows the image's signed update remote (update.ostree), or no URL at all: never the
            # build host's repository
            src = InstallSource(repo=repo, ref=v.ref, commit=v.commit)
            self.progress(f"{v.variant}/{v.arch}: installing {v.commit[:12]} into {', '.join(outputs)}")
            try:
                result = build_disk(src, outputs, self.ctx.paths.variant_work(v.variant, v.arch), self.log_path,
                                    options, osname, self.ctx.cancel, self.ctx.source_date_epoch)
            except disk_errors.DiskError as exc:
                raise ComposeError(f"disk: {v.variant}/{v.arch}: {exc}") from exc
            if total is not None and result.virtual_size > total:
                for path in result.images.values():
                    path.unlink(missing_ok=True)
                raise ComposeError(
                    f"disk: {v.variant}/{v.arch} needs {result.virtual_size // MiB} MiB but disk.size is "
                    f"{total // MiB} MiB; raise disk.size or lower disk.free_space"
                )
            for fmt, path in result.images.items():
                v.images.append(ImageRecord(
                    variant=v.variant, arch=v.arch, path=path, type=fmt, format=fmt, size=path.stat().st_size,
                    extra={"virtual_size": result.virtual_size, "allocated": result.sizes[fmt],
                           "kernel_args": result.kernel_args, "ostree_commit": v.commit, "ostree_ref": v.ref},
                ))
            figures[f"{v.variant}/{v.arch}"] = {
                "seconds": round(result.seconds, 1), "virtual_size": result.virtual_size,
                "allocated": result.sizes, "partitions": result.partitions,
            }
            self.progress(f"{v.variant}/{v.arch}: {result.virtual_size // MiB} MiB disk in {result.seconds:.0f}s")
