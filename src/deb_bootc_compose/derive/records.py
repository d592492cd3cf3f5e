"""A derived compose tells its base's target directory that it uses a compose there: one JSON file per derived
compose in ``BASE_TARGET/.state/derived/`` (written when the derived compose starts, before it reads the base).
``prune`` of the base's target keeps a compose that a derived compose still existing names as its base (its
lockfile's ``base``, or any base while it is still being composed). A record whose derived compose is gone is
stale and ignored (prune removes it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from deb_bootc_compose import status
from deb_bootc_compose.derive.basecompose import BaseCompose
from deb_bootc_compose.lockfile import LockfileError
from deb_bootc_compose.lockfile import load as load_lockfile
from deb_bootc_compose.paths import ComposePaths, TargetPaths


def _record_path(target: TargetPaths, derived: ComposePaths) -> Path:
    key = hashlib.sha256(os.fsencode(derived.topdir)).hexdigest()[:24]
    return target.derived_uses / f"{key}.json"


def record_use(base: BaseCompose, derived: ComposePaths) -> None:
    """Tell the base's target that ``derived`` is built on ``base`` (a compose's; an image has no target)."""
    if base.paths is None:
        return
    path = _record_path(base.paths.target, derived)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"base": base.compose_id, "derived": str(derived.topdir)}) + "\n")
    os.replace(tmp, path)


def _uses(path: Path) -> tuple[str, Path] | None:
    try:
        rec = json.loads(path.read_text())
        return str(rec["base"]), Path(str(rec["derived"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bases_in_use(target: TargetPaths) -> tuple[dict[str, list[str]], list[Path]]:
    """(compose ID -> why a derived compose uses it, stale records). An unreadable record keeps nothing (it names
    nothing); a derived compose whose lockfile cannot be read but is still STARTED keeps the base it named."""
    used: dict[str, list[str]] = {}
    stale: list[Path] = []
    if not target.derived_uses.is_dir():
        return used, stale
    for path in sorted(target.derived_uses.glob("*.json")):
        found = _uses(path)
        if found is None:
            continue
        base_id, derived_dir = found
        derived = ComposePaths.at(derived_dir)
        if not derived_dir.is_dir():
            stale.append(path)
            continue
        try:
            lock = load_lockfile(derived.lockfile)
            named = lock.base.compose_id if lock.base is not None else None
        except (OSError, LockfileError):
            named = base_id if status.read(derived) == status.STARTED else None
        if named == base_id:
            used.setdefault(base_id, []).append(f"the derived compose {derived_dir} is built on it")
        elif status.read(derived) != status.STARTED:
            stale.append(path)
    return used, stale
