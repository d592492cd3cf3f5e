"""``metadata/lockfile.yaml``: the exact package set of every variant/arch, where each .deb came from, and
the SOURCE_DATE_EPOCH derived from those packages. ``--lockfile FILE`` composes exactly this.

Version 2 adds ``base``: the compose a derived manifest was built on (compose ID and directory, variant, and per
arch its OSTree commit and OCI image digest); ``prune`` keeps that compose. Version 1 files still read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deb_bootc_compose import yamlmarks

LOCKFILE_VERSION = 2
READABLE_VERSIONS = (1, 2)


class LockfileError(ValueError):
    pass


class LockedPackage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    arch: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int
    url: str  # where it was downloaded from
    repo: str = ""  # the apt source (sources.list URL) that provided it
    source: str = ""  # source package name
    source_version: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


class AddedPackage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    reason: str


class LockedVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requested: list[str]
    added: list[AddedPackage] = Field(default_factory=list)
    packages: list[LockedPackage]


class LockedBase(BaseModel):
    """The base a derived compose was built on (``base:`` in its manifest)."""

    model_config = ConfigDict(extra="forbid")
    compose_id: str = ""  # "" for a base given as an image reference, and in an image's copy
    compose_dir: str = ""  # absolute, as resolved when the derived compose ran ("" likewise)
    image: str = ""  # the image reference a base given as one was read from
    variant: str
    commits: dict[str, str]  # arch -> the base variant's OSTree commit
    images: dict[str, str]  # arch -> the base variant's OCI manifest digest


class Lockfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lockfile_version: int = LOCKFILE_VERSION
    name: str
    version: str
    suite: str
    source_date_epoch: int
    sources: list[dict[str, Any]]
    # variants[variant][arch]
    variants: dict[str, dict[str, LockedVariant]]
    base: LockedBase | None = None  # version 2: the compose a derived manifest was built on

    def variant(self, variant: str, arch: str) -> LockedVariant:
        try:
            return self.variants[variant][arch]
        except KeyError:
            have = ", ".join(f"{v}/{a}" for v, arches in self.variants.items() for a in arches)
            raise LockfileError(
                f"the lockfile has no package set for variant {variant!r} arch {arch!r} (it has: {have}); "
                "was it written for another manifest?"
            ) from None

    def dump(self) -> dict[str, Any]:
        """The document (without ``base`` unless there is one)."""
        return self.model_dump(mode="json", exclude={"base"} if self.base is None else None)

    def canonical(self) -> str:
        return json.dumps(self.dump(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def text(self) -> str:
        return yaml.safe_dump(self.dump(), sort_keys=False, width=200)

    def image_text(self) -> str:
        """The lockfile as an image carries it (``/usr/lib/deb-bootc/lockfile.yaml``): content only, so that the same
        inputs still give the same commit and image. No download URLs (where a .deb was fetched from is not what it
        is: a lockfile recompose from the pool gives the same image) and, of the base, not its compose ID,
        directory or reference (its variant, commits and image digests are what it is)."""
        doc = self.dump()
        for arches in doc["variants"].values():
            for locked in arches.values():
                for pkg in locked["packages"]:
                    pkg["url"] = ""
        if doc.get("base"):
            doc["base"].update(compose_id="", compose_dir="", image="")
        return yaml.safe_dump(doc, sort_keys=True, width=200)  # keys sorted: how a file wrote them is not content

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        self.lockfile_version = LOCKFILE_VERSION  # a version-1 lockfile composed again is written as the current
        header = (
            "# deb-bootc-compose lockfile: the exact packages of this compose.\n"
            "# Compose exactly these again with: deb-bootc-compose --config MANIFEST --lockfile THIS-FILE ...\n"
        )
        tmp.write_text(header + self.text())
        tmp.replace(path)


def load(path: Path) -> Lockfile:
    try:
        doc = yamlmarks.load(path)
    except yamlmarks.YamlLocationError as exc:
        raise LockfileError(str(exc)) from None
    if not isinstance(doc.data, dict):
        raise LockfileError(f"{path}:1: not a deb-bootc-compose lockfile (expected a YAML mapping)")
    if doc.data.get("lockfile_version") not in READABLE_VERSIONS:
        raise LockfileError(
            f"{doc.where(('lockfile_version',))}: lockfile_version {doc.data.get('lockfile_version')!r} "
            f"is not supported (this tool reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    try:
        return Lockfile.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(f"{doc.where(loc)}: {err['msg']}")
        raise LockfileError("invalid lockfile:\n  " + "\n  ".join(problems)) from None
