"""The thing to build: a verified source package (.dsc path or URL) or an unpacked source tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from debian.changelog import Changelog, ChangelogParseError
from debian.deb822 import Deb822

from deb_mock.errors import BadInput, InfraError
from debarchive.dsc import SourceFetchError, SourcePackageError, fetch, strip_epoch


@dataclass(frozen=True)
class BuildSource:
    name: str
    version: str
    path: Path  # the .dsc file, or the tree's top directory
    is_tree: bool
    build_depends: str
    build_depends_arch: str
    build_depends_indep: str
    architectures: tuple[str, ...]

    @property
    def upstream_dir(self) -> str:
        """Directory name for the unpacked source (sbuild's convention: NAME-UPSTREAMVERSION)."""
        upstream = strip_epoch(self.version).rsplit("-", 1)[0]
        return f"{self.name}-{upstream}"

    @property
    def sandbox_path(self) -> str:
        return "/deb-mock/src" if self.is_tree else f"/deb-mock/src/{self.path.name}"


def from_dsc(ref: str | Path, dest: Path, authenticate: Callable[[Path, str], None] | None = None) -> BuildSource:
    try:
        pkg = fetch(ref, dest, authenticate=authenticate)
    except SourceFetchError as exc:
        if exc.network:
            raise InfraError(str(exc)) from None
        raise BadInput(str(exc)) from None
    except SourcePackageError as exc:
        raise BadInput(str(exc)) from None
    f = pkg.fields
    return BuildSource(
        name=pkg.source,
        version=pkg.version,
        path=pkg.dsc_path,
        is_tree=False,
        build_depends=f.get("Build-Depends", ""),
        build_depends_arch=f.get("Build-Depends-Arch", ""),
        build_depends_indep=f.get("Build-Depends-Indep", ""),
        architectures=pkg.architectures,
    )


def from_tree(tree: Path) -> BuildSource:
    tree = tree.resolve()
    control = tree / "debian" / "control"
    changelog = tree / "debian" / "changelog"
    for p in (control, changelog):
        if not p.is_file():
            raise BadInput(f"{tree} is not an unpacked Debian source tree: {p.relative_to(tree)} is missing")
    try:
        with open(changelog, encoding="utf-8") as fh:
            cl = Changelog(fh, max_blocks=1, strict=True)
        name, version = str(cl.package), str(cl.version)
    except (ChangelogParseError, ValueError, IndexError) as exc:
        raise BadInput(f"{changelog}: cannot parse: {exc}") from None
    with open(control, encoding="utf-8") as fh:
        paragraphs = list(Deb822.iter_paragraphs(fh))
    if not paragraphs or "Source" not in paragraphs[0]:
        raise BadInput(f"{control}: the first paragraph has no Source field")
    src = paragraphs[0]
    arches = sorted({a for p in paragraphs[1:] for a in str(p.get("Architecture", "any")).split()})
    return BuildSource(
        name=name,
        version=version,
        path=tree,
        is_tree=True,
        build_depends=str(src.get("Build-Depends", "")),
        build_depends_arch=str(src.get("Build-Depends-Arch", "")),
        build_depends_indep=str(src.get("Build-Depends-Indep", "")),
        architectures=tuple(arches),
    )
