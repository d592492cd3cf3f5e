"""Running the enabled plugins' hooks during one build, and recording what they report.

A hook that raises :class:`PluginFailed` (or anything unexpected) fails the build: ``state`` ``failed``, exit 1,
``error`` ``plugin NAME: …``; files already in the result directory stay. deb-mock's own errors keep their
meaning (an unreachable mirror while installing lintian is still exit 4), their message prefixed the same way.
Each plugin's ``data`` lands in ``result.json`` under ``plugins.NAME`` with its ``state`` (``ok``/``failed``),
and its log (``NAME.log``) in ``logs`` when it wrote one.
"""

from __future__ import annotations

import hashlib
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deb_mock.chroot import rootcache
from deb_mock.chroot.paths import CachePaths
from deb_mock.config import MockConfig
from deb_mock.errors import BuildFailed, DebMockError
from deb_mock.plugins import loader
from deb_mock.plugins.base import Hook, Plugin, PluginContext, PluginFailed
from deb_mock.plugins.toolroot import InstallFailed, RootCommandFailed, ToolRoots
from deb_mock.request import BuildRequest, BuildResult, ResultFile
from deb_mock.session.logs import StateLog
from debsandbox.commands import CommandCancelled
from debsandbox.sandbox import Bind


def _has(plugin: Plugin, hook: Hook) -> bool:
    """Whether ``plugin`` overrides ``hook`` (the base class's hooks do nothing)."""
    return getattr(type(plugin), hook.value) is not getattr(Plugin, hook.value)


@dataclass
class _Active:
    enabled: loader.Enabled
    ctx: PluginContext
    failed: bool = False


class PluginRunner:
    """The enabled plugins of one build. ``build_tmpfs``, ``build_packages``, ``build_binds`` and ``build_env``
    are shared by every plugin's context."""

    def __init__(self, request: BuildRequest, config: MockConfig, result: BuildResult, state: StateLog) -> None:
        enabled = loader.select(config.plugins, request.enable_plugins, request.disable_plugins,
                                request.plugin_options)
        self.request, self.config, self.result, self.state = request, config, result, state
        self.build_tmpfs: dict[str, str | None] = {}
        self.build_packages: list[str] = []
        self.build_binds: list[Bind] = []
        self.build_env: dict[str, str] = {}
        self.roots: dict[str, ToolRoots] = {}
        self.active = [_Active(e, self._context(e)) for e in enabled]
        for a in self.active:
            a.ctx.data["state"] = "not-run"  # until one of its hooks has run
            result.plugins[a.enabled.name] = a.ctx.data

    def _context(self, e: loader.Enabled) -> PluginContext:
        resultdir = self.request.resultdir
        log = resultdir / f"{e.name}.log"
        log.unlink(missing_ok=True)
        return PluginContext(
            name=e.name,
            options=e.options,
            config=self.config,
            result=self.result,
            resultdir=resultdir,
            workdir=Path(os.devnull),  # set by attach(), when the build has its directory
            log=log,
            run_in_root=lambda *a, **k: self._no_root(e.name),
            build_tmpfs=self.build_tmpfs,
            build_packages=self.build_packages,
            build_binds=self.build_binds,
            build_env=self.build_env,
            replace_result_file=self._replace_result_file,
        )

    @staticmethod
    def _no_root(name: str) -> Any:
        raise PluginFailed("run_in_root is available once the root cache is ready (from root_ready on)")

    def attach(self, paths: CachePaths, cache: rootcache.RootCache, builddir: Path, source: tuple[Bind, str]) -> None:
        """The root cache is ready: plugins may run things in roots made from it."""
        for a in self.active:
            a.ctx.source_bind, a.ctx.source_path = source
            a.ctx.cache_paths = paths
            roots = ToolRoots(self.config, paths, cache, builddir / f"plugin-{a.enabled.name}", a.ctx.log,
                              self.request.cancel)
            roots.workdir.mkdir(parents=True, exist_ok=True)
            a.ctx.workdir = roots.workdir
            a.ctx.run_in_root = roots.run
            a.ctx.fetch = roots.fetch
            self.roots[a.enabled.name] = roots

    def _replace_result_file(self, name: str, content: bytes) -> None:
        entry = next((f for f in self.result.files if f.name == name), None)
        if entry is None or "/" in name:
            raise PluginFailed(f"{name} is not one of the build's result files")
        tmp = self.request.resultdir / f".{name}.plugin"
        tmp.write_bytes(content)
        os.replace(tmp, self.request.resultdir / name)
        i = self.result.files.index(entry)
        self.result.files[i] = ResultFile(name, hashlib.sha256(content).hexdigest(), len(content))

    def uses(self, hook: Hook) -> bool:
        """Whether an enabled plugin has ``hook``."""
        return any(_has(a.enabled.plugin, hook) for a in self.active)

    def run(self, hook: Hook) -> None:
        """Run ``hook`` of every enabled plugin, in order; the first failure fails the build."""
        for a in self.active:
            if not _has(a.enabled.plugin, hook):
                continue
            self.state.note(f"plugin {a.enabled.name}: {hook.value}")
            try:
                getattr(a.enabled.plugin, hook.value)(a.ctx)
                a.ctx.data["state"] = "ok"
            except (CommandCancelled, KeyboardInterrupt):
                raise
            except DebMockError as exc:  # its class says what it is (bad input, infrastructure…): keep it
                self._failed(a, str(exc))
                exc.args = (f"plugin {a.enabled.name}: {exc}",)
                raise
            except (PluginFailed, RootCommandFailed, InstallFailed) as exc:
                self._failed(a, str(exc))
                raise BuildFailed(f"plugin {a.enabled.name}: {exc} (see {a.ctx.log.name})") from None
            except Exception as exc:  # a plugin's bug: the build fails, deb-mock does not
                a.ctx.note(traceback.format_exc())
                self._failed(a, f"{type(exc).__name__}: {exc}")
                raise BuildFailed(f"plugin {a.enabled.name} failed: {type(exc).__name__}: {exc} "
                                  f"(see {a.ctx.log.name})") from None

    def _failed(self, a: _Active, message: str) -> None:
        a.failed = True
        a.ctx.data["state"] = "failed"
        a.ctx.data["error"] = message
        a.ctx.note(f"failed: {message}")

    def on_failure(self) -> None:
        """The build did not succeed: tell the plugins; what they raise is logged, the result stays."""
        for a in self.active:
            if not _has(a.enabled.plugin, Hook.ON_FAILURE):
                continue
            try:
                a.enabled.plugin.on_failure(a.ctx)
            except (CommandCancelled, KeyboardInterrupt):
                raise
            except Exception as exc:
                a.ctx.note(f"on_failure: {type(exc).__name__}: {exc}")

    def finish(self) -> None:
        """Put each plugin's log into ``result.logs``."""
        for a in self.active:
            if a.ctx.log.is_file():
                self.result.logs[f"plugin-{a.enabled.name}"] = a.ctx.log.name
