"""The sandbox: namespaces, id mapping (never real root), network off by default, cleanup."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from debsandbox import idmap
from debsandbox.commands import CommandCancelled, CommandError, CommandTimeout, run
from debsandbox.sandbox import Bind, DirRoot, OverlayRoot, Sandbox, owned_dir, remove_tree


def test_run_logs_and_raises_with_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    lines: list[str] = []
    res = run(["sh", "-c", "echo one; echo two >&2"], log=log, on_line=lines.append, capture=True)
    assert lines == ["one", "two"] and res.output == "one\ntwo\n"
    assert "+ sh -c" in log.read_text() and "# exit 0" in log.read_text()
    with pytest.raises(CommandError) as exc:
        run(["sh", "-c", "echo boom; exit 3"], log=log)
    assert exc.value.returncode == 3 and "boom" in str(exc.value)


def test_timeout_and_cancel_kill_the_whole_group(tmp_path: Path) -> None:
    import threading

    marker = tmp_path / "child.pid"
    with pytest.raises(CommandTimeout):
        run(["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"], timeout=1)
    pid = int(marker.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    ev = threading.Event()
    threading.Timer(0.5, ev.set).start()
    with pytest.raises(CommandCancelled):
        run(["sleep", "300"], cancel=ev)


def test_overlay_root_is_isolated_and_mapped(tmp_path: Path, lower: Path) -> None:
    ids = idmap.current()
    up = tmp_path / "b"
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"))
    res = sb.run(["sh", "-c", "id -u; cat /proc/self/uid_map; cat /proc/net/dev; touch /made-here"], capture=True)
    lines = res.output.split()
    assert lines[0] == "0"  # ns-root inside...
    assert str(ids.root_uid) in res.output  # ...which is the mapped id outside
    if os.geteuid() == 0:
        assert ids.root_uid != 0, "ns-root must never be real root"
    assert "eth" not in res.output and "lo:" in res.output  # only loopback: no network
    made = up / "upper" / "made-here"
    assert made.exists() and made.stat().st_uid == ids.root_uid
    assert not (lower / "made-here").exists()  # the lower layer is never written


def test_build_user_and_binds(tmp_path: Path, lower: Path) -> None:
    ids = idmap.current()
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("hello\n")
    up = tmp_path / "b"
    sb = Sandbox(
        root=OverlayRoot((lower,), up / "upper", up / "work"),
        binds=[Bind(data, "/data", ro=True)],
        uid=1000,
        gid=1000,
        cwd="/tmp",
    )
    res = sb.run(["sh", "-c", "id -u; cat /data/in.txt; touch /data/nope 2>/dev/null || echo readonly"], capture=True)
    assert res.output.split() == ["1000", "hello", "readonly"]
    assert ids.host_uid(1000) != 1000 or os.geteuid() != 0


def test_network_can_be_enabled(tmp_path: Path) -> None:
    res = Sandbox(network=True).run(["cat", "/proc/net/dev"], capture=True)
    assert len([x for x in res.output.splitlines() if ":" in x]) >= 1
    closed = Sandbox(network=False).run(["cat", "/proc/net/dev"], capture=True)
    assert [x.split(":")[0].strip() for x in closed.output.splitlines() if ":" in x] == ["lo"]


def test_networked_root_gets_the_host_resolver_and_a_neutral_hostname(tmp_path: Path, lower: Path) -> None:
    root = tmp_path / "plain"
    shutil.copytree(lower, root, symlinks=True)
    owned_dir(root)
    for name in ("resolv.conf", "hosts"):
        (root / "etc" / name).write_text("")  # the chroot's own, empty
    argv = ["sh", "-c", "cat /etc/resolv.conf /etc/hosts; cat /proc/sys/kernel/hostname"]
    host = Path("/etc/resolv.conf").read_text() + Path("/etc/hosts").read_text()
    res = Sandbox(root=DirRoot(root), network=True).run(argv, capture=True)
    assert res.output == host + "localhost\n"
    res = Sandbox(root=DirRoot(root), network=False, hostname="builder").run(argv, capture=True)
    assert res.output == "builder\n"


def test_dir_root_and_remove_tree(tmp_path: Path, lower: Path) -> None:
    root = tmp_path / "plain"
    shutil.copytree(lower, root, symlinks=True)
    owned_dir(root)
    owned_dir(root / "tmp", mode=0o1777)
    Sandbox(root=DirRoot(root)).run(["sh", "-c", "touch /tmp/x"])
    assert (root / "tmp" / "x").exists()
    remove_tree(root)
    assert not root.exists()


def test_killed_sandbox_leaves_no_process(tmp_path: Path, lower: Path) -> None:
    up = tmp_path / "b"
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"))
    with pytest.raises(CommandTimeout):
        sb.run(["sh", "-c", "sleep 301 & sleep 302"], timeout=2)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 301" not in ps and "sleep 302" not in ps


def test_bind_destinations_never_follow_links_in_the_root(tmp_path: Path, lower: Path, host_dir: Path) -> None:
    """A root may hold what a build left: ``/deb-mock -> HOST_DIR``. The launcher, which still sees the host when
    it makes the mount points, must not create them (or mount) through that link."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("hello\n")
    up = tmp_path / "b"
    (up / "upper").mkdir(parents=True)
    (up / "upper" / "deb-mock").symlink_to(host_dir)
    (up / "upper" / "file-bind").symlink_to(host_dir / "marker")
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), binds=[Bind(data, "/deb-mock/src")])
    with pytest.raises(CommandError) as exc:
        sb.run(["sh", "-c", ":"])
    assert "/deb-mock is a symbolic link in the root; refusing to use it" in exc.value.tail
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), binds=[Bind(data / "in.txt", "/file-bind")])
    with pytest.raises(CommandError) as exc:
        sb.run(["sh", "-c", ":"])
    assert "/file-bind is a symbolic link in the root" in exc.value.tail
    assert sorted(p.name for p in host_dir.iterdir()) == ["marker"]
    assert (host_dir / "marker").read_text() == "HOST-SECRET-MARKER\n"
    # a deep destination that does not exist yet is made (directories, then the file), inside the root
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), binds=[Bind(data / "in.txt", "/a/b/c.txt")])
    assert sb.run(["cat", "/a/b/c.txt"], capture=True).output == "hello\n"
    assert (up / "upper" / "a" / "b" / "c.txt").is_file()


def test_tmpfs_mounts_take_a_size_and_never_follow_links_in_the_root(
    tmp_path: Path, lower: Path, host_dir: Path
) -> None:
    """deb-mock's tmpfs plugin: a tmpfs of the size asked (writes beyond it fail), its mount point made inside the
    root without following a link a build-dependency planted there."""
    up = tmp_path / "t"
    (up / "upper").mkdir(parents=True)
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), tmpfs=["/scratch/deep"],
                 tmpfs_size={"/scratch/deep": "2m"})
    fill = ("i=0; while [ $i -lt 200 ]; do cat /bin/sh >> /scratch/deep/f 2>/dev/null || { echo FULL; break; }; "
            "i=$((i+1)); done; wc -c < /scratch/deep/f")
    out = sb.run(["sh", "-c", fill], capture=True).output.split()
    assert out[0] == "FULL" and int(out[1]) <= 2 << 20
    assert not (up / "upper" / "scratch" / "deep" / "f").exists()  # it was in RAM
    with pytest.raises(ValueError, match="not a size"):
        Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), tmpfs=["/x"], tmpfs_size={"/x": "2m,uid=0"}).run(
            ["true"])
    (up / "upper" / "linked").symlink_to(host_dir)
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), tmpfs=["/linked/tmp"])
    with pytest.raises(CommandError) as exc:
        sb.run(["sh", "-c", ":"])
    assert "/linked is a symbolic link in the root; refusing to use it" in exc.value.tail
    assert sorted(p.name for p in host_dir.iterdir()) == ["marker"]
