"""What a published repository has published: per ref, its commits newest first (``DIR/deb-bootc/history.json``).

Compose commits have no parent (a parent would make the checksum depend on what was published before, and the
commit a machine installed from a disk image would differ from the published one of the same compose). So the
published history is not an OSTree parent chain: publish records it here, and in the signed summary's metadata
(``deb-bootc.history``, ref → commits newest first) for clients. The newest ``keep`` commits of each ref stay
pullable; older ones are pruned. The record also holds the SHA-256 of the summary and its signature as the last
complete publish left them: a publish interrupted before that point is finished by the next one, and a publish
that finds everything as recorded changes nothing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.errors import PublishError

HISTORY_FILE = Path("deb-bootc") / "history.json"  # in the published repository
FORMAT = 1
CHECKSUM = re.compile(r"^[0-9a-f]{64}$")
REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")  # what OSTree accepts
MAX_RECORD = 16 << 20


@dataclass(frozen=True)
class RefPlan:
    """What publishing ``new`` on a ref does: the delta source, the commits kept and those dropped."""

    ref: str
    new: str
    previous: str | None  # the newest published commit that is not ``new``: a static delta goes from it
    kept: tuple[str, ...]  # newest first, ``new`` first
    dropped: tuple[str, ...]

    @property
    def deltas(self) -> tuple[tuple[str, str], ...]:
        """The deltas this ref keeps: between consecutive kept commits (older → newer)."""
        return tuple((self.kept[i + 1], self.kept[i]) for i in range(len(self.kept) - 1))


def plan_ref(ref: str, published: list[str], new: str, keep: int) -> RefPlan:
    """Publish ``new`` on a ref whose published commits (newest first) are ``published``."""
    if keep < 1:
        raise PublishError(f"--keep {keep}: at least the newest commit must be kept")
    rest = [c for c in published if c != new]
    order = [new, *rest]
    return RefPlan(ref, new, rest[0] if rest else None, tuple(order[:keep]), tuple(order[keep:]))


@dataclass
class History:
    """The record of ``DIR/deb-bootc/history.json``."""

    refs: dict[str, list[str]] = field(default_factory=dict)
    summary_sha256: str | None = None
    summary_sig_sha256: str | None = None

    @classmethod
    def load(cls, path: Path) -> History:
        if not path.exists():
            return cls()
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RECORD:
                raise ValueError("not a regular file of reasonable size")
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            refs = {str(r): [str(c) for c in cs] for r, cs in data["refs"].items()}
            for ref, commits in refs.items():
                if not REF.match(ref):
                    raise ValueError(f"{ref!r} is not an OSTree ref")
                if not all(CHECKSUM.match(c) for c in commits):
                    raise ValueError("a commit is not a SHA-256 checksum")
            summary = data.get("summary") or {}
            return cls(refs, summary.get("sha256"), summary.get("sig_sha256"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PublishError(f"{path}: unreadable publish record ({exc}); it records what was published -- "
                               "restore it or publish into a new directory") from None

    def to_json(self) -> dict[str, object]:
        return {"format": FORMAT, "refs": {r: list(cs) for r, cs in sorted(self.refs.items())},
                "summary": {"sha256": self.summary_sha256, "sig_sha256": self.summary_sig_sha256}}

    def write(self, path: Path) -> None:
        """Atomically (a temporary file renamed over the record)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def summary_metadata(self) -> str:
        """``deb-bootc.history`` in GVariant text (a{sas}): what the signed summary tells clients."""
        items = ", ".join(f"'{ref}': [{', '.join(repr(c) for c in cs)}]" for ref, cs in sorted(self.refs.items()))
        return "@a{sas} {" + items + "}"

    def kept_commits(self) -> set[str]:
        return {c for cs in self.refs.values() for c in cs}
