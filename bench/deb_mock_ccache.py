#!/usr/bin/env python3
"""deb-mock's ccache plugin: the first build of a C package against the second one with a changed changelog.

For each repetition, with deb-mock's root cache and build-dependency layer warm (made before, not measured):

(a) ``off``    — ``deb-mock --rebuild TREE`` without the plugin (version V);
(b) ``first``  — the same with ``--enable-plugin ccache`` and the package's cache emptied just before
    (``CACHE/ccache/CONFIG/SOURCE`` removed): every compilation is a miss, and fills the cache;
(c) ``second`` — a new changelog entry (version V+ccacheN: a new version, a new SOURCE_DATE_EPOCH), built with
    the plugin: the compilations hit the cache.

The table shows medians (min–max) of the wall-clock seconds of the whole command, the ratio second/first and
second/off, and ccache's hits and misses from result.json. Default package: hello 2.10-3 (C, autotools) for
bookworm. Runs as root (deb-mock's cache and the unpacked trees live in ``--work``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from debarchive.dsc import fetch
from debsandbox.commands import run
from debsandbox.sandbox import remove_tree

MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
HELLO = f"{MIRROR}/pool/main/h/hello/hello_2.10-3.dsc"
CONFIG = "debian-bookworm-amd64"
DEFAULT_WORK = Path(os.environ.get("DEB_MOCK_BENCH_DIR", "/var/cache/deb-mock-bench"))
DEB_MOCK = str(Path(sys.executable).parent / "deb-mock")
VARIANTS = ("off", "first", "second")


class BenchError(RuntimeError):
    pass


def new_entry(tree: Path, name: str, version: str) -> None:
    """Put a changelog entry for ``version`` on top of ``tree``'s debian/changelog."""
    changelog = tree / "debian" / "changelog"
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    entry = (f"{name} ({version}) unstable; urgency=medium\n\n  * ccache benchmark rebuild.\n\n"
             f" -- deb-mock bench <bench@example.org>  {stamp}\n\n")
    changelog.write_text(entry + changelog.read_text())


def build(cache: Path, config: str, tree: Path, out: Path, ccache: bool) -> tuple[float, dict[str, int]]:
    if out.exists():
        shutil.rmtree(out)
    argv = [DEB_MOCK, "-r", config, "--cache-dir", str(cache), "--resultdir", str(out), "-q",
            *(["--enable-plugin", "ccache"] if ccache else []), "--rebuild", str(tree)]
    start = time.monotonic()
    proc = run(argv, check=False, log=out.parent / f"{out.name}.out", timeout=3 * 3600)
    took = time.monotonic() - start
    try:
        result = json.loads((out / "result.json").read_text())
    except (OSError, ValueError):
        result = {}
    if proc.returncode != 0 or result.get("state") != "success":
        raise BenchError(f"deb-mock failed on {tree.name} (exit {proc.returncode}: {result.get('error', '?')}); "
                         f"see {out}/build.log")
    stats = result.get("plugins", {}).get("ccache", {})
    return took, {k: stats[k] for k in ("hits", "misses", "uncacheable") if k in stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--dsc", default=HELLO, help="the C package's .dsc (URL or path; default hello 2.10-3)")
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="deb-mock's cache, trees and results")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    cache = work / "deb-mock"
    runs = work / "ccache-runs"
    if runs.exists():
        shutil.rmtree(runs)
    pkg = fetch(args.dsc, work / "ccache-src")
    base = runs / "base"
    run(["dpkg-source", "--no-check", "-x", str(pkg.dsc_path), str(base)], log=runs / "unpack.log")
    key = cache / "ccache" / args.config / pkg.source
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    stats: dict[str, list[dict[str, int]]] = {v: [] for v in VARIANTS}
    try:
        build(cache, args.config, base, runs / "prep", ccache=True)  # root cache and deps layer (with ccache)
        build(cache, args.config, base, runs / "prep-off", ccache=False)  # and without: neither is measured
        for rep in range(1, args.reps + 1):
            tree = runs / f"tree{rep}"
            shutil.copytree(base, tree, symlinks=True)
            remove_tree(key)
            for v in VARIANTS:
                if v == "second":
                    new_entry(tree, pkg.source, f"{pkg.version}+ccache{rep}")
                t, s = build(cache, args.config, tree, runs / f"{v}{rep}", ccache=v != "off")
                times[v].append(round(t, 2))
                stats[v].append(s)
            print(f"round {rep}: " + ", ".join(f"{v} {times[v][-1]:.1f}s {stats[v][-1] or ''}" for v in VARIANTS),
                  flush=True)
            shutil.rmtree(tree)
    except BenchError as exc:
        print(f"deb_mock_ccache: {exc}", file=sys.stderr)
        return 1
    med = {v: statistics.median(times[v]) for v in VARIANTS}
    print(f"\n{pkg.ident} ({args.config}), {args.reps} repetition(s), {os.cpu_count()} CPUs")
    print(f"{'variant':10} {'median s':>9} {'min–max s':>15}  ccache (last run)")
    for v in VARIANTS:
        print(f"{v:10} {med[v]:9.1f} {f'{min(times[v]):.1f}–{max(times[v]):.1f}':>15}  {stats[v][-1] or '-'}")
    print(f"\nsecond/first = {med['second'] / med['first']:.2f}; second/off = {med['second'] / med['off']:.2f}; "
          f"first/off = {med['first'] / med['off']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"package": pkg.ident, "times": times, "ccache": stats,
                                         "medians": med}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
