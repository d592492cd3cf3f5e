"""One real compose (the CLI) of a manifest with two variants, in the session compose's target (its pool and apt
lists make gather cheap): variant ``a`` takes the manifest's settings, ``b`` adds a package, a file, a postprocess
script and an os-release identity, and asks for other outputs. Each variant's commit, os-release and entries
in images.json, ostree.json and packages.json are checked. The same compose carries the plugins: manifest hooks
(run sandboxed, reading the compose directory, failing to write it), the example third-party plugin of
docs/plugins.md installed with pip, and each variant's SBOM."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import productmd.images
import pytest
import yaml
from compose_helpers import EXAMPLES, REPO, SessionCompose, run_cli

from deb_bootc_compose import osrelease

pytestmark = pytest.mark.integration
NAME = "variants-bootc"  # its own compose IDs, refs and latest link: the session compose's stay as they are
OWN = "/usr/share/variants-test"
# after ostree-commit: the SBOMs are there to read; nothing in the compose directory can be written
CHECK_HOOK = """m="$DEB_BOOTC_COMPOSE_METADATA"
grep -q '"name": "tree"' "$m/sbom/b.amd64.spdx.json"
if grep -q '"name": "tree"' "$m/sbom/a.amd64.spdx.json"; then echo "tree in a"; exit 1; fi
echo "commit of b: $DEB_BOOTC_COMPOSE_COMMIT_B_AMD64 ($DEB_BOOTC_COMPOSE_VARIANTS)"
for f in "$DEB_BOOTC_COMPOSE_DIR/hook-was-here" "$m/sbom/a.amd64.spdx.json" "$DEB_BOOTC_COMPOSE_LOGS/hooks.log" \\
         "$DEB_BOOTC_COMPOSE_WORK/b/amd64/tree/etc/hook-was-here" "$DEB_BOOTC_COMPOSE_OSTREE_REPO/hook-was-here"; do
  if (echo hook >> "$f") 2>/dev/null; then echo "WROTE $f"; exit 1; fi
done
echo "read-only: $(touch "$DEB_BOOTC_COMPOSE_DIR/x" 2>&1)"
if getent ahosts deb.debian.org >/dev/null 2>&1; then echo "NETWORK"; exit 1; fi
echo "uid $(id -u), no network"
"""


def ostree(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ostree", f"--repo={repo}", *args], check=check, capture_output=True, text=True)


def write_manifest(tmp_path: Path) -> Path:
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data.update({
        "name": NAME,
        "hooks": {"before": {"gather": ['echo "hook $DEB_BOOTC_COMPOSE_HOOK $DEB_BOOTC_COMPOSE_PHASE of '
                                        '$DEB_BOOTC_COMPOSE_ID in $DEB_BOOTC_COMPOSE_DIR"']},
                  "after": {"ostree-commit": [CHECK_HOOK]}},
        "plugins": {"pkgcount": {"max_packages": 1000}},  # docs/plugins.md's example, installed by the fixture
        "files": [{"path": f"{OWN}/from-manifest", "content": "manifest\n"}],
        "postprocess": [{"name": "order", "script": f"echo manifest > {OWN}/order\n"}],
        "outputs": ["oci", "qcow2"],
        "variants": {
            "a": {},
            "b": {
                "add": ["tree"],
                "files": [{"path": f"{OWN}/b.txt", "source": "b.txt", "mode": "0640"}],
                # runs after the manifest's script, in a tree holding b's own package
                "postprocess": [{"name": "b-order", "script": f"echo b >> {OWN}/order\n"
                                                              f"tree --version > {OWN}/tree-version\n"}],
                "outputs": ["oci"],
                "os_release": {"ID": "particle-os", "NAME": "Particle-OS", "VERSION_ID": "1", "VARIANT_ID": "b",
                               "PRETTY_NAME": "Particle-OS 1 (on Debian 13)"},
            },
        },
    })
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "b.txt").write_text("only in b\n")
    return path


def install_example_plugin(where: Path) -> Path:
    """pip-installs examples/compose-plugin (from a copy: pip builds in the source tree) into ``where``; the
    directory to put on PYTHONPATH."""
    src = shutil.copytree(REPO / "examples/compose-plugin", where / "src")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(where / "site"), str(src)], check=True, capture_output=True)
    return where / "site"


@pytest.fixture(scope="module")
def variants_compose(minimal_compose: SessionCompose, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-variant compose (once for this module's tests); its directory."""
    base = tmp_path_factory.mktemp("variants-manifest")
    manifest = write_manifest(base)
    site = install_example_plugin(base)
    run = run_cli(["--config", str(manifest), "--target-dir", str(minimal_compose.target), "--compose-type", "test"],
                  env={"PYTHONPATH": str(site)})
    assert run.returncode == 0, run.stderr[-4000:]
    return Path(run.last_line)


def test_two_variants_get_their_own_settings(minimal_compose: SessionCompose, variants_compose: Path) -> None:
    topdir = variants_compose
    assert topdir.name.startswith(f"{NAME}-13-") and (topdir / "STATUS").read_text().strip() == "FINISHED"
    repo = minimal_compose.target / "ostree/repo"
    a, b = (f"{NAME}/trixie/amd64/{v}" for v in ("a", "b"))

    def cat(ref: str, path: str) -> str:
        return ostree(repo, "cat", ref, path).stdout

    # packages: b's added package in b only
    assert ostree(repo, "ls", b, "/usr/bin/tree").returncode == 0
    assert ostree(repo, "ls", a, "/usr/bin/tree", check=False).returncode != 0
    # files and postprocess: the manifest's in both, b's own after them in b only
    for ref in (a, b):
        assert cat(ref, f"{OWN}/from-manifest") == "manifest\n"
    assert cat(a, f"{OWN}/order") == "manifest\n" and cat(b, f"{OWN}/order") == "manifest\nb\n"
    assert cat(b, f"{OWN}/tree-version").startswith("tree v")
    assert cat(b, f"{OWN}/b.txt") == "only in b\n" and ostree(repo, "ls", b, f"{OWN}/b.txt").stdout.startswith("-00640")
    assert ostree(repo, "ls", a, f"{OWN}/b.txt", check=False).returncode != 0
    # os-release: a keeps Debian's byte for byte (as the session compose has it); b has its identity over Debian's
    debian = cat("debian-bootc/trixie/amd64/base", "/usr/lib/os-release")
    assert cat(a, "/usr/lib/os-release") == debian
    keys = osrelease.parse(cat(b, "/usr/lib/os-release"))
    assert {k: keys[k] for k in ("ID", "ID_LIKE", "NAME", "VERSION_ID", "VARIANT_ID", "PRETTY_NAME")} == {
        "ID": "particle-os", "ID_LIKE": "debian", "NAME": "Particle-OS", "VERSION_ID": "1", "VARIANT_ID": "b",
        "PRETTY_NAME": "Particle-OS 1 (on Debian 13)"}
    assert keys["VERSION_CODENAME"] == osrelease.parse(debian)["VERSION_CODENAME"] == "trixie"
    assert ostree(repo, "ls", b, "/usr/etc/os-release").stdout.rstrip().endswith("-> ../usr/lib/os-release")
    check_metadata(topdir)


def check_metadata(topdir: Path) -> None:
    """images.json: a has its OCI archive and the manifest's qcow2; b, whose outputs replace the manifest's, has
    only its OCI archive (and no images directory); ostree.json and packages.json list both."""
    images = productmd.images.Images()
    images.load(str(topdir / "metadata/images.json"))
    formats = {v: sorted(img.format for img in images[v]["amd64"]) for v in ("a", "b")}
    assert formats == {"a": ["ociarchive", "qcow2"], "b": ["ociarchive"]}
    for v in ("a", "b"):
        for img in images[v]["amd64"]:
            assert (topdir / img.path).is_file() and img.subvariant == v, img.path
    assert (topdir / "compose/a/amd64/images").is_dir() and not (topdir / "compose/b/amd64/images").exists()
    commits = json.loads((topdir / "metadata/ostree.json").read_text())["payload"]["variants"]
    assert {v: commits[v]["amd64"]["ref"] for v in commits} == {"a": f"{NAME}/trixie/amd64/a",
                                                                 "b": f"{NAME}/trixie/amd64/b"}
    packages = json.loads((topdir / "metadata/packages.json").read_text())["payload"]["packages"]
    names = {v: {row["name"] for row in packages[v]["amd64"]} for v in ("a", "b")}
    assert names["b"] - names["a"] == {"tree"} and names["a"] <= names["b"]
    phases = {p["name"]: p["state"] for p in json.loads((topdir / "metadata/phases.json").read_text())["payload"]
              ["phases"]}
    assert phases["disk"] == "done" and phases["boot-test"] == "not-needed"


def test_hooks_plugin_and_sboms_of_the_variants(variants_compose: Path) -> None:
    """The manifest's hooks ran sandboxed with the compose's IDs and paths, read the SBOMs and wrote nothing; the
    pip-installed example plugin wrote its file; both SBOMs are valid and listed in extra-files.json."""
    topdir = variants_compose
    log = (topdir / "logs/hooks.log").read_text()
    assert f"hook before gather of {topdir.name} in {topdir}\n" in log
    commit_b = json.loads((topdir / "metadata/ostree.json").read_text())["payload"]["variants"]["b"]["amd64"]["commit"]
    assert f"commit of b: {commit_b} (a/amd64 b/amd64)" in log
    assert "read-only: touch: cannot touch" in log and "Read-only file system" in log
    assert "\nWROTE " not in log and "\nuid 0, no network\n" in log  # (the command itself says "WROTE $f")
    assert not (topdir / "hook-was-here").exists() and not (topdir / "x").exists()
    assert not (topdir / "work/b/amd64/tree/etc/hook-was-here").exists()
    counts = json.loads((topdir / "metadata/plugins/pkgcount/counts.json").read_text())
    packages = json.loads((topdir / "metadata/packages.json").read_text())["payload"]["packages"]
    assert counts == {f"{v}/amd64": len(packages[v]["amd64"]) for v in ("a", "b")}
    assert counts["b/amd64"] == counts["a/amd64"] + 1
    assert f"compose {topdir.name}" in (topdir / "logs/plugin-pkgcount.log").read_text()
    listed = json.loads((topdir / "metadata/extra-files.json").read_text())["payload"]["files"]
    assert [(f["path"], f["plugin"], f["variant"]) for f in listed] == [
        ("metadata/plugins/pkgcount/counts.json", "pkgcount", ""),
        ("metadata/sbom/a.amd64.spdx.json", "sbom", "a"), ("metadata/sbom/b.amd64.spdx.json", "sbom", "b")]
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    for v in "ab":
        path = topdir / f"metadata/sbom/{v}.amd64.spdx.json"
        assert validate_full_spdx_document(parse_file(str(path))) == []
        assert json.loads(path.read_text())["name"] == f"{NAME}-13-{v}.amd64"


def image_layers(topdir: Path, variant: str) -> tuple[Path, list[dict[str, Any]]]:
    """The blobs directory and the manifest's layers of the variant's OCI layout."""
    layout = topdir / f"compose/{variant}/amd64/oci/layout"
    blobs = layout / "blobs/sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    return blobs, manifest["layers"]


def layer_names(blob: Path) -> set[str]:
    with tarfile.open(blob, "r:gz") as tar:
        return {m.name.rstrip("/") for m in tar.getmembers()}


def test_variants_share_their_common_layers(variants_compose: Path) -> None:
    """Layers common to both images are the same blobs (a registry stores them once); what only one image has
    is its own: b's package layer and each image's last layer (files no package owns, files that differ)."""
    topdir = variants_compose
    (blobs, a), (_, b) = image_layers(topdir, "a"), image_layers(topdir, "b")
    ids = {v: {str(x["annotations"]["org.debian.bootc.layer"]): x for x in layers}
           for v, layers in (("a", a), ("b", b))}
    common = sorted(set(ids["a"]) & set(ids["b"]) - {"unowned"})
    assert "kernel" in common and len(common) >= 10
    for layer_id in common:
        assert ids["a"][layer_id]["digest"] == ids["b"][layer_id]["digest"], layer_id
    plans = {v: json.loads((topdir / f"compose/{v}/amd64/oci/layer-plan.json").read_text()) for v in "ab"}
    own_b = {x["id"]: x["packages"] for x in plans["b"]["layers"] if x["variants"] == ["b"]}
    assert sorted(p for pkgs in own_b.values() for p in pkgs) == ["tree"]
    assert set(ids["a"]) - set(common) == {"unowned"}
    assert set(ids["b"]) - set(common) == {"unowned", *own_b}
    # identity files are in each image's last layer, never in a shared one (b's os-release is its own)
    base_files = next(x["id"] for x in plans["a"]["layers"] if "base-files" in x["packages"])
    assert "usr/lib/os-release" not in layer_names(blobs / str(ids["a"][base_files]["digest"]).split(":")[1])
    for v in "ab":
        last = image_layers(topdir, v)[1][-1]
        names = layer_names(topdir / f"compose/{v}/amd64/oci/layout/blobs/sha256" / str(last["digest"]).split(":")[1])
        assert "usr/lib/os-release" in names and "etc/passwd" in names
        # a directory differing in its mtime alone (usr/share/doc) is restated there, its files stay shared
        assert "usr/share/doc/libc6/copyright" not in names
    sizes = {v: {str(x["digest"]): int(x["size"]) for x in layers} for v, layers in (("a", a), ("b", b))}
    alone = sum(sum(s.values()) for s in sizes.values())
    together = sum({**sizes["a"], **sizes["b"]}.values())
    own = sum(sizes[v][str(ids[v][i]["digest"])] for v in "ab" for i in set(ids[v]) - set(common))
    shared = sum(sizes["a"][str(ids["a"][i]["digest"])] for i in common)
    assert together == shared + own  # shared layers stored once
    print(f"FIGURE variants a+b OCI layers: {together / 1e6:.1f} MB stored together vs {alone / 1e6:.1f} MB "
          f"one by one ({len(common)} shared layers, {shared / 1e6:.1f} MB; own layers {own / 1e6:.2f} MB)")
