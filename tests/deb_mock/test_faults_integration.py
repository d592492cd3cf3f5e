"""Bad input and faults: each leaves caches consistent and says what went wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from dm_helpers import DEB_MOCK, leftover_processes, processes_with_env, unheld_lock_files

from srcpkg import interactive_sigint

pytestmark = pytest.mark.integration


def test_unknown_config_lists_the_valid_ones(deb_mock) -> None:  # type: ignore[no-untyped-def]
    run = deb_mock("-r", "debian-hamm-amd64", "--rebuild", "x.dsc")
    assert run.rc == 2
    assert "unknown config 'debian-hamm-amd64'" in run.out and "debian-trixie-amd64" in run.out


def test_corrupt_dsc_names_the_file(deb_mock, sources, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = sources["depwait"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in src.parent.glob("dm-depwait_1.0*"):
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    tarball = next(copy.glob("*.tar.*"))
    tarball.write_bytes(tarball.read_bytes()[:-1] + b"\0")
    run = deb_mock("--rebuild", str(copy / src.name))
    assert run.rc == 2, run.out
    assert run.result["state"] == "error"
    assert tarball.name in run.result["error"] and "mismatch" in run.result["error"]


def test_missing_source_on_the_mirror_names_the_url(deb_mock) -> None:  # type: ignore[no-untyped-def]
    url = "http://deb.debian.org/debian/pool/main/h/hello/hello_9.9-9.dsc"
    run = deb_mock("--rebuild", url)
    assert run.rc == 2
    assert url in run.result["error"] and "404" in run.result["error"]


def test_mirror_unreachable_is_an_infrastructure_error(deb_mock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    confdir = tmp_path / "conf"
    confdir.mkdir()
    (confdir / "offline.toml").write_text(
        'include = "templates/debian.toml"\nsuite = "trixie"\nmirror = "http://127.0.0.1:9/debian"\n'
    )
    run = deb_mock("--configdir", str(confdir), "-r", "offline", "--init")
    assert run.rc == 4, run.out
    assert "mirror unreachable" in run.out and "127.0.0.1:9" in run.out


def _wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_kill_9_mid_build_leaves_no_process_behind(  # type: ignore[no-untyped-def]
    sources, mock_cache, tmp_path: Path
) -> None:
    """deb-mock killed -9 (as when its builder dies) cannot clean up, but its build must not run on."""
    rd = tmp_path / "result"
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [DEB_MOCK, "--cache-dir", str(mock_cache), "--resultdir", str(rd), "--rebuild", str(sources["slow"])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, DEB_MOCK_TEST_MARKER=marker),
    )
    try:
        _wait_for(rd / "build.log", "SLOW-BUILD-STARTED", 900)
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while (processes_with_env(f"DEB_MOCK_TEST_MARKER={marker}") or leftover_processes("sleep 600")) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_with_env(f"DEB_MOCK_TEST_MARKER={marker}"), "the killed run's launcher is still running"
        assert not leftover_processes("sleep 600"), "the killed run's build is still running"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_build_leaves_nothing_behind(  # type: ignore[no-untyped-def]
    sig, deb_mock, sources, mock_cache, tmp_path: Path
) -> None:
    rd = tmp_path / "result"
    marker = f"DEB_MOCK_TEST_MARKER={uuid.uuid4().hex}"
    env = dict(os.environ, DEB_MOCK_TEST_MARKER=marker.split("=", 1)[1])
    # SIGINT as in a terminal; SIGTERM as a service manager or CI timeout sends it to a job started in the
    # background, which inherits SIGINT ignored (the SIGTERM run starts that way)
    preexec = interactive_sigint if sig == signal.SIGINT else _background_job
    proc = subprocess.Popen(
        [DEB_MOCK, "--cache-dir", str(mock_cache), "--resultdir", str(rd), "--rebuild", str(sources["slow"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=preexec,
    )
    try:
        _wait_for(rd / "build.log", "SLOW-BUILD-STARTED", 900)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    result = json.loads((rd / "result.json").read_text())
    assert result["state"] == "error" and result["exit_code"] == 130
    assert result["error"] == f"interrupted ({sig.name})"
    assert f"interrupted ({sig.name}): stopping the build" in (rd / "state.log").read_text()
    assert f"interrupted ({sig.name})" in out
    assert not leftover_processes("sleep 600")
    assert not processes_with_env(marker), "a process of the interrupted run survived"
    build_dirs = list((mock_cache / "builds").glob("*/*/upper/build/reproducible-path/dm-slow-*"))
    assert not build_dirs, "the throw-away root must be removed"
    assert not unheld_lock_files(mock_cache / "locks"), "no lock file may be left"
    # the root cache is intact and the next build, started at once, works
    assert next(mock_cache.glob("root-cache/debian-trixie-amd64-*/current/root/usr/bin/dpkg")).exists()
    after = deb_mock("--buildsrc", str(sources["tree"]))
    assert after.rc == 0, after.out


def _background_job() -> None:
    """``preexec_fn``: start like ``deb-mock ... &`` from a script (SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_disk_full_while_writing_the_root_cache(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs and must run as root (CI does)")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120m", "tmpfs", str(small)], check=True)
    try:
        rd = tmp_path / "result"
        proc = subprocess.run(
            [DEB_MOCK, "--cache-dir", str(small), "--resultdir", str(rd), "--init"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert "disk full" in proc.stderr
        root_caches = list(small.glob("root-cache/*/*"))
        assert not [p for p in root_caches if p.name != "current"], f"half-written cache left: {root_caches}"
        assert not list(small.glob("root-cache/*/current"))
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_concurrent_builds_share_one_dependency_snapshot(  # type: ignore[no-untyped-def]
    deb_mock, sources, mock_cache
) -> None:
    for entry in mock_cache.glob("deps-cache/*/meta.json"):
        if "python3-six=" in entry.read_text():
            subprocess.run(["rm", "-rf", str(entry.parent)], check=True)
    runs = []

    def one() -> None:
        runs.append(deb_mock("--rebuild", str(sources["concurrent"])))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.rc for r in runs] == [0, 0], [r.out for r in runs]
    notes = sorted(
        next(line.split("build-dependency cache: ")[1] for line in r.log("state.log").splitlines() if "cache: " in line)
        for r in runs
    )
    assert notes == ["hit (made by a concurrent build)", "miss, installing"]
    entries = [m for m in mock_cache.glob("deps-cache/*/meta.json") if "python3-six=" in m.read_text()]
    assert len(entries) == 1


def test_concurrent_bootstraps_make_one_root_cache(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    confdir.mkdir()
    # a small variant keeps this quick; the locking is the same for every config
    (confdir / "tiny.toml").write_text(
        'include = "templates/debian.toml"\nsuite = "trixie"\nvariant = "minbase"\npackages = ["passwd"]\n'
    )
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [DEB_MOCK, "--configdir", str(confdir), "-r", "tiny", "--cache-dir", str(cache), "--init"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    gens = list(cache.glob("root-cache/tiny-*/gen-*"))
    assert len(gens) == 1, gens
    assert sum("bootstrapping" in o for o in outs) == 1

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DEB_MOCK, "--configdir", str(confdir), "-r", "tiny", "--cache-dir", str(cache), *args],
            capture_output=True,
            text=True,
            timeout=900,
        )

    # a root cache left by an older version of the config (another key) is removed on the next bootstrap
    stale = cache / "root-cache" / "tiny-0123456789abcdef" / "gen-1" / "root"
    stale.mkdir(parents=True)
    # --update makes a new generation and retires the old one (nobody uses it)
    upd = cli("--update")
    assert upd.returncode == 0, upd.stdout + upd.stderr
    after = list(cache.glob("root-cache/tiny-*/gen-*"))
    assert len(after) == 1 and after != gens
    assert not stale.parent.parent.exists()
    # the working chroot made on the old generation is made again on the new one
    assert "made the working chroot" in cli("--init").stderr
    # --scrub=chroot removes the working chroot, --scrub=root-cache the root cache
    assert cli("--scrub", "chroot").returncode == 0
    assert not (cache / "chroots" / "tiny").exists()
    assert cli("--scrub", "root-cache").returncode == 0
    assert not list(cache.glob("root-cache/tiny-*"))
