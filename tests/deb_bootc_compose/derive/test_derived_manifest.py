"""Derived manifests (``base:``) on synthetic base compose directories: what is inherited and what is not, and a
clear error for each bad base (missing, not FINISHED, unknown variant, another suite or arch, no OCI image,
files the base names by path), naming the manifest's line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from basecomposes import BASE, CID, make_base

from deb_bootc_compose import lockfile, manifest
from deb_bootc_compose.derive.inherit import effective_yaml
from deb_bootc_compose.derive.pins import pins, record


def derived(root: Path, **extra: object) -> Path:
    data: dict[str, object] = {"base": {"compose": "target/latest-atomic-13", "variant": "base"},
                               "name": "particle", "version": "1", "packages": ["htop"]}
    data.update(extra)
    path = root / "particle.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_derived_manifest_inherits_the_base_variant_but_not_its_update(tmp_path: Path) -> None:
    topdir = make_base(tmp_path)
    m = manifest.load(derived(tmp_path, os_release={"ID": "particle", "NAME": "Particle"},
                              files=[{"path": "/etc/motd", "content": "hi\n"}],
                              variants={"base": {"remove": ["iproute2"]}}))
    assert m.derived_from is not None and m.derived_from.paths is not None
    assert m.derived_from.paths.topdir == topdir  # the latest- link followed
    assert (m.suite, m.locale, m.update, m.arches) == ("trixie", "en_US.UTF-8", None, ["amd64"])
    assert [s.url for s in m.sources] == ["http://deb.debian.org/debian"]
    assert m.variant_packages("base") == ["systemd", "sudo", "htop"]
    settings = m.for_variant("base")
    assert [f.spec.path for f in settings.files] == ["/etc/issue.d/atomic.issue", "/etc/motd"]
    assert [s.spec.name for s in settings.postprocess] == ["net"]
    assert dict(settings.os_release) == {"NAME": "Particle", "VARIANT_ID": "base", "ID": "particle"}
    assert settings.outputs == ("oci", "qcow2") and m.exclude == ["nano"]
    assert m.ref_for("base", "amd64") == "particle/trixie/amd64/base"
    # the compose's copy (and the image's) loads on its own, without base: and without the base's update
    copy = tmp_path / "copy.yaml"
    copy.write_text(effective_yaml(m, m.derived_from))
    again = manifest.load(copy)
    assert again.derived_from is None and again.update is None
    assert again.variant_packages("base") == ["systemd", "sudo", "htop"]
    # the cloud variant of the same base: its own additions and identity
    cloud = manifest.load(derived(tmp_path, base={"compose": str(topdir), "variant": "cloud"}))
    assert cloud.variant_packages("base") == ["systemd", "sudo", "iproute2", "cloud-init", "htop"]
    assert cloud.for_variant("base").os_release["VARIANT_ID"] == "cloud"


@pytest.mark.parametrize(("case", "expect"), [
    ("missing", r"base\.compose: the base compose .*/nowhere does not exist: compose the base first"),
    ("doomed", r"base\.compose: the base compose .* is DOOMED, not FINISHED"),
    ("variant", r"base\.variant: the base compose atomic-13-20261205\.t\.0 has no variant 'desktop' \(its variants: "
                r"base, cloud\)"),
    ("suite", r"is for suite 'trixie' but this manifest says suite 'bookworm'"),
    ("arch", r"has variant 'base' for amd64 only, not arm64"),
    ("no-oci", r"has no OCI image of base/amd64 .* compose the base with the 'oci' output"),
    ("host-file", r"names files by path \(files\[1\]\), which its compose does not keep"),
    ("bad-spec", r"particle\.yaml:\d+:base\.colour: unknown key"),
])
def test_a_bad_base_is_a_clear_manifest_error(tmp_path: Path, case: str, expect: str) -> None:
    data = dict(BASE)
    if case == "host-file":
        data["files"] = [*BASE["files"], {"path": "/etc/x", "source": "x.conf"}]
    make_base(tmp_path, data, status="DOOMED" if case == "doomed" else "FINISHED", oci=case != "no-oci")
    extra: dict[str, object] = {
        "missing": {"base": {"compose": "nowhere"}},
        "variant": {"base": {"compose": "target/latest-atomic-13", "variant": "desktop"}},
        "suite": {"suite": "bookworm"},
        "arch": {"arches": ["amd64", "arm64"]},
        "bad-spec": {"base": {"compose": "target/latest-atomic-13", "colour": "red"}},
    }.get(case, {})  # type: ignore[assignment]
    with pytest.raises(manifest.ManifestError, match=expect):
        manifest.load(derived(tmp_path, **extra))


def test_lockfile_version_1_still_reads_and_version_2_records_the_base(tmp_path: Path) -> None:
    topdir = make_base(tmp_path)
    v1 = tmp_path / "v1.yaml"
    data = yaml.safe_load(lockfile.load(topdir / "metadata/lockfile.yaml").text())
    data["lockfile_version"] = 1
    v1.write_text(yaml.safe_dump(data))
    lock = lockfile.load(v1)
    assert lock.lockfile_version == 1 and lock.base is None
    m = manifest.load(derived(tmp_path))
    from deb_bootc_compose.derive.pins import pinned, pins, record
    assert m.derived_from is not None
    lock.base = record(m.derived_from)
    lock.write(tmp_path / "v2.yaml")
    again = lockfile.load(tmp_path / "v2.yaml")
    assert again.lockfile_version == 2 and again.base is not None
    assert (again.base.compose_id, again.base.variant, again.base.commits) == (CID, "base", {"amd64": "a" * 64})
    assert again.base.images == {"amd64": "sha256:" + "b" * 64}
    # gather asks apt for the base's versions; what the derived manifest removes is not pinned
    removing = manifest.load(derived(tmp_path, variants={"base": {"remove": ["sudo"]}}))
    assert removing.derived_from is not None
    versions = pins(removing.derived_from, "amd64", removing, "base")
    assert versions == {"systemd": "1.0"}
    assert pinned(["apt", "systemd", "htop"], versions) == ["apt", "systemd=1.0", "htop"]


def test_an_image_carries_only_the_content_of_its_lockfile(tmp_path: Path) -> None:
    """/usr/lib/deb-bootc/lockfile.yaml: no download URL and no compose ID or path of the base (the same inputs
    give the same image wherever the .debs came from and whatever the base compose was called)."""
    make_base(tmp_path)
    m = manifest.load(derived(tmp_path))
    from deb_bootc_compose.derive.pins import record
    assert m.derived_from is not None
    lock = lockfile.load(tmp_path / "target/latest-atomic-13/metadata/lockfile.yaml")
    lock.base = record(m.derived_from)
    text = lock.image_text()
    assert "http://x/" not in text and CID not in text and str(tmp_path) not in text
    assert "a" * 64 in text and "sha256:" + "b" * 64 in text  # the base's commit and image digest
    (tmp_path / "image-lock.yaml").write_text(text)
    again = lockfile.load(tmp_path / "image-lock.yaml")  # it still reads (an image base uses it)
    assert again.base is not None and again.base.variant == "base"
    assert CID not in effective_yaml(m, m.derived_from)
    lock.sources = [{"url": "http://a", "components": ["main"]}]  # the order of keys a file had is not content
    swapped = lock.model_copy(update={"sources": [{"components": ["main"], "url": "http://a"}]})
    assert lock.image_text() == swapped.image_text()


def test_a_new_base_compose_gives_the_derived_manifest_a_new_base(tmp_path: Path) -> None:
    """The derived manifest names the base through its ``latest-`` link: composed again after a new base compose,
    it is built on the new one (its versions pinned, its ID recorded), with no edit of the manifest."""
    make_base(tmp_path)
    path = derived(tmp_path)
    old = manifest.load(path).derived_from
    assert old is not None and old.compose_id == CID
    new_id = CID.replace(".t.0", ".t.1")
    make_base(tmp_path, cid=new_id, version="2.0")
    m = manifest.load(path)
    new = m.derived_from
    assert new is not None and new.compose_id == new_id and record(new).compose_id == new_id
    assert pins(new, "amd64", m, "base") == {"systemd": "2.0", "sudo": "2.0"}
    assert pins(old, "amd64", m, "base") == {"systemd": "1.0", "sudo": "1.0"}
