"""No package code runs as real root on the compose host; the commit and the OCI image still carry exactly
what the packages say (owners, modes, set-id bits, file capabilities). On the session compose's real tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import struct
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES, SessionCompose

from deb_bootc_compose import lockfile, treeops
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, VariantState
from deb_bootc_compose.phases.ostree_prepare import OstreePreparePhase
from deb_bootc_compose.prepare import PrepareJob, postprocess
from debsandbox import idmap
from debsandbox.sandbox import owned_dir

pytestmark = pytest.mark.integration
REF = "debian-bootc/trixie/amd64/base"
# cap_net_raw=ep as a root-owned file carries it: VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted bit 13
# (iputils-arping's postinst runs `setcap cap_net_raw+ep /usr/bin/arping`)
ARPING_CAPS_V2 = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)
ARPING = "/usr/bin/arping"


def ostree(repo: Path, *args: str) -> str:
    return subprocess.run(["ostree", f"--repo={repo}", *args], check=True, capture_output=True, text=True).stdout


def _fs_of(path: Path) -> tuple[int, int, Path]:
    """(major, minor) of the block device holding ``path``, and ``path`` relative to that filesystem's root."""
    dev = path.stat().st_dev
    top = path
    while top.parent != top and top.parent.stat().st_dev == dev:
        top = top.parent
    return os.major(dev), os.minor(dev), path.relative_to(top if top.stat().st_dev == dev else top.parent)


def test_postprocess_cannot_mknod_the_host_disk_or_write_host_paths(
    minimal_compose: SessionCompose, tmp_path: Path
) -> None:
    """A postprocess script (package code runs the same way) makes a node of the disk that holds this test's
    directory (on a fresh tmpfs, where a mount allows devices), mounts it and writes a marker through it; it
    also writes to the marker's host path directly. As real root (the old bubblewrap without a user
    namespace) mknod succeeded; in the user namespace it fails, the compose reports the script's failure
    with its output, and nothing appears on the host."""
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-al", str(minimal_compose.tree), str(tree)], check=True)
    # a host directory outside /tmp: the sandbox's /tmp is a tmpfs of its own, so a path under pytest's /tmp
    # basetemp would be shadowed inside it and the direct write would prove nothing
    host_dir = Path("/var/tmp") / f"compose-escape-{uuid.uuid4().hex[:8]}"
    host_dir.mkdir()
    major, minor, rel = _fs_of(host_dir)
    if major == 0:  # not on a block device here (overlay, tmpfs): attack the first loop device instead
        major, minor = 7, 0
    attack = (
        f"mkdir -p {host_dir} && echo direct > {host_dir}/direct-marker || true\n"
        "mkdir -p /devs && mount -t tmpfs devs /devs || true\n"
        f"mknod /devs/hostdisk b {major} {minor}\n"
        "echo MKNOD-SUCCEEDED\n"
        "mkdir -p /hostmnt && mount /devs/hostdisk /hostmnt\n"
        f"echo pwned > /hostmnt/{rel}/mount-marker\n"
        "echo ATTACK-SUCCEEDED\n"
    )
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data["postprocess"] = [{"name": "escape", "script": attack}]
    manifest_path = tmp_path / "manifest.yaml"
    manifest_path.write_text(yaml.safe_dump(data))
    target = TargetPaths(tmp_path / "target")
    ctx = ComposeContext(manifest=load_manifest(manifest_path), manifest_path=manifest_path, target=target,
                         paths=target.compose("x-1-20260101.0"), compose_id="x-1-20260101.0", compose_type="test",
                         source_date_epoch=1700000000)
    try:
        with pytest.raises(ComposeError) as info, Tree(tree) as t:
            postprocess.run(PrepareJob.of(OstreePreparePhase(ctx), VariantState("base", "amd64"), t))
        msg = str(info.value)
        assert "postprocess script escape failed with exit code" in msg, msg
        assert re.search(r"mknod: .*/devs/hostdisk.*Operation not permitted", msg), msg
        assert "MKNOD-SUCCEEDED" not in msg and "ATTACK-SUCCEEDED" not in msg
        assert sorted(p.name for p in host_dir.iterdir()) == []
        # the direct write landed in the tree (its own /var/tmp...), not on the host
        assert (tree / host_dir.relative_to("/") / "direct-marker").read_text() == "direct\n"
    finally:
        treeops.remove_tree(tree)
        shutil.rmtree(host_dir)


def _gvariant_bytes(token: str) -> bytes:
    """``b'text'`` or ``[byte 0x01, 0x02]`` (GVariant text of an ``ay``) as bytes."""
    if token.startswith("b'"):
        return token[2:-1].encode().decode("unicode_escape").encode("latin-1")
    inner = token[len("[byte "):-1]
    return bytes(int(b.strip(), 16) for b in inner.split(",") if b.strip())


def value_of(xattrs_text: str, name: bytes) -> bytes | None:
    """The value of xattr ``name`` in ``ostree ls -X`` output (a GVariant ``a(ayay)``)."""
    tokens = re.findall(r"b'(?:[^'\\]|\\.)*'|\[byte [^\]]*\]", xattrs_text)
    for key, value in zip(tokens[::2], tokens[1::2], strict=False):
        if _gvariant_bytes(key).rstrip(b"\0") == name:
            return _gvariant_bytes(value)
    return None


def _deb_entries(deb: Path) -> dict[str, tuple[str, str, str]]:
    """path -> (mode string, owner, group) of the regular files and symlinks in a .deb (``dpkg-deb -c``)."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    entries = {}
    for line in out.splitlines():
        mode, owners, _size, _date, _time, name = line.split(None, 5)
        if mode[0] not in "-l":
            continue
        name = name.split(" -> ")[0].removeprefix(".")
        owner, group = owners.split("/")
        entries[name] = (mode, owner, group)
    return entries


def _mode_string(octal_mode: int) -> str:
    return stat.filemode(octal_mode)


def _commit_path(path: str) -> str:
    """Where a path of the image is in the commit (``/etc`` is ``/usr/etc`` there)."""
    return "/usr" + path if path.startswith("/etc/") else path


def test_commit_and_oci_keep_owners_modes_setid_and_file_caps(minimal_compose: SessionCompose) -> None:
    """The commit (made in the tree's user namespace) and the OCI layers (read with the id map) say what the
    .debs say: root's files 0:0, shadow-group files with gid 42, set-uid/set-gid bits; arping's cap_net_raw set
    by iputils-arping's postinst (setcap in the namespace) is the plain root-owned form, as on a real system."""
    target = minimal_compose.target
    repo = target / "ostree/repo"
    commit = ostree(repo, "rev-parse", REF).strip()
    listing: dict[str, tuple[int, int, int]] = {}
    for line in ostree(repo, "ls", "-R", commit).splitlines():
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[0][0] in "-l":
            path = parts[4].split(" -> ")[0]
            listing[path] = (int(parts[0][1:], 8) | (stat.S_IFLNK if parts[0][0] == "l" else stat.S_IFREG),
                             int(parts[1]), int(parts[2]))
    lock = lockfile.load(minimal_compose.topdir / "metadata/lockfile.yaml")
    pkgs = {p.name: p for p in lock.variants["base"]["amd64"].packages}
    names = {"root": 0, "shadow": 42}
    # what a maintainer script changes on purpose is not the .deb's word: ssh-agent's group (_ssh, made by
    # openssh-client's postinst), and arping's set-uid bit (dropped for the capability)
    overrides = {"/usr/bin/ssh-agent", ARPING}
    checked = setid = 0
    for name in ("passwd", "login", "mount", "util-linux", "openssh-client", "libpam-modules-bin", "iputils-arping",
                 "hello"):
        for path, (mode, owner, group) in _deb_entries(TargetPaths(target).pool_deb(pkgs[name].sha256)).items():
            if path.startswith("/var/") or path in overrides:
                continue  # /var ships empty (tmpfiles.d); statoverrides are the admin's word, not the .deb's
            in_commit = _commit_path(path)
            assert in_commit in listing, f"{name}: {path} is not in the commit"
            cmode, cuid, cgid = listing[in_commit]
            assert (_mode_string(cmode), cuid, cgid) == (mode, names[owner], names[group]), (name, path)
            checked += 1
            setid += bool(cmode & (stat.S_ISUID | stat.S_ISGID))
    assert checked > 100 and setid >= 6, (checked, setid)
    # arping: no set-uid bit, the capability as a root-owned file carries it (revision 2, no namespace root id)
    assert listing[ARPING][1:] == (0, 0) and not listing[ARPING][0] & stat.S_ISUID
    xattrs = ostree(repo, "ls", "-X", commit, ARPING)
    assert value_of(xattrs, b"security.capability") is not None, xattrs
    value = value_of(xattrs, b"security.capability")
    assert value == ARPING_CAPS_V2, value.hex()
    # on disk, the tree's files belong to the namespace's ids and arping's capability names its root
    ids = idmap.current()
    tree_arping = minimal_compose.tree / ARPING.lstrip("/")
    assert tree_arping.stat().st_uid == ids.root_uid != 0
    raw = os.getxattr(tree_arping, "security.capability")
    assert len(raw) == 24 and struct.unpack_from("<I", raw, 20)[0] == ids.root_uid
    # the OCI layers: the same owners, bits and capability
    (layout,) = (minimal_compose.topdir / "compose/base/amd64/oci").glob("*/index.json")
    index = json.loads(layout.read_text())
    blobs = layout.parent / "blobs/sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    seen: dict[str, tarfile.TarInfo] = {}
    for layer in manifest["layers"]:
        with tarfile.open(blobs / layer["digest"].split(":")[1], "r:gz") as tf:
            for member in tf:
                seen[member.name] = member
    for path in ("usr/bin/passwd", "usr/bin/chage", "usr/bin/su", "usr/bin/mount", "usr/bin/arping", "etc/shadow"):
        m = seen[path]
        cmode, cuid, cgid = listing[_commit_path("/" + path)]
        assert (m.uid, m.gid, m.mode) == (cuid, cgid, stat.S_IMODE(cmode)), path
    member = seen["usr/bin/arping"]
    assert member.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == (
        ARPING_CAPS_V2)
    assert max(m.uid for m in seen.values()) < 65536 and max(m.gid for m in seen.values()) < 65536


def test_host_writes_are_adopted_into_the_namespace(tmp_path: Path) -> None:
    """What the compose writes as the host's root (os-release, apt sources, files with manifest owners) gets
    the host id of what it means inside the image; set-uid bits survive the chown; links are not followed."""
    ids = idmap.current()
    tree = owned_dir(tmp_path / "tree", ids)  # a tree the namespace made
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("x\n")
    tool = tree / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chown(tool, 1000, 42)
    tool.chmod(0o4755)
    outside = tmp_path / "outside"
    outside.write_text("host\n")
    (tree / "link").symlink_to(outside)
    assert treeops.adopt_host_writes(tree, ids) == 4
    for p in (tree, tree / "etc", tree / "etc/os-release"):
        assert (p.stat().st_uid, p.stat().st_gid) == (ids.root_uid, ids.root_gid)
    st = tool.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (ids.host_uid(1000), ids.host_gid(42), 0o4755)
    assert (tree / "link").lstat().st_uid == ids.root_uid
    assert outside.stat().st_uid == 0  # the link's target on the host is untouched
    assert treeops.adopt_host_writes(tree, ids) == 0
    os.chown(tool, 70000, 0)
    with pytest.raises(ComposeError, match="cannot be mapped"):
        treeops.adopt_host_writes(tree, ids)
    # never the host's root, never a directory the namespace did not make (a slip here would give host
    # files to the subordinate ids)
    with pytest.raises(ComposeError, match="host's root"):
        treeops.adopt_host_writes(Path("/"), ids)
    with pytest.raises(ComposeError, match="not a directory owned by the user namespace"):
        treeops.adopt_host_writes(tmp_path, ids)
    assert tmp_path.stat().st_uid == 0
