"""Carry out a prune plan, in an order that leaves the target usable at every moment (a ``kill -9`` anywhere
leaves composes that are either whole or gone, and the next prune finishes the job):

1. under the target's compose lock and prune lock (no compose, no publish reading commits), empty the trash a
   prune that was stopped left;
2. each compose that goes: its no-op recompose records first, then the directory is renamed into
   ``.state/trash`` (atomic: it is gone from the target at once) and removed from there;
3. commits in the shared OSTree repository that no kept compose, no ref and no published ref holds, each with
   the objects only it reached (``ostree prune --delete-commit``); the bare staging repository keeps only its refs;
4. pool .debs no kept compose's lockfile names (a lockfile recompose of a removed compose downloads them again).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose import treeops
from deb_bootc_compose.derive.records import bases_in_use
from deb_bootc_compose.errors import PruneError
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.publish.repo import PublishedRepo
from debsandbox.commands import CommandError
from debsandbox.locks import LockBusy, flock
from debsandbox.sandbox import Sandbox

from . import scan
from .plan import Compose, Plan, Policy, decide

Say = Callable[[str], None]


@dataclass
class PruneReport:
    plan: Plan
    composes: dict[str, Compose]
    dry_run: bool
    compose_bytes: int = 0
    commits: list[str] = field(default_factory=list)
    ostree_bytes: int | None = None  # measured when the commits are deleted
    debs: list[Path] = field(default_factory=list)
    deb_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.compose_bytes + (self.ostree_bytes or 0) + self.deb_bytes


def prune(target_dir: Path, policy: Policy, *, dry_run: bool = False, now: dt.datetime | None = None,
          say: Say = print) -> PruneReport:
    """Prune ``target_dir`` (see the module docstring); ``dry_run`` only says what would go."""
    target = TargetPaths(target_dir.resolve())
    if not target.target.is_dir() or not target.state.is_dir():
        raise _untouched(f"{target_dir}: not a compose target directory (no {target.state.name}/ in it)")
    with ExitStack() as stack:
        if not dry_run:
            stack.enter_context(_locked(target))
            _empty_trash(target, say)
        found = {c.compose_id: c for c in scan.composes(target)}
        used = scan.used_commits(target)
        bases, stale = bases_in_use(target)
        plan = decide(list(found.values()), policy, now or dt.datetime.now(dt.UTC), scan.latest_links(target), used,
                      bases)
        report = PruneReport(plan, found, dry_run)
        report.compose_bytes = scan.tree_bytes([target.target / cid for cid in plan.remove])
        for cid in plan.remove:
            say(f"{'would remove' if dry_run else 'removing'} compose {cid} ({found[cid].status})")
            if not dry_run:
                _remove_compose(target, cid)
        for record in stale:
            say(f"{'would remove' if dry_run else 'removing'} {record} (its derived compose is gone)")
            if not dry_run:
                record.unlink(missing_ok=True)
        _prune_commits(target, plan, set(used), report, say)
        _prune_pool(target, plan, report, say)
        return report


@contextmanager
def _locked(target: TargetPaths) -> Iterator[None]:
    try:
        with flock(target.lock, blocking=False, keep_file=True), \
                flock(target.prune_lock, blocking=False, keep_file=True):
            yield
    except LockBusy:
        raise _untouched(f"{target.target} is in use (a compose holds {target.lock.name} or a publish reads its "
                         "commits); prune when it is done") from None


def _untouched(message: str) -> PruneError:
    exc = PruneError(message)
    exc.untouched = True
    return exc


def _empty_trash(target: TargetPaths, say: Say) -> None:
    if target.trash.is_dir():
        for left in sorted(target.trash.iterdir()):
            say(f"finishing the removal of {left.name} (a prune was stopped)")
            treeops.remove_tree(left)


def _remove_compose(target: TargetPaths, compose_id: str) -> None:
    inputs = target.input_records
    for record in sorted(inputs.glob("*.json")) if inputs.is_dir() else ():
        try:
            names = json.loads(record.read_text(encoding="utf-8")).get("compose_id")
        except (OSError, ValueError, AttributeError):
            continue
        if names == compose_id:
            record.unlink(missing_ok=True)
    target.trash.mkdir(exist_ok=True)
    gone = target.trash / compose_id
    os.rename(target.target / compose_id, gone)
    treeops.remove_tree(gone)


def _prune_commits(target: TargetPaths, plan: Plan, used: set[str], report: PruneReport, say: Say) -> None:
    repo = PublishedRepo(target.ostree_repo)
    if not repo.exists():
        return
    kept = plan.kept_commits(report.composes)
    if kept is None:
        report.notes.append("commits: a kept compose's metadata/ostree.json is unreadable, so no commit is deleted")
        return
    held = kept | set(repo.heads().values()) | used
    report.commits = [c for c in repo.commits() if c not in held]
    if report.dry_run or not report.commits:
        if report.commits:
            report.notes.append("the bytes the commits free are measured when they are deleted")
        for c in report.commits:
            say(f"would delete commit {c}")
        return
    before = _objects_bytes(target.ostree_repo) + _objects_bytes(target.bare_repo)
    for c in report.commits:
        say(f"deleting commit {c} and the objects only it reached")
        repo.delete_commit(c)
    _prune_bare(target)
    report.ostree_bytes = max(0, before - _objects_bytes(target.ostree_repo) - _objects_bytes(target.bare_repo))


def _prune_bare(target: TargetPaths) -> None:
    """The bare-user staging repo (owned by ns-root: pruned in the namespace) keeps only what its refs reach."""
    if not (target.bare_repo / "config").is_file():
        return
    try:
        Sandbox(root=None).run(["ostree", "prune", "--repo=@repo@", "--refs-only", "--depth=0"],
                               ids=treeops.tree_ids(), paths={"repo": target.bare_repo}, timeout=3600)
    except CommandError as exc:
        raise PruneError(f"pruning the staging repository {target.bare_repo} failed:\n{exc.tail}") from exc


def _objects_bytes(repo: Path) -> int:
    return scan.tree_bytes([repo / "objects"]) if (repo / "objects").is_dir() else 0


def _prune_pool(target: TargetPaths, plan: Plan, report: PruneReport, say: Say) -> None:
    kept = plan.kept_debs(report.composes)
    if kept is None:
        report.notes.append("pool: a kept FINISHED compose has no readable lockfile, so no .deb is removed")
        return
    debs: list[Path] = []
    kept_inodes: set[tuple[int, int]] = set()
    for deb in sorted((target.pool / "by-sha256").glob("??/*.deb")):
        if deb.stem in kept:
            st = deb.lstat()
            kept_inodes.add((st.st_dev, st.st_ino))
        else:
            debs.append(deb)
    by_source = target.pool / "by-source"
    for built in sorted(by_source.glob("*/*")) if by_source.is_dir() else ():
        files = [p for p in built.rglob("*") if p.is_file() and not p.is_symlink()]
        if not any((st.st_dev, st.st_ino) in kept_inodes for st in map(os.lstat, files)):
            debs.append(built)
    report.debs = debs
    report.deb_bytes = scan.tree_bytes(debs)
    for p in debs:
        rel = p.relative_to(target.pool)
        say(f"{'would remove' if report.dry_run else 'removing'} pool/{rel}")
        if report.dry_run:
            continue
        if p.is_dir() and not p.is_symlink():
            treeops.remove_tree(p)  # a built client's directory
        else:
            p.unlink(missing_ok=True)  # a pool file: no rm process, no mount table read per file
