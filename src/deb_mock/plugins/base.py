"""deb-mock's plugin interface: hook points at mock's moments, a base class, and the context a hook gets.

A plugin is a subclass of :class:`Plugin` with a ``name``, an ``Options`` model (its ``[plugins.NAME]``
table and ``--plugin-option NAME:KEY=VALUE`` values, checked before the build starts) and any of the hook
methods named by :class:`Hook`. A hook reports into ``ctx.data`` (``result.json``'s ``plugins.NAME``) and
fails the build by raising :class:`PluginFailed`. Whatever a plugin runs, it runs with
:meth:`PluginContext.run_in_root`: in a throw-away root of the build's config, in deb-mock's sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from deb_mock.chroot.paths import CachePaths
from deb_mock.config import MockConfig
from deb_mock.request import BuildResult
from debsandbox.commands import Completed
from debsandbox.sandbox import Bind


class Hook(StrEnum):
    """The moments of a build a plugin can act at (the method names of :class:`Plugin`)."""

    ROOT_READY = "root_ready"  # the config's root cache is ready (before the build-dependencies)
    BEFORE_DEPS = "before_deps"  # before the build-dependencies are resolved and installed (or found cached)
    AFTER_DEPS = "after_deps"  # the build-dependency layer is ready
    BEFORE_BUILD = "before_build"  # just before dpkg-buildpackage's sandbox is made (ctx.build_* apply)
    AFTER_BUILD = "after_build"  # the build succeeded; its files are in the result directory
    ON_FAILURE = "on_failure"  # the build did not succeed (errors here are logged, never change the result)


class PluginFailed(Exception):
    """Raised by a hook: the build fails (exit 1) with ``plugin NAME: MESSAGE`` as its error."""


def _dashed(name: str) -> str:
    return name.replace("_", "-")


class PluginOptions(BaseModel):
    """A plugin's options. Unknown keys are refused; ``fail_on`` may be written ``fail-on``."""

    model_config = ConfigDict(extra="forbid", alias_generator=_dashed, populate_by_name=True, frozen=True)


class RunInRoot(Protocol):
    def __call__(
        self,
        script: str,
        *,
        packages: Sequence[str] = (),
        install: Sequence[str] = (),
        as_root: bool = False,
        binds: Sequence[Bind] = (),
        stdin: bytes | None = None,
        capture: bool = False,
        check: bool = True,
        cap_add: Sequence[str] = (),
    ) -> Completed: ...


class Fetch(Protocol):
    def __call__(self, wanted: Sequence[str], into: Path, binds: Sequence[Bind] = (),
                 base: Path | None = None) -> None: ...


def _no_fetch(wanted: Sequence[str], into: Path, binds: Sequence[Bind] = (), base: Path | None = None) -> None:
    raise PluginFailed("fetch is available once the root cache is ready (from root_ready on)")


@dataclass
class PluginContext:
    """What a hook sees. ``data`` becomes ``result.json``'s ``plugins.NAME``; ``log`` is ``NAME.log`` in the
    result directory; ``workdir`` is the plugin's own scratch directory (removed with the build's root)."""

    name: str
    options: Any  # the plugin's Options instance
    config: MockConfig
    result: BuildResult  # read it (files, state); change result files only with replace_result_file
    resultdir: Path
    workdir: Path
    log: Path
    run_in_root: RunInRoot
    # mount points of the build's sandbox that are a tmpfs, with their size (None: the kernel's default);
    # change it in ROOT_READY .. BEFORE_BUILD
    build_tmpfs: dict[str, str | None]
    data: dict[str, Any] = field(default_factory=dict)
    # the source package, read-only, for run_in_root's binds: its Bind and its path inside (the .dsc, or the
    # tree's directory); set from root_ready on
    source_bind: Bind | None = None
    source_path: str | None = None
    replace_result_file: Callable[[str, bytes], None] = lambda name, content: None
    # apt downloads what packages (or .deb files in binds) need beyond the root cache into a directory, and
    # optionally copies the root cache (ToolRoots.fetch; from root_ready on)
    fetch: Fetch = _no_fetch
    # packages installed with the build-dependencies (part of the cached layer's key); add in ROOT_READY or
    # BEFORE_DEPS. Binds into the build's sandbox and variables of its environment; add up to BEFORE_BUILD.
    # All three are shared by every plugin of the build.
    build_packages: list[str] = field(default_factory=list)
    cache_paths: CachePaths | None = None  # deb-mock's cache directory (from root_ready on)
    build_binds: list[Bind] = field(default_factory=list)
    build_env: dict[str, str] = field(default_factory=dict)

    def note(self, message: str) -> None:
        """A line in the plugin's log."""
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(message.rstrip("\n") + "\n")


class Plugin:
    """Base class of deb-mock plugins: override the hooks you need (each gets a :class:`PluginContext`).

    ``order`` sorts the enabled plugins (lower first; built-ins: tmpfs 10, lintian 40, sign 90; others 50).
    ``default_enabled`` is honoured for deb-mock's own plugins only: a third-party plugin runs only when
    its config table says ``enabled = true`` or the run says ``--enable-plugin NAME``.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[PluginOptions]] = PluginOptions
    order: ClassVar[int] = 50
    default_enabled: ClassVar[bool] = False

    def root_ready(self, ctx: PluginContext) -> None:
        pass

    def before_deps(self, ctx: PluginContext) -> None:
        pass

    def after_deps(self, ctx: PluginContext) -> None:
        pass

    def before_build(self, ctx: PluginContext) -> None:
        pass

    def after_build(self, ctx: PluginContext) -> None:
        pass

    def on_failure(self, ctx: PluginContext) -> None:
        pass
