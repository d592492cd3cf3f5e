"""``deb-bootc-compose init NAME --from BASE [--containerfile]`` (:mod:`deb_bootc_compose.scaffold`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deb_bootc_compose.scaffold import Identity, ScaffoldError, check_name, containerfile_project, manifest_project

EXIT_OK, EXIT_USAGE = 0, 2
HELP = "start a custom variant project (a manifest or a Containerfile) from one of our images"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init", help=HELP,
        description="Write a project directory for a variant of BASE with its own identity (os-release ID, NAME, "
        "VERSION_ID, VARIANT_ID, ID_LIKE=debian, /etc/issue, /etc/motd): NAME.yaml, a copy of BASE's manifest "
        "with one variant and without its update section (BASE: a manifest; a compose directory or one of our "
        "images, oci:DIR, oci-archive:FILE or docker://REF, gives a derived manifest with base:), or with "
        "--containerfile a Containerfile FROM BASE (oci-archive:FILE, oci:DIR, docker://REF, "
        "containers-storage:REF or a compose directory). Each comes with a README.md and a build.sh that "
        "builds, lints and boot-tests the result. Exit codes: 0 written, 2 bad input (nothing written).",
    )
    p.add_argument("name", metavar="NAME", help="the variant's name: its os-release ID and compose name")
    p.add_argument("--from", dest="base", required=True, metavar="BASE", help="the image or manifest to start from")
    p.add_argument("--containerfile", action="store_true", help="a Containerfile project instead of a manifest")
    p.add_argument("--variant", help="the base's variant (default: base; an image's own variant label)")
    p.add_argument("--arch", default="amd64", help="the base's architecture, for a compose directory (default amd64)")
    p.add_argument("--pretty-name", help="the NAME in os-release (default: NAME with capitals)")
    p.add_argument("--os-version", default="1", help="VERSION_ID and the compose version (default 1)")
    p.add_argument("--suite", default="trixie", help="the Debian suite the base is built from (default trixie)")
    p.add_argument("--package", action="append", dest="packages", metavar="PKG",
                   help="with --containerfile: a package the Containerfile installs (repeatable; default: hello)")
    p.add_argument("--dir", type=Path, help="where to write the project (default: ./NAME; must be new or empty)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        check_name(args.name)
        pretty = args.pretty_name or "-".join(w[:1].upper() + w[1:] for w in args.name.split("-"))
        identity = Identity(args.name, pretty, args.os_version, args.suite)
        dest = args.dir or Path(args.name)
        if args.containerfile:
            written = containerfile_project(args.name, args.base, args.variant or "base", args.arch, dest, identity,
                                            args.packages or ["hello"])
        else:
            written = manifest_project(args.name, args.base, args.variant, dest, identity)
    except ScaffoldError as exc:
        print(f"deb-bootc-compose init: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    print(f"next: edit {dest}, then run {dest / 'build.sh'}")
    return EXIT_OK
