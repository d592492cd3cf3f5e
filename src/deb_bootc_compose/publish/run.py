"""``publish``: a FINISHED compose's commits into a signed, static OSTree repository.

The order keeps the repository valid for clients at every moment (a ``kill -9`` anywhere leaves something
they can pull from; the next publish finishes the job):

1. check everything that can be checked without touching DIR: the compose, its commits, the keys, and that
   the machines that will verify each commit trust one of those keys (:mod:`.trust`);
2. objects: pull each commit in (``pull-local --untrusted``), sign it (detached ``.commitmeta``: the commit
   checksum stays the compose's), write the static delta from the previously published commit of its ref;
3. the record (``deb-bootc/history.json``), then the refs;
4. deltas that involve no kept commit go, then ``summary`` is regenerated and signed (``summary.sig``), and
   its checksums recorded: a publish that stopped before this point is not "current", the next one redoes it;
5. commits beyond ``--keep`` are deleted with the objects only they reached;
6. the compose's target directory records where its commits went (:mod:`.usage`): ``prune`` keeps those.

Nothing is written when the compose is already published as recorded (publishing twice changes nothing: a new
summary would carry a new timestamp and signature).
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose import metadata as md
from deb_bootc_compose import status
from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.paths import ComposePaths
from debsandbox.locks import LockBusy, flock

from .history import HISTORY_FILE, REF, History, plan_ref
from .keys import KeySpec, Signer, signer
from .repo import PublishedRepo
from .trust import check_trusted, trusted_keys
from .usage import record_published

DEFAULT_KEEP = 3
LOCK_FILE = ".deb-bootc-publish.lock"
SUMMARY_HISTORY_KEY = "deb-bootc.history"
CHECKSUM = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Published:
    """One ref of the compose after publishing."""

    ref: str
    commit: str
    new: bool  # the ref moved to this commit now
    signed: bool  # a signature was added now
    delta_from: str | None  # the static delta written or kept for this update
    pruned: tuple[str, ...]


@dataclass
class PublishResult:
    repo: Path
    refs: list[Published] = field(default_factory=list)
    changed: bool = False


@dataclass(frozen=True)
class Source:
    ref: str
    commit: str
    label: str  # variant/arch


def compose_sources(compose: Path) -> tuple[Path, list[Source]]:
    """The compose's source repository and (ref, commit) per variant/arch; PublishError when it cannot be published."""
    if not compose.is_dir():
        raise PublishError(f"{compose}: no such compose directory")
    paths = ComposePaths.at(compose.resolve())
    state = status.read(paths)
    if state != status.FINISHED:
        raise PublishError(f"{compose}: compose status is {state or 'missing (no STATUS file)'}, not FINISHED; "
                           "only a finished compose is published")
    try:
        entries = md.load_ostree(paths.ostree_json)
    except FileNotFoundError:
        raise PublishError(f"{compose}: {paths.ostree_json} is missing (the compose recorded no OSTree commit)"
                           ) from None
    except md.MetadataError as exc:
        raise PublishError(str(exc)) from None
    if not entries:
        raise PublishError(f"{compose}: {paths.ostree_json} records no commit")
    repo = paths.target.ostree_repo
    source = PublishedRepo(repo)
    result: list[Source] = []
    for e in entries:
        label = f"{e.variant}/{e.arch}"
        if not REF.match(e.ref) or not CHECKSUM.match(e.commit):
            raise PublishError(f"{paths.ostree_json}: {label}: malformed ref {e.ref!r} or commit {e.commit!r}")
        if not source.exists() or not source.has_commit(e.commit):
            raise PublishError(f"{compose}: commit {e.commit} ({label}, {e.ref}) is not in {repo} (pruned?); "
                               "recompose with its metadata/lockfile.yaml to get it back")
        result.append(Source(e.ref, e.commit, label))
    refs = [s.ref for s in result]
    if len(set(refs)) != len(refs):
        raise PublishError(f"{paths.ostree_json}: two variants share a ref ({', '.join(sorted(refs))})")
    return repo, result


def check_target(dest: Path) -> None:
    """DIR must be new, empty, or an archive repository (ours); nothing else is overwritten."""
    if dest.is_symlink():
        raise PublishError(f"--to {dest} is a symbolic link; give the real directory")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise PublishError(f"--to {dest} exists and is not a directory")
    repo = PublishedRepo(dest)
    if repo.exists():
        if repo.mode() not in ("archive", "archive-z2"):
            raise PublishError(f"--to {dest} is an OSTree repository in {repo.mode()!r} mode; web servers serve "
                               "archive-mode repositories: publish into a new directory")
        if not (dest / HISTORY_FILE).exists() and repo.commits():
            raise PublishError(f"--to {dest} is an OSTree repository that publish did not make (no {HISTORY_FILE}): "
                               "publish would prune commits it does not know; publish into a new directory")
        return
    if any(dest.iterdir()):
        raise PublishError(f"--to {dest} is neither empty nor an OSTree repository; publish into a new or empty "
                           "directory")


def check_keys(source_repo: Path, sources: list[Source], dest: Path, sig: Signer) -> None:
    """Every machine that will verify a commit trusts one of the signing keys (:mod:`.trust`)."""
    repo = PublishedRepo(dest)
    history = History.load(dest / HISTORY_FILE) if (dest / HISTORY_FILE).is_file() else History()
    for s in sources:
        check_trusted(trusted_keys(source_repo, s.commit), sig.fingerprints, s.label,
                      "machines installed from or updated to this compose")
        previous = plan_ref(s.ref, history.refs.get(s.ref, []), s.commit, 1).previous
        if previous and repo.exists() and repo.has_commit(previous):
            check_trusted(trusted_keys(dest, previous), sig.fingerprints, s.label,
                          "machines running the previously published commit")


def publish(compose: Path, dest: Path, keys: KeySpec, keep: int = DEFAULT_KEEP, log: Path | None = None
            ) -> PublishResult:
    """Publish ``compose`` into ``dest`` (see the module docstring)."""
    with ExitStack() as stack:
        try:  # the inputs, before DIR is touched
            if keep < 1:
                raise PublishError(f"--keep {keep}: keep at least 1 commit per ref")
            target = ComposePaths.at(compose.resolve()).target
            if target.state.is_dir():  # prune must not delete the commits while they are read
                try:
                    stack.enter_context(flock(target.prune_lock, shared=True, blocking=False, keep_file=True))
                except LockBusy:
                    raise PublishError(f"{target.target} is being pruned (lock {target.prune_lock}); publish "
                                       "after the prune") from None
            source_repo, sources = compose_sources(compose)
            check_target(dest)
            sig = stack.enter_context(signer(keys))
            check_keys(source_repo, sources, dest, sig)
        except PublishError as exc:
            exc.untouched = True
            raise
        dest.mkdir(parents=True, exist_ok=True)
        try:
            stack.enter_context(flock(dest / LOCK_FILE, blocking=False, keep_file=True))
        except LockBusy:
            busy = PublishError(f"{dest} is being published by another process (lock {dest / LOCK_FILE}); "
                                "wait for it and try again")
            busy.untouched = True
            raise busy from None
        result = _publish_locked(source_repo, sources, PublishedRepo(dest, log), sig, keep)
        try:
            record_published(target, dest, {s.ref: s.commit for s in sources})
        except OSError as exc:
            raise PublishError(f"{dest} is published, but recording that in {target.published} failed ({exc}): "
                               "`deb-bootc-compose prune` would not know these commits are served") from exc
        return result


def _publish_locked(source_repo: Path, sources: list[Source], repo: PublishedRepo, sig: Signer, keep: int
                    ) -> PublishResult:
    record = repo.root / HISTORY_FILE
    if not repo.exists():
        repo.init()
    if not record.exists():  # from now on the repository is ours (an interrupted first publish included)
        History().write(record)
    history = History.load(record)
    plans = {s.ref: plan_ref(s.ref, history.refs.get(s.ref, []), s.commit, keep) for s in sources}
    result = PublishResult(repo.root)
    signed: dict[str, bool] = {}
    for s in sources:  # objects first: nothing refers to them yet
        if not repo.has_commit(s.commit):
            repo.pull_local(source_repo, s.commit)
            result.changed = True
        signed[s.ref] = repo.sign(s.commit, sig)  # before the delta: its superblock embeds the signatures
        if signed[s.ref]:
            result.changed = True
            for frm, to in repo.deltas():  # deltas made before carry the old signatures only: made again
                if to == s.commit:
                    repo.delete_delta(frm, to)
        plan = plans[s.ref]
        if plan.previous and repo.has_commit(plan.previous) and (plan.previous, s.commit) not in repo.deltas():
            repo.generate_delta(plan.previous, s.commit)
            result.changed = True
    new_history = History({**history.refs, **{r: list(p.kept) for r, p in plans.items()}},
                          history.summary_sha256, history.summary_sig_sha256)
    moved = {s.ref for s in sources if repo.rev_parse(s.ref) != s.commit}
    if new_history.refs != history.refs or moved:
        new_history.summary_sha256 = new_history.summary_sig_sha256 = None  # the summary is not current yet
        new_history.write(record)
        for s in sources:
            if s.ref in moved:
                repo.set_ref(s.ref, s.commit)
        result.changed = True
    _drop_stale_deltas(repo, new_history, result)
    current = (repo.file_sha256("summary"), repo.file_sha256("summary.sig"))
    if result.changed or current != (new_history.summary_sha256, new_history.summary_sig_sha256) or None in current:
        repo.update_summary(sig, {SUMMARY_HISTORY_KEY: new_history.summary_metadata()})
        new_history.summary_sha256, new_history.summary_sig_sha256 = (repo.file_sha256("summary"),
                                                                      repo.file_sha256("summary.sig"))
        new_history.write(record)
        result.changed = True
    pruned = _prune(repo, new_history)
    result.changed |= bool(pruned)
    for s in sources:
        plan = plans[s.ref]
        delta = plan.previous if plan.previous and (plan.previous, plan.new) in repo.deltas() else None
        result.refs.append(Published(s.ref, s.commit, s.ref in moved, signed[s.ref], delta,
                                     tuple(c for c in plan.dropped if c in pruned)))
    return result


def _drop_stale_deltas(repo: PublishedRepo, history: History, result: PublishResult) -> None:
    kept = history.kept_commits()
    for frm, to in sorted(repo.deltas()):
        if to not in kept or (frm and frm not in kept):
            repo.delete_delta(frm, to)
            result.changed = True


def _prune(repo: PublishedRepo, history: History) -> list[str]:
    """Delete every commit the record no longer keeps (also those an interrupted publish left), with the objects
    only they reached."""
    kept = history.kept_commits()
    pruned = [c for c in repo.commits() if c not in kept]
    for commit in pruned:
        repo.delete_commit(commit)
    return pruned
