"""The ``deb-bootc`` client through the orchestrator, for a manifest with ``update:`` and ``build.target``.

The hub builds a SOURCE_VERSION once, so the client's version carries the identity of its source: the
build phase copies the client's tree (``packaging/deb-bootc`` or ``$DEB_BOOTC_CLIENT_SOURCE``, see
:mod:`deb_bootc_compose.clientdeb`), puts a new debian/changelog entry on top of the copy whose version is
the changelog's version + ``+src`` + the first 12 hex digits of :func:`clientdeb.source_hash`
(``0.1.0+src0123456789ab``: newer than the plain ``0.1.0`` for dpkg), and makes a ``3.0 (native)`` .dsc from
it with ``dpkg-source -b`` (:mod:`deb_bootc_compose.dsctree`). That .dsc is submitted like any
``build.sources`` entry: an unchanged client has the same version, which the hub has built already, so it
is not built again; a changed one gets a new version. gather then asks apt for ``deb-bootc=VERSION`` from
the target's destination tag repository (pinned like every tag package, :class:`TaggedClient`), and the
lockfile records it from there.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822

from deb_bootc_compose import clientdeb
from deb_bootc_compose.dsctree import DscTreeError, changelog_fields, make_dsc, source_format
from deb_bootc_compose.errors import ComposeError
from debarchive.dsc import strip_epoch

NATIVE = "3.0 (native)"
HASH_CHARS = 12  # of the source hash in the version: 48 bits, no collision among one client's versions
HEX = re.compile(r"^[0-9a-f]{64}$")


def hub_version(version: str, digest: str) -> str:
    """The version the hub builds the client as: ``0.1.0`` and source hash ``0123…`` → ``0.1.0+src0123456789ab``."""
    if not HEX.match(digest):
        raise ValueError(f"not a SHA-256 source hash: {digest!r}")
    return f"{version}+src{digest[:HASH_CHARS]}"


def changelog_entry(source: str, version: str, *, distribution: str, maintainer: str, date: str,
                    digest: str) -> str:
    """The debian/changelog entry put on top of the copy (distribution, maintainer and date of the entry
    below it, so the same source always makes the same entry)."""
    return (f"{source} ({version}) {distribution}; urgency=medium\n\n"
            "  * Made by deb-bootc-compose for the orchestrator from the client source\n"
            f"    {digest}\n"
            "    (clientdeb.source_hash of its tree; nothing else changed).\n\n"
            f" -- {maintainer}  {date}\n\n")


def binary_depends(control: Path, name: str = clientdeb.NAME) -> tuple[str, ...]:
    """The package names the binary ``name`` of a debian/control depends on (substitution variables left out)."""
    with open(control, encoding="utf-8") as fh:
        stanzas = list(Deb822.iter_paragraphs(fh))
    for stanza in stanzas[1:]:
        if stanza.get("Package") == name:
            return tuple(d for d in clientdeb.depends_names(stanza.get("Depends", "")) if not d.startswith("$"))
    raise ComposeError(f"{control} has no binary package {name}")


@dataclass(frozen=True)
class ClientSource:
    """The client's source package, made for the hub."""

    dsc: Path
    source: str
    version: str  # with the +src suffix
    source_hash: str
    origin: Path  # the tree it was made from
    depends: tuple[str, ...]

    @property
    def ident(self) -> str:
        return f"{self.source}_{strip_epoch(self.version)}"


@dataclass(frozen=True)
class TaggedClient:
    """The client as the orchestrator built it: gather takes ``name=version`` from the destination tag."""

    name: str
    version: str
    source_hash: str
    depends: tuple[str, ...]
    build_id: int
    dest_tag: str

    @property
    def apt_request(self) -> str:
        return f"{self.name}={self.version}"

    @property
    def cache_key(self) -> str:
        return f"client:{self.apt_request}"


def prepare(work: Path) -> ClientSource:
    """Copy the client's tree into ``work``, give the copy its hub version and make its .dsc there."""
    origin = clientdeb.source_dir()
    digest = clientdeb.source_hash(origin)
    where = f"the deb-bootc client's source {origin}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tree = work / "tree"
    shutil.copytree(origin, tree, symlinks=True, ignore=shutil.ignore_patterns(*clientdeb.IGNORED, "*.pyc"))
    fmt = source_format(tree)
    if fmt != NATIVE:
        raise ComposeError(f"{where}: debian/source/format is {fmt!r}; the client goes through the orchestrator as "
                           f"a {NATIVE} source package (its version gets the source hash appended)")
    changelog = tree / "debian" / "changelog"
    try:
        fields = changelog_fields(tree, "Source", "Version", "Distribution", "Maintainer", "Date")
        version = hub_version(fields["Version"], digest)
        entry = changelog_entry(fields["Source"], version, distribution=fields["Distribution"],
                                maintainer=fields["Maintainer"], date=fields["Date"], digest=digest)
        text = changelog.read_text(encoding="utf-8")
        changelog.unlink()  # a link in the copy must not lead back to the original
        changelog.write_text(entry + text, encoding="utf-8")
        pkg = make_dsc(tree, work, source=fields["Source"], version=version, log=work / "dpkg-source.log")
    except DscTreeError as exc:
        raise ComposeError(f"{where}: {exc}") from None
    return ClientSource(dsc=pkg.dsc_path, source=pkg.source, version=pkg.version, source_hash=digest,
                        origin=origin, depends=binary_depends(origin / "debian" / "control"))
