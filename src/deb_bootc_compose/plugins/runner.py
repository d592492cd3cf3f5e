"""What the compose calls around every phase that runs: the plugins' ``before``/``after`` (built-in ones first,
in the order the manifest names the others), then the manifest's hook commands for that phase and moment.
Anything that fails stops the compose with a message naming the plugin or the hook."""

from __future__ import annotations

import time
from collections.abc import Callable

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.hookspec import HooksSpec
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.phases.base import ComposeContext
from deb_bootc_compose.plugins import hooks, loader
from deb_bootc_compose.plugins.api import AFTER, BEFORE, Plugin, PluginContext


class PhaseHooks:
    def __init__(self, plugins: list[tuple[str, Plugin]], commands: HooksSpec) -> None:
        self.plugins = plugins
        self.commands = commands

    @classmethod
    def for_manifest(cls, manifest: Manifest) -> PhaseHooks:
        """PluginError (bad options, a plugin that does not load) before anything is created."""
        return cls(loader.load(manifest), manifest.hooks)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.plugins]

    def before(self, phase: str, ctx: ComposeContext, say: Callable[[str, str], None]) -> None:
        self._run(BEFORE, phase, ctx, say)

    def after(self, phase: str, ctx: ComposeContext, say: Callable[[str, str], None]) -> None:
        self._run(AFTER, phase, ctx, say)

    def _run(self, when: str, phase: str, ctx: ComposeContext, say: Callable[[str, str], None]) -> None:
        for name, plugin in self.plugins:
            call = plugin.before if when == BEFORE else plugin.after
            try:
                call(phase, PluginContext(ctx, name, when, phase))
            except (ComposeError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a plugin's own bug: name the plugin, keep the cause
                raise ComposeError(f"plugin {name} ({when} {phase}): {type(exc).__name__}: {exc}") from exc
        commands = self.commands.commands(when, phase)
        for i, command in enumerate(commands):
            t0 = time.monotonic()
            say(phase, f"hook {when} {phase} [{i}] (sandboxed, read-only compose directory)")
            hooks.run_command(ctx, when, phase, i, command)
            say(phase, f"hook {when} {phase} [{i}] done in {time.monotonic() - t0:.1f}s")
