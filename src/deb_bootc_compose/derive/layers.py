"""The OCI image of a derived variant, as ``FROM base`` would make it: the base image's layers verbatim (the same
blobs, checked against their digests), then one layer with what the derived tree has that the base image has
not (new or changed entries, their parent directories, whole hard-link groups) and an OCI whiteout for each
path of the base the derived tree no longer has. Entries are written by the same code as every layer
(:func:`deb_bootc_compose.oci.tarlayer.write_layer`), so the image is deterministic."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deb_bootc_compose.derive.basecompose import BaseImage
from deb_bootc_compose.derive.fileindex import WHITEOUT, FileRecord, image_index, tree_record
from deb_bootc_compose.oci.analysis import TreeAnalysis
from deb_bootc_compose.oci.errors import OciCancelled, OciError
from deb_bootc_compose.oci.layout import image_config, rfc3339, write_archive, write_layout
from deb_bootc_compose.oci.tarlayer import CHUNK, LayerBlob, write_layer
from deb_bootc_compose.oci.tree import TreeEntry, parents
from deb_bootc_compose.oci.writer import ImageOptions, LayerInfo, OciResult, final_labels

LAYER_ID = "derived"
_EMPTY = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, 0, 0, 0, 0))


@dataclass(frozen=True)
class Difference:
    changed: list[str]  # tree paths to write (tree order), parents included
    whiteouts: list[str]  # DIR/.wh.NAME members
    removed: int  # base paths gone (whiteouts cover them)


def _sort_key(path: str) -> tuple[bytes, ...]:
    return tuple(os.fsencode(p) for p in path.split("/"))


def _whiteout(path: str) -> str:
    parent, _, leaf = path.rpartition("/")
    return f"{parent}/{WHITEOUT}{leaf}" if parent else f"{WHITEOUT}{leaf}"


def difference(analysis: TreeAnalysis, base: dict[str, FileRecord],
               check: Callable[[], None] | None = None) -> Difference:
    """What a layer over ``base`` must hold for the image to be ``analysis``'s tree."""
    tree, entries, links = analysis.tree, analysis.entries, analysis.hardlinks
    changed: set[str] = set()
    for n, (path, entry) in enumerate(entries.items()):
        if check is not None and n % 4096 == 0:
            check()
        old = base.get(path)
        rec = tree_record(tree, entry, links.get(path), analysis.ids, old)
        if rec is not None and rec != old:
            changed.add(path)
    groups = analysis.groups()
    for members in groups.values():  # a hard-link group is written whole, its data with its leader
        if changed.intersection(members):
            changed.update(members)
    gone = {p for p in base if p not in entries}
    retyped = {p for p in changed if p in base and base[p].is_dir and not entries[p].is_dir}
    removed = sorted(p for p in gone | retyped if not any(q in gone or q in retyped for q in parents(p)))
    wanted = set(changed)
    for path in [*changed, *removed]:
        wanted.update(parents(path))
    return Difference(sorted(wanted, key=_sort_key), [_whiteout(p) for p in removed], len(gone))


def _copy_verified(src: Path, dest: Path, digest: str) -> None:
    """The base's blob ``src`` into ``dest`` (a hard link when it can be), its SHA-256 checked first."""
    h = hashlib.sha256()
    with open(src, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    if f"sha256:{h.hexdigest()}" != digest:
        raise OciError(f"the base image's blob {src} does not match its digest {digest}: the base compose is "
                       "damaged; compose the base again")
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _json_blob(layout: Path, digest: str) -> dict[str, Any]:
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    data = path.read_bytes()
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        raise OciError(f"the base image's {path} does not match its digest {digest}: compose the base again")
    value = json.loads(data)
    if not isinstance(value, dict):
        raise OciError(f"the base image's {path} is not a JSON object")
    return value


@dataclass(frozen=True)
class BaseLayers:
    descriptors: list[dict[str, Any]]  # the manifest's layer entries
    diff_ids: list[str]
    history: list[str]
    blobs: list[Path]

    @classmethod
    def read(cls, image: BaseImage) -> BaseLayers:
        try:
            manifest = _json_blob(image.layout, image.manifest_digest)
            config = _json_blob(image.layout, str(manifest["config"]["digest"]))
            descriptors = [dict(d) for d in manifest["layers"]]
            diff_ids = [str(d) for d in config["rootfs"]["diff_ids"]]
            history = [str(h.get("created_by", "")) for h in config.get("history", []) if not h.get("empty_layer")]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OciError(f"the base image in {image.layout} cannot be read ({exc!r}); compose the base again") \
                from None
        if len(diff_ids) != len(descriptors):
            raise OciError(f"the base image in {image.layout} has {len(descriptors)} layers but {len(diff_ids)} "
                           "diff_ids")
        blobs = [image.layout / "blobs" / "sha256" / str(d["digest"]).removeprefix("sha256:") for d in descriptors]
        return cls(descriptors, diff_ids, history if len(history) == len(diff_ids) else [""] * len(diff_ids), blobs)


def write_derived_image(analysis: TreeAnalysis, image: BaseImage, out_dir: Path, o: ImageOptions, *,
                        progress: Callable[[str], None], cancel: threading.Event | None = None) -> OciResult:
    """The derived image of ``analysis``'s tree on the base ``image``, written like any image (layout + archive)."""
    started = time.monotonic()

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise OciCancelled("the OCI image write was cancelled")

    base = BaseLayers.read(image)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".{o.layout_name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    blobs = staging / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    try:
        for src, desc in zip(base.blobs, base.descriptors, strict=True):  # checked, then read from the copy
            check()
            _copy_verified(src, blobs / src.name, str(desc["digest"]))
        index = image_index([blobs / src.name for src in base.blobs], check)
        progress(f"base image {image.manifest_digest}: {len(base.blobs)} layers, {len(index)} paths")
        diff = difference(analysis, index, check)
        progress(f"derived layer: {len(diff.changed)} entries written, {diff.removed} paths of the base removed "
                 f"({len(diff.whiteouts)} whiteouts)")
        members = [analysis.entries.get(p) or TreeEntry(p, _EMPTY) for p in
                   sorted([*diff.changed, *diff.whiteouts], key=_sort_key)]
        own = write_layer(analysis.tree, members, analysis.hardlinks, o.source_date_epoch, blobs,
                          level=o.compression_level, ids=analysis.ids, should_stop=lambda: bool(cancel and
                          cancel.is_set()), whiteouts=frozenset(diff.whiteouts))
        layers = [LayerBlob(str(d["digest"]), diff_id, int(d["size"]), 0)
                  for d, diff_id in zip(base.descriptors, base.diff_ids, strict=True)] + [own]
        created = rfc3339(o.source_date_epoch)
        labels = final_labels(o.labels, created, o.kernel_version, o.ostree_commit)
        cmd = ["/sbin/init"] if any(os.path.lexists(analysis.tree / p) for p in ("sbin/init", "usr/sbin/init")) \
            else None
        history = [*base.history, f"deb-bootc-compose derived layer: {len(diff.changed)} entries, "
                   f"{len(diff.whiteouts)} whiteouts over {image.manifest_digest}"]
        config = image_config(arch=o.arch, layers=layers, history=history, labels=labels, created=created, cmd=cmd)
        notes = [dict(d.get("annotations") or {}) for d in base.descriptors] + [{"org.debian.bootc.layer": LAYER_ID}]
        annotations = {k: v for k, v in labels.items()
                       if k.startswith("org.opencontainers.image.") and k != "org.opencontainers.image.ref.name"}
        manifest_digest, config_digest, _ = write_layout(staging, config=config, layers=layers,
                                                         layer_annotations=notes, ref_name=o.ref_name,
                                                         annotations=annotations)
        layout_dir = out_dir / o.layout_name
        if layout_dir.exists():
            shutil.rmtree(layout_dir)
        os.replace(staging, layout_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive = out_dir / o.archive_name
    write_archive(layout_dir, archive, o.source_date_epoch)
    infos = [LayerInfo(digest=b.digest, diff_id=b.diff_id, size=b.size, packages=[],
                       id=str((n.get("org.debian.bootc.layer")) or f"base{i}"), tar_size=b.tar_size)
             for i, (b, n) in enumerate(zip(layers, notes, strict=True))]
    seconds = time.monotonic() - started
    progress(f"image {manifest_digest}: {len(layers)} layers ({len(base.blobs)} of the base), own layer "
             f"{own.size} bytes ({len(diff.changed)} entries, {len(diff.whiteouts)} whiteouts), in {seconds:.1f} s")
    return OciResult(layout_dir=layout_dir, archive_path=archive, manifest_digest=manifest_digest,
                     config_digest=config_digest, layers=infos, plan_path=o.plan_out, ref_name=o.ref_name,
                     labels=labels, seconds=seconds)
