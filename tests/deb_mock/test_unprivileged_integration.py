"""deb-mock run by a normal user (with subordinate ids), not root: the same build, the same result."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest
from dm_helpers import HELLO

pytestmark = pytest.mark.integration

USER = "debmock-test"
BASE = Path("/var/tmp/deb-bootc-tests-user")  # readable by the test user (root's home is not)
PROJECT = Path(__file__).resolve().parents[2]


def _ensure_user() -> pwd.struct_passwd:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
        pw = pwd.getpwnam(USER)
    for f in ("/etc/subuid", "/etc/subgid"):
        text = Path(f).read_text() if Path(f).exists() else ""
        if not any(line.startswith(f"{USER}:") for line in text.splitlines()):
            with open(f, "a") as fh:
                fh.write(f"{USER}:300000:65536\n")
    return pw


@pytest.fixture(scope="module")
def user_deb_mock() -> Path:
    """deb-mock installed where the unprivileged user can run it (a venv of the system Python)."""
    if os.geteuid() != 0:
        pytest.fail("this test creates a user and must run as root (CI does)")
    pw = _ensure_user()
    BASE.mkdir(parents=True, exist_ok=True)
    BASE.chmod(0o755)
    project = BASE / "project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(PROJECT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / f, project / f)
    venv = BASE / "venv"
    if not (venv / "bin" / "pip").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(project)], check=True)
    else:
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--force-reinstall", str(project)], check=True
        )
    out = BASE / "results"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    os.chown(out, pw.pw_uid, pw.pw_gid)
    return venv / "bin" / "deb-mock"


def test_normal_user_builds_hello(user_deb_mock: Path, deb_mock) -> None:  # type: ignore[no-untyped-def]
    rd = BASE / "results" / "hello"
    proc = subprocess.run(
        [
            "runuser",
            "-u",
            USER,
            "--",
            str(user_deb_mock),
            "-r",
            "debian-trixie-amd64",
            "--resultdir",
            str(rd),
            "--rebuild",
            HELLO,
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((rd / "result.json").read_text())
    assert result["state"] == "success"
    deb = rd / "hello_2.10-3_amd64.deb"
    assert deb.stat().st_uid == pwd.getpwnam(USER).pw_uid
    # the user's cache is in the user's home, owned by the user (ns-root is the user there)
    cache = Path(pwd.getpwnam(USER).pw_dir) / ".cache" / "deb-mock"
    assert next(cache.glob("root-cache/debian-trixie-amd64-*/current")).exists()
    # and the package is the same, bit for bit, as the one root builds
    as_root = deb_mock("--rebuild", HELLO)
    assert as_root.rc == 0
    assert (as_root.resultdir / deb.name).read_bytes() == deb.read_bytes()
    # a user can clean up what its sandboxes wrote (files owned by its subordinate ids)
    scrub = subprocess.run(
        ["runuser", "-u", USER, "--", str(user_deb_mock), "-r", "debian-trixie-amd64", "--scrub", "chroot"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert scrub.returncode == 0, scrub.stdout + scrub.stderr


def test_normal_users_sandbox_resists_the_same_attacks(user_deb_mock: Path) -> None:
    """The launcher's attack tests (tests/debsandbox/attacks.py), run by the user: there ns-root *is* the
    user, nothing is staged by real root, and a host directory the user owns is what an escape would hit."""
    pw = pwd.getpwnam(USER)
    work = BASE / "attacks"
    shutil.rmtree(work, ignore_errors=True)
    (work / "host").mkdir(parents=True)
    (work / "host" / "marker").write_text("HOST-SECRET\n")
    shutil.copy2(PROJECT / "tests" / "debsandbox" / "attacks.py", work / "attacks.py")
    for p in [work, *work.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)
    python = user_deb_mock.parent / "python"
    argv = [str(python), str(work / "attacks.py"), str(work / "run"), str(work / "host")]
    proc = subprocess.run(["runuser", "-u", USER, "--", *argv], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["problems"] == [], f"{report['problems']}\n{report['root']}\n{report['user']}"
    assert sorted(os.listdir(work / "host")) == ["marker"]
    shutil.rmtree(work)
