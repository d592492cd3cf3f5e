"""OCI layers applied in order: whiteouts, opaque directories, owners/modes/xattrs, and hostile members."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from deb_bootc import image, layers


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, uid: int = 0,
           gid: int = 0, link: str = "", pax: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = pax
    return info, data


def write_layer(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], gz: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return path


def test_layers_apply_in_order_with_whiteouts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    base = write_layer(tmp_path / "l1", [
        member("./", tarfile.DIRTYPE, mode=0o755),
        member("etc/", tarfile.DIRTYPE, mode=0o755),
        member("etc/keep", data=b"keep"), member("etc/drop", data=b"drop"),
        member("opt/", tarfile.DIRTYPE, mode=0o755), member("opt/a/", tarfile.DIRTYPE, mode=0o755),
        member("opt/a/old", data=b"old"), member("usr/bin/ping", data=b"ELF", mode=0o4755,
                                                 pax={"SCHILY.xattr.user.test": "v1"}),
        member("usr/bin/ping2", tarfile.LNKTYPE, link="usr/bin/ping"),
        member("lib64", tarfile.SYMTYPE, link="usr/lib64"),
        member("home/u/", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000),
        member("home/u/f", data=b"mine", mode=0o600, uid=1000, gid=1000),
    ])
    top = write_layer(tmp_path / "l2", [
        member("etc/.wh.drop"), member("opt/a/.wh..wh..opq"), member("opt/a/new", data=b"new"),
        member("etc/keep", data=b"changed"), member("lib64/", tarfile.DIRTYPE, mode=0o755),
    ], gz=False)
    assert layers.apply_layer(str(base), str(root)) == 11
    layers.apply_layer(str(top), str(root))
    assert (root / "etc/keep").read_bytes() == b"changed"
    assert not (root / "etc/drop").exists()
    assert sorted(os.listdir(root / "opt/a")) == ["new"]
    ping = os.lstat(root / "usr/bin/ping")
    assert stat.S_IMODE(ping.st_mode) == 0o4755 and ping.st_nlink == 2
    assert os.getxattr(root / "usr/bin/ping", "user.test") == b"v1"
    assert (root / "lib64").is_dir() and not (root / "lib64").is_symlink()  # a directory replaces the link
    st = os.lstat(root / "home/u/f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o600)
    assert stat.S_IMODE(os.lstat(root / "home/u").st_mode) == 0o700


@pytest.mark.parametrize(("members", "why"), [
    ([member("/etc/passwd", data=b"x")], "absolute path"),
    ([member("../outside", data=b"x")], "'..'"),
    ([member("a/../../outside", data=b"x")], "'..'"),
    ([member("esc", tarfile.SYMTYPE, link="HOST"), member("esc/planted", data=b"x")], "not a directory"),
    ([member("hl", tarfile.LNKTYPE, link="../outside-file")], "'..'"),
    ([member("hl", tarfile.LNKTYPE, link="esc2/file"), ], "not a directory"),
])
def test_hostile_members_are_refused_and_nothing_escapes(tmp_path: Path, host_dir: Path, members: list,
                                                        why: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "esc2").symlink_to(host_dir)  # a link an earlier layer planted
    fixed = []
    for info, data in members:
        if info.linkname == "HOST":
            info.linkname = str(host_dir)
        fixed.append((info, data))
    before = sorted(os.listdir(host_dir))
    with pytest.raises(layers.LayerError, match=why):
        layers.apply_layer(str(write_layer(tmp_path / "bad", fixed)), str(root))
    assert sorted(os.listdir(host_dir)) == before
    assert not (tmp_path / "outside").exists()


def test_whiteout_through_a_planted_link_removes_nothing_outside(tmp_path: Path, host_dir: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "esc").symlink_to(host_dir)
    before = sorted(os.listdir(host_dir))
    layer = write_layer(tmp_path / "l", [member("esc/.wh..wh..opq"), member(f"esc/.wh.{before[0]}")])
    layers.apply_layer(str(layer), str(root))
    assert sorted(os.listdir(host_dir)) == before


def test_damaged_layers_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "l"
    bad.write_bytes(b"\x1f\x8b" + os.urandom(300))
    with pytest.raises(layers.LayerError, match="not a readable tar"):
        layers.apply_layer(str(bad), str(tmp_path))


def test_references_and_local_refs() -> None:
    assert image.check_reference("docker://registry.example.org:5000/debian-atomic/base:1.0")
    assert image.check_reference("docker://r.example/x@sha256:" + "a" * 64)
    for bad in ("registry.example.org/x:1", "docker://Upper/x:1", "docker://r/x:1;rm", "oci:/x"):
        with pytest.raises(image.UsageError):
            image.check_reference(bad)
    ref = image.local_ref("docker://registry.example.org:5000/debian-atomic/base:1.0")
    assert ref == "deb-bootc/image/registry.example.org-5000-debian-atomic-base-1.0"
    assert image.layout_tag("docker://a/b:1") != image.layout_tag("docker://a/b:2")
