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
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deb_bootc_compose import __version__, composeid, phaserecord, status, treeops
from deb_bootc_compose.errors import ComposeError, Interrupted
from deb_bootc_compose.hookspec import HooksSpec
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import ComposePaths, TargetPaths
from deb_bootc_compose.phaserecord import PhaseOutcome
from deb_bootc_compose.phases.base import ComposeContext, ImageRecord, Phase, ProgressCallback
from deb_bootc_compose.phases.gather import GatherPhase
from deb_bootc_compose.phases.oci import remember_plans
from deb_bootc_compose.phases.order import NAMES, OUTPUT_PHASE, PHASES, REUSE_PHASES, select_skipped
from deb_bootc_compose.phases.ostree_commit import rev_parse
from deb_bootc_compose.plugins.runner import PhaseHooks
from deb_bootc_compose.variants import all_outputs
from debsandbox.commands import CommandError
from debsandbox.locks import flock

log = logging.getLogger("deb_bootc_compose")

OUTPUT_FORMATS = {"oci": "ociarchive", "raw": "raw", "qcow2": "qcow2"}


def input_hash(manifest: Manifest, lock_digest: str) -> str:
    h = hashlib.sha256()
    for part in (manifest.canonical_json(), lock_digest, __version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def reuse_key(ihash: str, manifest: Manifest, skipped: Iterable[str]) -> str:
    """What a compose's deliverables are remembered under: its input hash and, when phases were skipped, the
    outputs it therefore lacks (a compose without its disk images must not stand in for one with them; one
    that skipped only phases making no deliverable, such as boot-test, may)."""
    left_out = set(skipped)
    missing = sorted({out for out in all_outputs(manifest) if OUTPUT_PHASE[out] in left_out})
    if not missing:
        return ihash
    return hashlib.sha256(f"{ihash}\0without:{','.join(missing)}".encode()).hexdigest()


def missing_deliverables(ctx: ComposeContext) -> list[str]:
    """Why the compose is not complete (empty: FINISHED). Every variant needs its commit, every output the
    manifest or the variant asks for (but those of phases left out on purpose), and every deliverable its
    checksum."""
    problems: list[str] = list(ctx.incomplete)
    for vs in ctx.variants:
        label = f"{vs.variant}/{vs.arch}"
        if not vs.commit:
            problems.append(f"{label}: no OSTree commit")
        formats = {img.format for img in vs.images}
        for out in ctx.manifest.for_variant(vs.variant).outputs:
            if OUTPUT_PHASE[out] in ctx.skipped:
                continue  # not expected: the phase that makes it was left out on purpose
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


@dataclass
class ComposeResult:
    paths: ComposePaths
    status: str
    reused_from: str | None = None
    incomplete: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phases: list[PhaseOutcome] = field(default_factory=list)


@contextlib.contextmanager
def target_lock(target: TargetPaths, progress: Callable[[str], None]) -> Iterator[None]:
    target.state.mkdir(parents=True, exist_ok=True)
    waiting = f"another compose is running in {target.target}; waiting for it to finish"
    with flock(target.lock, keep_file=True, on_wait=lambda: progress(waiting)):
        yield


@contextlib.contextmanager
def global_log(paths: ComposePaths) -> Iterator[None]:
    """Everything the compose logs also goes to its ``logs/global.log``."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(paths.log_global())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger("deb_bootc_compose")
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        root_logger.removeHandler(handler)
        handler.close()


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
        skip_phases: Iterable[str] = (),
        just_phases: Iterable[str] = (),
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
        self.context: ComposeContext | None = None  # once the compose started: also after it failed
        self.result: ComposeResult | None = None
        self.hooks = PhaseHooks([], HooksSpec())  # the manifest's plugins and hooks, once it is read (run)
        # PhaseSelectionError (a usage error) before anything is created
        self.skipped = select_skipped(skip_phases, just_phases)
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
        self.hooks = PhaseHooks.for_manifest(manifest)  # PluginLoadError (bad options…) before anything
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
            lockfile_in=self.lockfile, allow_host_paths=self.allow_host_paths, skipped=dict(self.skipped),
        )
        result = ComposeResult(paths=paths, status=status.STARTED)
        self.context, self.result = ctx, result
        with global_log(paths):
            try:
                reused = self._run_phases(ctx, result)
                self._finish(ctx, reused, result)
            except BaseException as exc:
                self._doom(ctx, exc, result)
                result.status = status.DOOMED
                raise
            finally:
                if not self.keep_work:
                    with contextlib.suppress(Exception):
                        treeops.remove_tree(paths.work)
                result.seconds = time.monotonic() - start
                self._say("compose", f"{cid}: {result.status} in {result.seconds:.1f}s")
        return result

    def _run_phases(self, ctx: ComposeContext, result: ComposeResult) -> dict[str, Any] | None:
        """Every phase of :data:`PHASES` in order; returns the record of the compose reused, if any."""
        if ctx.skipped:
            self._say("compose", "skipping " + ", ".join(f"{n} ({why})" for n, why in ctx.skipped.items()))
        reused: dict[str, Any] | None = None
        for phase_cls in PHASES:
            if reused is not None and phase_cls.name not in REUSE_PHASES and phase_cls.name not in ctx.skipped:
                why = f"inputs unchanged since {reused['compose_id']}"
                result.phases.append(PhaseOutcome(phase_cls.name, phaserecord.REUSED, reason=why))
                continue
            self._run_phase(phase_cls(ctx), result)
            if phase_cls is GatherPhase:
                reused = self._after_gather(ctx, result)
        return reused

    def _after_gather(self, ctx: ComposeContext, result: ComposeResult) -> dict[str, Any] | None:
        """The inputs are known: reuse the deliverables of the last compose with the same ones, if any."""
        if ctx.lockfile is None:
            raise ComposeError("gather wrote no lockfile")
        ctx.input_hash = input_hash(ctx.manifest, ctx.lockfile.digest())
        reused = self._reusable(ctx)
        if reused is not None:
            self._reuse(ctx, reused, result)
        return reused

    def _finish(self, ctx: ComposeContext, reused: dict[str, Any] | None, result: ComposeResult) -> None:
        result.incomplete = missing_deliverables(ctx)
        final = status.FINISHED_INCOMPLETE if result.incomplete else status.FINISHED
        phaserecord.write(ctx.paths, final, NAMES, result.phases, ctx.skipped)
        status.write(ctx.paths, final)
        result.status = final
        if final == status.FINISHED:
            self._record(ctx)
            if reused is None:
                remember_plans(ctx)
            self._update_latest(ctx.manifest, ctx.paths)
        for reason in result.incomplete:
            self._say("compose", f"incomplete: {reason}")

    def _run_phase(self, phase: Phase, result: ComposeResult) -> None:
        self.cancel_check(phase.name)
        user_skip = phase.ctx.skipped.get(phase.name)
        reason = f"skipped: {user_skip}" if user_skip else phase.skip_reason()
        if reason:
            self._say(phase.name, reason if user_skip else f"skipped: {reason}")
            state = phaserecord.SKIPPED if user_skip else phaserecord.NOT_NEEDED
            result.phases.append(PhaseOutcome(phase.name, state, reason=user_skip or reason))
            return
        t0 = time.monotonic()
        self.phase = phase.name
        self._say(phase.name, "started")
        try:
            self.hooks.before(phase.name, phase.ctx, self._say)
            phase.run()
            self.hooks.after(phase.name, phase.ctx, self._say)
        except BaseException:
            result.phases.append(PhaseOutcome(phase.name, phaserecord.FAILED, round(time.monotonic() - t0, 1)))
            raise
        result.phase_seconds[phase.name] = round(time.monotonic() - t0, 1)
        result.phases.append(PhaseOutcome(phase.name, phaserecord.DONE, result.phase_seconds[phase.name]))
        self._say(phase.name, f"done in {result.phase_seconds[phase.name]:.1f}s")

    def cancel_check(self, where: str) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt(f"compose interrupted before {where}")

    # ---- deliverables and status ----
    def _doom(self, ctx: ComposeContext, exc: BaseException, result: ComposeResult) -> None:
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
            if paths.metadata.is_dir():
                phaserecord.write(paths, status.DOOMED, NAMES, result.phases, ctx.skipped)
            status.write(paths, status.DOOMED)

    def _update_latest(self, manifest: Manifest, paths: ComposePaths) -> None:
        link = self.target.latest_link(manifest.short_name, manifest.version)
        tmp = link.with_name(f".{link.name}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(paths.topdir.name)
        tmp.replace(link)

    # ---- no-op recompose ----
    def _input_record(self, ctx: ComposeContext) -> Path:
        if ctx.input_hash is None:
            raise ComposeError("no input hash: gather must run first")
        return self.target.input_record(reuse_key(ctx.input_hash, ctx.manifest, ctx.skipped))

    def _record(self, ctx: ComposeContext) -> None:
        rec: dict[str, Any] = {
            "input_hash": ctx.input_hash,
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
        path = self._input_record(ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=2, default=str))
        tmp.replace(path)

    def _reusable(self, ctx: ComposeContext) -> dict[str, Any] | None:
        path = self._input_record(ctx)
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
                dest_dir = ctx.paths.deliverables / os.path.relpath(root, src)
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
        ctx.reused_checksums = {
            str(img.path): (img.path.stat().st_ino, img.size, img.checksums["sha256"])
            for vs in ctx.variants for img in vs.images
            if img.path in linked and img.checksums.get("sha256") and img.path.stat().st_size == img.size
        }
        ctx.reused_from = prev.compose_id
        result.reused_from = prev.compose_id
