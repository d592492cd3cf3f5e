"""``lintian-gate``, the hub's built-in policy: a target may refuse to tag a build whose lintian results have
tags of a severity (``add-target … --policy lintian-gate:refuse-on=error``). It applies to every tagging into
the target's destination tag: when the hub tags a finished build, and ``tag-build``."""

from __future__ import annotations

from typing import ClassVar, Literal

from deb_orchestrator.hub.plugins.api import HubPlugin, HubPluginOptions, TagEvent, TagRefused

LEVELS = {"error": ("error",), "warning": ("error", "warning")}


class LintianGateTarget(HubPluginOptions):
    refuse_on: Literal["error", "warning"] = "error"


class LintianGate(HubPlugin):
    name: ClassVar[str] = "lintian-gate"
    TargetOptions: ClassVar[type[HubPluginOptions] | None] = LintianGateTarget

    def before_tag(self, event: TagEvent) -> None:
        for policy in event.policies:
            opts: LintianGateTarget = policy.options
            why = self._why(event, opts.refuse_on)
            if why:
                raise TagRefused(f"target {policy.target} refuses to tag {event.build.ident} into {event.tag}: {why}")

    @staticmethod
    def _why(event: TagEvent, refuse_on: str) -> str | None:
        results = event.build.plugin_results
        if not results:
            return "it has no lintian result (its target's builds must run the lintian plugin, with fail-on=none)"
        found = []
        for arch, plugins in sorted(results.items()):
            lint = plugins.get("lintian")
            if not isinstance(lint, dict) or not isinstance(lint.get("counts"), dict):
                state = lint.get("state") if isinstance(lint, dict) else None
                return f"its {arch} build has no lintian summary (lintian {state or 'did not run'})"
            tags = lint.get("tags")
            tags = tags if isinstance(tags, dict) else {}
            for severity in LEVELS[refuse_on]:
                n = lint["counts"].get(severity, 0)
                if n:
                    names = ", ".join(str(t) for t in (tags.get(severity) or [])[:20]) or "tags not kept"
                    found.append(f"{arch}: {n} {severity} tag(s): {names}")
        return f"lintian found {'; '.join(found)}" if found else None
