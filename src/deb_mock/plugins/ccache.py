"""The ``ccache`` plugin (off by default): a persistent compiler cache per config and source package.

The cache of source ``S`` built with config ``C`` is ``CACHE/ccache/C/S/``; only that directory is bound into
the build's sandbox (``/deb-mock/ccache``, writable by the build user), so a build reads only what earlier
builds of the same source with the same config wrote, and writes nowhere else. The target suite's own
ccache is installed with the build-dependencies (it is part of the cached layer) and put first on ``PATH``
(``/usr/lib/ccache``), with ``CCACHE_DIR``, ``CCACHE_MAXSIZE`` (the ``max-size`` option) and
``CCACHE_BASEDIR`` set.

Everything in the cache directory is written by builds, so the host never reads it: ccache's statistics for
this build come from a stats log in the build's own directory (``CCACHE_STATSLOG``), read without following
a link, and the cache's size is measured with ``du`` (which follows no link) in the sandbox's namespace as the
build user. A cache that outgrew ``max-size`` by more than ccache's own clean-up allows was written by
something other than ccache: it is removed. ``result.json``'s ``plugins.ccache``: ``hits``
(``direct_hits`` + ``preprocessed_hits``), ``misses``, ``uncacheable`` (links, configure probes…), ``size``
and ``max_size`` in bytes, ``key`` (``CONFIG/SOURCE``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from deb_mock.plugins.base import Plugin, PluginContext, PluginFailed, PluginOptions
from deb_mock.session.buildscript import BUILD_TREE
from debarchive import safeio
from debsandbox.sandbox import DEFAULT_PATH, Bind, Sandbox, owned_dir, remove_tree

INSIDE = "/deb-mock/ccache"
STATS_INSIDE = "/deb-mock/ccache-stats"
STATS_LOG = "stats.log"
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?)?B?$")
_UNIT = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
SLACK = 1.25  # ccache cleans up to 90 % of max_size once over it; more than this over the cap is not ccache


def size_bytes(text: str) -> int:
    """ccache's size syntax (``5G``, ``500M``, ``1.5Gi``; a plain number is bytes here) in bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 2G, 500M, 1Gi)")
    return int(float(m.group(1)) * _UNIT[m.group(2) or ""])


class CcacheOptions(PluginOptions):
    max_size: str = "2G"  # the cap of each config+source cache (ccache's max_size; K, M, G, T or Ki, Mi…)

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, v: object) -> str:
        text = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(text, str):
            raise ValueError(f"not a size: {v!r}")
        if size_bytes(text) < 10**6:
            raise ValueError(f"{text}: too small for a compiler cache (at least 1M)")
        return text


def parse_stats_log(text: str) -> dict[str, int]:
    """Per-compilation outcomes from ccache's stats log (a ``# FILE`` line, then the counters of that call)."""
    calls: list[set[str]] = []
    for line in text.splitlines():
        if line.startswith("# "):
            calls.append(set())
        elif line.strip() and calls:
            calls[-1].add(line.strip())
    out = {"hits": 0, "direct_hits": 0, "preprocessed_hits": 0, "misses": 0, "uncacheable": 0}
    for counters in calls:
        if "direct_cache_hit" in counters:
            out["direct_hits"] += 1
        elif "preprocessed_cache_hit" in counters:
            out["preprocessed_hits"] += 1
        elif "cache_miss" in counters:
            out["misses"] += 1
        else:
            out["uncacheable"] += 1
    out["hits"] = out["direct_hits"] + out["preprocessed_hits"]
    return out


def user_dir(parent: Path, name: str, uid: int) -> Path:
    """``parent/name``, a real directory owned by the sandbox's ``uid`` and 0700, made in the namespace (as
    ns-root, which owns ``parent``): whatever ``name`` was (a link, a file) is replaced, never followed."""
    owned_dir(parent)
    script = ('d="$1"; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then rm -f -- "$d"; fi; '
              f'mkdir -p -- "$d"; chown {uid}:{uid} -- "$d"; chmod 0700 -- "$d"')
    Sandbox().run(["sh", "-c", script, "sh", f"@parent@/{name}"], paths={"parent": parent})
    return parent / name


def tree_size(path: Path, uid: int) -> int:
    """Bytes used below ``path`` (``du -D``: no link below it followed, one file system), measured as the sandbox's
    ``uid`` so that nothing of the host beyond that directory is read with more rights."""
    res = Sandbox(uid=uid, gid=uid).run(["du", "-s", "-x", "-B1", "-D", "--", "@dir@"], paths={"dir": path},
                                        capture=True, check=False)
    first = res.output.split()[:1]
    if res.returncode != 0 or not first or not first[0].isdigit():
        raise PluginFailed(f"cannot measure the ccache directory {path}: {' '.join(res.tail_lines[-2:])[:300]}")
    return int(first[0])


class CcachePlugin(Plugin):
    name = "ccache"
    Options: ClassVar[type[PluginOptions]] = CcacheOptions
    order = 20

    def root_ready(self, ctx: PluginContext) -> None:
        ctx.build_packages.append("ccache")

    def _key(self, ctx: PluginContext) -> tuple[Path, str]:
        source = str(ctx.result.source.get("name", ""))
        if not _SOURCE.match(source) or ctx.cache_paths is None:
            raise PluginFailed(f"no source package name to key the cache with ({source!r})")
        return ctx.cache_paths.ccache(ctx.config.name, source), f"{ctx.config.name}/{source}"

    def before_build(self, ctx: PluginContext) -> None:
        opts: CcacheOptions = ctx.options
        key, label = self._key(ctx)
        uid = ctx.config.build_uid
        cache = user_dir(key.parent, key.name, uid)
        stats = user_dir(ctx.workdir, "stats", uid)
        ctx.build_binds += [Bind(cache, INSIDE, ro=False), Bind(stats, STATS_INSIDE, ro=False)]
        ctx.build_env.update({
            "PATH": f"/usr/lib/ccache:{DEFAULT_PATH}",
            "CCACHE_DIR": INSIDE,
            "CCACHE_MAXSIZE": opts.max_size,
            "CCACHE_BASEDIR": BUILD_TREE,
            "CCACHE_STATSLOG": f"{STATS_INSIDE}/{STATS_LOG}",
            "CCACHE_TEMPDIR": f"{INSIDE}/tmp",
        })
        ctx.data.update(key=label, max_size=size_bytes(opts.max_size))
        ctx.note(f"ccache {label}: {cache} as {INSIDE}, max size {opts.max_size}")

    def after_build(self, ctx: PluginContext) -> None:
        self._report(ctx)

    def on_failure(self, ctx: PluginContext) -> None:
        if "key" in ctx.data and "size" not in ctx.data:  # the build ran with the cache: report it all the same
            self._report(ctx)

    def _report(self, ctx: PluginContext) -> None:
        """Keep the cache within its cap, then count this build's hits and misses."""
        key, label = self._key(ctx)
        size = tree_size(key, ctx.config.build_uid)
        cap = size_bytes(ctx.options.max_size)
        ctx.data["size"] = size
        if size > cap * SLACK:
            remove_tree(key)
            ctx.data.update(size=0, removed=f"{size} bytes, over max-size {ctx.options.max_size}")
            ctx.note(f"ccache {label}: {size} bytes, more than ccache itself keeps under max-size "
                     f"{ctx.options.max_size}: removed")
        try:
            log = safeio.read_below(ctx.workdir / "stats", STATS_LOG, limit=64 << 20).decode("utf-8", "replace")
        except FileNotFoundError:
            log = ""  # nothing was compiled
        except (safeio.UnsafeEntry, OSError) as exc:
            raise PluginFailed(f"refusing the build's ccache stats log: {exc}") from None
        ctx.data.update(parse_stats_log(log))
        ctx.note(f"ccache {label}: {json.dumps(ctx.data, sort_keys=True)}")
