"""oci: the bootc OCI image of every variant/arch, written by :mod:`deb_bootc_compose.oci`.

For each variant the prepared tree (container form) becomes ``compose/<variant>/<arch>/oci/layout/`` (an
OCI image layout, tag = the manifest's ``oci.tag`` or version) and ``…/oci/<name>-<variant>-<version>.<arch>
.oci-archive``. The layer plan of the previous compose in the same target directory is kept in
``TARGET/.state/oci-plans/`` so that packages keep their layers from one compose to the next; the plan an
image was cut with is also copied next to it (``oci/layer-plan.json``): the layer split depends on it, so
the lockfile and this plan together give the same image digest in another target directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from deb_bootc_compose.oci import OciCancelled, OciError, OciResult, write_oci_image
from deb_bootc_compose.phases.base import ComposeError, ImageRecord, Phase, VariantState

PLAN_NAME = "layer-plan.json"
IMAGE_TYPE = "bootable-container"
IMAGE_FORMAT = "ociarchive"


def image_name(manifest: Any) -> str:
    return str(manifest.oci.name or manifest.name)


def image_tag(manifest: Any) -> str:
    return str(manifest.oci.tag or manifest.version)


def archive_name(manifest: Any, variant: str, arch: str) -> str:
    return f"{image_name(manifest)}-{variant}-{manifest.version}.{arch}.oci-archive"


def image_labels(manifest: Any, variant: str) -> dict[str, str]:
    """Content-derived labels only (no compose ID, no date but SOURCE_DATE_EPOCH's); the manifest's win."""
    labels = {
        "org.opencontainers.image.title": image_name(manifest),
        "org.opencontainers.image.version": str(manifest.version),
        "org.opencontainers.image.description": f"{manifest.name} {manifest.version} bootc image "
        f"(Debian {manifest.suite}, variant {variant})",
        "org.debian.bootc.suite": str(manifest.suite),
        "org.debian.bootc.variant": variant,
    }
    labels.update({str(k): str(v) for k, v in (manifest.oci.labels or {}).items()})
    return labels


class OciPhase(Phase):
    name = "oci"

    def plan_path(self, vs: VariantState) -> Path:
        return self.ctx.target.state / "oci-plans" / f"{self.ctx.manifest.name}-{vs.variant}.{vs.arch}.json"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            self.write(vs)

    def write(self, vs: VariantState) -> OciResult:
        label = f"{vs.variant}/{vs.arch}"
        m = self.ctx.manifest
        if vs.tree is None or not vs.tree.is_dir():
            raise ComposeError(f"{label}: no prepared tree to make an OCI image from (did ostree-prepare run?)")
        sde = self.ctx.source_date_epoch
        if sde is None:
            raise ComposeError("no SOURCE_DATE_EPOCH: gather must run before the oci phase")
        out_dir = self.ctx.paths.oci_dir(vs.variant, vs.arch)
        plan = self.plan_path(vs)
        previous = plan if plan.exists() else None
        how = "the layer plan of the previous compose" if previous else "a fresh layer plan"
        self.progress(f"{label}: writing the OCI image with {how}, at most {m.oci.max_layers} layers")
        try:
            result = write_oci_image(
                vs.tree,
                out_dir,
                ref_name=image_tag(m),
                labels=image_labels(m, vs.variant),
                max_layers=m.oci.max_layers,
                source_date_epoch=sde,
                kernel_version=vs.kernel_version,
                ostree_commit=vs.commit,
                previous_plan=previous,
                plan_out=plan,
                arch=vs.arch,
                archive_name=archive_name(m, vs.variant, vs.arch),
                progress=lambda msg: self.progress(f"{label}: {msg}"),
                cancel=self.ctx.cancel,
            )
        except OciCancelled:
            raise KeyboardInterrupt(f"compose interrupted during {self.name} ({label})") from None
        except (OciError, ValueError) as exc:
            raise ComposeError(f"{label}: OCI image: {exc}") from exc
        vs.oci = result
        # the plan this image was cut with, next to it: with the lockfile, what reproduces the same digest
        shutil.copyfile(plan, out_dir / PLAN_NAME)
        vs.images = [img for img in vs.images if img.path != result.archive_path]
        vs.images.append(
            ImageRecord(
                variant=vs.variant,
                arch=vs.arch,
                path=result.archive_path,
                type=IMAGE_TYPE,
                format=IMAGE_FORMAT,
                size=result.archive_path.stat().st_size,
                extra={
                    "manifest_digest": result.manifest_digest,
                    "config_digest": result.config_digest,
                    "layout": os.path.relpath(result.layout_dir, self.ctx.paths.topdir),
                    "ref_name": result.ref_name,
                    "layers": len(result.layers),
                },
            )
        )
        self.progress(
            f"{label}: {result.manifest_digest} ({len(result.layers)} layers, {result.size / 1e6:.0f} MB, "
            f"{result.seconds:.1f} s): oci:{result.layout_dir}:{result.ref_name}"
        )
        return result
