"""Where a target's commits were published, so that ``prune`` never removes a compose a published ref serves.

``publish`` records, per published repository, the refs and commits it published from this target
(``TARGET/.state/published/<sha256 of the repository path>.json``). ``prune`` keeps every compose whose commit a
published ref points at today: it reads the repository's own history record when the repository is there, and
falls back to the recorded commits when it is not (a repository on a disk that is not mounted is still in use).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.paths import TargetPaths
from debarchive.safeio import read_named_file

from .history import CHECKSUM, HISTORY_FILE, REF, History

FORMAT = 1
MAX_RECORD = 1 << 20


@dataclass(frozen=True)
class InUse:
    """A commit something outside the compose directories uses, and who."""

    commit: str
    why: str


def record_published(target: TargetPaths, dest: Path, refs: dict[str, str]) -> None:
    """Remember that ``refs`` (ref → commit) of this target were published into ``dest`` (atomic write)."""
    where = dest.resolve()
    target.published.mkdir(parents=True, exist_ok=True)
    path = target.published / f"{hashlib.sha256(str(where).encode()).hexdigest()}.json"
    old = _load(path)
    merged = {**(old[1] if old else {}), **refs}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "repository": str(where), "refs": dict(sorted(merged.items()))},
                              indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _load(path: Path) -> tuple[Path, dict[str, str]] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(read_named_file(path, MAX_RECORD))
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        refs = {str(r): str(c) for r, c in data["refs"].items()}
        if not all(REF.match(r) and CHECKSUM.match(c) for r, c in refs.items()):
            raise ValueError("a ref or commit is malformed")
        return Path(str(data["repository"])), refs
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PublishError(f"{path}: unreadable publish record ({exc}); it says which commits a published "
                           "repository serves -- restore it, or remove it if that repository is gone for good"
                           ) from None


def published_commits(target: TargetPaths) -> list[InUse]:
    """Every commit a repository this target published into serves at the head of a ref."""
    if not target.published.is_dir():
        return []
    used: list[InUse] = []
    for path in sorted(target.published.glob("*.json")):
        loaded = _load(path)
        if loaded is None:
            continue
        repo, recorded = loaded
        heads = dict(recorded)
        try:
            history = History.load(repo / HISTORY_FILE) if (repo / HISTORY_FILE).is_file() else None
        except PublishError:
            history = None  # unreadable: keep what we recorded
        if history is not None:
            heads.update({ref: commits[0] for ref, commits in history.refs.items() if commits and ref in recorded})
        used.extend(InUse(commit, f"published in {repo} ({ref})") for ref, commit in sorted(heads.items()))
    return used
