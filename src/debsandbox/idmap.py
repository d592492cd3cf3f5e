"""Which host ids a sandbox's user namespace maps, for root and for normal users.

Inside every sandbox, uid 0 ("ns-root") is never real root on the host:

- run by root: ns ids 0..N-1 map to root's subordinate range (``/etc/subuid``), so ns-root is e.g. host
  uid 100000;
- run by a normal user: ns-root is that user, and ns ids 1..N-1 map to the user's subordinate range
  (the rootless-podman layout), so the user can still read and remove what ns-root writes.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path


class IdMapError(RuntimeError):
    pass


@dataclass(frozen=True)
class IdRange:
    inner: int
    outer: int
    count: int


@dataclass(frozen=True)
class IdMap:
    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    @property
    def root_uid(self) -> int:
        """The host uid that ns-root is."""
        return self.uids[0].outer

    @property
    def root_gid(self) -> int:
        return self.gids[0].outer

    def host_uid(self, inner: int) -> int:
        for r in self.uids:
            if r.inner <= inner < r.inner + r.count:
                return r.outer + inner - r.inner
        raise IdMapError(f"uid {inner} is not mapped in the sandbox")

    def host_gid(self, inner: int) -> int:
        for r in self.gids:
            if r.inner <= inner < r.inner + r.count:
                return r.outer + inner - r.inner
        raise IdMapError(f"gid {inner} is not mapped in the sandbox")


def _subid_range(path: Path, user: str, uid: int) -> tuple[int, int]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)):
            return int(parts[1]), int(parts[2])
    raise IdMapError(
        f"{user} has no subordinate id range in {path}; add one, e.g. "
        f"`echo '{user}:100000:65536' >> {path}` (as root; usermod --add-subuids does it too)"
    )


def current() -> IdMap:
    """The id map sandboxes use for the calling user (needs a 65536-long range in /etc/sub[ug]id)."""
    uid, gid = os.geteuid(), os.getegid()
    user = pwd.getpwuid(uid).pw_name
    ubase, ucount = _subid_range(Path("/etc/subuid"), user, uid)
    gbase, gcount = _subid_range(Path("/etc/subgid"), user, uid)
    if uid == 0:
        n = min(ucount, gcount, 65536)
        if n < 65536:
            raise IdMapError(f"root's subordinate range must have 65536 ids (found {n}) in /etc/subuid,/etc/subgid")
        return IdMap((IdRange(0, ubase, n),), (IdRange(0, gbase, n),))
    n = min(ucount, gcount, 65535)
    if n < 65535:
        raise IdMapError(f"{user}'s subordinate range needs at least 65535 ids in /etc/subuid and /etc/subgid")
    return IdMap(
        (IdRange(0, uid, 1), IdRange(1, ubase, n)),
        (IdRange(0, gid, 1), IdRange(1, gbase, n)),
    )
