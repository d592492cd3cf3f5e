"""``write_oci_image``: a bootc OCI image from a prepared tree, layers split by dpkg package ownership."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.oci.analysis import KERNEL, UNOWNED, TreeAnalysis, analyze_tree
from deb_bootc_compose.oci.composeplan import make_compose_plan
from deb_bootc_compose.oci.errors import OciCancelled, OciError
from deb_bootc_compose.oci.layout import image_config as make_config
from deb_bootc_compose.oci.layout import rfc3339, write_archive, write_layout
from deb_bootc_compose.oci.plan import LayerPlan
from deb_bootc_compose.oci.sharing import separate_differences
from deb_bootc_compose.oci.tarlayer import DEFAULT_LEVEL, LayerBlob, write_layer
from deb_bootc_compose.oci.tree import TreeEntry, parents
from debsandbox.idmap import IdMap

# The grammar of org.opencontainers.image.ref.name (OCI image-spec, annotations).
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
REF_NAME_RE = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")
OSTREE_COMMIT_LABEL = "org.debian.bootc.ostree-commit"
KERNEL_LABEL = "ostree.linux"
FORBIDDEN_LABELS = {"ostree.commit": "it tells bootc to expect an encapsulated OSTree commit, which this image is not"}


@dataclass(frozen=True)
class LayerInfo:
    digest: str
    diff_id: str
    size: int  # compressed
    packages: list[str]
    id: str = ""  # plan id ("p0003"), "kernel" or "unowned"
    tar_size: int = 0
    entries: int = 0


@dataclass(frozen=True)
class OciResult:
    layout_dir: Path
    archive_path: Path
    manifest_digest: str
    config_digest: str
    layers: list[LayerInfo]
    plan_path: Path
    ref_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def transport(self) -> str:
        """``oci:LAYOUT:TAG``, the containers-transports name of the layout."""
        return f"oci:{self.layout_dir}:{self.ref_name}"


@dataclass
class _LayerJob:
    id: str
    packages: list[str]
    assigned: set[str]
    members: list[TreeEntry] = field(default_factory=list)
    tar_estimate: int = 0
    variants: int = 1  # of the compose, planned together
    sources: dict[str, tuple[Path, TreeEntry]] = field(default_factory=dict)  # see TreeAnalysis.dir_sources


def _history_line(job: _LayerJob) -> str:
    if job.id == KERNEL:
        what = "kernel, initramfs and modules"
    elif job.id == UNOWNED:
        what = "files no package owns" + (" and files that differ between variants" if job.variants > 1 else "")
    else:
        what = f"packages layer {job.id}"
    if job.packages:
        names = ", ".join(job.packages[:12]) + (f" and {len(job.packages) - 12} more" if len(job.packages) > 12 else "")
        what += f": {names}"
    return f"deb-bootc-compose {what}"


def _write_layer_job(
    tree: Path,
    job: _LayerJob,
    hardlinks: dict[str, str],
    source_date_epoch: int,
    blobs: Path,
    level: int,
    stop: threading.Event,
    cancel: threading.Event | None,
    ids: IdMap | None = None,
) -> LayerBlob:
    def should_stop() -> bool:
        return stop.is_set() or (cancel is not None and cancel.is_set())

    return write_layer(tree, job.members, hardlinks, source_date_epoch, blobs, level=level, should_stop=should_stop,
                       ids=ids, sources=job.sources)


def check_inputs(tree: Path, ref_name: str, labels: dict[str, str], cancel: threading.Event | None) -> None:
    for key, why in FORBIDDEN_LABELS.items():
        if key in labels:
            raise OciError(f"label {key!r} must not be set on this image: {why}; remove it from the oci labels")
    if not REF_NAME_RE.fullmatch(ref_name):
        raise OciError(
            f"invalid OCI reference name (tag) {ref_name!r}: use letters, digits and . _ - : @ + between them "
            '(for example "13" or "latest")'
        )
    if (tree / "usr/etc").is_dir() and not (tree / "etc").is_dir():
        raise OciError(
            f"{tree} is in OSTree form (usr/etc, no etc): an OCI image needs /etc at the top level; "
            "write the image from the container-form tree (move usr/etc back to etc)"
        )
    if cancel is not None and cancel.is_set():
        raise OciCancelled("the OCI image write was cancelled before it started")


def package_budget(analysis: TreeAnalysis, max_layers: int, label: str = "") -> int:
    """The package layers ``max_layers`` leaves once the kernel's and the image's own last layer are counted."""
    has_kernel = KERNEL in analysis.units.values()
    has_unowned = UNOWNED in analysis.units.values() or bool(analysis.restate)
    budget = max_layers - int(has_kernel) - int(has_unowned)
    if analysis.packages and budget < 1:
        need = 1 + int(has_kernel) + int(has_unowned)
        raise OciError(
            f"{label}max_layers is {max_layers} but this tree needs at least {need} layers "
            "(one for packages, one for the kernel, one for files no package owns); raise oci.max_layers"
        )
    return budget


def plan_images(analyses: dict[str, TreeAnalysis], max_layers: int, source_date_epoch: int,
                previous: LayerPlan | None, check: Callable[[], None] | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, LayerPlan]:
    """The layer plans of the images of one compose (variant → analysis of its tree, in the compose's order),
    made together: paths that differ between variants go to each variant's own last layer (``analyses``
    are updated), packages shared by several variants get the same layers in each (see composeplan)."""
    if len(analyses) > 1:
        moved = separate_differences(analyses, source_date_epoch, check)
        for v, paths in moved.items():
            if progress is not None:
                progress(f"{v}: {len(paths)} paths differ from another variant holding their package: they go "
                         "to the image's own last layer")
    sizes = {v: a.sizes() for v, a in analyses.items()}
    budgets = {v: package_budget(a, max_layers, f"{v}: " if len(analyses) > 1 else "") for v, a in analyses.items()}
    return make_compose_plan(sizes, budgets, previous)


def _layer_jobs(analysis: TreeAnalysis, plan: LayerPlan) -> list[_LayerJob]:
    """The layers to write in image order: the plan's layers shared by every variant of the plan, the
    kernel's, the plan's other layers, then the image's own (files no package owns or that differ)."""
    units, entries = analysis.units, analysis.entries
    jobs_list = [_LayerJob(planned.id, list(planned.packages), set()) for planned in plan.layers]
    by_unit = {pkg: job for job in jobs_list for pkg in job.packages}
    if KERNEL in units.values():
        kernel_at = next((i for i, x in enumerate(plan.layers) if len(x.variants) < len(plan.variants)),
                         len(plan.layers))
        by_unit[KERNEL] = _LayerJob(KERNEL, sorted(analysis.kernel_packages, key=os.fsencode), set())
        jobs_list.insert(kernel_at, by_unit[KERNEL])
    if UNOWNED in units.values() or analysis.restate:
        by_unit[UNOWNED] = _LayerJob(UNOWNED, [], set(analysis.restate), variants=len(plan.variants))
        jobs_list.append(by_unit[UNOWNED])
    for path, unit in units.items():
        by_unit[unit].assigned.add(path)
    order = {path: i for i, path in enumerate(entries)}
    for job in jobs_list:
        if job.id != UNOWNED:
            job.sources = analysis.dir_sources
        wanted = set(job.assigned)
        for path in job.assigned:
            wanted.update(parents(path))
        job.members = [entries[p] for p in sorted(wanted, key=order.__getitem__)]
        job.tar_estimate = sum(e.st.st_size for e in job.members if e.is_reg and e.path not in analysis.hardlinks)
    return jobs_list


def _write_blobs(
    tree: Path, jobs_list: list[_LayerJob], hardlinks: dict[str, str], source_date_epoch: int, blobs: Path,
    level: int, jobs: int, cancel: threading.Event | None, ids: IdMap | None,
) -> list[LayerBlob]:
    """Write every layer's blob with ``jobs`` threads, the largest first; returns them in image order."""
    blobs_by_job: dict[str, LayerBlob] = {}
    stop = threading.Event()  # set on the first failure or interruption: the other layers stop early
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="oci-layer") as pool:
        futures = {
            job.id: pool.submit(
                _write_layer_job, tree, job, hardlinks, source_date_epoch, blobs, level, stop, cancel, ids,
            )
            for job in sorted(jobs_list, key=lambda j: -j.tar_estimate)
        }
        try:
            for job_id, future in futures.items():
                blobs_by_job[job_id] = future.result()
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if cancel is not None and cancel.is_set():
                raise OciCancelled("the OCI image write was cancelled; nothing was left behind") from None
            raise
    return [blobs_by_job[job.id] for job in jobs_list]


def final_labels(labels: dict[str, str], created: str, kernel_version: str | None,
                 ostree_commit: str | None) -> dict[str, str]:
    all_labels = dict(labels)
    all_labels.update({"containers.bootc": "1", "ostree.bootable": "1", "org.opencontainers.image.created": created})
    if kernel_version:
        all_labels[KERNEL_LABEL] = kernel_version
    if ostree_commit:
        all_labels[OSTREE_COMMIT_LABEL] = ostree_commit
    return all_labels


def _write_manifest(
    staging: Path, tree: Path, jobs_list: list[_LayerJob], layer_blobs: list[LayerBlob], all_labels: dict[str, str],
    *, arch: str, created: str, ref_name: str,
) -> tuple[str, str]:
    """The image config, manifest and index in ``staging``; returns (manifest digest, config digest)."""
    cmd = ["/sbin/init"] if any(os.path.lexists(tree / p) for p in ("sbin/init", "usr/sbin/init")) else None
    config = make_config(
        arch=arch,
        layers=layer_blobs,
        history=[_history_line(job) for job in jobs_list],
        labels=all_labels,
        created=created,
        cmd=cmd,
    )
    annotations = {
        k: v
        for k, v in all_labels.items()
        if k.startswith("org.opencontainers.image.") and k != "org.opencontainers.image.ref.name"
    }
    manifest_digest, config_digest, _size = write_layout(
        staging,
        config=config,
        layers=layer_blobs,
        layer_annotations=[{"org.debian.bootc.layer": job.id} for job in jobs_list],
        ref_name=ref_name,
        annotations=annotations,
    )
    return manifest_digest, config_digest


def _replace_layout(out_dir: Path, layout_name: str, staging: Path) -> Path:
    """Put the staged layout in place of ``out_dir/layout_name`` (the old one removed after the swap)."""
    layout_dir = out_dir / layout_name
    if layout_dir.exists() or layout_dir.is_symlink():
        old = out_dir / f".{layout_name}.old-{os.getpid()}"
        os.replace(layout_dir, old)
        os.replace(staging, layout_dir)
        shutil.rmtree(old)
    else:
        os.replace(staging, layout_dir)
    return layout_dir


@dataclass(frozen=True)
class ImageOptions:
    """What an image is written with, but its tree and plan."""

    ref_name: str
    labels: dict[str, str]
    source_date_epoch: int
    kernel_version: str | None
    ostree_commit: str | None
    plan_out: Path
    arch: str = "amd64"
    archive_name: str = "image.oci-archive"
    layout_name: str = "layout"
    jobs: int | None = None
    compression_level: int = DEFAULT_LEVEL


def write_oci_image(
    tree: Path,
    out_dir: Path,
    *,
    ref_name: str,
    labels: dict[str, str],
    max_layers: int = 64,
    source_date_epoch: int,
    kernel_version: str | None,
    ostree_commit: str | None,
    previous_plan: Path | None,
    plan_out: Path,
    arch: str = "amd64",
    archive_name: str = "image.oci-archive",
    layout_name: str = "layout",
    jobs: int | None = None,
    compression_level: int = DEFAULT_LEVEL,
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    ids: IdMap | None = None,
    variant: str = "image",
) -> OciResult:
    """Write ``tree`` as a bootc OCI image: ``out_dir/<layout_name>/`` (OCI layout) and ``out_dir/<archive_name>``.

    Layers: package layers following the plan (``previous_plan`` keeps assignments stable; the plan used
    is written to ``plan_out``), then the kernel layer (``usr/lib/modules/<kernel_version>`` and every
    package owning files there), then the files no package owns. Same inputs, same manifest digest.
    (A compose's variants are planned together: :func:`plan_images`, then :func:`write_planned_image`.)

    ``ids``: the tree was made in a user namespace with this id map (its files belong to subordinate ids on
    disk); the layers carry what the namespace sees: host uid ``base + N`` as uid N, file capabilities in the
    form a root-owned file has. Exact, and read-only: nothing from the tree is run.
    """
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    check_inputs(tree, ref_name, labels, cancel)
    analysis = analyze_tree(tree, kernel_version, ids)
    say(f"scanned {len(analysis.entries)} entries of {tree}")
    previous = LayerPlan.load(previous_plan) if previous_plan is not None and previous_plan.exists() else None
    plan = plan_images({variant: analysis}, max_layers, source_date_epoch, previous)[variant]
    options = ImageOptions(ref_name, labels, source_date_epoch, kernel_version, ostree_commit, plan_out, arch,
                           archive_name, layout_name, jobs, compression_level)
    return write_planned_image(analysis, plan, out_dir, options, progress=progress, cancel=cancel, started=started)


def write_planned_image(
    analysis: TreeAnalysis, plan: LayerPlan, out_dir: Path, options: ImageOptions, *,
    progress: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
    started: float | None = None,
) -> OciResult:
    """Write the image of an analysed tree with its plan (from :func:`plan_images`); see write_oci_image."""
    started = time.monotonic() if started is None else started
    say = progress or (lambda _msg: None)
    o = options
    tree, ids = analysis.tree, analysis.ids
    jobs = max(1, o.jobs or os.cpu_count() or 1)
    jobs_list = _layer_jobs(analysis, plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".{o.layout_name}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    blobs = staging / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    try:
        layer_blobs = _write_blobs(tree, jobs_list, analysis.hardlinks, o.source_date_epoch, blobs,
                                   o.compression_level, jobs, cancel, ids)
        say(f"wrote {len(jobs_list)} layers with {jobs} threads")
        created = rfc3339(o.source_date_epoch)
        all_labels = final_labels(o.labels, created, o.kernel_version, o.ostree_commit)
        manifest_digest, config_digest = _write_manifest(staging, tree, jobs_list, layer_blobs, all_labels,
                                                         arch=o.arch, created=created, ref_name=o.ref_name)
        layout_dir = _replace_layout(out_dir, o.layout_name, staging)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    archive_path = out_dir / o.archive_name
    write_archive(layout_dir, archive_path, o.source_date_epoch)
    plan.save(o.plan_out)
    layers = [
        LayerInfo(digest=blob.digest, diff_id=blob.diff_id, size=blob.size, packages=job.packages, id=job.id,
                  tar_size=blob.tar_size, entries=len(job.members))
        for job, blob in zip(jobs_list, layer_blobs, strict=True)
    ]
    seconds = time.monotonic() - started
    say(f"image {manifest_digest}: {len(layers)} layers, {sum(x.size for x in layers)} bytes in {seconds:.1f} s")
    return OciResult(
        layout_dir=layout_dir,
        archive_path=archive_path,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layers=layers,
        plan_path=o.plan_out,
        ref_name=o.ref_name,
        labels=all_labels,
        seconds=seconds,
    )
