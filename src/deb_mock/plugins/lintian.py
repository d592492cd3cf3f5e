"""The ``lintian`` plugin (``--run-lintian``): the target suite's own lintian on the build's .changes, as sbuild
runs it, in a throw-away root of the build's config (the root cache plus a cached layer with lintian
installed: the network only for apt to fetch lintian), as the build user, without network.

``result.json``'s ``plugins.lintian``: lintian's version, tag counts by severity, and the tags of each
severity; ``fail-on`` (``error``, the default; ``warning``; ``none``) decides when the build fails.
"""

from __future__ import annotations

import re
import shlex
import shutil
from typing import ClassVar, Literal

from deb_mock.plugins.base import Plugin, PluginContext, PluginFailed, PluginOptions
from debsandbox.sandbox import Bind

SEVERITY = {"E": "error", "W": "warning", "I": "info", "P": "pedantic", "X": "experimental", "O": "overridden"}
_TAG = re.compile(r"^([EWIPXO]): [^:\n]+: ([a-z0-9][a-z0-9+.-]*)", re.M)
_VERSION = re.compile(r"^@@@ lintian (.*)$", re.M)
INSIDE = "/deb-mock/lintian"


class LintianOptions(PluginOptions):
    fail_on: Literal["error", "warning", "none"] = "error"
    info: bool = True  # show (and count) I: tags
    pedantic: bool = False  # show (and count) P: tags
    profile: str | None = None  # lintian --profile (e.g. debian)
    suppress_tags: list[str] = []


def summarise(output: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Tag counts by severity and the tags of each severity, from lintian's output."""
    counts = dict.fromkeys(SEVERITY.values(), 0)
    tags: dict[str, list[str]] = {}
    for m in _TAG.finditer(output):
        sev = SEVERITY[m.group(1)]
        counts[sev] += 1
        if m.group(2) not in tags.setdefault(sev, []):
            tags[sev].append(m.group(2))
    return counts, tags


def verdict(counts: dict[str, int], tags: dict[str, list[str]], fail_on: str) -> str | None:
    """Why the build fails under ``fail_on`` (None: it does not)."""
    levels = {"error": ["error"], "warning": ["error", "warning"], "none": []}[fail_on]
    found = [(sev, counts[sev]) for sev in levels if counts[sev]]
    if not found:
        return None
    said = ", ".join(f"{n} {sev} tag(s)" for sev, n in found)
    names = ", ".join(t for sev, _ in found for t in tags.get(sev, []))
    return f"{said} (fail-on: {fail_on}): {names}"


class LintianPlugin(Plugin):
    name = "lintian"
    Options: ClassVar[type[PluginOptions]] = LintianOptions
    order = 40

    def after_build(self, ctx: PluginContext) -> None:
        opts: LintianOptions = ctx.options
        changes = [f.name for f in ctx.result.files if f.name.endswith(".changes")]
        if not changes:
            raise PluginFailed("the build made no .changes file to check")
        staging = ctx.workdir / "files"  # copies the sandbox's build user can read, whatever the result dir's modes
        staging.mkdir()
        staging.chmod(0o755)
        for f in ctx.result.files:
            shutil.copyfile(ctx.resultdir / f.name, staging / f.name)
            (staging / f.name).chmod(0o644)
        args = ["--fail-on", "none"]
        args += ["--display-info"] * opts.info + ["--pedantic"] * opts.pedantic
        if opts.profile:
            args += ["--profile", opts.profile]
        if opts.suppress_tags:
            args += ["--suppress-tags", ",".join(opts.suppress_tags)]
        script = (
            'echo "@@@ lintian $(lintian --version)"\n'
            f"exec lintian {' '.join(shlex.quote(a) for a in args)} {INSIDE}/{shlex.quote(changes[0])}\n"
        )
        res = ctx.run_in_root(script, packages=["lintian"], binds=[Bind(staging, INSIDE, ro=True)],
                              capture=True, check=False)
        if res.returncode != 0:
            raise PluginFailed(f"lintian itself failed (exit {res.returncode}): {' '.join(res.tail_lines[-2:])[:300]}")
        counts, tags = summarise(res.output)
        version = _VERSION.search(res.output)
        ctx.data.update(version=version.group(1).strip() if version else None, fail_on=opts.fail_on,
                        counts=counts, tags=tags)
        why = verdict(counts, tags, opts.fail_on)
        if why:
            raise PluginFailed(why)
