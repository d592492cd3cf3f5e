"""prune's decisions on plain data: which composes stay and why."""

from __future__ import annotations

import datetime as dt

import pytest

from deb_bootc_compose.errors import PruneError
from deb_bootc_compose.prune.plan import Compose, Plan, Policy, Status, decide

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)


def c(cid: str, day: int, status: Status = Status.FINISHED, commits: frozenset[str] | None = frozenset(),
      debs: frozenset[str] | None = frozenset(), name: str = "atomic", ctype: str = "nightly", respin: int = 0
      ) -> Compose:
    return Compose(cid, name, ctype, f"202612{day:02d}", respin, status, dt.datetime(2026, 12, day, 1, tzinfo=dt.UTC),
                   commits, debs)


def test_keep_n_newest_per_name_and_type() -> None:
    composes = [c("a1", 1), c("a2", 2), c("a3", 3), c("t1", 1, ctype="test"), c("o1", 1, name="other")]
    plan = decide(composes, Policy(2), NOW, {}, {})
    assert sorted(plan.remove) == ["a1"]
    assert set(plan.keep) == {"a2", "a3", "t1", "o1"}
    assert any("2 newest" in why for why in plan.keep["a2"])


def test_newest_finished_survives_failed_ones_after_it() -> None:
    composes = [c("ok", 1), c("bad1", 2, Status.DOOMED), c("bad2", 3, Status.DOOMED), c("run", 4, Status.STARTED)]
    plan = decide(composes, Policy(1), NOW, {}, {})
    assert sorted(plan.remove) == ["bad1", "bad2"]
    assert plan.keep["ok"] == ["the newest FINISHED compose of its name and type"]
    assert "run" in plan.keep


def test_links_published_commits_and_age_keep_a_compose() -> None:
    composes = [c("old", 1, commits=frozenset({"a" * 64})), c("linked", 2), c("young", 4), c("new", 5)]
    used = {"a" * 64: ["published in /srv/pub (atomic/x86_64/base)"]}
    plan = decide(composes, Policy(1, keep_days=1.5), NOW, {"linked": "latest-atomic-13"}, used)
    assert plan.remove == []
    assert plan.keep["old"] == [f"commit {'a' * 12} published in /srv/pub (atomic/x86_64/base)"]
    assert plan.keep["linked"] == ["latest-atomic-13 points at it"]
    assert plan.keep["young"] == ["younger than 1.5 days"]


def test_same_day_versions_order_by_finish_time_then_respin() -> None:
    early = Compose("atomic-13-20261205.n.0", "atomic", "nightly", "20261205", 0, Status.FINISHED,
                    NOW - dt.timedelta(hours=3), frozenset(), frozenset())
    late = Compose("atomic-13.1-20261205.n.0", "atomic", "nightly", "20261205", 0, Status.FINISHED,
                   NOW - dt.timedelta(hours=1), frozenset(), frozenset())
    assert decide([late, early], Policy(1), NOW, {}, {}).remove == [early.compose_id]


def test_unknown_records_keep_everything_they_might_use() -> None:
    composes = {x.compose_id: x for x in [c("blind", 3, commits=None), c("nolock", 4, debs=None), c("gone", 1)]}
    plan = decide(list(composes.values()), Policy(1), NOW, {}, {})
    assert "blind" in plan.keep and any("unreadable" in why for why in plan.keep["blind"])
    assert plan.remove == ["gone"]
    assert plan.kept_commits(composes) is None  # no commit is deleted while one kept compose's commits are unknown
    assert plan.kept_debs(composes) is None
    # a DOOMED compose without records holds nothing
    doomed = {"d": c("d", 2, Status.DOOMED, commits=frozenset(), debs=None)}
    assert Plan(keep={"d": ["x"]}).kept_debs(doomed) == set()


@pytest.mark.parametrize(("keep", "days"), [(0, 0.0), (-1, 0.0), (1, -2.0)])
def test_bad_policy(keep: int, days: float) -> None:
    with pytest.raises(PruneError, match="--keep"):
        Policy(keep, days)
