"""The OCI writer on a real Debian tree (mmdebstrap minbase trixie), checked by skopeo, umoci and podman."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deb_bootc_compose.oci import OSTREE_COMMIT_LABEL, OciResult, write_oci_image
from debsandbox.commands import output, run

pytestmark = pytest.mark.integration

SDE = 1735689600
COMMIT = "9" * 64


def write(tree: Path, out: Path, **kwargs: object) -> OciResult:
    args: dict[str, object] = {
        "ref_name": "13",
        "labels": {"org.opencontainers.image.title": "debian-bootc", "org.opencontainers.image.version": "13"},
        "source_date_epoch": SDE,
        "kernel_version": None,
        "ostree_commit": COMMIT,
        "previous_plan": None,
        "plan_out": out / "plan.json",
    }
    args.update(kwargs)
    return write_oci_image(tree, out, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def image(minbase_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> OciResult:
    return write(minbase_tree, tmp_path_factory.mktemp("oci") / "out")


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Type, mode, size, link target, content hash, hardlink group of every entry below root."""
    inodes: dict[tuple[int, int], str] = {}
    result: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            kind = stat.S_IFMT(st.st_mode)
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
            group = None
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                group = inodes.setdefault((st.st_dev, st.st_ino), rel)
            result[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_size if digest else None, target, digest, group)
    return result


def test_real_tree_is_reproducible(image: OciResult, minbase_tree: Path, tmp_path: Path) -> None:
    again = write(minbase_tree, tmp_path / "again", jobs=1)
    assert again.manifest_digest == image.manifest_digest
    assert again.archive_path.read_bytes() == image.archive_path.read_bytes()
    packages = {p for layer in image.layers for p in layer.packages}
    listed = {p.name[: -len(".list")] for p in (minbase_tree / "usr/lib/sysimage/dpkg/info").glob("*.list")}
    assert packages == listed
    assert len(image.layers) <= 64


def test_skopeo_inspects_layout_and_archive(image: OciResult) -> None:
    for ref in (f"oci:{image.layout_dir}:13", f"oci-archive:{image.archive_path}"):
        data = json.loads(output(["skopeo", "inspect", ref]))
        assert data["Digest"] == image.manifest_digest
        assert data["Labels"]["containers.bootc"] == "1"
        assert data["Labels"]["ostree.bootable"] == "1"
        assert data["Labels"][OSTREE_COMMIT_LABEL] == COMMIT
        assert "ostree.commit" not in data["Labels"]
        assert data["Architecture"] == "amd64" and data["Os"] == "linux"
        assert data["Layers"] == [layer.digest for layer in image.layers]
        raw = json.loads(output(["skopeo", "inspect", "--raw", ref]))
        assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_umoci_unpack_matches_tree(image: OciResult, minbase_tree: Path, tmp_path: Path) -> None:
    stat_out = json.loads(output(["umoci", "stat", "--json", "--image", f"{image.layout_dir}:13"]))
    assert len([h for h in stat_out["history"] if not h.get("empty_layer")]) == len(image.layers)
    bundle = tmp_path / "bundle"
    run(["umoci", "unpack", "--rootless", "--image", f"{image.layout_dir}:13", str(bundle)], log=tmp_path / "umoci.log")
    expected = snapshot(minbase_tree)
    got = snapshot(bundle / "rootfs")
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"missing {missing[:10]}, extra {extra[:10]}"
    differ = [p for p in expected if expected[p] != got[p]]
    assert not differ, [(p, expected[p], got[p]) for p in differ[:5]]
    assert os.readlink(bundle / "rootfs/var/lib/dpkg") == "../../usr/lib/sysimage/dpkg"


def test_podman_runs_dpkg_l(image: OciResult, minbase_tree: Path) -> None:
    image_id = output(["podman", "pull", "-q", f"oci-archive:{image.archive_path}"]).strip().splitlines()[-1]
    try:
        listing = output(
            [
                "podman", "run", "--rm", "--runtime", "runc", "--cgroup-manager=cgroupfs",
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network=none",
                image_id, "dpkg", "-l",
            ]
        )  # fmt: skip
    finally:
        subprocess.run(["podman", "rmi", "--force", image_id], capture_output=True, check=False)
    installed = {line.split()[1] for line in listing.splitlines() if line.startswith("ii ")}
    listed = {p.name[: -len(".list")] for p in (minbase_tree / "usr/lib/sysimage/dpkg/info").glob("*.list")}
    assert installed == listed
    assert len(installed) > 50


@pytest.fixture
def tree_copy(minbase_tree: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "tree"
    subprocess.run(["cp", "-a", str(minbase_tree), str(copy)], check=True)
    yield copy
    shutil.rmtree(copy)


def test_one_package_change_changes_only_its_layer(image: OciResult, tree_copy: Path, tmp_path: Path) -> None:
    # replace one file owned by one package (sed), as an upgrade of that package would
    sed = tree_copy / "usr/bin/sed"
    sed.write_bytes(sed.read_bytes() + b"\0patched")
    changed = write(tree_copy, tmp_path / "changed", previous_plan=image.plan_path)
    assert [x.id for x in changed.layers] == [x.id for x in image.layers]
    differ = [(a, b) for a, b in zip(image.layers, changed.layers, strict=True) if a.digest != b.digest]
    assert len(differ) == 1
    assert "sed" in differ[0][1].packages
    fraction = differ[0][1].size / changed.size
    assert fraction < 0.10, f"{fraction:.1%} of the image changed"


def test_max_layers_on_real_tree(minbase_tree: Path, tmp_path: Path) -> None:
    small = write(minbase_tree, tmp_path / "small", max_layers=6)
    assert len(small.layers) == 6
    data = json.loads(output(["skopeo", "inspect", f"oci:{small.layout_dir}:13"]))
    assert len(data["Layers"]) == 6


def test_layer_members_keep_owners_and_modes(image: OciResult, minbase_tree: Path) -> None:
    """umoci --rootless maps owners away; read the layers themselves for uid, gid, mode and mtime."""
    seen = 0
    for layer in image.layers:
        blob = image.layout_dir / "blobs/sha256" / layer.digest.split(":")[1]
        with tarfile.open(blob, "r:gz") as tar:
            for member in tar:
                st = (minbase_tree / member.name).lstat()
                assert (member.uid, member.gid) == (st.st_uid, st.st_gid), member.name
                assert member.mode == stat.S_IMODE(st.st_mode), member.name
                assert member.mtime == min(int(st.st_mtime), SDE), member.name
                assert member.uname == "" and member.gname == ""
                seen += 1
    assert seen > len(list(minbase_tree.rglob("*")))  # directories repeat across layers
    # etc/shadow is root:shadow, usr/bin/chage setgid shadow: a non-root group really is carried
    shadow_gid = (minbase_tree / "etc/shadow").lstat().st_gid
    assert shadow_gid != 0
    unowned = next(x for x in image.layers if x.id == "unowned")
    with tarfile.open(image.layout_dir / "blobs/sha256" / unowned.digest.split(":")[1], "r:gz") as tar:
        assert tar.getmember("etc/shadow").gid == shadow_gid
