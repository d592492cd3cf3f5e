"""Run a compose: the phases in order, with Pungi's STATUS handling.

STARTED → FINISHED (every deliverable exists and has its checksum) | FINISHED_INCOMPLETE (a deliverable is
missing or a non-fatal check such as the boot test failed) | DOOMED (an error or SIGINT; partial
deliverables are removed so nothing half-made looks finished). ``latest-<short>-<version>`` points at the
newest FINISHED compose.

Unchanged inputs (manifest + lockfile + tool version, hashed after gather) reuse the last FINISHED compose
with the same hash: no rootfs, no new commit; its deliverables are hard-linked into the new compose.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deb_bootc_compose import __version__, composeid, status, treeops
from deb_bootc_compose.errors import ComposeError, Interrupted
from deb_bootc_compose.manifest import ALLOW_HOST_PATHS_KEY, Manifest
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import ComposePaths, TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, ImageRecord, Phase, ProgressCallback
from deb_bootc_compose.phases.gather import GatherPhase
from deb_bootc_compose.phases.init import InitPhase
from deb_bootc_compose.phases.ostree_commit import OstreeCommitPhase, rev_parse
from deb_bootc_compose.phases.ostree_prepare import OstreePreparePhase
from deb_bootc_compose.phases.rootfs import RootfsPhase
from debsandbox.commands import CommandError
from debsandbox.locks import flock

log = logging.getLogger("deb_bootc_compose")

# (module under deb_bootc_compose.phases, class): run in this order after ostree-commit when present
OPTIONAL_PHASES = [
    ("oci", "OciPhase"),
    ("disk", "DiskPhase"),
    ("boot_test", "BootTestPhase"),
    ("checksums", "ChecksumsPhase"),
    ("metadata", "MetadataPhase"),
]
# (module, class): run between init and gather when present, e.g. building the manifest's `build:` sources
PRE_GATHER_PHASES = [("build", "BuildPhase")]
# phases that still run when a no-op recompose reuses the previous deliverables
REUSE_PHASES = ("checksums", "metadata")
INCOMPLETE_KEY = "incomplete"
REUSED_CHECKSUMS_KEY = "reused_checksums"  # str(path) -> (inode, size, sha256) of hard-linked deliverables
OUTPUT_FORMATS = {"oci": "ociarchive", "raw": "raw", "qcow2": "qcow2"}


def optional_phase(module: str, cls: str) -> type[Phase] | None:
    name = f"deb_bootc_compose.phases.{module}"
    if importlib.util.find_spec(name) is None:
        return None
    mod = importlib.import_module(name)
    phase = getattr(mod, cls, None)
    return phase if isinstance(phase, type) and issubclass(phase, Phase) else None


def input_hash(manifest: Manifest, lock_digest: str) -> str:
    h = hashlib.sha256()
    for part in (manifest.canonical_json(), lock_digest, __version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class ComposeResult:
    paths: ComposePaths
    status: str
    reused_from: str | None = None
    incomplete: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def target_lock(target: TargetPaths, progress: Callable[[str], None]) -> Iterator[None]:
    target.state.mkdir(parents=True, exist_ok=True)
    waiting = f"another compose is running in {target.target}; waiting for it to finish"
    with flock(target.lock, keep_file=True, on_wait=lambda: progress(waiting)):
        yield


class Compose:
    def __init__(
        self,
        manifest_path: Path,
        target_dir: Path,
        *,
        compose_type: str = "production",
        lockfile: Path | None = None,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        keep_work: bool = False,
        orchestrator_url: str | None = None,
        allow_host_paths: bool = False,
    ) -> None:
        self.manifest_path = manifest_path.resolve()
        self.target = TargetPaths(target_dir.resolve())
        self.compose_type = compose_type
        self.lockfile = lockfile.resolve() if lockfile else None
        self.progress_cb = progress
        self.cancel = cancel or threading.Event()
        self.keep_work = keep_work
        self.orchestrator_url = orchestrator_url.rstrip("/") if orchestrator_url else None
        self.allow_host_paths = allow_host_paths
        self.phase = "start"  # the phase running now (for the record of an interruption)
        if compose_type not in composeid.TYPE_SUFFIX:
            raise ComposeError(f"compose type {compose_type!r} is not one of {', '.join(composeid.TYPE_SUFFIX)}")
        if self.lockfile is not None and not self.lockfile.is_file():
            raise ComposeError(f"--lockfile {self.lockfile}: no such file")

    def _say(self, phase: str, message: str) -> None:
        log.info("%s: %s", phase, message)
        if self.progress_cb is not None:
            self.progress_cb(phase, message)

    def run(self) -> ComposeResult:
        # ManifestError before anything is created
        manifest = load_manifest(self.manifest_path, allow_host_paths=self.allow_host_paths)
        if self.orchestrator_url is not None:
            # --orchestrator URL overrides the url of every orchestrator source (never adds one)
            for src in manifest.sources:
                if src.orchestrator is not None:
                    src.orchestrator.url = self.orchestrator_url
        self.target.target.mkdir(parents=True, exist_ok=True)
        with target_lock(self.target, lambda m: self._say("compose", m)):
            return self._run_locked(manifest)

    def _bury_dead_composes(self) -> None:
        """Composes still STARTED while we hold the target lock were killed (SIGKILL, power loss): DOOM them."""
        for child in sorted(self.target.target.iterdir()):
            paths = self.target.compose(child.name)
            if child.is_dir() and not child.is_symlink() and status.read(paths) == status.STARTED:
                self._say("compose", f"{child.name} was left STARTED by a compose that died: marking it DOOMED")
                for leftover in (paths.work, paths.deliverables):
                    try:
                        treeops.remove_tree(leftover)
                    except CommandError as exc:
                        raise ComposeError(
                            f"cannot remove {leftover}, left by a compose that died (does a process of it still "
                            f"write there?): {exc.tail}"
                        ) from exc
                status.write(paths, status.DOOMED)

    def _run_locked(self, manifest: Manifest) -> ComposeResult:
        start = time.monotonic()
        self._bury_dead_composes()
        cid = composeid.make(self.target.target, manifest.name, manifest.version, self.compose_type)
        paths = self.target.compose(cid)
        ctx = ComposeContext(
            manifest=manifest, manifest_path=self.manifest_path, target=self.target, paths=paths,
            compose_id=cid, compose_type=self.compose_type, cancel=self.cancel, progress=self.progress_cb,
        )
        ctx.extra[ALLOW_HOST_PATHS_KEY] = self.allow_host_paths
        if self.lockfile is not None:
            ctx.extra["lockfile_in"] = self.lockfile
        paths.logs.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(paths.log_global())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root_logger = logging.getLogger("deb_bootc_compose")
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.INFO)
        result = ComposeResult(paths=paths, status=status.STARTED)
        try:
            self._run_phase(InitPhase(ctx), result)
            for module, cls in PRE_GATHER_PHASES:
                pre = optional_phase(module, cls)
                if pre is not None:
                    self._run_phase(pre(ctx), result)
            self._run_phase(GatherPhase(ctx), result)
            ihash = input_hash(manifest, ctx.extra["lockfile"].digest())
            ctx.extra["input_hash"] = ihash
            reused = self._reusable(ctx, ihash)
            if reused is not None:
                self._reuse(ctx, reused, result)
                phases = [(m, c) for m, c in OPTIONAL_PHASES if m in REUSE_PHASES]
            else:
                for core in (RootfsPhase, OstreePreparePhase, OstreeCommitPhase):
                    self._run_phase(core(ctx), result)
                phases = OPTIONAL_PHASES
            for module, cls in phases:
                phase_cls = optional_phase(module, cls)
                if phase_cls is None:
                    self._say("compose", f"phase {module} is not available in this version: skipped")
                    continue
                self._run_phase(phase_cls(ctx), result)
            result.incomplete = self._check_deliverables(ctx)
            final = status.FINISHED_INCOMPLETE if result.incomplete else status.FINISHED
            status.write(paths, final)
            result.status = final
            if final == status.FINISHED:
                self._record(ctx, ihash)
                oci = importlib.import_module("deb_bootc_compose.phases.oci") if optional_phase("oci", "OciPhase") \
                    else None
                if oci is not None and reused is None:
                    oci.remember_plans(ctx)
                self._update_latest(manifest, paths)
            for reason in result.incomplete:
                self._say("compose", f"incomplete: {reason}")
        except BaseException as exc:
            self._doom(ctx, exc)
            result.status = status.DOOMED
            raise
        finally:
            if not self.keep_work:
                with contextlib.suppress(Exception):
                    treeops.remove_tree(paths.work)
            result.seconds = time.monotonic() - start
            self._say("compose", f"{cid}: {result.status} in {result.seconds:.1f}s")
            root_logger.removeHandler(handler)
            handler.close()
        return result

    def _run_phase(self, phase: Phase, result: ComposeResult) -> None:
        self.cancel_check(phase.name)
        reason = phase.skip_reason()
        if reason:
            self._say(phase.name, f"skipped: {reason}")
            return
        t0 = time.monotonic()
        self.phase = phase.name
        self._say(phase.name, "started")
        phase.run()
        result.phase_seconds[phase.name] = round(time.monotonic() - t0, 1)
        self._say(phase.name, f"done in {result.phase_seconds[phase.name]:.1f}s")

    def cancel_check(self, where: str) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt(f"compose interrupted before {where}")

    # ---- deliverables and status ----
    def _check_deliverables(self, ctx: ComposeContext) -> list[str]:
        problems: list[str] = list(ctx.extra.get(INCOMPLETE_KEY, []))
        for vs in ctx.variants:
            label = f"{vs.variant}/{vs.arch}"
            if not vs.commit:
                problems.append(f"{label}: no OSTree commit")
            formats = {img.format for img in vs.images}
            for out in ctx.manifest.outputs:
                if OUTPUT_FORMATS[out] not in formats:
                    problems.append(f"{label}: no {out} deliverable was produced")
            for img in vs.images:
                if not Path(img.path).exists():
                    problems.append(f"{label}: deliverable {img.path} is missing")
                elif not img.checksums.get("sha256"):
                    problems.append(f"{label}: deliverable {img.path} has no checksum")
            if vs.images and not ctx.paths.checksum_file(vs.variant, vs.arch).is_file():
                problems.append(f"{label}: no CHECKSUM file in {ctx.paths.variant_dir(vs.variant, vs.arch)}")
        return problems

    def _doom(self, ctx: ComposeContext, exc: BaseException) -> None:
        paths = ctx.paths
        with contextlib.suppress(Exception):
            if isinstance(exc, Interrupted):
                why = f"interrupted by {exc.signal} during the {self.phase} phase"
            elif isinstance(exc, KeyboardInterrupt):
                why = f"interrupted ({exc or 'SIGINT'}) during the {self.phase} phase"
            else:
                why = f"{type(exc).__name__}: {exc}"
            unexpected = not isinstance(exc, KeyboardInterrupt | ComposeError)
            log.error("compose %s DOOMED: %s", ctx.compose_id, why, exc_info=exc if unexpected else None)
            # nothing half-made may look finished: deliverables and their checksums go
            if paths.deliverables.exists():
                treeops.remove_tree(paths.deliverables)
            status.write(paths, status.DOOMED)

    def _update_latest(self, manifest: Manifest, paths: ComposePaths) -> None:
        link = self.target.latest_link(manifest.short_name, manifest.version)
        tmp = link.with_name(f".{link.name}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(paths.topdir.name)
        tmp.replace(link)

    # ---- no-op recompose ----
    def _record(self, ctx: ComposeContext, ihash: str) -> None:
        rec: dict[str, Any] = {
            "input_hash": ihash,
            "compose_id": ctx.compose_id,
            "tool_version": __version__,
            "variants": [
                {
                    "variant": vs.variant, "arch": vs.arch, "ref": vs.ref, "commit": vs.commit,
                    "kernel_version": vs.kernel_version,
                    "images": [
                        {"path": os.path.relpath(img.path, ctx.paths.topdir), "type": img.type, "format": img.format,
                         "size": img.size, "checksums": img.checksums, "extra": img.extra}
                        for img in vs.images
                    ],
                }
                for vs in ctx.variants
            ],
        }
        path = self.target.input_record(ihash)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=2, default=str))
        tmp.replace(path)

    def _reusable(self, ctx: ComposeContext, ihash: str) -> dict[str, Any] | None:
        path = self.target.input_record(ihash)
        if not path.is_file():
            return None
        try:
            rec: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        prev = self.target.compose(rec["compose_id"])
        if status.read(prev) != status.FINISHED:
            return None
        for v in rec["variants"]:
            if rev_parse(self.target.ostree_repo, v["ref"]) != v["commit"]:
                return None
            if not all((prev.topdir / img["path"]).exists() for img in v["images"]):
                return None
        if {(v["variant"], v["arch"]) for v in rec["variants"]} != {(vs.variant, vs.arch) for vs in ctx.variants}:
            return None
        return rec

    def _reuse(self, ctx: ComposeContext, rec: dict[str, Any], result: ComposeResult) -> None:
        prev = self.target.compose(rec["compose_id"])
        self._say("compose", f"inputs unchanged since {prev.compose_id}: reusing its commit and deliverables")
        src = prev.deliverables
        linked: set[Path] = set()
        if src.is_dir():
            for root, _dirs, files in os.walk(src):
                dest_dir = ctx.paths.topdir / os.path.relpath(root, prev.topdir)
                dest_dir.mkdir(parents=True, exist_ok=True)
                for f in files:
                    s, d = os.path.join(root, f), dest_dir / f
                    # big deliverables are hard-linked (immutable once written); small files such as CHECKSUM
                    # are copied, because later phases may rewrite them in place
                    if os.path.getsize(s) < 1 << 20:
                        shutil.copy2(s, d)
                        continue
                    try:
                        os.link(s, d)
                        linked.add(d)
                    except OSError:
                        shutil.copy2(s, d)
        by_key = {(v["variant"], v["arch"]): v for v in rec["variants"]}
        for vs in ctx.variants:
            v = by_key[(vs.variant, vs.arch)]
            vs.ref, vs.commit, vs.kernel_version = v["ref"], v["commit"], v["kernel_version"]
            vs.images = [
                ImageRecord(variant=vs.variant, arch=vs.arch, path=ctx.paths.topdir / img["path"], type=img["type"],
                            format=img["format"], size=img["size"], checksums=dict(img["checksums"]),
                            extra=dict(img["extra"]))
                for img in v["images"]
            ]
        # a hard link is the very file the previous compose checksummed: the checksums phase may trust its
        # recorded SHA256 (same inode and size) instead of reading hundreds of MB again
        ctx.extra[REUSED_CHECKSUMS_KEY] = {
            str(img.path): (img.path.stat().st_ino, img.size, img.checksums["sha256"])
            for vs in ctx.variants for img in vs.images
            if img.path in linked and img.checksums.get("sha256") and img.path.stat().st_size == img.size
        }
        ctx.extra["reused_from"] = prev.compose_id
        result.reused_from = prev.compose_id
