"""The phase base class and the context phases share.

A phase reads what earlier phases left in :class:`ComposeContext` (typed fields, not a dict), does one
job, logs to ``logs/<phase>.log`` and reports progress through ``ctx.progress``. Phases never compute
paths themselves: :mod:`deb_bootc_compose.paths` is the single source of truth.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from deb_bootc_compose.clientdeb import ClientDeb
from deb_bootc_compose.clientsource import TaggedClient
from deb_bootc_compose.lockfile import LockedVariant, Lockfile
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.metadata import ExtraFileMeta
from deb_bootc_compose.oci import OciResult
from deb_bootc_compose.paths import ComposePaths, TargetPaths

ProgressCallback = Callable[[str, str], None]  # (phase, message)


@dataclass
class ImageRecord:
    """One deliverable, as listed in images.json."""

    variant: str
    arch: str
    path: Path  # absolute
    type: str  # productmd image type: bootable-container, qcow2, raw-xz, ...
    format: str  # ociarchive, qcow2, raw
    size: int = 0
    checksums: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class VariantState:
    """What the phases learn about one (variant, arch) as they go."""

    variant: str
    arch: str
    packages: list[str] = field(default_factory=list)  # requested names after variant add/remove
    added_packages: list[str] = field(default_factory=list)  # what compose added itself, and why
    lock: LockedVariant | None = None  # gather: the resolved lockfile entries for this variant/arch
    tree: Path | None = None  # rootfs, then ostree-prepare
    kernel_version: str | None = None  # ostree-prepare
    ref: str | None = None
    commit: str | None = None  # ostree-commit
    oci: OciResult | None = None  # oci: the OCI writer's result
    images: list[ImageRecord] = field(default_factory=list)  # oci, disk; checksums adds their SHA-256


@dataclass
class ComposeContext:
    """What a compose knows: its inputs, then what each phase leaves for the later ones (typed fields, one per
    fact; a phase that adds a fact adds a field here)."""

    manifest: Manifest
    manifest_path: Path
    target: TargetPaths
    paths: ComposePaths
    compose_id: str
    compose_type: str  # production | nightly | test
    source_date_epoch: int | None = None  # gather (from the lockfile)
    variants: list[VariantState] = field(default_factory=list)  # init
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: ProgressCallback | None = None
    # ---- from the command line ----
    lockfile_in: Path | None = None  # --lockfile: compose exactly this
    allow_host_paths: bool = False  # --allow-host-paths: manifest files may name paths outside its directory
    skipped: dict[str, str] = field(default_factory=dict)  # phase name -> why (--skip-phase, --just-phase)
    # ---- left by the phases ----
    lockfile: Lockfile | None = None  # gather
    input_hash: str | None = None  # after gather: manifest + lockfile + tool version
    orchestrator_builds: dict[str, dict[str, Any]] = field(default_factory=dict)  # build: SOURCE_VERSION -> ids
    # build: the deb-bootc client (manifest with update:), built locally or by the orchestrator (build.target)
    client_deb: ClientDeb | TaggedClient | None = None
    reused_from: str | None = None  # the compose whose deliverables a no-op recompose reuses
    # str(path) -> (inode, size, sha256) of the deliverables a no-op recompose hard-linked
    reused_checksums: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    disk: dict[str, dict[str, Any]] = field(default_factory=dict)  # disk: "variant/arch" -> its figures
    boot_test: dict[str, dict[str, Any]] = field(default_factory=dict)  # boot-test: "variant/arch" -> report
    incomplete: list[str] = field(default_factory=list)  # why the compose is FINISHED_INCOMPLETE (boot-test)
    extra_files: list[ExtraFileMeta] = field(default_factory=list)  # plugins: files for extra-files.json


class Phase(ABC):
    """One step of a compose. Subclasses set ``name`` and implement :meth:`run`.

    ``skippable``: ``--skip-phase``/``--just-phase`` may leave the phase out and the compose still ends
    FINISHED (nothing later needs what it makes, or the later phase notices its absence). Otherwise
    ``needed_because`` says why it always runs (shown when someone asks to skip it)."""

    name: ClassVar[str]
    skippable: ClassVar[bool] = False
    needed_because: ClassVar[str] = ""

    def __init__(self, ctx: ComposeContext) -> None:
        self.ctx = ctx
        self.log_path = ctx.paths.log(self.name.replace("-", "_"))
        self.log = logging.getLogger(f"deb_bootc_compose.phase.{self.name}")

    def skip_reason(self) -> str | None:
        """Return why this phase does nothing in this compose (or None to run it)."""
        return None

    def progress(self, message: str) -> None:
        if self.ctx.progress is not None:
            self.ctx.progress(self.name, message)
        self.write_log(message)

    def write_log(self, message: str) -> None:
        """A line in the phase log only (not shown to the user)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def check_cancelled(self) -> None:
        if self.ctx.cancel.is_set():
            raise KeyboardInterrupt(f"compose interrupted during {self.name}")

    @abstractmethod
    def run(self) -> None:
        """Do the phase's work for every variant in ``self.ctx.variants``."""
