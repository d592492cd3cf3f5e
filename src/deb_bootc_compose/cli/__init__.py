"""``deb-bootc-compose``: the compose itself, plus verbs. Each module registers its own verb on the parser
(as deb-orchestrator's command line does): ``compose`` (:mod:`deb_bootc_compose.cli.compose`), ``diff``
(:mod:`deb_bootc_compose.cli.diff`), ``boot-test`` (:mod:`deb_bootc_compose.boot.cli`),
``install-to-disk`` (:mod:`deb_bootc_compose.disk.cli`), ``lint`` (:mod:`deb_bootc_compose.imagelint.cli`),
``keygen`` and ``push`` (:mod:`deb_bootc_compose.cli.registry`), ``publish`` (:mod:`deb_bootc_compose.cli.publish`),
``prune`` (:mod:`deb_bootc_compose.cli.prune`) and ``init`` (:mod:`deb_bootc_compose.cli.init`). Each
``register(sub)`` adds its sub-parser and sets ``func`` (the arguments in, an exit code out).

``deb-bootc-compose --config MANIFEST --target-dir DIR ...`` composes: without a verb, the arguments are the
``compose`` verb's.
"""

from __future__ import annotations

import argparse
import sys

from deb_bootc_compose.boot import cli as boot_test
from deb_bootc_compose.cli import compose, diff, init, prune, publish, registry
from deb_bootc_compose.disk import cli as install_to_disk
from deb_bootc_compose.imagelint import cli as lint

USAGE = """deb-bootc-compose --config MANIFEST.yaml --target-dir DIR [--compose-type production|nightly|test] \
[--lockfile FILE] [--skip-phase PHASE] ...
       deb-bootc-compose VERB ...   (VERB --help for its options)"""


def parser() -> tuple[argparse.ArgumentParser, list[str]]:
    """The command line and its verbs."""
    p = argparse.ArgumentParser(prog="deb-bootc-compose", usage=USAGE,
                                description="Pungi for Debian bootc images: a manifest in, a compose out.")
    sub = p.add_subparsers(dest="verb", metavar="VERB", title="verbs", prog="deb-bootc-compose")
    for module in (compose, diff, boot_test, install_to_disk, lint, registry, publish, prune, init):
        module.register(sub)
    return p, list(sub.choices)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    p, verbs = parser()
    if args in (["-h"], ["--help"]):
        p.print_help()
        return 0
    if not args or args[0].startswith("-"):
        args = ["compose", *args]  # the verb-less compose
    if args[0] not in verbs:
        print(f"deb-bootc-compose: unknown verb {args[0]!r}\n\n{p.format_help()}", file=sys.stderr)
        return 2
    ns = p.parse_args(args)
    return int(ns.func(ns))


if __name__ == "__main__":
    sys.exit(main())
