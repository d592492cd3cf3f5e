"""``deb-bootc-compose publish COMPOSE_DIR --to DIR (--gpg-key FILE | --gpg-homedir DIR --key-id ID) [--keep N]``:
the compose's commits, signed, in a static OSTree repository (:mod:`deb_bootc_compose.publish`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.publish import DEFAULT_KEEP, KeySpec, publish
from deb_bootc_compose.publish.keys import ENV_HOMEDIR, ENV_KEY, ENV_KEY_ID

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
HELP = "sign a compose's OSTree commits and publish them in a static repository served over HTTP(S)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish", help=HELP,
        description="Make DIR (or update it as) an archive-mode OSTree repository any web server serves: the "
        "compose's commits pulled in and signed with OpenPGP (detached: the commit checksums stay the "
        "compose's), static deltas from the previously published commit of each ref, refs moved, the summary "
        "regenerated and signed. Publishing the same compose again changes nothing. Secret keys are given here "
        f"only (or through {ENV_KEY}, {ENV_HOMEDIR} and {ENV_KEY_ID}), never in a manifest. Exit codes: 0 "
        "published (or already), 1 publish failed, 2 bad input (DIR untouched), 130 interrupted.",
    )
    p.add_argument("compose", type=Path, metavar="COMPOSE_DIR", help="a FINISHED compose directory")
    p.add_argument("--to", dest="dest", type=Path, required=True, metavar="DIR",
                   help="the published repository (created if missing)")
    p.add_argument("--gpg-key", type=Path, action="append", metavar="FILE",
                   help="an exported OpenPGP secret key without passphrase (armored or binary); repeat to sign with "
                   "two keys while rotating them")
    p.add_argument("--gpg-homedir", type=Path, metavar="DIR", help="a GnuPG home holding the signing key")
    p.add_argument("--key-id", action="append", metavar="ID",
                   help="the key (fingerprint) in --gpg-homedir to sign with; repeatable")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP, metavar="N",
                   help=f"published commits per ref that stay pullable, with their deltas (default {DEFAULT_KEEP})")
    p.add_argument("--log", type=Path, help="append the ostree commands' output to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        try:
            keys = KeySpec.from_options(args.gpg_key, args.gpg_homedir, args.key_id)
        except PublishError as exc:
            exc.untouched = True
            raise
        result = publish(args.compose, args.dest, keys, keep=args.keep, log=args.log)
    except PublishError as exc:
        print(f"deb-bootc-compose publish: {exc}", file=sys.stderr)
        return EXIT_USAGE if exc.untouched else EXIT_FAILED
    except KeyboardInterrupt:
        print("deb-bootc-compose publish: interrupted; the repository is valid (the next publish finishes the "
              "job)", file=sys.stderr)
        return EXIT_INTERRUPTED
    for r in result.refs:
        what = "published" if r.new else "already published"
        delta = f", delta from {r.delta_from[:12]}" if r.delta_from else ""
        pruned = f", pruned {len(r.pruned)} older commit(s)" if r.pruned else ""
        print(f"{r.ref}: {r.commit} {what}{', signed' if r.signed else ''}{delta}{pruned}")
    if not result.changed:
        print("nothing changed: the repository already holds this compose as published")
    print(result.repo)
    return EXIT_OK
