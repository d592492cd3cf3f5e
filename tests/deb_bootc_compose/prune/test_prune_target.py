"""``deb-bootc-compose prune`` on a small real target (real OSTree commits and repository, real pool files,
a real publish): what is kept and why, dry runs, busy targets, unreadable records, and prunes killed half-way.

The target: A (12-01, FINISHED), B (version 12, 12-02, FINISHED, ``latest-atomic-12``), C (12-03, DOOMED, with a
commit), D (12-04, FINISHED, ``latest-atomic-13``, the ref's head). ``--keep 1`` keeps D (newest) and B (linked)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from prunehelpers import REF, commit_of, make_compose, ostree, pool_deb, staged, staging_commits, state_of

from deb_bootc_compose.cli import main
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.publish import KeySpec, publish
from debsandbox.locks import flock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "publish"))
from pubhelpers import make_key

pytestmark = pytest.mark.integration

A, B, C, D = "atomic-13-20261201.n.0", "atomic-12-20261202.n.0", "atomic-13-20261203.n.0", "atomic-13-20261204.n.0"
CLI = [sys.executable, "-c", "import sys; from deb_bootc_compose.cli import main; sys.exit(main(sys.argv[1:]))"]


def build(root: Path) -> TargetPaths:
    target = TargetPaths(root)
    shared, a, b, c, d = (pool_deb(target, n) for n in ("libc6", "only-a", "only-b", "only-c", "only-d"))
    make_compose(target, A, 1, "FINISHED", [shared, a])
    make_compose(target, B, 2, "FINISHED", [shared, b])
    make_compose(target, C, 3, "DOOMED", [shared, c])
    make_compose(target, D, 4, "FINISHED", [shared, d])
    for link, cid in (("latest-atomic-12", B), ("latest-atomic-13", D)):
        (root / link).symlink_to(cid)
    for pkg, source_hash in ((a, "1" * 64), (d, "2" * 64)):  # the client built locally, kept by source too
        built = target.pool / "by-source/deb-bootc" / source_hash
        built.mkdir(parents=True)
        os.link(target.pool_deb(pkg.sha256), built / f"{pkg.name}.deb")
    return target


def pool_file(target: TargetPaths, name: str) -> str:
    return str(target.pool_deb(pool_deb(TargetPaths(Path("/nonexistent")), name, write=False).sha256)
               .relative_to(target.pool))


def expected(target: TargetPaths) -> dict[str, object]:
    """The state after ``--keep 1``: B and D with what they use."""
    gone = {pool_file(target, "only-a"), pool_file(target, "only-c"), f"by-source/deb-bootc/{'1' * 64}/only-a.deb"}
    inputs = {f"{hashlib.sha256(c.encode()).hexdigest()}.json" for c in (B, D)}
    now = state_of(target)
    return {"composes": [B, D], "commits": sorted([commit_of(target.compose(B)), commit_of(target.compose(D))]),
            "refs": REF, "pool": [p for p in now["pool"] if p not in gone],  # type: ignore[attr-defined]
            "inputs": sorted(inputs), "links": [f"latest-atomic-12->{B}", f"latest-atomic-13->{D}"]}


def test_dry_run_then_prune_keeps_what_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = build(tmp_path / "target")
    stage = staging_commits(target, 2)
    want = expected(target)
    before = state_of(target)
    commit_a, commit_c = commit_of(target.compose(A)), commit_of(target.compose(C))

    assert main(["prune", str(target.target), "--keep", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert state_of(target) == before  # a dry run removes nothing
    assert f"would remove compose {A} (FINISHED)" in out and f"would remove compose {C} (DOOMED)" in out
    assert f"would delete commit {commit_a}" in out and f"would delete commit {commit_c}" in out
    assert f"keeping {B}: latest-atomic-12 points at it" in out
    assert "2 compose(s)" in out and "would free" in out

    assert main(["prune", str(target.target), "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert state_of(target) == want
    assert f"removing compose {A}" in out and f"deleting commit {commit_a}" in out
    assert staged(target) == [stage[1]]  # the staging repo keeps what its ref reaches
    ostree(target.ostree_repo, "fsck")
    for kept in (B, D):  # whole: its commit checks out, its deliverables and lockfile are there
        assert ostree(target.ostree_repo, "cat", commit_of(target.compose(kept)), "/usr/lib/os-release") == kept
        assert (target.compose(kept).deliverables / "base/x86_64/images/disk.raw").stat().st_size > 0
    freed = out.strip().splitlines()[-1]
    assert "2 compose(s)" in freed and "2 commit(s)" in freed and "3 pool file(s)" in freed and "freed" in freed
    assert float(freed.rsplit("freed ", 1)[1].split()[0]) > 0.1  # MiB: the composes' files, the pool's, objects

    assert main(["prune", str(target.target), "--keep", "1"]) == 0  # again: nothing left to do
    assert "0 compose(s)" in capsys.readouterr().out and state_of(target) == want


def test_a_published_commit_keeps_its_compose_until_the_repo_moves_on(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    target = build(tmp_path / "target")
    key = make_key(tmp_path, "pub")
    dest = tmp_path / "pub"
    publish(target.compose(A).topdir, dest, KeySpec(files=(key.secret,)), keep=1)
    assert main(["prune", str(target.target), "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert f"keeping {A}: commit {commit_of(target.compose(A))[:12]} published in {dest.resolve()} ({REF})" in out
    assert A in state_of(target)["composes"]  # type: ignore[operator]
    publish(target.compose(D).topdir, dest, KeySpec(files=(key.secret,)), keep=1)  # the repository serves D now
    assert main(["prune", str(target.target), "--keep", "1"]) == 0
    assert f"removing compose {A}" in capsys.readouterr().out
    assert state_of(target)["composes"] == [B, D]


def test_a_busy_target_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = build(tmp_path / "target")
    before = state_of(target)
    for lock in (target.lock, target.prune_lock):  # a compose runs / a publish reads commits
        with flock(lock, shared=lock == target.prune_lock, keep_file=True):
            assert main(["prune", str(target.target), "--keep", "1"]) == 2
        assert "is in use" in capsys.readouterr().err
    assert state_of(target) == before
    assert main(["prune", str(tmp_path), "--keep", "1"]) == 2
    assert "not a compose target directory" in capsys.readouterr().err
    assert main(["prune", str(target.target), "--keep", "0"]) == 2
    assert "--keep 0" in capsys.readouterr().err


def test_unreadable_records_keep_what_they_might_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = build(tmp_path / "target")
    pool_before = state_of(target)["pool"]
    target.compose(D).lockfile.write_text("lockfile_version: [\n")
    target.compose(B).ostree_json.write_text("{")
    assert main(["prune", str(target.target), "--keep", "1"]) == 0
    out = capsys.readouterr().out
    after = state_of(target)
    assert after["composes"] == [B, D]  # composes still go
    assert after["pool"] == pool_before and "no .deb is removed" in out
    assert len(after["commits"]) == 4 and "no commit is deleted" in out  # type: ignore[arg-type]


@pytest.mark.parametrize("stop_after", ["removing compose", "deleting commit", "removing pool/"])
def test_a_prune_killed_half_way_leaves_a_usable_target(tmp_path: Path, stop_after: str) -> None:
    target = build(tmp_path / "target")
    want = expected(target)
    kept = {cid: commit_of(target.compose(cid)) for cid in (B, D)}
    proc = subprocess.Popen([*CLI, "prune", str(target.target), "--keep", "1"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(stop_after):
            proc.send_signal(signal.SIGKILL)
            break
    else:
        pytest.fail(f"prune printed no line starting with {stop_after!r}")
    proc.wait(timeout=60)
    proc.stdout.close()
    # usable at once: the kept composes are whole, their commits intact, the repository consistent
    ostree(target.ostree_repo, "fsck")
    for cid, commit in kept.items():
        assert ostree(target.ostree_repo, "cat", commit, "/usr/lib/os-release") == cid
        assert (target.compose(cid).status.read_text().strip() == "FINISHED")
    assert all((target.pool / p).is_file() for p in want["pool"])  # type: ignore[attr-defined]
    done = subprocess.run([*CLI, "prune", str(target.target), "--keep", "1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert state_of(target) == want
    assert not target.trash.exists() or not any(target.trash.iterdir())


def test_a_base_a_derived_compose_uses_is_kept_until_the_derived_compose_goes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A derived compose in another target names A as its base (its lockfile, and the record it left in A's target):
    ``--keep 1`` keeps A. Once the derived compose is gone, A goes and so does the stale record."""
    from deb_bootc_compose.derive.records import record_use
    from deb_bootc_compose.lockfile import LockedBase
    from deb_bootc_compose.lockfile import load as load_lockfile

    target = build(tmp_path / "target")
    other = TargetPaths(tmp_path / "derived-target")
    derived = make_compose(other, "particle-1-20261205.n.0", 5, "FINISHED", [pool_deb(other, "htop")])
    lock = load_lockfile(derived.lockfile)
    lock.base = LockedBase(compose_id=A, compose_dir=str(target.compose(A).topdir), variant="base",
                           commits={"x86_64": commit_of(target.compose(A))}, images={})
    lock.write(derived.lockfile)

    class Base:  # what record_use reads of a loaded base compose
        compose_id = A
        paths = target.compose(A)

    record_use(Base(), derived)  # type: ignore[arg-type]
    assert main(["prune", str(target.target), "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert f"keeping {A}: the derived compose {derived.topdir} is built on it" in out
    assert target.compose(A).topdir.is_dir() and not target.compose(C).topdir.exists()
    assert ostree(target.ostree_repo, "cat", commit_of(target.compose(A)), "/usr/lib/os-release") == A

    subprocess.run(["rm", "-rf", str(derived.topdir)], check=True)
    assert main(["prune", str(target.target), "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert f"removing compose {A}" in out and "its derived compose is gone" in out
    assert not target.compose(A).topdir.exists() and not list(target.derived_uses.glob("*.json"))
