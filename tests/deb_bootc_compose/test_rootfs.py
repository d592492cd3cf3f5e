"""rootfs: the local repository's empty mount point (mmdebstrap's file-mirror-automount leaves it) goes away."""

from __future__ import annotations

from pathlib import Path

from deb_bootc_compose.phases.rootfs import remove_mountpoint_dirs


def test_mount_point_chain_removed_up_to_what_packages_ship(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "var/lib/dpkg/info").mkdir(parents=True)
    (tree / "var/lib/dpkg/info/base-files.list").write_text("/.\n/var\n/var/tmp\n/srv\n")
    host_repo = Path("/var/tmp/composes/debian-bootc-13-20261122.0/work/base/amd64/repo")
    (tree / host_repo.relative_to("/")).mkdir(parents=True)
    (tree / "var/tmp/composes/keep-me").mkdir()  # not empty from here up: the climb stops there
    removed = remove_mountpoint_dirs(tree, host_repo)
    assert removed == [
        "/var/tmp/composes/debian-bootc-13-20261122.0/work/base/amd64/repo",
        "/var/tmp/composes/debian-bootc-13-20261122.0/work/base/amd64",
        "/var/tmp/composes/debian-bootc-13-20261122.0/work/base",
        "/var/tmp/composes/debian-bootc-13-20261122.0/work",
        "/var/tmp/composes/debian-bootc-13-20261122.0",
    ]
    assert (tree / "var/tmp/composes/keep-me").is_dir()
    # an empty chain ends at what a package ships (/srv), which stays
    (tree / "srv/composes/x/repo").mkdir(parents=True)
    assert remove_mountpoint_dirs(tree, Path("/srv/composes/x/repo")) == [
        "/srv/composes/x/repo", "/srv/composes/x", "/srv/composes"]
    assert (tree / "srv").is_dir() and (tree / "var/tmp").is_dir()
    # a mount point that is not there (a mode that cleans up itself): nothing to do
    assert remove_mountpoint_dirs(tree, Path("/opt/none/repo")) == []
    # a non-empty directory is never removed
    (tree / "var/tmp/data/repo").mkdir(parents=True)
    (tree / "var/tmp/data/repo/file").write_text("x")
    assert remove_mountpoint_dirs(tree, Path("/var/tmp/data/repo")) == []
