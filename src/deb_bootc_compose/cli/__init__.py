"""``deb-bootc-compose``: the compose itself, plus verbs other modules add.

``deb-bootc-compose --config MANIFEST --target-dir DIR ...`` composes (``compose`` may be given as a verb
too). Further verbs live in their own modules, imported only when used and registered only when the
module exists: ``diff`` (:mod:`deb_bootc_compose.cli.diff`), ``boot-test``
(:mod:`deb_bootc_compose.cli.boot_test`), ``install-to-disk`` (:mod:`deb_bootc_compose.cli.install_to_disk`).
Each such module provides ``main(argv: list[str]) -> int`` (argv: the arguments after the verb) and
optionally ``HELP`` (one line for the verb list).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# verb -> module under deb_bootc_compose.cli
VERBS = {
    "compose": "compose",
    "diff": "diff",
    "boot-test": "boot_test",
    "install-to-disk": "install_to_disk",
}


def available_verbs() -> dict[str, str]:
    return {v: m for v, m in VERBS.items() if importlib.util.find_spec(f"deb_bootc_compose.cli.{m}") is not None}


def usage() -> str:
    lines = [
        "usage: deb-bootc-compose --config MANIFEST.yaml --target-dir DIR "
        "[--compose-type production|nightly|test] [--lockfile FILE]",
        "       deb-bootc-compose VERB ...   (VERB --help for its options)",
        "",
        "verbs:",
    ]
    for verb, module in available_verbs().items():
        mod = importlib.import_module(f"deb_bootc_compose.cli.{module}")
        lines.append(f"  {verb:<16} {getattr(mod, 'HELP', '')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help") and len(args) == 1:
        print(usage())
        return 0
    if args and not args[0].startswith("-"):
        verb = args[0]
        verbs = available_verbs()
        if verb not in verbs:
            print(f"deb-bootc-compose: unknown verb {verb!r}\n\n{usage()}", file=sys.stderr)
            return 2
        mod = importlib.import_module(f"deb_bootc_compose.cli.{verbs[verb]}")
        return int(mod.main(args[1:]))
    from deb_bootc_compose.cli import compose

    return compose.main(args)


if __name__ == "__main__":
    sys.exit(main())
