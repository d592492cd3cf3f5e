"""``base: {image: docker://…}``: a derived manifest on one of our images in a real registry (Debian's
docker-registry over TLS with a test CA). The image is pulled with its digests preserved, so the derived image can
carry the base's layers verbatim; by tag and pinned by digest. A registry whose certificate this machine does not
trust, and a tag the registry does not have, are clear manifest errors. The CA is trusted the way containers
tools are told to on a real machine: ``/etc/containers/certs.d/HOST:PORT/ca.crt``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from basecomposes import IMAGE_COMMIT, image
from regserver import Registry

from deb_bootc_compose import manifest

pytestmark = pytest.mark.integration
CERTS_D = Path("/etc/containers/certs.d")


def derived(root: Path, ref: str) -> Path:
    path = root / "particle.yaml"
    path.write_text(yaml.safe_dump({"base": {"image": ref}, "name": "particle", "version": "1",
                                    "packages": ["htop"]}))
    return path


@pytest.fixture
def pushed(registry: Registry, tmp_path: Path) -> tuple[str, str]:
    """The synthetic image pushed as HOST/atomic/cloud:13; (its repository, its manifest digest)."""
    layout = image(tmp_path)
    repo = f"{registry.host}/atomic/cloud"
    subprocess.run(["skopeo", "copy", "--dest-cert-dir", str(registry.cert_dir), f"oci:{layout}:13",
                    f"docker://{repo}:13"], check=True, capture_output=True)
    index = json.loads((layout / "index.json").read_text())
    return repo, str(index["manifests"][0]["digest"])


@pytest.fixture
def trusted(registry: Registry) -> Iterator[None]:
    where = CERTS_D / registry.host
    assert not where.exists(), f"{where} exists already: another run's leftover"
    where.mkdir(parents=True)
    shutil.copyfile(registry.cert_dir / "ca.crt", where / "ca.crt")
    try:
        yield
    finally:
        shutil.rmtree(where)


def test_an_untrusted_registry_is_a_clear_error(pushed: tuple[str, str], tmp_path: Path) -> None:
    repo, _ = pushed
    with pytest.raises(manifest.ManifestError, match=r"base\.image: the base image docker://.*certificate"):
        manifest.load(derived(tmp_path, f"docker://{repo}:13"))


def test_a_registry_image_serves_as_base_by_tag_and_by_digest(pushed: tuple[str, str], trusted: None,
                                                                tmp_path: Path) -> None:
    repo, digest = pushed
    m = manifest.load(derived(tmp_path, f"docker://{repo}:13"))
    base = m.derived_from
    assert base is not None and base.paths is None and base.variant == "cloud"  # the image's own label
    assert base.commits == {"amd64": IMAGE_COMMIT}
    assert base.images["amd64"].manifest_digest == digest  # the very manifest pushed: its layers' digests too
    assert "cloud-init" in m.variant_packages("base") and "htop" in m.variant_packages("base")
    (tmp_path / "pinned").mkdir()
    pinned = manifest.load(derived(tmp_path / "pinned", f"docker://{repo}@{digest}")).derived_from
    assert pinned is not None and pinned.images["amd64"].manifest_digest == digest
    (tmp_path / "missing").mkdir()
    with pytest.raises(manifest.ManifestError, match=r"base\.image: the base image docker://.*:14.*no such image"):
        manifest.load(derived(tmp_path / "missing", f"docker://{repo}:14"))
