"""A synthetic FINISHED base compose (STATUS, manifest copy, lockfile, ostree.json, OCI index) for derived-manifest
tests: what ``base:`` loads and checks, without composing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from deb_bootc_compose import metadata as md
from deb_bootc_compose.lockfile import LockedPackage, LockedVariant, Lockfile
from deb_bootc_compose.oci import write_oci_image
from deb_bootc_compose.paths import TargetPaths

CID = "atomic-13-20261205.t.0"
BASE: dict[str, Any] = {
    "name": "atomic", "version": "13", "suite": "trixie",
    "sources": [{"url": "http://deb.debian.org/debian"}],
    "packages": ["systemd", "sudo", "iproute2"], "exclude": ["nano"], "locale": "en_US.UTF-8",
    "files": [{"path": "/etc/issue.d/atomic.issue", "content": "Atomic\n"}],
    "postprocess": [{"name": "net", "script": "true"}],
    "os_release": {"NAME": "Atomic", "VARIANT_ID": "base"},
    "update": {"ostree": {"url": "https://updates.example.org/repo", "gpg_public_key": "https://x/k.asc"}},
    "outputs": ["oci", "qcow2"],
    "variants": {"base": {}, "cloud": {"add": ["cloud-init"], "os_release": {"VARIANT_ID": "cloud"}}},
}


def pkg(name: str, version: str = "1.0") -> LockedPackage:
    return LockedPackage(name=name, version=version, arch="amd64", sha256="0" * 64, size=1, url=f"http://x/{name}.deb",
                         repo="http://deb.debian.org/debian")


def make_base(root: Path, data: dict[str, Any] = BASE, status: str = "FINISHED", oci: bool = True, cid: str = CID,
              version: str = "1.0") -> Path:
    """The compose ``cid`` (its packages at ``version``) in ``root/target``, ``latest-atomic-13`` pointing at it."""
    paths = TargetPaths(root / "target").compose(cid)
    paths.metadata.mkdir(parents=True)
    paths.status.write_text(status + "\n")
    paths.manifest_copy.write_text(yaml.safe_dump(data))
    variants = {v: {"amd64": LockedVariant(requested=[], packages=[pkg("systemd", version), pkg("sudo", version)])}
                for v in ("base", "cloud")}
    Lockfile(name="atomic", version="13", suite="trixie", source_date_epoch=1, sources=[], variants=variants) \
        .write(paths.lockfile)
    meta = md.ComposeMeta(cid, "atomic", "atomic", "13")
    md.write_json(paths.ostree_json, md.ostree_manifest(meta, [md.OstreeMeta(v, "amd64", f"atomic/{v}", "a" * 64)
                                                              for v in ("base", "cloud")]))
    for variant in ("base", "cloud") if oci else ():
        layout = paths.oci_dir(variant, "amd64") / "layout"
        layout.mkdir(parents=True)
        (layout / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:" + "b" * 64}]}))
    latest = root / "target" / "latest-atomic-13"
    latest.unlink(missing_ok=True)
    latest.symlink_to(cid)
    return paths.topdir


IMAGE_COMMIT = "c" * 64


def image(tmp_path: Path, records: bool = True) -> Path:
    """A small image of the synthetic base's ``cloud`` variant, carrying the base's manifest and lockfile under
    /usr/lib/deb-bootc (unless ``records`` is false) as our images do; its OCI layout (tag ``13``)."""
    compose = make_base(tmp_path)
    tree = tmp_path / "tree"
    (tree / "usr/lib/deb-bootc").mkdir(parents=True)
    (tree / "etc").mkdir()
    if records:
        shutil.copyfile(compose / "metadata/manifest.yaml", tree / "usr/lib/deb-bootc/manifest.yaml")
        shutil.copyfile(compose / "metadata/lockfile.yaml", tree / "usr/lib/deb-bootc/lockfile.yaml")
    out = tmp_path / "oci"
    write_oci_image(tree, out, ref_name="13", labels={"org.debian.bootc.variant": "cloud"}, source_date_epoch=1,
                    kernel_version=None, ostree_commit=IMAGE_COMMIT, previous_plan=None, plan_out=out / "plan.json")
    return out / "layout"
