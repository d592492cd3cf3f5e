"""composeinfo.json, images.json and packages.json, checked by loading them with productmd."""

from __future__ import annotations

import json
from pathlib import Path

import productmd.compose
import productmd.images
import pytest
from composefixtures import make_context

from deb_bootc_compose import metadata as md
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phases.base import ComposeContext, ImageRecord
from deb_bootc_compose.phases.checksums import ChecksumsPhase
from deb_bootc_compose.phases.metadata import MetadataPhase
from deb_bootc_compose.phases.oci import OciPhase


def add_disk_images(ctx: ComposeContext) -> None:
    for vs in ctx.variants:
        for fmt in ("qcow2", "raw"):
            path = ctx.paths.images_dir(vs.variant, vs.arch) / f"debian-bootc-{vs.variant}-13.{vs.arch}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{fmt} image".encode())
            vs.images.append(ImageRecord(vs.variant, vs.arch, path, fmt, fmt))


@pytest.fixture
def composed(tmp_path: Path) -> ComposeContext:
    ctx = make_context(tmp_path)
    OciPhase(ctx).run()
    add_disk_images(ctx)
    ChecksumsPhase(ctx).run()
    MetadataPhase(ctx).run()
    return ctx


def test_productmd_loads_composeinfo_and_images(composed: ComposeContext) -> None:
    compose = productmd.compose.Compose(str(composed.paths.topdir))
    info = compose.info
    assert info.compose.id == "debian-bootc-13-20261122.t.0"
    assert info.compose.type == "test" and info.compose.date == "20261122" and info.compose.respin == 0
    assert info.release.name == "debian-bootc" and info.release.version == "13"
    assert sorted(info.variants.variants) == ["base", "kdedesktop"]
    assert info.variants["kdedesktop"].name == "kde-desktop"
    assert info.variants["base"].arches == {"amd64"}
    assert info.variants["base"].paths.images["amd64"] == "compose/base/amd64/images"
    images = compose.images
    base = sorted(images["base"]["amd64"], key=lambda i: i.type)
    assert [(i.type, i.format) for i in base] == [
        ("bootable-container", "ociarchive"),
        ("qcow2", "qcow2"),
        ("raw", "raw"),
    ]
    for image in base:
        path = Path(compose.compose_path) / image.path
        assert path.is_file(), image.path
        assert image.size == path.stat().st_size
        assert len(image.checksums["sha256"]) == 64
        assert image.subvariant == "base"
    oci = base[0]
    assert oci.path == "compose/base/amd64/oci/debian-bootc-base-13.amd64.oci-archive"
    # the raw file has the envelope too, and productmd's Images().load() reads it directly
    raw = json.loads((composed.paths.metadata / "images.json").read_text())
    assert raw["header"]["type"] == "productmd.images"
    again = productmd.images.Images()
    again.load(str(composed.paths.metadata / "images.json"))
    assert len(again["kdedesktop"]["amd64"]) == 3


def test_packages_json(composed: ComposeContext) -> None:
    data = json.loads((composed.paths.metadata / "packages.json").read_text())
    assert data["header"] == {"type": "deb-bootc-compose.packages", "version": "1.0"}
    rows = data["payload"]["packages"]["base"]["amd64"]
    assert [r["name"] for r in rows] == ["bash", "hello", "libc6"]
    libc = rows[2]
    assert libc["source"] == "glibc" and libc["source_version"] == "2.41-12"
    assert libc["apt_source"] == "http://deb.debian.org/debian"
    assert libc["filename"] == "libc6_2.41-12_amd64.deb" and len(libc["sha256"]) == 64
    hello = rows[1]
    assert hello["source"] == "hello" and hello["version"] == "2.10-3"  # source defaults to the package
    loaded = md.load_packages(composed.paths.metadata / "packages.json")
    assert loaded["kde-desktop"]["amd64"][0].name == "bash"


def test_metadata_from_lockfile_on_disk(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    OciPhase(ctx).run()
    ChecksumsPhase(ctx).run()
    for vs in ctx.variants:
        vs.lock = None  # as after a reuse: read metadata/lockfile.yaml
    ctx.lockfile = None
    MetadataPhase(ctx).run()
    assert md.load_packages(ctx.paths.metadata / "packages.json")["base"]["amd64"][1].name == "hello"


def test_metadata_errors(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    OciPhase(ctx).run()
    with pytest.raises(ComposeError, match="the checksums phase must run before metadata"):
        MetadataPhase(ctx).run()
    ChecksumsPhase(ctx).run()
    ctx.variants[0].images[0].format = "qcow2"
    with pytest.raises(ComposeError, match="image type 'bootable-container' with format 'qcow2' is not one productmd"):
        MetadataPhase(ctx).run()
    meta = md.ComposeMeta("debian-bootc-13-20261122.0", "debian-bootc", "debian-bootc", "13")
    with pytest.raises(md.MetadataError, match="both become productmd variant ID 'ab'"):
        md.compose_info(meta, [md.VariantMeta("a-b", ["amd64"]), md.VariantMeta("ab", ["amd64"])])
    with pytest.raises(md.MetadataError, match="no letter or digit"):
        md.variant_uid("--")
    with pytest.raises(md.MetadataError, match="architecture 'vax' has no name productmd accepts"):
        md.productmd_arch("vax")
    with pytest.raises(md.MetadataError, match="carries no YYYYMMDD date"):
        md.compose_info(md.ComposeMeta("nodate", "x", "x", "1"), [])
    bad = tmp_path / "packages.json"
    bad.write_text('{"header": {"type": "productmd.images", "version": "1.2"}}')
    with pytest.raises(md.MetadataError, match=r"is not a deb-bootc-compose packages\.json"):
        md.load_packages(bad)
    bad.write_text("{")
    with pytest.raises(md.MetadataError, match="is not readable JSON"):
        md.load_packages(bad)


def test_debian_arches_map_to_productmd(tmp_path: Path) -> None:
    meta = md.ComposeMeta("debian-bootc-13-20261122.n.2", "debian-bootc", "Debian Bootc", "13")
    ci = md.compose_info(meta, [md.VariantMeta("base", ["amd64", "arm64", "armhf", "ppc64el"])])
    ci.dump(str(tmp_path / "composeinfo.json"))
    loaded = productmd.composeinfo.ComposeInfo()
    loaded.load(str(tmp_path / "composeinfo.json"))
    assert loaded.variants["base"].arches == {"amd64", "arm64", "armhfp", "ppc64le"}
    assert loaded.compose.type == "nightly" and loaded.compose.respin == 2
    assert loaded.release.short == "debian-bootc"


def test_ostree_json_records_each_variants_exact_commit(composed: ComposeContext) -> None:
    path = composed.paths.metadata / "ostree.json"
    data = json.loads(path.read_text())
    assert data["header"] == {"type": "deb-bootc-compose.ostree", "version": "1.0"}
    assert data["payload"]["compose"]["id"] == composed.compose_id
    entries = md.load_ostree(path)
    assert [(e.variant, e.arch, e.ref, e.commit) for e in entries] == [
        ("base", "amd64", "debian-bootc/trixie/amd64/base", "ab" * 32),
        ("kde-desktop", "amd64", "debian-bootc/trixie/amd64/kde-desktop", "ab" * 32),
    ]
    assert (composed.paths.topdir / entries[0].repo).resolve() == composed.target.ostree_repo.resolve()


def test_ostree_json_errors(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    OciPhase(ctx).run()
    ChecksumsPhase(ctx).run()
    ctx.variants[0].commit = "not-a-checksum"
    with pytest.raises(ComposeError, match="'not-a-checksum' is not an OSTree commit checksum"):
        MetadataPhase(ctx).run()
    bad = tmp_path / "ostree.json"
    bad.write_text(json.dumps({"header": {"type": md.OSTREE_TYPE, "version": "2.0"}, "payload": {}}))
    with pytest.raises(md.MetadataError, match=r"ostree\.json version '2\.0' is not supported"):
        md.load_ostree(bad)
    bad.write_text(json.dumps({"header": {"type": md.OSTREE_TYPE, "version": "1.0"}, "payload": {"variants": 3}}))
    with pytest.raises(md.MetadataError, match="malformed payload"):
        md.load_ostree(bad)
    with pytest.raises(md.MetadataError, match="does not exist"):
        md.load_ostree(tmp_path / "missing.json")
