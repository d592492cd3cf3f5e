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
    lock: Any = None  # the resolved lockfile entries for this variant/arch
    tree: Path | None = None
    kernel_version: str | None = None
    ref: str | None = None
    commit: str | None = None
    oci: Any = None  # the OCI writer's result
    images: list[ImageRecord] = field(default_factory=list)


@dataclass
class ComposeContext:
    manifest: Any  # deb_bootc_compose.manifest.Manifest
    manifest_path: Path
    target: TargetPaths
    paths: ComposePaths
    compose_id: str
    compose_type: str  # production | nightly | test
    source_date_epoch: int | None = None
    variants: list[VariantState] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: ProgressCallback | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Phase(ABC):
    """One step of a compose. Subclasses set ``name`` and implement :meth:`run`."""

    name: ClassVar[str]

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
        self._write_log(message)

    def _write_log(self, message: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def check_cancelled(self) -> None:
        if self.ctx.cancel.is_set():
            raise KeyboardInterrupt(f"compose interrupted during {self.name}")

    @abstractmethod
    def run(self) -> None:
        """Do the phase's work for every variant in ``self.ctx.variants``."""
