"""``deb-bootc-compose keygen`` (a sigstore key pair) and ``deb-bootc-compose push`` (a compose's OCI images
into a registry, signed with ``--sign-key``). Exit codes: 0 done · 1 failed (the message says why: registry
unreachable, TLS, credentials, wrong passphrase, no such compose, key exists) · 2 usage."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from deb_bootc_compose.registry import keys
from deb_bootc_compose.registry.images import PushError
from deb_bootc_compose.registry.push import PushOptions, push

KEYGEN_HELP = "make a sigstore (cosign-format) key pair for signing pushed images"
PUSH_HELP = "push a compose's OCI images to a registry (tagged VERSION and latest), signed with --sign-key"
PASSPHRASE_ENV = "DEB_BOOTC_SIGN_PASSPHRASE_FILE"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser("keygen", help=KEYGEN_HELP, description=KEYGEN_HELP + ": PREFIX.key (encrypted ECDSA P-256, "
                       "mode 0600) and PREFIX.pub (what update.registry.public_key names). Existing files are never "
                       "overwritten.")
    k.add_argument("--output", "-o", type=Path, default=Path("registry"), metavar="PREFIX",
                   help="write PREFIX.key and PREFIX.pub (default: ./registry)")
    k.add_argument("--passphrase-file", type=Path, metavar="FILE",
                   help=f"the passphrase is this file's first line (or ${PASSPHRASE_ENV}; asked on a terminal "
                   "otherwise)")
    k.set_defaults(func=run_keygen)

    p = sub.add_parser("push", help=PUSH_HELP, description=PUSH_HELP + ". The registry keeps the compose's "
                       "manifest digests; blobs it already has are not uploaded again.")
    p.add_argument("compose", type=Path, metavar="COMPOSE_DIR")
    p.add_argument("destination", nargs="?", metavar="REGISTRY/NAME[:TAG]",
                   help="where to push (may hold {variant}, {name}, {arch}); default: the manifest's "
                   "update.registry.name, tag: the manifest's version")
    p.add_argument("--sign-key", type=Path, metavar="FILE",
                   help="a sigstore private key (keygen) or an OpenPGP secret key; without it the push is unsigned")
    p.add_argument("--sign-passphrase-file", type=Path, metavar="FILE",
                   help=f"the key's passphrase (first line; or ${PASSPHRASE_ENV})")
    p.add_argument("--lookaside-dir", type=Path, metavar="DIR",
                   help="OpenPGP signatures are written here (serve it at update.registry.lookaside)")
    p.add_argument("--cert-dir", type=Path, metavar="DIR",
                   help="TLS certificates for the registry (DIR/ca.crt; client cert DIR/*.cert + *.key)")
    p.add_argument("--tls-verify", default="true", choices=["true", "false"],
                   help="--tls-verify=false: plain HTTP or unverified TLS (loopback tests only)")
    p.add_argument("--log", type=Path, metavar="FILE", help="append skopeo's output here")
    p.set_defaults(func=run_push)


def _passphrase(given: Path | None, *, confirm: bool) -> bytes:
    path = given or (Path(os.environ[PASSPHRASE_ENV]) if os.environ.get(PASSPHRASE_ENV) else None)
    if path is not None:
        return keys.read_passphrase(path)
    if not sys.stdin.isatty():
        raise keys.SigningKeyError(f"no passphrase: give --passphrase-file FILE (or ${PASSPHRASE_ENV})")
    first = getpass.getpass("passphrase for the private key: ").encode()
    if confirm and getpass.getpass("again: ").encode() != first:
        raise keys.SigningKeyError("the passphrases differ")
    return first


def run_keygen(args: argparse.Namespace) -> int:
    try:
        pair = keys.generate(_passphrase(args.passphrase_file, confirm=True))
        private, public = keys.write_pair(args.output, pair)
    except keys.SigningKeyError as exc:
        print(f"deb-bootc-compose keygen: {exc}", file=sys.stderr)
        return 1
    print(f"private key: {private} (keep it secret; push --sign-key {private})", file=sys.stderr)
    print(f"public key: {public} (name it in the manifest: update.registry.public_key)", file=sys.stderr)
    print(public)
    return 0


def run_push(args: argparse.Namespace) -> int:
    passphrase = args.sign_passphrase_file
    if passphrase is None and args.sign_key is not None and os.environ.get(PASSPHRASE_ENV):
        passphrase = Path(os.environ[PASSPHRASE_ENV])
    opts = PushOptions(compose=args.compose, destination=args.destination, sign_key=args.sign_key,
                       passphrase_file=passphrase, cert_dir=args.cert_dir, tls_verify=args.tls_verify == "true",
                       lookaside_dir=args.lookaside_dir, log=args.log,
                       progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        pushed = push(opts)
    except PushError as exc:
        print(f"deb-bootc-compose push: {exc}", file=sys.stderr)
        return 1
    for item in pushed:
        print("\n".join(item.lines()))
    return 0
