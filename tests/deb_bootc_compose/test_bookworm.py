"""bookworm as far as its older ostree allows (docs/compose.md, Targets): gather resolves the minimal manifest
with every bootable addition from bookworm's own packages. A full bookworm compose (FINISHED with the OSTree
commit and the OCI image) was run by hand; it costs a full compose, too much for every CI run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES

from deb_bootc_compose.aptconfig import PrivateApt
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.phases.gather import bootable_additions

pytestmark = pytest.mark.integration


def test_bookworm_resolves_the_minimal_manifest(tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data.update(suite="bookworm", version="12")
    mpath = tmp_path / "bookworm.yaml"
    mpath.write_text(yaml.safe_dump(data))
    m = load_manifest(mpath)
    apt = PrivateApt(tmp_path / "apt", m, "amd64", tmp_path)
    apt.setup()
    log = tmp_path / "gather.log"
    apt.update(log)
    idx = apt.index()
    requested = m.variant_packages("base")
    added = [a.name for a in bootable_additions(requested, "amd64")]
    assert added == ["ostree", "ostree-boot", "dracut", "grub2-common", "grub-efi-amd64-bin"]
    resolved = {p.name: p for p in apt.resolve(sorted(idx.essential | idx.required | {"apt"}) + requested + added,
                                               [], log)}
    assert resolved["ostree"].version.startswith("2022.7")  # the older ostree the docs describe
    assert resolved["dracut"].version.startswith("059")
    assert resolved["systemd"].version.startswith("252.")
    assert any(n.startswith("linux-image-6.1.") for n in resolved)
    assert {"ostree-boot", "grub-efi-amd64-bin", "grub2-common", "hello", "openssh-server"} <= set(resolved)
    assert all(p.url.startswith("http://deb.debian.org/debian/pool/") for p in resolved.values())
    assert 170 < len(resolved) < 230
