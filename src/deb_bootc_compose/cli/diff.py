"""``deb-bootc-compose diff OLD NEW``: packages added, removed and changed between two composes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deb_bootc_compose.diff import DiffError, diff_composes

HELP = "packages added, removed and changed between two composes"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diff", help=HELP,
        description="List packages added, removed and changed (version) between two composes. OLD and NEW are "
        "compose directories (or latest-* links), or their metadata/packages.json or metadata/lockfile.yaml.",
    )
    parser.add_argument("old", metavar="OLD")
    parser.add_argument("new", metavar="NEW")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--exit-code", action="store_true", help="exit with 1 when there are differences (as git diff --exit-code)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = diff_composes(Path(args.old), Path(args.new))
    except DiffError as exc:
        print(f"deb-bootc-compose diff: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        print(result.human())
    return 1 if args.exit_code and not result.empty else 0
