"""Unit tests of the OCI writer on small synthetic trees (no container tool needed)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest
from synthetic import KVER, SDE, add_package, make_tree, noise

from deb_bootc_compose.oci import OSTREE_COMMIT_LABEL, OciCancelled, OciError, OciResult, write_oci_image
from deb_bootc_compose.oci.plan import PlanError
from deb_bootc_compose.oci.tarlayer import header_for, tarinfo_for
from deb_bootc_compose.oci.tree import scan_tree


def write(tree: Path, out: Path, *, plan: Path | None = None, **kwargs: object) -> OciResult:
    args: dict[str, object] = {
        "ref_name": "13",
        "labels": {"org.opencontainers.image.title": "debian-bootc", "org.opencontainers.image.version": "13"},
        "source_date_epoch": SDE,
        "kernel_version": KVER,
        "ostree_commit": "c0ffee" * 10 + "abcd",
        "previous_plan": plan,
        "plan_out": out / "plan.json",
    }
    args.update(kwargs)
    return write_oci_image(tree, out, **args)  # type: ignore[arg-type]


def blob(result: OciResult, digest: str) -> bytes:
    return (result.layout_dir / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def layer_members(result: OciResult, layer_id: str) -> dict[str, tarfile.TarInfo]:
    layer = next(x for x in result.layers if x.id == layer_id)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(result, layer.digest)))) as tar:
        return {m.name: m for m in tar.getmembers()}


def layer_of(result: OciResult, path: str) -> str:
    found = [
        x.id
        for x in result.layers
        if path in layer_members(result, x.id) and not layer_members(result, x.id)[path].isdir()
    ]
    assert len(found) == 1, f"{path} is in layers {found}"
    return found[0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree")


def test_layers_split_by_package_kernel_and_unowned(tree: Path, tmp_path: Path) -> None:
    result = write(tree, tmp_path / "out")
    ids = [x.id for x in result.layers]
    assert ids[-2:] == ["kernel", "unowned"]
    kernel = next(x for x in result.layers if x.id == "kernel")
    assert kernel.packages == [f"linux-image-{KVER}"]
    assert layer_of(result, f"usr/lib/modules/{KVER}/vmlinuz") == "kernel"
    assert layer_of(result, f"usr/lib/modules/{KVER}/initramfs.img") == "kernel"
    assert layer_of(result, f"usr/share/doc/linux-image-{KVER}/changelog.gz") == "kernel"
    assert layer_of(result, "etc/hostname") == "unowned"
    assert layer_of(result, "usr/lib/sysimage/dpkg/status") == "unowned"
    bash_layer = layer_of(result, "usr/bin/bash")
    assert "bash" in next(x for x in result.layers if x.id == bash_layer).packages
    # the database's own files for a package travel with the package
    assert layer_of(result, "usr/lib/sysimage/dpkg/info/bash.list") == bash_layer
    # merged /usr: sed.list says /bin/sed, the file is usr/bin/sed
    sed_layer = layer_of(result, "usr/bin/sed")
    assert "sed" in next(x for x in result.layers if x.id == sed_layer).packages
    # every file of the tree is in exactly one layer
    files = {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_symlink() or not p.is_dir()}
    in_layers: list[str] = []
    for layer in result.layers:
        in_layers += [n for n, m in layer_members(result, layer.id).items() if not m.isdir()]
    assert sorted(in_layers) == sorted(files)


def test_tar_members_are_deterministic_and_complete(tree: Path, tmp_path: Path) -> None:
    later = SDE + 100000
    os.utime(tree / "usr/bin/hello", (later, later))
    os.utime(tree / "etc/hostname", (SDE - 50, SDE - 50))
    result = write(tree, tmp_path / "out")
    members: dict[str, tarfile.TarInfo] = {}
    for layer in result.layers:
        raw = blob(result, layer.digest)
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0", "gzip header must carry mtime 0"
        members.update(layer_members(result, layer.id))
    for link in ("bin", "lib", "lib64", "var/lib/dpkg"):
        info = members[link]
        assert info.issym(), f"{link} must be a symlink entry, not followed"
    assert members["lib64"].linkname == "usr/lib64"
    assert members["bin"].linkname == "usr/bin"
    assert members["usr/bin/hello"].mtime == SDE  # clamped
    assert members["etc/hostname"].mtime == SDE - 50  # older stays
    assert members["etc/hostname"].mode == 0o600
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    assert members["usr/bin/hello"].pax_headers["SCHILY.xattr.user.test"].encode("utf-8", "surrogateescape") == (
        b"\x00binary\xff"
    )
    perl_layer = layer_members(result, layer_of(result, "usr/bin/perl"))
    assert perl_layer["usr/bin/perl"].isfile()
    assert perl_layer["usr/bin/perl5.40.0"].islnk() and perl_layer["usr/bin/perl5.40.0"].linkname == "usr/bin/perl"
    # every layer carries the parents of what it holds, with their real modes
    for layer in result.layers:
        names = set(layer_members(result, layer.id))
        for name in names:
            parts = name.split("/")
            for i in range(1, len(parts)):
                assert "/".join(parts[:i]) in names, f"{layer.id}: parent of {name} missing"
    order = list(layer_members(result, "unowned"))
    assert order == sorted(order, key=lambda n: n.encode().split(b"/"))


def test_same_tree_twice_gives_same_digest(tree: Path, tmp_path: Path) -> None:
    first = write(tree, tmp_path / "a")
    os.utime(tree / "usr/bin/bash", (SDE + 5000, SDE + 5000))  # newer than SOURCE_DATE_EPOCH: clamped away
    second = write(tree, tmp_path / "b", jobs=1)
    assert first.manifest_digest == second.manifest_digest
    assert (tmp_path / "a/image.oci-archive").read_bytes() == (tmp_path / "b/image.oci-archive").read_bytes()


def test_config_labels_and_index(tree: Path, tmp_path: Path) -> None:
    result = write(tree, tmp_path / "out")
    index = json.loads((result.layout_dir / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "13"
    assert index["manifests"][0]["digest"] == result.manifest_digest
    manifest = json.loads(blob(result, result.manifest_digest))
    assert [x["digest"] for x in manifest["layers"]] == [x.digest for x in result.layers]
    config = json.loads(blob(result, result.config_digest))
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["rootfs"]["diff_ids"] == [x.diff_id for x in result.layers]
    assert len(config["history"]) == len(result.layers)
    labels = config["config"]["Labels"]
    assert labels["containers.bootc"] == "1"
    assert labels["ostree.bootable"] == "1"
    assert labels["ostree.linux"] == KVER
    assert labels[OSTREE_COMMIT_LABEL] == "c0ffee" * 10 + "abcd"
    assert labels["org.opencontainers.image.title"] == "debian-bootc"
    assert "ostree.commit" not in labels


def test_arm64_config(tree: Path, tmp_path: Path) -> None:
    result = write(tree, tmp_path / "out", arch="arm64")
    config = json.loads(blob(result, result.config_digest))
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")


def test_one_package_change_changes_one_layer(tree: Path, tmp_path: Path) -> None:
    first = write(tree, tmp_path / "a")
    (tree / "usr/bin/hello").write_bytes(b"hello, changed world\n")
    second = write(tree, tmp_path / "b", plan=tmp_path / "a/plan.json")
    changed = [(a.id, a.packages) for a, b in zip(first.layers, second.layers, strict=True) if a.digest != b.digest]
    assert [x[0] for x in changed] == [layer_of(first, "usr/bin/hello")]
    assert "hello" in changed[0][1]


def test_new_package_does_not_touch_existing_layers(tree: Path, tmp_path: Path) -> None:
    first = write(tree, tmp_path / "a")
    add_package(tree, "newpkg", {"usr/share/newpkg/data": b"x" * 10})
    second = write(tree, tmp_path / "b", plan=tmp_path / "a/plan.json")
    before = {x.id: x.digest for x in first.layers}
    after = {x.id: x.digest for x in second.layers}
    assert set(after) - set(before) == {"p" + str(len([x for x in first.layers if x.id.startswith("p")]) + 1).zfill(4)}
    for layer_id, digest in before.items():
        if layer_id != "unowned":
            assert after[layer_id] == digest, f"layer {layer_id} changed"


def test_max_layers_respected(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    for i in range(60):
        add_package(tree, f"pkg{i:02d}", {f"usr/share/pkg{i:02d}/f": noise(str(i), 100 + 37 * i)})
    result = write(tree, tmp_path / "out", max_layers=8)
    assert len(result.layers) == 8
    packed = [x for x in result.layers if x.id.startswith("p")]
    assert sum(len(x.packages) for x in packed) == 60 + 5  # the fake packages plus bash, hello, libc6, perl, sed
    with pytest.raises(OciError, match="max_layers is 2 but this tree needs at least 3"):
        write(tree, tmp_path / "out2", max_layers=2)


def test_database_not_moved(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", db="var/lib/dpkg")
    result = write(tree, tmp_path / "out")
    assert layer_of(result, "var/lib/dpkg/info/bash.list") == layer_of(result, "usr/bin/bash")
    assert {"bash", "hello", "sed"} <= {p for x in result.layers for p in x.packages}


def test_no_dpkg_database_puts_everything_in_one_layer(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/tool").write_bytes(b"tool")
    result = write(tree, tmp_path / "out", kernel_version=None, ostree_commit=None)
    assert [x.id for x in result.layers] == ["unowned"]
    config = json.loads(blob(result, result.config_digest))
    assert "ostree.linux" not in config["config"]["Labels"]
    assert OSTREE_COMMIT_LABEL not in config["config"]["Labels"]


def test_rewrite_replaces_previous_layout(tree: Path, tmp_path: Path) -> None:
    write(tree, tmp_path / "out")
    (tree / "usr/bin/hello").write_bytes(b"other\n")
    result = write(tree, tmp_path / "out")
    blobs = {p.name for p in (result.layout_dir / "blobs/sha256").iterdir()}
    expected = {x.digest.split(":")[1] for x in result.layers}
    expected |= {result.manifest_digest.split(":")[1], result.config_digest.split(":")[1]}
    assert blobs == expected
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_bad_inputs(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(OciError, match=r"ostree\.commit"):
        write(tree, tmp_path / "out", labels={"ostree.commit": "abc"})
    with pytest.raises(OciError, match="does not exist or is not a directory"):
        write(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(OciError, match=r"kernel version 9\.9 was given but .*usr/lib/modules/9\.9 is not a directory"):
        write(tree, tmp_path / "out", kernel_version="9.9")
    with pytest.raises(OciError, match="invalid OCI reference name"):
        write(tree, tmp_path / "out", ref_name="bad tag!")
    bad_plan = tmp_path / "plan.json"
    bad_plan.write_text("{not json")
    with pytest.raises(PlanError, match=r"plan.json is not readable JSON.*delete it"):
        write(tree, tmp_path / "out", plan=bad_plan)
    bad_plan.write_text('{"format": "something-else"}')
    with pytest.raises(PlanError, match="is not a layer plan"):
        write(tree, tmp_path / "out", plan=bad_plan)
    with pytest.raises(ValueError, match="no OCI architecture known for Debian architecture 'vax'"):
        write(tree, tmp_path / "out", arch="vax")
    os.rename(tree / "etc", tree / "usr/etc")
    with pytest.raises(OciError, match=r"is in OSTree form \(usr/etc, no etc\)"):
        write(tree, tmp_path / "out")
    # nothing half-written was left behind by the failures
    assert not (tmp_path / "out" / "layout").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_fast_headers_equal_tarfile_headers(tree: Path) -> None:
    """The hand-built ustar headers are byte for byte what tarfile writes (PAX format)."""
    long_dir = tree / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    (long_dir / "file").write_bytes(b"x")  # path longer than 100: PAX record
    (tree / "usr/share/naïve").write_bytes(b"y")  # non-ASCII: PAX record
    os.symlink("t" * 101, tree / "longlink")
    os.mkfifo(tree / "fifo")
    os.utime(tree / "fifo", (SDE + 10, SDE + 10))
    os.chown(tree / "etc/hostname", 1000, 2**22)  # a gid beyond 7 octal digits: PAX record
    entries = scan_tree(tree)
    fast = 0
    for entry in entries.values():
        hardlink_to = "usr/bin/perl" if entry.path == "usr/bin/perl5.40.0" else None
        made = header_for(tree, entry, SDE, hardlink_to)
        info = tarinfo_for(tree, entry, SDE, hardlink_to)
        assert made is not None and info is not None
        assert made[0] == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), entry.path
        fast += len(made[0]) == 512
    assert fast > 20  # most entries take the fast path


def test_cancel_mid_write_leaves_previous_layout(tree: Path, tmp_path: Path) -> None:
    first = write(tree, tmp_path / "out")
    (tree / "usr/bin/hello").write_bytes(b"changed\n")
    cancel = threading.Event()

    def on_progress(message: str) -> None:
        if message.startswith("scanned"):
            cancel.set()  # after the scan, while layers are being written

    with pytest.raises(OciCancelled, match="cancelled"):
        write(tree, tmp_path / "out", cancel=cancel, progress=on_progress)
    index = json.loads((first.layout_dir / "index.json").read_text())
    assert index["manifests"][0]["digest"] == first.manifest_digest
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
