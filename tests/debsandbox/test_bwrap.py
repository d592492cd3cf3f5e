"""bubblewrap command lines: a read-only host with one writable directory, and a disposable chroot."""

from __future__ import annotations

import subprocess
from pathlib import Path

from debsandbox.bwrap import bwrap_argv
from debsandbox.sandbox import Bind


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_host_read_only_but_the_work_dir_below_tmp_writable_and_no_network(tmp_path: Path) -> None:
    work = tmp_path / "work"  # under /tmp (or pytest's basetemp): the bind must come after the private /tmp
    work.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    script = (f"touch made; touch {outside}/no 2>/dev/null || echo host-read-only; pwd; "
              "cat /proc/net/dev | grep -c : ; stat -c %a /tmp")
    res = _run(bwrap_argv(["sh", "-c", script], binds=[Bind(work, str(work), ro=False)], chdir=str(work),
                          new_session=True))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["host-read-only", str(work), "1", "1777"]  # lo only; sticky /tmp
    assert (work / "made").exists() and not (outside / "no").exists()


def test_chroot_with_network_gets_the_host_resolver_and_keeps_the_ids(tmp_path: Path, lower: Path) -> None:
    root = lower  # a tiny root of its own (sh, cat, wc and their libraries)
    (root / "data").mkdir()
    (root / "etc" / "resolv.conf").write_text("")
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("in\n")
    argv = bwrap_argv(["sh", "-c", "cat /etc/resolv.conf /data/f; echo $X; cat /proc/self/uid_map; touch /data/no"],
                      root=root, binds=[Bind(data, "/data")], network=True, user_namespace=False, all_caps=True,
                      env={"X": "set", "PATH": "/bin"})
    res = _run(argv)
    assert res.returncode != 0 and "Read-only file system" in res.stderr  # binds are read-only by default
    lines = res.stdout.splitlines(keepends=True)
    resolv = Path("/etc/resolv.conf").read_text().splitlines(keepends=True)
    assert lines[: len(resolv)] == resolv and lines[len(resolv):len(resolv) + 2] == ["in\n", "set\n"]
    assert lines[-1].split() == ["0", "0", "4294967295"]  # no user namespace: apt's _apt works
