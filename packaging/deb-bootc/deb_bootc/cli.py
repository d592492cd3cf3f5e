"""deb-bootc's command line: argument parsing, messages, exit codes."""

from __future__ import annotations

import argparse
import sys

from . import VERSION, commands
from .errors import EXIT_CODES, USAGE, ClientError
from .sysroot import Sysroot

EPILOG = "exit codes:\n" + "\n".join(f"  {code:<3} {what}" for code, what in EXIT_CODES.items())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deb-bootc", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Keep a machine installed from a Debian OSTree (bootc-style) image up to date.")
    p.add_argument("--version", action="version", version=f"deb-bootc {VERSION}")
    p.add_argument("--sysroot", default="/", help="the OSTree sysroot to manage (default: the running system)")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    s = sub.add_parser("status", help="booted, staged and rollback deployments")
    s.add_argument("--json", action="store_true", help="machine-readable output (docs/client.md)")
    u = sub.add_parser("upgrade", help="fetch and stage the newest version of what the machine follows")
    u.add_argument("--check", action="store_true",
                   help="only say whether there is an update and what it changes (exit 0: yes, 77: no)")
    u.add_argument("--json", action="store_true", help="with --check: machine-readable output")
    w = sub.add_parser("switch", help="follow another ref (REMOTE:REF) or image (docker://HOST/NAME:TAG, "
                                      "oci:/PATH:TAG)")
    w.add_argument("target", metavar="TARGET")
    sub.add_parser("rollback", help="make the previous deployment the default")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.verb is None:
        p.print_help(sys.stderr)
        return USAGE
    try:
        sr = Sysroot(args.sysroot)
        if args.verb == "status":
            return commands.status(sr, args.json)
        if args.verb == "upgrade":
            return commands.upgrade(sr, args.check, args.json)
        if args.verb == "switch":
            return commands.switch(sr, args.target)
        return commands.rollback(sr)
    except ClientError as exc:
        print(f"deb-bootc: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("deb-bootc: interrupted", file=sys.stderr)
        return 130
