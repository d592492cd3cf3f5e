"""A compose context with synthetic trees and a real manifest and lockfile, for the oci, checksums and
metadata phases (no mirror, no OSTree: the earlier phases are replaced by what they leave behind)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deb_bootc_compose.lockfile import LockedPackage, LockedVariant, Lockfile
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, VariantState
from deb_bootc_compose.treeops import tree_ids

sys.path.insert(0, str(Path(__file__).parent / "oci"))
from synthetic import KVER, SDE, make_tree

MANIFEST = """\
name: debian-bootc
version: "13"
suite: trixie
sources:
  - url: http://deb.debian.org/debian
    components: [main]
packages: [bash, hello]
variants:
  base: {}
  kde-desktop: {add: [perl-base]}
oci:
  labels: {org.opencontainers.image.vendor: "Example"}
  max_layers: 10
"""


def locked(name: str, version: str, source: str = "", source_version: str = "") -> LockedPackage:
    return LockedPackage(
        name=name,
        version=version,
        arch="amd64",
        sha256=(name.encode().hex() * 64)[:64],
        size=1000,
        url=f"http://deb.debian.org/debian/pool/main/{name[0]}/{name}/{name}_{version}_amd64.deb",
        repo="http://deb.debian.org/debian",
        source=source,
        source_version=source_version,
    )


def lockfile_for(versions: dict[str, str]) -> Lockfile:
    packages = [locked(n, v, source="glibc" if n.startswith("libc6") else "") for n, v in versions.items()]
    variant = LockedVariant(requested=["bash", "hello"], packages=packages)
    return Lockfile(
        name="debian-bootc",
        version="13",
        suite="trixie",
        source_date_epoch=SDE,
        sources=[{"url": "http://deb.debian.org/debian"}],
        variants={"base": {"amd64": variant}, "kde-desktop": {"amd64": variant}},
    )


def make_context(
    tmp: Path, compose_id: str = "debian-bootc-13-20261122.t.0", versions: dict[str, str] | None = None
) -> ComposeContext:
    manifest_path = tmp / "manifest.yaml"
    manifest_path.write_text(MANIFEST)
    manifest = load_manifest(manifest_path)
    target = TargetPaths(tmp / "target")
    paths = target.compose(compose_id)
    lock = lockfile_for(versions or {"bash": "5.2.37-2", "hello": "2.10-3", "libc6": "2.41-12"})
    lock.write(paths.lockfile)
    ctx = ComposeContext(
        manifest=manifest,
        manifest_path=manifest_path,
        target=target,
        paths=paths,
        compose_id=compose_id,
        compose_type="test",
        source_date_epoch=SDE,
    )
    ctx.lockfile = lock
    for variant in ("base", "kde-desktop"):
        tree = paths.tree(variant, "amd64")
        if not tree.exists():
            make_tree(tree)
            # a real tree is made in compose's user namespace: its top belongs to ns-root, and what the host
            # wrote into it is adopted by the phases (treeops.adopt_host_writes refuses a host-owned tree)
            ids = tree_ids()
            os.chown(tree, ids.root_uid, ids.root_gid)
        ctx.variants.append(
            VariantState(
                variant=variant,
                arch="amd64",
                lock=lock.variant(variant, "amd64"),
                tree=tree,
                kernel_version=KVER,
                ref=f"debian-bootc/trixie/amd64/{variant}",
                commit="ab" * 32,
            )
        )
    return ctx
