"""Attacks on the launcher, performed for real from inside an overlay root like the builds use (see
:mod:`attacks`): every attempt must land inside the sandbox or fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from attacks import SYSCALLS, make_lower, run_attacks

from debsandbox.confine import ConfineError, cap_mask
from debsandbox.sandbox import OverlayRoot, Sandbox


def test_ns_root_cannot_leave_the_overlay_root(tmp_path: Path, host_dir: Path) -> None:
    problems, out, uout = run_attacks(tmp_path, host_dir)
    assert problems == [], f"{problems}\n--- ns-root:\n{out}\n--- build user:\n{uout}"


def test_nested_user_namespaces_can_be_allowed(tmp_path: Path) -> None:
    lower = make_lower(tmp_path / "lower")
    up = tmp_path / "b"
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), nested_userns=True, env={"LC_ALL": "C"})
    out = sb.run(["perl", "-e", SYSCALLS], capture=True).output
    assert "UNSHARE-USER:ran" in out and "KEYCTL:1\n" in out, out


def test_mounts_only_with_cap_add_sys_admin(tmp_path: Path) -> None:
    lower = make_lower(tmp_path / "lower")
    script = "mount -t tmpfs none /tmp && echo MOUNTED || echo REFUSED"
    for cap_add, expected in (((), "REFUSED"), (("SYS_ADMIN",), "MOUNTED")):
        up = tmp_path / f"b{len(cap_add)}"
        sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), cap_add=cap_add)
        assert expected in sb.run(["sh", "-c", script], capture=True).output


def test_unknown_capability_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfineError):
        cap_mask(["CAP_NO_SUCH_THING"])
    up = tmp_path / "b"
    sb = Sandbox(root=OverlayRoot((make_lower(tmp_path / "lower"),), up / "upper", up / "work"), cap_add=("X",))
    res = sb.run(["sh", "-c", "echo COMMAND-RAN"], capture=True, check=False)
    assert res.returncode == 4 and "COMMAND-RAN" not in res.output and "unknown capability" in res.output
