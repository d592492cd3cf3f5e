"""intree.Tree: every path resolved inside the tree, with openat2 and with the component walk alike.

Each test plants the links a hostile package would (absolute, relative, ``..`` escapes, dangling links,
directory links, FIFOs) and checks that the host outside the tree is never read or written.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from deb_bootc_compose.intree import Tree, openat2_available


@pytest.fixture(params=["openat2", "walk"])
def mode(request: pytest.FixtureRequest) -> bool:
    if request.param == "openat2" and not openat2_available():
        pytest.fail("this kernel has no openat2: the openat2 path cannot be tested here")
    return bool(request.param == "openat2")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A directory standing for the host: a secret file and an empty directory."""
    h = tmp_path / "host"
    (h / "dir").mkdir(parents=True)
    (h / "secret").write_text("host secret\n")
    return h


@pytest.fixture
def tree(tmp_path: Path, host: Path, mode: bool) -> Tree:
    root = tmp_path / "tree"
    (root / "etc" / "apt").mkdir(parents=True)
    (root / "usr" / "share").mkdir(parents=True)
    (root / "usr" / "share" / "real").write_text("in the tree\n")
    # links a package could plant
    (root / "etc" / "machine-id").symlink_to(host / "secret")  # absolute, to a host file
    (root / "etc" / "os-release").symlink_to("../../../host/secret")  # relative, climbing out with ..
    (root / "etc" / "dangling").symlink_to(host / "not-there")  # dangling, absolute
    (root / "etc" / "apt" / "sources.list.d").symlink_to(host / "dir")  # a directory link to the host
    (root / "etc" / "inside").symlink_to("/usr/share/real")  # absolute, meant inside the image
    (root / "etc" / "updir").symlink_to("../../../../..")  # .. far beyond the root
    (root / "etc" / "loop").symlink_to("loop")
    return Tree(root, use_openat2=mode)


def host_unchanged(host: Path) -> None:
    assert (host / "secret").read_text() == "host secret\n"
    assert sorted(p.name for p in host.iterdir()) == ["dir", "secret"]
    assert list((host / "dir").iterdir()) == []


def test_write_replaces_an_absolute_link(tree: Tree, host: Path) -> None:
    tree.write_text("etc/machine-id", "")
    host_unchanged(host)
    p = tree.root / "etc/machine-id"
    assert not p.is_symlink() and p.read_text() == ""
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_write_replaces_a_relative_escape(tree: Tree, host: Path) -> None:
    tree.write_text("/etc/os-release", "ID=debian\n", mode=0o640)
    host_unchanged(host)
    p = tree.root / "etc/os-release"
    assert p.read_text() == "ID=debian\n" and stat.S_IMODE(p.stat().st_mode) == 0o640


def test_write_replaces_a_dangling_link(tree: Tree, host: Path) -> None:
    tree.write_text("etc/dangling", "x")
    host_unchanged(host)
    assert not (host / "not-there").exists()
    assert (tree.root / "etc/dangling").read_text() == "x"


def test_directory_link_resolves_inside_the_tree(tree: Tree, host: Path) -> None:
    """``etc/apt/sources.list.d -> <host>/dir`` means <tree>/<host>/dir, as the image sees it."""
    with pytest.raises(FileNotFoundError, match="in tree"):
        tree.write_text("etc/apt/sources.list.d/compose.sources", "Types: deb\n")
    with pytest.raises(FileExistsError):
        tree.mkdir("etc/apt/sources.list.d", parents=True, exist_ok=True)  # a link, to no directory yet
    tree.mkdir(f"{host}/dir", parents=True)  # where the link points, inside the tree
    tree.mkdir("etc/apt/sources.list.d", parents=True, exist_ok=True)
    tree.write_text("etc/apt/sources.list.d/compose.sources", "Types: deb\n")
    host_unchanged(host)
    inside = tree.root / str(host).lstrip("/") / "dir" / "compose.sources"
    assert inside.read_text() == "Types: deb\n"
    assert tree.resolve("etc/apt/sources.list.d") == f"{str(host).lstrip('/')}/dir"
    assert tree.read_text("etc/apt/sources.list.d/compose.sources") == "Types: deb\n"
    assert tree.listdir("etc/apt/sources.list.d") == ["compose.sources"]


def test_dotdot_stops_at_the_root(tree: Tree, host: Path) -> None:
    tree.write_text("../../../../etc/hostname", "h\n")
    assert (tree.root / "etc/hostname").read_text() == "h\n"
    assert tree.resolve("etc/updir") == ""
    tree.write_text("etc/updir/written-at-root", "r")
    assert (tree.root / "written-at-root").read_text() == "r"
    tree.mkdir("etc/updir/../../newdir")
    assert (tree.root / "newdir").is_dir()
    host_unchanged(host)
    assert not (tree.root.parent / "written-at-root").exists()


def test_reads_follow_links_inside_the_tree_only(tree: Tree, host: Path) -> None:
    assert tree.read_text("etc/inside") == "in the tree\n"
    for rel in ("etc/machine-id", "etc/os-release", "etc/dangling"):
        with pytest.raises(FileNotFoundError):
            tree.read_text(rel)
        assert tree.stat(rel) is None and not tree.exists(rel) and not tree.is_file(rel)
        assert tree.is_symlink(rel) and tree.lexists(rel)
    with pytest.raises(OSError) as info:
        tree.read_text("etc/loop")
    assert info.value.errno == errno.ELOOP
    assert tree.stat("etc/loop") is None
    assert tree.readlink("etc/machine-id") == str(host / "secret")


def test_fifo_and_directory_are_not_read(tree: Tree) -> None:
    os.mkfifo(tree.root / "etc/passwd")
    with pytest.raises(OSError, match="not a regular file"):
        tree.read_text("etc/passwd")  # would block forever if opened as a file
    with pytest.raises(OSError, match="not a regular file"):
        tree.read_bytes("etc")


def test_unlink_removes_the_link_not_its_target(tree: Tree, host: Path) -> None:
    tree.unlink("etc/machine-id")
    tree.unlink("etc/os-release")
    tree.unlink("etc/apt/sources.list.d")
    tree.unlink("etc/nothing", missing_ok=True)
    host_unchanged(host)
    assert not (tree.root / "etc/machine-id").is_symlink()
    with pytest.raises(FileNotFoundError, match=r"etc/nothing \(in tree"):
        tree.unlink("etc/nothing")


def test_rmtree_through_a_directory_link_stays_inside(tree: Tree, host: Path) -> None:
    (tree.root / "var").symlink_to(host)  # /var -> the host directory
    tree.rmtree("var")  # removes the link only
    host_unchanged(host)
    (tree.root / "var").symlink_to(host)
    tree.mkdir("var", exist_ok=True) if tree.is_dir("var") else None
    with pytest.raises(FileNotFoundError):
        tree.rmtree("var/dir")  # <tree>/<host>/dir does not exist: nothing on the host is touched
    host_unchanged(host)
    (tree.root / "usr/share/sub/deeper").mkdir(parents=True)
    (tree.root / "usr/share/sub/link").symlink_to(host)
    tree.rmtree("usr/share/sub")
    assert not (tree.root / "usr/share/sub").exists()
    host_unchanged(host)


def test_chmod_chown_refuse_links_and_stay_inside(tree: Tree, host: Path) -> None:
    before = (host / "secret").stat()
    for rel in ("etc/machine-id", "etc/os-release"):
        with pytest.raises(OSError, match="symbolic link"):
            tree.chmod(rel, 0o777)
        with pytest.raises(OSError, match="symbolic link"):
            tree.chown(rel, 1234, 1234)
    after = (host / "secret").stat()
    assert (before.st_mode, before.st_uid, before.st_gid) == (after.st_mode, after.st_uid, after.st_gid)
    tree.chmod("etc/apt/../../usr/share/real", 0o600)
    tree.chown("usr/share/real", 1234, 4321)
    st = (tree.root / "usr/share/real").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 1234, 4321)


def test_replace_keeps_mode_and_owner(tree: Tree) -> None:
    shadow = tree.root / "etc/shadow"
    shadow.write_text("root:*:1::::::\n")
    os.chmod(shadow, 0o640)
    os.chown(shadow, 0, 42)
    tree.write_text("etc/shadow", "root:!*:1::::::\n")
    st = shadow.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 42)
    assert shadow.read_text() == "root:!*:1::::::\n"
    assert sorted(p.name for p in (tree.root / "etc").iterdir() if "intree" in p.name) == []


def test_mkdir_symlink_rename_copy(tree: Tree, host: Path) -> None:
    tree.mkdir("usr/lib/bootc/kargs.d", parents=True)
    tree.mkdir("usr/lib/bootc/kargs.d", exist_ok=True)
    with pytest.raises(FileExistsError):
        tree.mkdir("usr/lib/bootc/kargs.d")
    with pytest.raises(FileExistsError):
        tree.mkdir("etc/machine-id", exist_ok=True)  # a (dangling) link is not a directory
    tree.symlink("run/media", "media")
    assert os.readlink(tree.root / "media") == "run/media"
    with pytest.raises(FileExistsError):
        tree.symlink("x", "etc/machine-id")
    tree.rename("etc/inside", "usr/moved-link")
    assert os.readlink(tree.root / "usr/moved-link") == "/usr/share/real"
    tree.copy("usr/moved-link", "usr/lib/copy", preserve=True)  # follows the link inside the tree
    assert (tree.root / "usr/lib/copy").read_text() == "in the tree\n"
    with pytest.raises(FileNotFoundError):
        tree.copy("etc/machine-id", "usr/lib/copy2")  # never reads the host file
    assert tree.listdir("") == sorted(os.listdir(tree.root))
    assert tree.is_real_dir("usr") and not tree.is_real_dir("etc/apt/sources.list.d")
    host_unchanged(host)


def test_new_owner(tmp_path: Path, mode: bool) -> None:
    root = tmp_path / "t"
    root.mkdir()
    t = Tree(root, use_openat2=mode, new_owner=(100000, 100000))
    t.mkdir("etc")
    t.write_text("etc/x", "y")
    t.symlink("x", "etc/l")
    for p in ("etc", "etc/x", "etc/l"):
        st = os.lstat(root / p)
        assert (st.st_uid, st.st_gid) == (100000, 100000), p
    t.close()
