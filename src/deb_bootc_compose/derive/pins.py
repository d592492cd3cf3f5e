"""Gather of a derived manifest: the base variant's exact package versions, asked of apt as ``NAME=VERSION``
(what the derived manifest removes or excludes is left out), so the derived tree holds the base's packages as
the base image has them and only the derived manifest's additions are resolved anew."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deb_bootc_compose.derive.basecompose import BaseCompose
from deb_bootc_compose.lockfile import LockedBase

if TYPE_CHECKING:
    from deb_bootc_compose.manifest import Manifest


def pins(base: BaseCompose, arch: str, m: Manifest, variant: str) -> dict[str, str]:
    """Package name -> the version the base variant has (packages from the derived manifest's own sources only:
    a package the base built itself, such as its update client, is not pinned)."""
    locked = base.lockfile.variant(base.variant, arch).packages
    dropped = set(m.exclude) | set(m.variants[variant].remove)
    repos = {s.repo_url() for s in m.sources}
    return {p.name: p.version for p in locked if p.name not in dropped and p.repo in repos}


def pinned(names: list[str], versions: dict[str, str]) -> list[str]:
    """``names`` with every pinned one asked for at its version, then the other pinned packages."""
    out = [f"{n}={versions[n]}" if n in versions else n for n in names]
    have = set(names)
    return out + [f"{n}={v}" for n, v in sorted(versions.items()) if n not in have]


def record(base: BaseCompose) -> LockedBase:
    return LockedBase(compose_id=base.compose_id, compose_dir=str(base.paths.topdir) if base.paths else "",
                      image=base.image_ref, variant=base.variant, commits=dict(base.commits),
                      images={a: i.manifest_digest for a, i in base.images.items()})
