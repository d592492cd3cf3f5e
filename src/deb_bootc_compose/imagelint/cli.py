"""``deb-bootc-compose lint IMAGE``: exit 0 when the image breaks no rule (warnings are shown), 1 when it breaks
one (or has warnings, with ``--fatal-warnings``), 2 when it cannot be read (bad reference, not an image, too
big, unreachable)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from deb_bootc_compose.imagelint import fetch, unpack
from deb_bootc_compose.imagelint.rules import ERROR, RULES, ImageProblem, lint_tree

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
HELP = "check that an OCI image (e.g. one built FROM ours with a Containerfile) is still a bootable bootc image"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lint", help=HELP, description=HELP + ". Exit 0: no error; 1: errors (or warnings with "
                       "--fatal-warnings); 2: the image cannot be read.")
    p.add_argument("image", metavar="IMAGE", help="oci:DIR[:TAG], oci-archive:FILE[:TAG], containers-storage:REF, "
                   "docker://REF or a compose directory")
    p.add_argument("--variant", default="base", help="for a compose directory: the variant (default base)")
    p.add_argument("--arch", default="amd64", help="the architecture (compose directory, image index; default amd64)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--fatal-warnings", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--skip", action="append", default=[], metavar="RULE",
                   help=f"leave a rule out (repeatable): one of {', '.join(sorted(RULES))}")
    p.add_argument("--tls-verify", default="true", choices=["true", "false"],
                   help="docker://: verify the registry's certificate (default true)")
    p.add_argument("--cert-dir", type=Path, help="docker://: the registry's CA (DIR/ca.crt)")
    p.add_argument("--scratch", type=Path, help="where the image is copied and unpacked (default: a new directory "
                   "under /var/tmp, removed afterwards)")
    p.set_defaults(func=run)


def lint_image(spec: str, scratch: Path, *, variant: str = "base", arch: str = "amd64", tls_verify: bool = True,
               cert_dir: Path | None = None, skip: frozenset[str] = frozenset(),
               limits: fetch.Limits = fetch.Limits()) -> list[ImageProblem]:
    """Fetch, unpack and lint ``spec`` in ``scratch``; fetch.ImageError when it cannot be read."""
    image = fetch.open_image(spec, scratch, variant=variant, arch=arch, log=scratch / "skopeo.log",
                             tls_verify=tls_verify, cert_dir=cert_dir, limits=limits)
    tree = unpack.unpack(image, scratch / "tree", limits)
    try:
        return lint_tree(tree.root, labels=image.labels, non_utf8=tree.non_utf8, skip=skip)
    finally:
        shutil.rmtree(tree.root, ignore_errors=True)


def _report(spec: str, problems: list[ImageProblem], seconds: float, fatal: bool, as_json: bool) -> int:
    errors = sum(p.severity == ERROR for p in problems)
    warnings = len(problems) - errors
    code = EXIT_PROBLEMS if errors or (fatal and warnings) else EXIT_OK
    if as_json:
        print(json.dumps({"image": spec, "errors": errors, "warnings": warnings, "exit_code": code,
                          "problems": [p.as_dict() for p in problems]}, indent=2))
        return code
    for p in problems:
        print(p)
    print(f"{spec}: {errors} error(s), {warnings} warning(s) ({seconds:.1f} s)")
    return code


def run(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.skip) - set(RULES))
    if unknown:
        print(f"deb-bootc-compose lint: unknown rule(s) {', '.join(unknown)} (rules: {', '.join(sorted(RULES))})",
              file=sys.stderr)
        return EXIT_USAGE
    start = time.monotonic()
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="deb-bootc-lint-", dir=args.scratch or "/var/tmp"))
    try:
        problems = lint_image(args.image, scratch, variant=args.variant, arch=args.arch,
                              tls_verify=args.tls_verify == "true", cert_dir=args.cert_dir,
                              skip=frozenset(args.skip))
    except fetch.ImageError as exc:
        print(f"deb-bootc-compose lint: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _report(args.image, problems, time.monotonic() - start, args.fatal_warnings, args.json)
