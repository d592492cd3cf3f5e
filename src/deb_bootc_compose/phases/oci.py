"""oci: the bootc OCI image of every variant/arch, written by :mod:`deb_bootc_compose.oci`.

For each variant the prepared tree (container form) becomes ``compose/<variant>/<arch>/oci/layout/`` (an
OCI image layout, tag = the manifest's ``oci.tag`` or version) and ``…/oci/<name>-<variant>-<version>.<arch>
.oci-archive``. The plan an image was cut with is written next to it (``oci/layer-plan.json``): the layer
split depends on it, so the lockfile and this plan together give the same image digest anywhere.

Packages keep their layers from one compose to the next: the plan of the last FINISHED compose in the
target directory is kept in ``TARGET/.state/oci-plans/`` (copied there by :func:`remember_plans` only when
the compose finished, so a DOOMED compose never decides the next one's layers) and is the starting point of
the next compose. A target directory without one, composing ``--lockfile DIR/metadata/lockfile.yaml`` of
an earlier compose, starts from that compose's own ``layer-plan.json``: the same image digest again.
Otherwise the plan is made fresh (deterministic: same packages, same plan).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from deb_bootc_compose import treeops
from deb_bootc_compose.derive.basecompose import BaseCompose
from deb_bootc_compose.derive.layers import write_derived_image
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.oci import (
    ImageOptions,
    OciCancelled,
    OciError,
    OciResult,
    check_inputs,
    plan_images,
    write_planned_image,
)
from deb_bootc_compose.oci.analysis import TreeAnalysis, analyze_tree
from deb_bootc_compose.oci.composeplan import merge_plans
from deb_bootc_compose.oci.plan import LayerPlan
from deb_bootc_compose.paths import ComposePaths
from deb_bootc_compose.phases.base import ComposeContext, ImageRecord, Phase, VariantState

PLAN_NAME = "layer-plan.json"  # see ComposePaths.oci_plan
IMAGE_TYPE = "bootable-container"
IMAGE_FORMAT = "ociarchive"


def image_name(manifest: Manifest) -> str:
    return str(manifest.oci.name or manifest.name)


def image_tag(manifest: Manifest) -> str:
    return str(manifest.oci.tag or manifest.version)


def archive_name(manifest: Manifest, variant: str, arch: str) -> str:
    return f"{image_name(manifest)}-{variant}-{manifest.version}.{arch}.oci-archive"


def image_labels(manifest: Manifest, variant: str) -> dict[str, str]:
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


def plan_path(ctx: ComposeContext, vs: VariantState) -> Path:
    """Where the target directory keeps the layer plan of its last FINISHED compose of this variant/arch."""
    return ctx.target.oci_plan(ctx.manifest.name, vs.variant, vs.arch)


def remember_plans(ctx: ComposeContext) -> None:
    """The compose FINISHED: its images' layer plans become the starting point of the next compose."""
    for vs in ctx.variants:
        plan = ctx.paths.oci_plan(vs.variant, vs.arch)
        if plan.is_file():
            dest = plan_path(ctx, vs)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(plan, tmp)
            os.replace(tmp, dest)


class OciPhase(Phase):
    name = "oci"
    skippable = True

    def plan_path(self, vs: VariantState) -> Path:
        return plan_path(self.ctx, vs)

    def previous_plan(self, vs: VariantState) -> tuple[Path | None, str]:
        """The plan to start from, and how to say where it came from."""
        own = self.plan_path(vs)
        if own.is_file():
            return own, "the layer plan of the last finished compose"
        given = self.ctx.lockfile_in
        if given is not None and given.parent.name == "metadata":
            theirs = ComposePaths.at(given.parent.parent).oci_plan(vs.variant, vs.arch)
            if theirs.is_file():
                return theirs, f"the layer plan of the lockfile's compose ({theirs})"
        return None, "a fresh layer plan"

    def run(self) -> None:
        by_arch: dict[str, list[VariantState]] = {}
        for vs in self.ctx.variants:
            by_arch.setdefault(vs.arch, []).append(vs)
        base = self.ctx.manifest.derived_from
        for states in by_arch.values():
            self.check_cancelled()
            if base is None:
                self.write_together(states)
            else:
                for vs in states:
                    self.write_derived(vs, base)

    def write(self, vs: VariantState) -> OciResult:
        """One variant's image, planned alone."""
        return self.write_together([vs])[0]

    def analyze(self, vs: VariantState) -> TreeAnalysis:
        label = f"{vs.variant}/{vs.arch}"
        m = self.ctx.manifest
        if vs.tree is None or not vs.tree.is_dir():
            raise ComposeError(f"{label}: no prepared tree to make an OCI image from (did ostree-prepare run?)")
        # the tree belongs to the subordinate ids of the namespace it was made in: the layers carry the
        # namespace's view of it (root's files as 0:0, file capabilities as root-owned files have them)
        ids = treeops.tree_ids()
        treeops.adopt_host_writes(vs.tree, ids)
        try:
            check_inputs(vs.tree, image_tag(m), image_labels(m, vs.variant), self.ctx.cancel)
            return analyze_tree(vs.tree, vs.kernel_version, ids)
        except OciCancelled:
            raise KeyboardInterrupt(f"compose interrupted during {self.name} ({label})") from None
        except (OciError, ValueError) as exc:
            raise ComposeError(f"{label}: OCI image: {exc}") from exc

    def write_together(self, states: list[VariantState]) -> list[OciResult]:
        """The images of ``states`` (one arch), their layers planned together: layers shared between variants
        are the same blobs in each image."""
        m = self.ctx.manifest
        sde = self.ctx.source_date_epoch
        if sde is None:
            raise ComposeError("no SOURCE_DATE_EPOCH: gather must run before the oci phase")
        analyses = {vs.variant: self.analyze(vs) for vs in states}
        previous = []
        for vs in states:
            path, how = self.previous_plan(vs)
            self.progress(f"{vs.variant}/{vs.arch}: planning the OCI image's layers with {how}, "
                          f"at most {m.oci.max_layers} layers")
            if path is not None:
                previous.append(path)
        try:
            plans = plan_images(analyses, m.oci.max_layers, sde, merge_plans([LayerPlan.load(p) for p in previous]),
                                self.check_cancelled, self.progress)
        except (OciError, ValueError) as exc:
            raise ComposeError(f"{'/'.join(vs.variant for vs in states)}: OCI layer plan: {exc}") from exc
        return [self.write_planned(vs, analyses[vs.variant], plans[vs.variant]) for vs in states]

    def options(self, vs: VariantState) -> ImageOptions:
        m = self.ctx.manifest
        return ImageOptions(
            ref_name=image_tag(m), labels=image_labels(m, vs.variant), source_date_epoch=int(
                self.ctx.source_date_epoch or 0), kernel_version=vs.kernel_version, ostree_commit=vs.commit,
            plan_out=self.ctx.paths.oci_plan(vs.variant, vs.arch), arch=vs.arch,
            archive_name=archive_name(m, vs.variant, vs.arch))

    def write_planned(self, vs: VariantState, analysis: TreeAnalysis, plan: LayerPlan) -> OciResult:
        label = f"{vs.variant}/{vs.arch}"
        self.check_cancelled()
        shared = [x.id for x in plan.layers if len(x.variants) > 1]
        if shared:
            self.progress(f"{label}: {len(shared)} package layers shared with other variants")
        return self.run_writer(vs, lambda out, opts, progress: write_planned_image(
            analysis, plan, out, opts, progress=progress, cancel=self.ctx.cancel))

    def write_derived(self, vs: VariantState, base: BaseCompose) -> OciResult:
        """A derived manifest's image: its base image's layers verbatim, then its own (derive/layers.py)."""
        label = f"{vs.variant}/{vs.arch}"
        analysis = self.analyze(vs)
        image = base.images[vs.arch]
        self.progress(f"{label}: layering on the base image {image.manifest_digest} ({base.label}, "
                      f"{base.variant})")
        return self.run_writer(vs, lambda out, opts, progress: write_derived_image(
            analysis, image, out, opts, progress=progress, cancel=self.ctx.cancel))

    def run_writer(self, vs: VariantState,
                   writer: Callable[[Path, ImageOptions, Callable[[str], None]], OciResult]) -> OciResult:
        """Run one image writer for ``vs`` (its output directory, options and progress), its errors as the
        compose's, then record the image."""
        label = f"{vs.variant}/{vs.arch}"
        try:
            result = writer(self.ctx.paths.oci_dir(vs.variant, vs.arch), self.options(vs),
                            lambda msg: self.progress(f"{label}: {msg}"))
        except OciCancelled:
            raise KeyboardInterrupt(f"compose interrupted during {self.name} ({label})") from None
        except (OciError, ValueError) as exc:
            raise ComposeError(f"{label}: OCI image: {exc}") from exc
        return self.record(vs, result)

    def record(self, vs: VariantState, result: OciResult) -> OciResult:
        label = f"{vs.variant}/{vs.arch}"
        vs.oci = result
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
