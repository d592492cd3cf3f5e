"""The base compose of a derived manifest, loaded and checked: it must exist, be FINISHED, have the variant
(with an OSTree commit and an OCI image for each arch) and, where the derived manifest says, the same suite and
arches. Every problem raises :class:`BaseError` saying what and what to do."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose import status
from deb_bootc_compose.lockfile import Lockfile, LockfileError
from deb_bootc_compose.lockfile import load as load_lockfile
from deb_bootc_compose.metadata import MetadataError, load_ostree
from deb_bootc_compose.paths import ComposePaths


class BaseError(ValueError):
    """The base a derived manifest names cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class BaseImage:
    """The base variant's OCI image for one arch."""

    layout: Path  # the OCI layout directory
    manifest_digest: str  # sha256:…


@dataclass(frozen=True)
class BaseCompose:
    """A base: a compose directory's variant, or an image reference (``paths`` None, ``image_ref`` set; its
    manifest and lockfile are the ones the image carries under /usr/lib/deb-bootc, see baseimage.py)."""

    paths: ComposePaths | None
    variant: str
    lockfile: Lockfile
    data: dict[str, object]  # the base's manifest (metadata/manifest.yaml or the image's), as loaded YAML
    commits: dict[str, str]  # arch -> OSTree commit of the variant ("" when an image does not say)
    images: dict[str, BaseImage]  # arch -> its OCI image
    image_ref: str = ""  # the image reference a base given as one was read from

    @property
    def compose_id(self) -> str:
        """The base compose's ID ("" for an image reference)."""
        return self.paths.compose_id if self.paths is not None else ""

    @property
    def label(self) -> str:
        """How messages name the base: its compose ID, or the image reference and digest."""
        if self.paths is not None:
            return self.paths.compose_id
        digests = ", ".join(i.manifest_digest for i in self.images.values())
        return f"{self.image_ref} ({digests})"

    @property
    def manifest_path(self) -> Path:
        """Where the base's manifest was read (for messages)."""
        if self.paths is not None:
            return self.paths.manifest_copy
        return Path(f"{self.image_ref}:/usr/lib/deb-bootc/manifest.yaml")


def image_of(layout: Path) -> str:
    """The manifest digest ``index.json`` of an OCI layout names (the first manifest)."""
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def _manifest_data(paths: ComposePaths) -> dict[str, object]:
    import yaml  # the base compose's copy of its manifest, validated by the caller's merge

    try:
        data = yaml.safe_load(paths.manifest_copy.read_text()[: 16 << 20])
    except (OSError, yaml.YAMLError) as exc:
        raise BaseError(f"{paths.manifest_copy}: the base compose's manifest cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise BaseError(f"{paths.manifest_copy}: the base compose's manifest is not a YAML mapping")
    return data


def _lockfile(paths: ComposePaths) -> Lockfile:
    try:
        return load_lockfile(paths.lockfile)
    except (OSError, LockfileError) as exc:
        raise BaseError(f"the base compose {paths.topdir} has no readable lockfile ({exc}); recompose the base") \
            from None


def load_base(given: str, manifest_dir: Path, variant: str, arches: list[str] | None,
              suite: str | None) -> BaseCompose:
    """The compose ``given`` names (relative to ``manifest_dir``; a ``latest-`` link is followed), checked for
    ``variant``; ``arches``/``suite``: what the derived manifest itself says (None: inherited)."""
    path = Path(given) if os.path.isabs(given) else manifest_dir / given
    if not path.is_dir():
        raise BaseError(f"the base compose {path} does not exist: compose the base first (deb-bootc-compose "
                        "--config BASE.yaml --target-dir DIR) and name its directory or its latest- link")
    paths = ComposePaths.at(Path(os.path.realpath(path)))
    state = status.read(paths)
    if state != status.FINISHED:
        raise BaseError(f"the base compose {paths.topdir} is {state or 'not a compose (no STATUS file)'}, not "
                        "FINISHED: a derived image starts only from a finished compose; name another one (its "
                        "latest- link points at the newest FINISHED) or compose the base again")
    data = _manifest_data(paths)
    lock = _lockfile(paths)
    if variant not in lock.variants:
        raise BaseError(f"the base compose {paths.compose_id} has no variant {variant!r} (its variants: "
                        f"{', '.join(lock.variants)}); set base.variant to one of them")
    if suite is not None and suite != lock.suite:
        raise BaseError(f"the base compose {paths.compose_id} is for suite {lock.suite!r} but this manifest says "
                        f"suite {suite!r}: a derived image has its base's suite (drop 'suite:' or choose a base "
                        f"built for {suite})")
    have = sorted(lock.variants[variant])
    missing = [a for a in (arches or []) if a not in have]
    if missing:
        raise BaseError(f"the base compose {paths.compose_id} has variant {variant!r} for {', '.join(have)} only, "
                        f"not {', '.join(missing)}: derive for its arches or compose the base for "
                        f"{', '.join(missing)}")
    return BaseCompose(paths, variant, lock, data, _commits(paths, variant, arches or have),
                       _images(paths, variant, arches or have))


def _commits(paths: ComposePaths, variant: str, arches: list[str]) -> dict[str, str]:
    try:
        entries = load_ostree(paths.ostree_json)
    except (OSError, MetadataError) as exc:
        raise BaseError(f"the base compose {paths.compose_id} has no readable metadata/ostree.json ({exc})") \
            from None
    found = {e.arch: e.commit for e in entries if e.variant == variant}
    missing = [a for a in arches if a not in found]
    if missing:
        raise BaseError(f"the base compose {paths.compose_id} has no OSTree commit of {variant}/"
                        f"{', '.join(missing)}")
    return {a: found[a] for a in arches}


def _images(paths: ComposePaths, variant: str, arches: list[str]) -> dict[str, BaseImage]:
    out = {}
    for arch in arches:
        layout = paths.oci_dir(variant, arch) / "layout"
        try:
            digest = image_of(layout)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise BaseError(f"the base compose {paths.compose_id} has no OCI image of {variant}/{arch} ({layout}: "
                            f"{exc}); a derived image is layered on its base's image: compose the base with the "
                            "'oci' output") from None
        out[arch] = BaseImage(layout, digest)
    return out
