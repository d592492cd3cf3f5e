"""debarchive.safeio: reading what untrusted code left without following it anywhere (real files, no mocks)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from debarchive import safeio


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    host = tmp_path / "host-secret"
    host.write_text("SECRET\n")
    t = tmp_path / "tree"
    (t / "out").mkdir(parents=True)
    (t / "out" / "good.deb").write_bytes(b"payload")
    (t / "out" / "link.deb").symlink_to(host)
    os.mkfifo(t / "out" / "fifo.deb")
    (t / "out" / "own").write_text("x")
    os.link(t / "out" / "own", t / "out" / "hard.deb")
    (t / "linkdir").symlink_to(tmp_path)
    return t


def test_regular_files_are_read_and_copied(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "good.deb").symlink_to(tmp_path / "host-secret")  # a link at the destination is replaced
    with safeio.opened_dir(tree, "out") as d:
        assert safeio.read_bytes(d, "good.deb") == b"payload"
        digest, size = safeio.copy_out(d, "good.deb", dest)
    assert digest == hashlib.sha256(b"payload").hexdigest()
    assert size == 7 and not (dest / "good.deb").is_symlink()
    assert (dest / "good.deb").read_bytes() == b"payload"
    assert (tmp_path / "host-secret").read_text() == "SECRET\n"
    assert safeio.read_below(tree, "out/good.deb") == b"payload"


@pytest.mark.parametrize(
    ("name", "what"),
    [("link.deb", "a symbolic link"), ("fifo.deb", "a FIFO"), ("hard.deb", "2 hard links"), ("..", "plain")],
)
def test_links_fifos_and_hard_links_are_refused_without_blocking(tree: Path, name: str, what: str) -> None:
    with safeio.opened_dir(tree, "out") as d, pytest.raises(safeio.UnsafeEntry) as err:
        safeio.open_regular(d, name)
    assert what in str(err.value)


def test_a_linked_directory_on_the_way_is_refused(tree: Path) -> None:
    with pytest.raises(safeio.UnsafeEntry, match="linkdir: is a symbolic link"):
        safeio.open_dir(tree, "linkdir/tree/out")
    with pytest.raises(safeio.UnsafeEntry, match="symbolic link"):
        safeio.read_below(tree, "linkdir/host-secret")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        safeio.read_below(tree, "out/../out/good.deb")
    with safeio.opened_dir(tree, "out") as d:
        assert [n for n, _ in safeio.entries(d)] == sorted(os.listdir(tree / "out"))


def test_read_named_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    """A key or passphrase file the user named: read when small and regular; a FIFO never blocks the reader."""
    (tmp_path / "key").write_bytes(b"k" * 10)
    assert safeio.read_named_file(tmp_path / "key", 10) == b"k" * 10
    with pytest.raises(safeio.UnsafeEntry, match="is larger than 9 bytes"):
        safeio.read_named_file(tmp_path / "key", 9)
    os.mkfifo(tmp_path / "fifo")
    for name in ("fifo", ""):
        with pytest.raises(safeio.UnsafeEntry, match="is not a regular file"):
            safeio.read_named_file(tmp_path / name, 10)
    with pytest.raises(FileNotFoundError):
        safeio.read_named_file(tmp_path / "missing", 10)


def test_open_dir_creates_and_remove_entry_never_follows_links(tmp_path: Path, host_dir: Path) -> None:
    """The image layer applier's two moves: make missing directories below a root, and delete a tree whose
    entries a hostile layer planted (a link to a host directory is removed, what it points at stays)."""
    root = tmp_path / "root"
    root.mkdir()
    with safeio.opened_dir(root, "usr/lib/x", create=True) as fd:
        os.symlink(host_dir, "planted", dir_fd=fd)
        os.mkdir("sub", dir_fd=fd)
        os.symlink(host_dir / "marker", "sub/file-link", dir_fd=fd)
    assert (root / "usr/lib/x").is_dir()
    with pytest.raises(safeio.UnsafeEntry):  # creating never goes through a link either
        safeio.open_dir(root, "usr/lib/x/planted/new", create=True)
    assert not (host_dir / "new").exists()
    with safeio.opened_dir(root, "usr") as fd:
        safeio.remove_entry(fd, "lib")
        safeio.remove_entry(fd, "lib")  # gone already: fine
    assert not (root / "usr/lib").exists()
    assert (host_dir / "marker").is_file()  # the links' targets are untouched
