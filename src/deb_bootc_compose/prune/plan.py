"""Which composes of a target directory ``prune`` keeps, and why (pure: the caller reads the target).

Composes are grouped by name and type (Pungi's compose IDs: ``NAME-VERSION-DATE[.n|.t].RESPIN``), newest
first (the ID's date, then when STATUS was written, then the respin). In each group a compose is kept when it
is one of the ``keep`` newest, younger than ``keep_days``, the group's newest FINISHED compose, the target of
a ``latest-`` link, the holder of a commit something outside the target uses (a published ref), or the base of
a derived compose that still exists (derive/records.py). Everything
else goes. A kept compose whose records cannot be read makes the run keep what it might use: when in doubt,
nothing is removed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from deb_bootc_compose.errors import PruneError


class Status(StrEnum):
    STARTED = "STARTED"
    FINISHED = "FINISHED"
    FINISHED_INCOMPLETE = "FINISHED_INCOMPLETE"
    DOOMED = "DOOMED"
    MISSING = "no STATUS"


@dataclass(frozen=True)
class Policy:
    keep: int
    keep_days: float = 0.0

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise PruneError(f"--keep {self.keep}: keep at least the newest compose of each name and type")
        if self.keep_days < 0:
            raise PruneError(f"--keep-days {self.keep_days}: a number of days, 0 or more")


@dataclass(frozen=True)
class Compose:
    """What ``prune`` knows of one compose directory."""

    compose_id: str
    name: str
    compose_type: str
    date: str  # YYYYMMDD
    respin: int
    status: Status
    finished: dt.datetime  # when STATUS was last written (the directory's time without one)
    commits: frozenset[str] | None = None  # None: ostree.json unreadable
    debs: frozenset[str] | None = None  # pool SHA-256s of its lockfile; None: no readable lockfile

    @property
    def group(self) -> tuple[str, str]:
        return self.name, self.compose_type

    @property
    def order(self) -> tuple[str, dt.datetime, int]:
        """Newest last: the day in the ID, then when it finished (versions of one day each start at respin 0)."""
        return self.date, self.finished, self.respin


@dataclass
class Plan:
    keep: dict[str, list[str]] = field(default_factory=dict)  # compose ID -> reasons
    remove: list[str] = field(default_factory=list)

    def kept_commits(self, composes: dict[str, Compose]) -> set[str] | None:
        """Every commit a kept compose holds; None when one of them is unknown."""
        out: set[str] = set()
        for cid in self.keep:
            commits = composes[cid].commits
            if commits is None:
                return None
            out |= commits
        return out

    def kept_debs(self, composes: dict[str, Compose]) -> set[str] | None:
        """Every pool .deb a kept compose's lockfile names; None when a kept FINISHED compose has no lockfile."""
        out: set[str] = set()
        for cid in self.keep:
            c = composes[cid]
            if c.debs is None and c.status in (Status.FINISHED, Status.FINISHED_INCOMPLETE):
                return None
            out |= c.debs or frozenset()
        return out


def decide(composes: list[Compose], policy: Policy, now: dt.datetime, linked: dict[str, str],
           used: dict[str, list[str]], bases: dict[str, list[str]] | None = None) -> Plan:
    """The plan: ``linked`` maps compose ID -> the ``latest-`` link naming it, ``used`` maps commit -> who uses it,
    ``bases`` maps compose ID -> the derived composes built on it."""
    groups: dict[tuple[str, str], list[Compose]] = defaultdict(list)
    for c in composes:
        groups[c.group].append(c)
    plan = Plan()
    horizon = now - dt.timedelta(days=policy.keep_days)
    for members in groups.values():
        members.sort(key=lambda c: c.order, reverse=True)
        newest_finished = next((c for c in members if c.status is Status.FINISHED), None)
        for index, c in enumerate(members):
            why = []
            if index < policy.keep:
                why.append(f"one of the {policy.keep} newest {c.name} composes of type {c.compose_type}")
            if policy.keep_days and c.finished > horizon:
                why.append(f"younger than {policy.keep_days:g} days")
            if c is newest_finished:
                why.append("the newest FINISHED compose of its name and type")
            if c.compose_id in linked:
                why.append(f"{linked[c.compose_id]} points at it")
            why.extend((bases or {}).get(c.compose_id, []))
            for commit in sorted(c.commits or ()):
                why.extend(f"commit {commit[:12]} {who}" for who in used.get(commit, []))
            if c.commits is None and c.status is not Status.DOOMED:
                why.append("its metadata/ostree.json is unreadable, so what uses its commits is unknown")
            if why:
                plan.keep[c.compose_id] = why
            else:
                plan.remove.append(c.compose_id)
    return plan
