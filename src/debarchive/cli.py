"""``python -m debarchive``: keep a signed apt repository by hand or from scripts.

    python -m debarchive key --home KEYDIR [--export KEY.asc]
    python -m debarchive publish ROOT SUITE [FILE.deb|FILE.dsc ...] [--key-home KEYDIR] [--arch amd64 ...]
                                 [--remove NAME[=VERSION] ...] [--url URL] [--prune]
    python -m debarchive list ROOT SUITE

``publish`` keeps what the suite already holds (read back from its published indices, no .deb is
re-read), adds the given files to the pool, drops the removed packages and publishes a new generation
atomically. Exit codes: 0 done, 2 bad input (the message says what and where), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from debian.deb822 import Release

from debarchive import aptrepo
from debarchive.aptrepo import PackageEntry, RepoError, SourceEntry
from debarchive.signing import ALGORITHMS, DEFAULT_UID, SigningError, SigningKey


def _existing(root: Path, suite: str) -> tuple[list[str], list[PackageEntry], list[SourceEntry], dict[str, str]]:
    release = root / "dists" / suite / "Release"
    if not release.is_file():
        return [], [], [], {}
    rel = Release(release.read_text(encoding="utf-8"))
    arches = rel.get("Architectures", "").split()
    components = rel.get("Components", "main").split()
    if len(components) != 1:
        raise RepoError(f"{release} has components {components}; this tool keeps one component per suite")
    component = components[0]
    packages = [e for a in arches for e in aptrepo.read_packages(root, suite, component, a)]
    sources: list[SourceEntry] = []
    if (root / "dists" / suite / component / "source" / "Sources").is_file():
        sources = aptrepo.read_sources(root, suite, component)
    identity = {k: rel[k] for k in ("Origin", "Label", "Description") if k in rel}
    identity["Component"] = component
    return arches, packages, sources, identity


def _removed(entry_name: str, entry_version: str, removals: list[str]) -> bool:
    for spec in removals:
        name, _, version = spec.partition("=")
        if name == entry_name and (not version or version == entry_version):
            return True
    return False


def cmd_key(args: argparse.Namespace) -> int:
    key = SigningKey.ensure(Path(args.home), uid=args.uid, algorithm=args.algorithm)
    print(key.fingerprint)
    if args.export:
        print(f"public key written to {key.export_public(Path(args.export))}", file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    root = Path(args.root).absolute()
    old_arches, packages, sources, identity = _existing(root, args.suite)
    component = args.component or identity.get("Component", "main")
    arches = args.arch or old_arches or ["amd64"]
    for spec in args.remove:
        if not spec.partition("=")[0]:
            raise RepoError(f"--remove {spec!r}: give NAME or NAME=VERSION")
    packages = [p for p in packages if not _removed(p.name, p.version, args.remove)]
    sources = [s for s in sources if not _removed(s.name, s.version, args.remove)]
    for f in args.files:
        path = Path(f)
        if path.suffix == ".deb" or path.suffix == ".udeb":
            packages.append(aptrepo.import_deb(root, path, component))
        elif path.suffix == ".dsc":
            sources.append(aptrepo.import_dsc(root, path, component))
        else:
            raise RepoError(f"{path}: give .deb or .dsc files (a .changes lists them: pass its files instead)")
    key = SigningKey.ensure(Path(args.key_home)) if args.key_home else None
    repo = aptrepo.publish(
        root, args.suite, packages=packages, sources=sources, component=component, arches=arches, key=key,
        origin=args.origin or identity.get("Origin", "deb-bootc"), label=args.label or identity.get("Label"),
        description=args.description or identity.get("Description"),
        valid_for=timedelta(days=args.valid_days) if args.valid_days else None,
        allow_identity_change=args.allow_identity_change,
    )
    print(f"published {repo.packages} binary and {repo.sources} source packages to {repo.dists} "
          f"(generation {repo.generation}, {repo.seconds:.2f} s)", file=sys.stderr)
    if args.prune:
        removed = aptrepo.prune_pool(root)
        print(f"pruned {len(removed)} pool files no kept generation names", file=sys.stderr)
    if key is not None:
        key_path = key.export_public(root / "key.asc")
        print(repo.sources_line(args.url or root.as_uri(), key_path))
    else:
        print(repo.sources_line(args.url or root.as_uri()))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    root = Path(args.root).absolute()
    arches, packages, sources, _ = _existing(root, args.suite)
    if not arches:
        raise RepoError(f"nothing published for suite {args.suite} under {root}")
    seen = set()
    for p in sorted(packages, key=lambda e: (e.name, e.arch, e.version)):
        if (p.name, p.version, p.arch) not in seen:
            seen.add((p.name, p.version, p.arch))
            print(f"{p.name}\t{p.version}\t{p.arch}\t{p.filename}")
    for s in sorted(sources, key=lambda e: (e.name, e.version)):
        print(f"{s.name}\t{s.version}\tsource\t{s.directory}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m debarchive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    key = sub.add_parser("key", help="create (or show) a signing key in a private GnuPG home")
    key.add_argument("--home", required=True, help="the key's own GnuPG home (created with mode 0700)")
    key.add_argument("--uid", default=DEFAULT_UID)
    key.add_argument("--algorithm", default="ed25519", choices=ALGORITHMS, help="for a new key (default: ed25519)")
    key.add_argument("--export", metavar="FILE.asc", help="also write the armored public key here")
    key.set_defaults(func=cmd_key)

    pub = sub.add_parser("publish", help="add packages to a suite and publish it atomically")
    pub.add_argument("root")
    pub.add_argument("suite")
    pub.add_argument("files", nargs="*", help=".deb and .dsc files to add (the .dsc's files must sit beside it)")
    pub.add_argument("--key-home", help="sign with the key in this GnuPG home (created if missing)")
    pub.add_argument("--arch", action="append", help="architecture (repeat); default: as published, or amd64")
    pub.add_argument("--component", help="default: as published, or main")
    pub.add_argument("--remove", action="append", default=[], metavar="NAME[=VERSION]",
                     help="drop a binary or source package (repeat)")
    pub.add_argument("--prune", action="store_true",
                     help="then delete pool files no kept generation names (older than 10 minutes)")
    pub.add_argument("--origin")
    pub.add_argument("--label")
    pub.add_argument("--description")
    pub.add_argument("--allow-identity-change", action="store_true",
                     help="allow a new Origin/Label (every client must then run apt-get update "
                          "--allow-releaseinfo-change)")
    pub.add_argument("--valid-days", type=float, help="add Valid-Until this many days after Date")
    pub.add_argument("--url", help="URL clients will use, for the printed sources.list line")
    pub.set_defaults(func=cmd_publish)

    lst = sub.add_parser("list", help="list what a suite holds")
    lst.add_argument("root")
    lst.add_argument("suite")
    lst.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RepoError, SigningError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the published repository is unchanged", file=sys.stderr)
        return 130
