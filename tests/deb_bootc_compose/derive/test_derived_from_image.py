"""``base: {image: REF}``: a derived manifest on one of our images (``oci:``, ``oci-archive:``), which carries its
manifest and lockfile under /usr/lib/deb-bootc and its variant and commit as labels (a synthetic image written by
the OCI writer; skopeo for the archive). Bad references and images without those records are refused clearly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from basecomposes import BASE, IMAGE_COMMIT, image

from deb_bootc_compose import lockfile, manifest
from deb_bootc_compose.derive.pins import record


def derived(root: Path, base: dict[str, str]) -> Path:
    path = root / "particle.yaml"
    path.write_text(yaml.safe_dump({"base": base, "name": "particle", "version": "1", "packages": ["htop"]}))
    return path


def test_an_image_serves_as_base_from_a_layout_and_from_an_archive(tmp_path: Path) -> None:
    layout = image(tmp_path)
    m = manifest.load(derived(tmp_path, {"image": f"oci:{layout}:13"}))
    base = m.derived_from
    assert base is not None and base.paths is None and base.variant == "cloud"  # the image's own label
    assert m.variant_packages("base") == [*BASE["packages"], "cloud-init", "htop"]
    assert base.commits == {"amd64": IMAGE_COMMIT} and base.images["amd64"].layout == layout
    locked = record(base)
    assert (locked.image, locked.compose_id, locked.compose_dir) == (f"oci:{layout}:13", "", "")
    lock = lockfile.load(tmp_path / "target" / "latest-atomic-13" / "metadata/lockfile.yaml")
    lock.base = locked
    lock.write(tmp_path / "v2.yaml")
    assert lockfile.load(tmp_path / "v2.yaml").base == locked
    archive = tmp_path / "cloud.oci-archive"
    subprocess.run(["skopeo", "copy", f"oci:{layout}:13", f"oci-archive:{archive}:13"], check=True,
                   capture_output=True)
    (tmp_path / "sub").mkdir()
    m2 = manifest.load(derived(tmp_path / "sub", {"image": "oci-archive:../cloud.oci-archive", "variant": "cloud"}))
    assert m2.derived_from is not None  # relative to the manifest; the blobs copied with their digests
    assert m2.derived_from.images["amd64"].manifest_digest == base.images["amd64"].manifest_digest


@pytest.mark.parametrize(("case", "expect"), [
    ("transport", r"base\.image: 'containers-storage:x' is not an image reference this tool reads as a base"),
    ("records", r"carries no /usr/lib/deb-bootc/manifest\.yaml and no /usr/lib/deb-bootc/lockfile\.yaml: it was "
                r"not made by deb-bootc-compose"),
    ("variant", r"is variant 'cloud', not 'base': drop base\.variant"),
    ("missing", r"base\.image: the base image oci:.*/nowhere"),
    ("both", r"give exactly one of 'compose: DIR' \(a compose directory\) or 'image: REF'"),
])
def test_a_bad_image_base_is_a_clear_manifest_error(tmp_path: Path, case: str, expect: str) -> None:
    layout = image(tmp_path, records=case != "records")
    ref = {"transport": "containers-storage:x", "missing": f"oci:{tmp_path}/nowhere"}.get(case, f"oci:{layout}:13")
    base = {"image": ref, **({"variant": "base"} if case == "variant" else {}),
            **({"compose": "x"} if case == "both" else {})}
    with pytest.raises(manifest.ManifestError, match=expect):
        manifest.load(derived(tmp_path, base))
