"""The SPDX 2.3 JSON document of one image, built from plain data (so tests and other tools can call it).

Reproducible: nothing in it depends on when or where it was made. ``created`` is SOURCE_DATE_EPOCH (the newest
build time among the image's .debs) and ``documentNamespace`` ends with the SHA-256 of the document's own
content, so the same inputs give the same bytes, and different content never shares a namespace.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from deb_bootc_compose.sbom.licenses import Expression

NOASSERTION = "NOASSERTION"
DEFAULT_NAMESPACE = "https://deb-bootc-compose.invalid/spdx"
SPDX_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]+")
# SPDX's download location: a URL on a named host (its grammar has no IP addresses, no localhost, no file://)
DOWNLOAD_URL = re.compile(r"^(https?|ftp)://[a-z0-9]+([-.][a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(/\S*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class SbomPackage:
    """One .deb of the image: the lockfile's entry (its sha256 is the pool file's) and its licence."""

    name: str
    version: str
    arch: str
    source: str
    source_version: str
    sha256: str
    filename: str = ""
    url: str = ""
    license: Expression | None = None  # None: NOASSERTION
    license_note: str = ""  # why NOASSERTION, or where the copyright file was read


@dataclass(frozen=True)
class SbomImage:
    """What the document describes: one variant/arch image of a compose."""

    name: str  # the manifest's name
    version: str
    suite: str
    variant: str
    arch: str
    source_date_epoch: int
    tool: str  # "deb-bootc-compose-0.1.0"
    ref: str = ""
    commit: str = ""
    namespace_base: str = DEFAULT_NAMESPACE


def purl(name: str, version: str, arch: str, suite: str) -> str:
    """``pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=SUITE`` (the version percent-encoded: ``1:2.3`` ->
    ``1%3A2.3``; qualifiers in sorted order, as the purl spec wants)."""
    return (f"pkg:deb/debian/{quote(name, safe='')}@{quote(version, safe='.-_~')}"
            f"?arch={quote(arch)}&distro={quote(suite)}")


def _spdx_id(kind: str, *parts: str) -> str:
    return f"SPDXRef-{kind}-" + "-".join(SPDX_ID_CHARS.sub("-", p.replace("+", "plus")) for p in parts)


def _package(p: SbomPackage, spdx_id: str, suite: str) -> dict[str, object]:
    entry: dict[str, object] = {
        "SPDXID": spdx_id,
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": p.url if DOWNLOAD_URL.match(p.url) else NOASSERTION,
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": p.sha256}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": p.license.text if p.license is not None else NOASSERTION,
        "copyrightText": NOASSERTION,
        "sourceInfo": f"built from the Debian source package {p.source} {p.source_version}",
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": purl(p.name, p.version, p.arch, suite)}],
    }
    if p.filename:
        entry["packageFileName"] = p.filename
    if p.license_note:
        entry["comment"] = f"licence: {p.license_note}"
    return entry


def _extracted(packages: Iterable[SbomPackage], texts: Mapping[str, str]) -> list[dict[str, str]]:
    """One entry per LicenseRef used: Debian's name, its text from a stand-alone License paragraph when one gave
    it, and the packages naming it."""
    users: dict[str, tuple[str, list[str]]] = {}
    for p in packages:
        for ref, name in (p.license.refs if p.license else {}).items():
            users.setdefault(ref, (name, []))[1].append(p.name)
    out = []
    for ref in sorted(users):
        name, pkgs = users[ref]
        text = texts.get(name) or (f"The licence Debian's copyright files call {name!r}; its text is in "
                                   f"/usr/share/doc/PACKAGE/copyright of the packages named in the comment.")
        shown = ", ".join(sorted(set(pkgs))[:20]) + (" …" if len(set(pkgs)) > 20 else "")
        out.append({"licenseId": ref, "name": name, "extractedText": text, "comment": f"named by: {shown}"})
    return out


def build(image: SbomImage, packages: Iterable[SbomPackage], texts: Mapping[str, str] | None = None
          ) -> dict[str, object]:
    """The document (a JSON-ready dict). ``texts``: licence texts by Debian name (the stand-alone License
    paragraphs of the copyright files) for the LicenseRefs."""
    rows = sorted(packages, key=lambda p: (p.name, p.arch, p.version))
    image_id = "SPDXRef-Image"
    ids: list[str] = []
    for p in rows:
        pid = _spdx_id("Package-deb", p.name, p.arch)
        while pid in ids:
            pid += "-dup"
        ids.append(pid)
    name = f"{image.name}-{image.version}-{image.variant}.{image.arch}"
    what = f"the {image.variant} image of {image.name} {image.version} ({image.suite}, {image.arch})"
    if image.ref:
        what += f", OSTree ref {image.ref}" + (f" at commit {image.commit}" if image.commit else "")
    top: dict[str, object] = {
        "SPDXID": image_id, "name": f"{image.name}-{image.variant}", "versionInfo": image.version,
        "downloadLocation": NOASSERTION, "filesAnalyzed": False, "primaryPackagePurpose": "OPERATING-SYSTEM",
        "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION,
        "comment": what,
    }
    doc: dict[str, object] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "creationInfo": {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(image.source_date_epoch)),
                         "creators": [f"Tool: {image.tool}"]},
        "documentDescribes": [image_id],
        "packages": [top, *(_package(p, pid, image.suite) for p, pid in zip(rows, ids, strict=True))],
        "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                           "relatedSpdxElement": image_id},
                          *({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid}
                            for pid in ids)],
    }
    extracted = _extracted(rows, texts or {})
    if extracted:
        doc["hasExtractedLicensingInfos"] = extracted
    content = hashlib.sha256(render(doc)).hexdigest()
    doc["documentNamespace"] = f"{image.namespace_base.rstrip('/')}/{quote(name, safe='.-_+')}-{content}"
    return doc


def render(doc: Mapping[str, object]) -> bytes:
    """The document's bytes: keys sorted, two-space indent, one trailing newline (byte-stable)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
