"""Calling the hub's plugins (api.py) at their moments: ``before_tag`` inside the tagging's transaction (a
refusal, or any error of the hook, refuses: policies fail closed), the others after the commit (errors logged).

Code that holds a session reaches the hub's plugins through it (``hooks_of``: the Database hands them to every
session); a session of a Database without them gets the built-in ones.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from deb_orchestrator.hub.db import AFTER_COMMIT, HOOKS
from deb_orchestrator.hub.errors import HubError, PolicyRefused
from deb_orchestrator.hub.models import Build, Tag, Target, Task
from deb_orchestrator.hub.plugins.api import BuildInfo, HubPlugin, RepoEvent, TagEvent, TagRefused, TargetPolicy
from deb_orchestrator.hub.plugins.loader import load
from deb_orchestrator.states import TaskMethod

log = logging.getLogger("deb_orchestrator.hub.plugins")


class HubHooks:
    def __init__(self, plugins: list[HubPlugin]) -> None:
        self.plugins = plugins
        self.by_name = {p.name: p for p in plugins}

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    # ------------------------------------------------------------------ targets' options
    def check_policy(self, policy: dict[str, dict[str, Any]]) -> None:
        """A target's ``policy``: each name a plugin this hub runs that takes per-target options, valid ones."""
        for name, values in policy.items():
            plugin = self.by_name.get(name)
            if plugin is None:
                raise HubError(f"policy names hub plugin {name}, which this hub does not run "
                               f"(it runs {', '.join(self.names)}; hub --plugin NAME enables an installed one)")
            if plugin.TargetOptions is None:
                raise HubError(f"hub plugin {name} takes no per-target options")
            try:
                plugin.TargetOptions.model_validate(values)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise HubError(f"policy {name}: invalid options: {problems}") from None

    def _policies(self, plugin: HubPlugin, targets: list[Target]) -> tuple[TargetPolicy, ...]:
        if plugin.TargetOptions is None:
            return ()
        return tuple(TargetPolicy(t.name, plugin.TargetOptions.model_validate(t.policy[plugin.name]))
                     for t in targets if plugin.name in (t.policy or {}))

    # ------------------------------------------------------------------ the hooks
    def before_tag(self, session: Session, tag: Tag, build: Build, actor: str) -> None:
        targets = list(session.scalars(select(Target).where(Target.dest_tag_id == tag.id).order_by(Target.name)))
        for t in targets:  # a policy whose plugin is not running would be skipped silently: refuse instead
            missing = sorted(n for n in (t.policy or {}) if n not in self.by_name)
            if missing:
                raise PolicyRefused(f"target {t.name}'s policy names hub plugin(s) {', '.join(missing)}, which this "
                                    f"hub does not run; {build.ident} is not tagged into {tag.name}")
        info = build_info(session, build)
        for plugin in self.plugins:
            try:  # a stored policy the plugin no longer accepts refuses too, as any error of the hook
                plugin.before_tag(TagEvent(tag.name, info, actor, self._policies(plugin, targets)))
            except TagRefused as exc:
                raise PolicyRefused(f"refused by hub plugin {plugin.name}: {exc}") from None
            except Exception as exc:
                log.exception("hub plugin %s: before_tag failed", plugin.name)
                raise PolicyRefused(f"hub plugin {plugin.name} failed ({type(exc).__name__}: {exc}); "
                                    f"{build.ident} is not tagged into {tag.name}") from None

    def after_tag(self, session: Session, tag: Tag, build: Build, actor: str) -> None:
        event = TagEvent(tag.name, build_info(session, build), actor)
        self._later(session, "after_tag", lambda p: p.after_tag(event))

    def build_done(self, session: Session, build: Build) -> None:
        info = build_info(session, build)
        self._later(session, "build_done", lambda p: p.build_done(info))

    def repo_published(self, session: Session, tag: str, generation: int, packages: int, build_ids: list[int]) -> None:
        idents = tuple(sorted(session.scalars(select(Build.ident).where(Build.id.in_(build_ids)))))
        event = RepoEvent(tag, generation, packages, idents)
        self._later(session, "repo_published", lambda p: p.repo_published(event))

    def _later(self, session: Session, hook: str, call: Callable[[HubPlugin], None]) -> None:
        def run() -> None:
            for plugin in self.plugins:
                try:
                    call(plugin)
                except Exception:
                    log.exception("hub plugin %s: %s failed (the hub carries on)", plugin.name, hook)

        session.info.setdefault(AFTER_COMMIT, []).append(run)


@functools.cache
def builtin_hooks() -> HubHooks:
    return HubHooks(load({}))


def hooks_of(session: Session) -> HubHooks:
    hooks = session.info.get(HOOKS)
    return hooks if isinstance(hooks, HubHooks) else builtin_hooks()


def build_info(session: Session, build: Build) -> BuildInfo:
    """The build with the plugin results of its current buildArch tasks, by architecture."""
    results: dict[str, dict[str, Any]] = {}
    if build.task_id is not None:
        for t in session.scalars(select(Task).where(Task.parent_id == build.task_id,
                                                    Task.method == TaskMethod.BUILD_ARCH).order_by(Task.id)):
            if t.plugins is not None:
                results[t.arch] = t.plugins
    return BuildInfo(id=build.id, ident=build.ident, source=build.source, version=build.version,
                     state=str(build.state), owner=build.owner, target=build.target.name if build.target else None,
                     plugins=dict(build.plugins or {}), plugin_results=results)
