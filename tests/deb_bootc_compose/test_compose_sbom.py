"""The sbom plugin on the session compose (it is on by default, so the compose every session makes already
wrote one): a valid SPDX 2.3 document (spdx-tools) listing exactly the lockfile's packages with the pool's
SHA-256, purls and Debian's licences; listed in metadata/extra-files.json; and the same bytes when the plugin
runs again on the same tree (the document depends on the inputs only)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from compose_helpers import SessionCompose
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from deb_bootc_compose import lockfile
from deb_bootc_compose import metadata as md
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, VariantState
from deb_bootc_compose.plugins.api import PluginContext
from deb_bootc_compose.plugins.sbom import SbomPlugin
from debarchive.digest import sha256_file

pytestmark = pytest.mark.integration


def sbom_of(topdir: Path) -> Path:
    return topdir / "metadata/sbom/base.amd64.spdx.json"


def test_session_compose_sbom(minimal_compose: SessionCompose) -> None:
    path = sbom_of(minimal_compose.topdir)
    messages = validate_full_spdx_document(parse_file(str(path)))
    assert [m.validation_message for m in messages] == []
    doc = json.loads(path.read_text())
    lock = lockfile.load(minimal_compose.topdir / "metadata/lockfile.yaml")
    locked = {p.name: p for p in lock.variant("base", "amd64").packages}
    pkgs = {p["name"]: p for p in doc["packages"] if p["SPDXID"] != "SPDXRef-Image"}
    assert set(pkgs) == set(locked) and len(pkgs) > 150
    for name, p in pkgs.items():
        lp = locked[name]
        assert p["versionInfo"] == lp.version and p["checksums"] == [{"algorithm": "SHA256",
                                                                       "checksumValue": lp.sha256}]
        assert p["externalRefs"][0]["referenceLocator"].startswith(f"pkg:deb/debian/{quote(name, safe='')}@")
        assert p["externalRefs"][0]["referenceLocator"].endswith(f"?arch={lp.arch}&distro=trixie")
        assert p["sourceInfo"].startswith(f"built from the Debian source package {lp.source or name} ")
    hello = pkgs["hello"]
    # the SHA-256 is the pool file's
    assert sha256_file(TargetPaths(minimal_compose.target).pool_deb(locked["hello"].sha256)) == locked["hello"].sha256
    # hello's copyright file is not in the machine-readable format; systemd's is
    assert hello["licenseDeclared"] == "NOASSERTION"
    assert hello["comment"] == "licence: the copyright file is not in the machine-readable format"
    assert "LGPL-2.1-or-later" in pkgs["systemd"]["licenseDeclared"]
    assert "GPL-2.0-only WITH Linux-syscall-note" in pkgs["systemd"]["licenseDeclared"]
    assert hello["downloadLocation"] == locked["hello"].url
    known = [p for p in pkgs.values() if p["licenseDeclared"] != "NOASSERTION"]
    assert len(known) > len(pkgs) // 2, [(p["name"], p.get("comment")) for p in pkgs.values()]
    assert all(p.get("comment", "").startswith("licence: ") for p in pkgs.values() if p not in known)
    assert doc["creationInfo"]["created"].endswith("Z")
    image = next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-Image")
    ostree = md.load_ostree(minimal_compose.topdir / "metadata/ostree.json")[0]
    assert ostree.commit in image["comment"] and image["primaryPackagePurpose"] == "OPERATING-SYSTEM"
    (listed,) = md.load_extra_files(minimal_compose.topdir / "metadata/extra-files.json")
    assert (listed.path, listed.kind, listed.format, listed.plugin, listed.variant, listed.arch) == (
        "metadata/sbom/base.amd64.spdx.json", "sbom", "spdx-2.3+json", "sbom", "base", "amd64")
    assert listed.sha256 == sha256_file(path) and listed.size == path.stat().st_size
    print(f"FIGURE sbom: {len(pkgs)} packages, licence known for {len(known)}, {path.stat().st_size} bytes")


def test_sbom_same_bytes_from_the_same_inputs(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    """The plugin once more on the session compose's kept tree, into another compose directory, on another day:
    the same bytes."""
    session = minimal_compose.topdir
    target = TargetPaths(tmp_path / "target")
    paths = target.compose("debian-bootc-13-20300101.0")
    ostree = md.load_ostree(session / "metadata/ostree.json")[0]
    ctx = ComposeContext(manifest=load_manifest(minimal_compose.manifest), manifest_path=minimal_compose.manifest,
                         target=target, paths=paths, compose_id=paths.compose_id, compose_type="production",
                         variants=[VariantState("base", "amd64", tree=minimal_compose.tree, ref=ostree.ref,
                                                commit=ostree.commit)],
                         lockfile=lockfile.load(session / "metadata/lockfile.yaml"))
    SbomPlugin().after("ostree-commit", PluginContext(ctx, "sbom", "after", "ostree-commit"))
    assert sbom_of(paths.topdir).read_bytes() == sbom_of(session).read_bytes()
    assert [f.path for f in ctx.extra_files] == ["metadata/sbom/base.amd64.spdx.json"]
