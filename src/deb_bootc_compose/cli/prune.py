"""``deb-bootc-compose prune TARGET_DIR --keep N [--keep-days D] [--dry-run]`` (:mod:`deb_bootc_compose.prune`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deb_bootc_compose.errors import ComposeError, PruneError
from deb_bootc_compose.prune import Policy, PruneReport, prune

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
HELP = "remove old composes of a target directory, the OSTree commits and pool .debs nothing kept uses"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "prune", help=HELP,
        description="Keep the N newest composes of each name and type (and those younger than --keep-days), "
        "never the newest FINISHED one, one a latest- link points at, or one whose commit a published "
        "repository serves (publish records that); remove the others, then the OSTree commits and objects "
        "no kept compose, ref or published ref holds, then the pool .debs no kept lockfile names. Prints what it "
        "removes and the bytes freed. A stopped prune leaves a usable target; the next one finishes the job. "
        "Exit codes: 0 pruned (or nothing to do), 1 failed, 2 bad input or the target is busy, 130 interrupted.",
    )
    p.add_argument("target", type=Path, metavar="TARGET_DIR", help="a --target-dir composes were made in")
    p.add_argument("--keep", type=int, required=True, metavar="N",
                   help="composes kept per name and type, newest first (at least 1)")
    p.add_argument("--keep-days", type=float, default=0.0, metavar="D",
                   help="also keep every compose that finished less than D days ago")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        policy = Policy(args.keep, args.keep_days)
    except ComposeError as exc:
        print(f"deb-bootc-compose prune: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = prune(args.target, policy, dry_run=args.dry_run, say=lambda m: print(m, flush=True))
    except PruneError as exc:
        print(f"deb-bootc-compose prune: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.untouched else EXIT_FAILED
    except ComposeError as exc:
        print(f"deb-bootc-compose prune: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("deb-bootc-compose prune: interrupted; the target is usable (the next prune finishes the job)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    summary(report)
    return EXIT_OK


def summary(report: PruneReport) -> None:
    for cid, why in sorted(report.plan.keep.items()):
        print(f"keeping {cid}: {'; '.join(why)}")
    for note in report.notes:
        print(f"note: {note}")
    verb = "would free" if report.dry_run else "freed"
    ostree = "" if report.ostree_bytes is None else f" ({mib(report.ostree_bytes)})"
    print(f"{len(report.plan.remove)} compose(s) ({mib(report.compose_bytes)}), {len(report.commits)} commit(s)"
          f"{ostree}, {len(report.debs)} pool file(s) ({mib(report.deb_bytes)}): {verb} {mib(report.total_bytes)}")


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
