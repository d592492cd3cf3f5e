"""Variants' own settings: what is added (packages, files, postprocess), what is replaced (outputs, boot_test),
what is merged key by key (os_release); the phases that read them; errors naming file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_bootc_compose import manifest
from deb_bootc_compose.compose import missing_deliverables, reuse_key
from deb_bootc_compose.manifest import ManifestError
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, ImageRecord, VariantState
from deb_bootc_compose.phases.boot_test import BootTestPhase
from deb_bootc_compose.phases.disk import DiskPhase
from deb_bootc_compose.variants import all_outputs

MINIMAL = """\
name: debian-bootc
version: "13"
suite: trixie
sources:
  - url: http://deb.debian.org/debian
    components: [main]
packages: [systemd, hello]
"""

VARIANTS = MINIMAL + """\
exclude: [nano]
files: [{path: /etc/motd, content: "manifest\\n"}]
postprocess: ["echo manifest"]
outputs: [oci, qcow2]
boot_test: {enabled: true, commands: [hello], timeout: 600}
os_release: {NAME: Debian Atomic, VERSION_ID: 13, PRETTY_NAME: "Debian Atomic 13"}
variants:
  base: {}
  particle:
    add: [tree, nano]
    remove: [hello]
    files: [{path: /etc/issue, source: issue}]
    postprocess: [{name: brand, script: "echo particle"}, "echo two"]
    outputs: [oci]
    boot_test: {enabled: false}
    os_release: {ID: particle-os, NAME: Particle-OS}
"""


def write(tmp_path: Path, text: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "m.yaml"
    p.write_text(text)
    (tmp_path / "issue").write_text("Particle-OS \\n \\l\n")
    return p


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        manifest.load(write(tmp_path, text))
    return info.value.problems


def test_a_variant_without_settings_gets_the_manifests(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, VARIANTS))
    base = m.for_variant("base")
    assert base.packages == ("systemd", "hello")
    assert [(k, f.path) for k, f in base.files] == [("files[0]", "/etc/motd")]
    assert [(k, s.script) for k, s in base.postprocess] == [("postprocess[0]", "echo manifest")]
    assert base.outputs == ("oci", "qcow2") and base.disk_formats == ("qcow2",)
    assert base.boot_test.enabled and base.boot_test.commands == ["hello"] and base.boots
    assert dict(base.os_release) == {"NAME": "Debian Atomic", "VERSION_ID": "13", "PRETTY_NAME": "Debian Atomic 13"}


def test_a_variants_own_settings_add_replace_or_merge(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, VARIANTS))
    p = m.for_variant("particle")
    # packages: + add − remove − exclude (the manifest's exclude wins over a variant's add)
    assert p.packages == ("systemd", "tree") and m.variant_packages("particle") == ["systemd", "tree"]
    # files and postprocess: the manifest's first, then the variant's, each with where it was written
    assert [(k, f.path) for k, f in p.files] == [("files[0]", "/etc/motd"),
                                                 ("variants.particle.files[0]", "/etc/issue")]
    assert [k for k, _ in p.postprocess] == ["postprocess[0]", "variants.particle.postprocess[0]",
                                              "variants.particle.postprocess[1]"]
    assert p.postprocess[2].spec.script == "echo two"  # a plain string is an inline script, as in the manifest's
    # outputs and boot_test: replaced as a whole
    assert p.outputs == ("oci",) and p.disk_formats == () and not p.boot_test.enabled and not p.boots
    assert p.boot_test.commands == [] and p.boot_test.timeout == 900
    # os_release: key by key over the manifest's
    assert dict(p.os_release) == {"NAME": "Particle-OS", "VERSION_ID": "13", "PRETTY_NAME": "Debian Atomic 13",
                                  "ID": "particle-os"}
    assert all_outputs(m) == {"oci", "qcow2"}


def test_settings_are_read_only_and_unknown_variants_named(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, VARIANTS))
    p = m.for_variant("particle")
    with pytest.raises(TypeError):
        p.os_release["ID"] = "x"  # type: ignore[index]
    p.boot_test.enabled = True  # a copy: the manifest's stays as written
    assert not m.for_variant("particle").boot_test.enabled
    with pytest.raises(KeyError, match="no variant 'nope' in the manifest \\(its variants: base, particle\\)"):
        m.for_variant("nope")


def test_minimal_manifest_has_no_identity(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, MINIMAL))
    base = m.for_variant("base")
    assert dict(base.os_release) == {} and base.files == () and base.postprocess == ()
    assert base.outputs == ("oci",) and not base.boots


@pytest.mark.parametrize(
    ("snippet", "line", "key", "needle"),
    [
        ("os_release:\n  ID: debian\n  bad-key: x\n", 10, "os_release.bad-key", "is not an os-release key"),
        ("os_release:\n  ID: Particle OS\n", 9, "os_release.ID", "must be lower case letters"),
        ("os_release:\n  NAME: \"a\\nb=c\"\n", 9, "os_release.NAME", "must not hold newlines"),
        ("os_release:\n  VERSION_ID: 13.10\n", 9, "os_release.VERSION_ID", "quote it"),
        ("os_release:\n  NAME: [a]\n", 9, "os_release.NAME", "must be a string"),
        ("os_release:\n  NAME: ''\n", 9, "os_release.NAME", "must not be empty"),
        ("os_release:\n  NAME: " + "x" * 300 + "\n", 9, "os_release.NAME", "at most 256"),
        ("os_release:\n  ID_LIKE: 'debian  ubuntu'\n", 9, "os_release.ID_LIKE", "separated by single spaces"),
        ("os_release: [ID]\n", 8, "os_release", "must be a mapping"),
        ("os_release: {" + ", ".join(f"K{i}: v" for i in range(65)) + "}\n", 8, "os_release", "at most 64"),
        ("variants:\n  b:\n    os_release:\n      VARIANT_ID: 'B!'\n", 11, "variants.b.os_release.VARIANT_ID",
         "must be lower case"),
        ("variants:\n  b:\n    outputs: [qcow2]\n", 10, "variants.b.outputs", "must contain 'oci'"),
        ("variants:\n  b:\n    outputs: [oci, vmdk]\n", 10, "variants.b.outputs.1", "oci"),
        ("variants:\n  b:\n    add: [Tree]\n", 10, "variants.b.add", "not Debian package names: 'Tree'"),
        ("variants:\n  b:\n    files: [{path: /var/x, content: y}]\n", 10, "variants.b.files.0", "under /var"),
        ("variants:\n  b:\n    files:\n      - {path: /etc/x, source: ../x}\n", 11, "variants.b.files.0.source",
         "without '..'"),
        ("variants:\n  b:\n    postprocess:\n      - {name: x}\n", 11, "variants.b.postprocess.0",
         "exactly one of 'script' or 'file'"),
        ("variants:\n  b:\n    postprocess:\n      - {file: gone.sh}\n", 11, "variants.b.postprocess.0.file",
         "is not a file"),
        ("variants:\n  b:\n    boot_test: {enabled: yes, timeout: 0}\n", 10, "variants.b.boot_test.timeout",
         "greater than 0"),
        ("variants:\n  b:\n    kernel_args: [quiet]\n", 10, "variants.b.kernel_args", "unknown key"),
    ],
)
def test_bad_variant_settings_name_file_line_key(tmp_path: Path, snippet: str, line: int, key: str,
                                                 needle: str) -> None:
    problems = errors(tmp_path, MINIMAL + snippet)
    assert any(p.startswith(f"{tmp_path / 'm.yaml'}:{line}:{key}: ") and needle in p for p in problems), problems


def test_os_release_numbers_become_strings_and_digest_changes(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, MINIMAL + "os_release: {VERSION_ID: 13}\n"))
    assert m.os_release == {"VERSION_ID": "13"}
    assert m.digest() != manifest.load(write(tmp_path, MINIMAL + "os_release: {VERSION_ID: 14}\n")).digest()


# ---- the phases read the variant's settings ----
def context(tmp_path: Path, text: str) -> ComposeContext:
    path = write(tmp_path, text)
    target = TargetPaths(tmp_path / "target")
    cid = "debian-bootc-13-20261205.t.0"
    ctx = ComposeContext(manifest=manifest.load(path), manifest_path=path, target=target, paths=target.compose(cid),
                         compose_id=cid, compose_type="test", source_date_epoch=1700000000)
    ctx.variants = [VariantState(v, "amd64", ref=f"r/{v}", commit="ab" * 32) for v in ctx.manifest.variants]
    return ctx


def test_disk_and_boot_test_follow_each_variants_outputs(tmp_path: Path) -> None:
    ctx = context(tmp_path, VARIANTS)
    assert DiskPhase(ctx).formats("base") == ["qcow2"] and DiskPhase(ctx).formats("particle") == []
    assert DiskPhase(ctx).skip_reason() is None and BootTestPhase(ctx).skip_reason() is None
    # the boot test boots base only: particle has no disk image and its boot_test is off
    BootTestPhase(ctx).run()
    assert ctx.incomplete == ["boot-test base/amd64: no disk image was built"]
    assert "particle/amd64: not booted (boot_test.enabled is false)" in ctx.paths.log("boot_test").read_text()
    # a compose whose only disk image belongs to a variant that boots nothing: no boot test at all
    only = context(tmp_path / "2", VARIANTS.replace("boot_test: {enabled: true,", "boot_test: {enabled: false,"))
    assert BootTestPhase(only).skip_reason() == "boot_test.enabled is false"
    none = context(tmp_path / "3", VARIANTS.replace("outputs: [oci, qcow2]\n", ""))
    assert DiskPhase(none).skip_reason() is not None
    assert BootTestPhase(none).skip_reason() == "no disk image to boot (add raw or qcow2 to outputs)"


def test_missing_deliverables_per_variant(tmp_path: Path) -> None:
    ctx = context(tmp_path, VARIANTS)
    for vs in ctx.variants:
        archive = tmp_path / f"{vs.variant}.oci-archive"
        archive.write_bytes(b"x")
        vs.images.append(ImageRecord(vs.variant, "amd64", archive, "bootable-container", "ociarchive",
                                     checksums={"sha256": "0" * 64}))
        checksum = ctx.paths.checksum_file(vs.variant, "amd64")
        checksum.parent.mkdir(parents=True, exist_ok=True)
        checksum.write_text("")
    ctx.incomplete.clear()
    assert missing_deliverables(ctx) == ["base/amd64: no qcow2 deliverable was produced"]  # particle asks none
    # a compose that skipped the disk phase must not stand in for one with base's qcow2
    assert reuse_key("h", ctx.manifest, ["disk"]) != reuse_key("h", ctx.manifest, [])
    single = context(tmp_path / "s", MINIMAL)
    assert reuse_key("h", single.manifest, ["disk"]) == "h"
