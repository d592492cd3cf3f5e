"""The interface a deb-bootc-compose plugin implements (docs/plugins.md).

A plugin is a class, found through the ``deb_bootc_compose.plugins`` entry point group (or built in), made
once per compose with the options the manifest gives it (``plugins: {NAME: {…}}``); the compose calls
:meth:`Plugin.before` and :meth:`Plugin.after` around every phase that runs, with a :class:`PluginContext`
(the compose's paths and IDs, its variants, the lockfile once gather wrote it). A plugin runs in the compose's
own process: it is code the host's administrator installed, trusted like the compose itself; the manifest's
``hooks:`` commands are the sandboxed way to run something. Raising fails the compose (DOOMED) with the message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.lockfile import Lockfile
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.metadata import ExtraFileMeta
from deb_bootc_compose.paths import ComposePaths
from deb_bootc_compose.phases.base import ComposeContext

BEFORE, AFTER = "before", "after"


class PluginError(ComposeError):
    """A plugin failed; the message names the plugin. Raise it from a plugin to fail the compose."""


class PluginLoadError(PluginError):
    """A plugin the manifest enables cannot be made (not installed, does not import, bad options): bad input,
    found before anything is created (exit 2)."""


@dataclass(frozen=True)
class VariantView:
    """One variant/arch as the phases have made it so far."""

    variant: str
    arch: str
    tree: Path | None  # the prepared tree (container form), from rootfs on, until the compose ends
    ref: str | None  # from ostree-commit
    commit: str | None


class PluginContext:
    """What a plugin sees of the compose at one moment (read-only but for :meth:`add_file` and :meth:`log`)."""

    def __init__(self, ctx: ComposeContext, plugin: str, when: str, phase: str) -> None:
        self._ctx = ctx
        self.plugin = plugin
        self.when = when  # "before" | "after"
        self.phase = phase

    @property
    def compose_id(self) -> str:
        return self._ctx.compose_id

    @property
    def compose_type(self) -> str:
        return self._ctx.compose_type

    @property
    def paths(self) -> ComposePaths:
        """Every path of the compose directory (and of its target directory: ``paths.target``)."""
        return self._ctx.paths

    @property
    def manifest(self) -> Manifest:
        return self._ctx.manifest

    @property
    def manifest_path(self) -> Path:
        return self._ctx.manifest_path

    @property
    def variants(self) -> tuple[VariantView, ...]:
        return tuple(VariantView(v.variant, v.arch, v.tree, v.ref, v.commit) for v in self._ctx.variants)

    @property
    def lockfile(self) -> Lockfile | None:
        """The resolved package set (after gather)."""
        return self._ctx.lockfile

    @property
    def source_date_epoch(self) -> int | None:
        return self._ctx.source_date_epoch

    @property
    def reused_from(self) -> str | None:
        """The compose whose deliverables a no-op recompose reuses (its phases before checksums did not run)."""
        return self._ctx.reused_from

    @property
    def cancel(self) -> threading.Event:
        """Set when the compose is interrupted: a long plugin checks it and stops."""
        return self._ctx.cancel

    def log(self, message: str, *, show: bool = False) -> None:
        """A line in ``logs/plugin-NAME.log`` (and on the compose's progress output with ``show``)."""
        path = self._ctx.paths.plugin_log(self.plugin)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {self.when} {self.phase}: {message}\n")
        if show and self._ctx.progress is not None:
            self._ctx.progress(f"plugin {self.plugin}", message)

    def add_file(self, path: Path, *, kind: str, format: str, variant: str = "", arch: str = "") -> None:
        """List a file the plugin wrote in the compose directory in ``metadata/extra-files.json`` (with its size
        and SHA-256, taken when the metadata phase writes it)."""
        topdir = self._ctx.paths.topdir
        if not path.is_absolute() or not path.is_relative_to(topdir) or not path.is_file():
            raise PluginError(f"plugin {self.plugin}: {path} is not a file in the compose directory {topdir}")
        rel = str(path.relative_to(topdir))
        self._ctx.extra_files = [f for f in self._ctx.extra_files if f.path != rel]
        self._ctx.extra_files.append(ExtraFileMeta(path=rel, kind=kind, format=format, plugin=self.plugin,
                                                   variant=variant, arch=arch))


class Plugin:
    """The base class of a plugin: set ``name``, override what you need. ``options`` are the manifest's
    ``plugins: {NAME: {…}}`` mapping (empty when the plugin is named with ``true``); refuse unknown ones by
    raising ValueError in ``__init__``."""

    name: ClassVar[str] = ""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    def before(self, phase: str, ctx: PluginContext) -> None:
        """Called before ``phase`` runs (never for a phase skipped, not needed or reused)."""

    def after(self, phase: str, ctx: PluginContext) -> None:
        """Called after ``phase`` ran successfully."""
