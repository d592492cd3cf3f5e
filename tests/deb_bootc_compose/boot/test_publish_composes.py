"""The session's two real composes published as an update (the boot update test's v1 and v2): v1 then v2 into
one repository gives a static delta and keeps v1; served over HTTP, a machine-like client (bare-user repo) that
has v1 reads what v2 changes from the commit metadata alone, then pulls v2 through the delta, signatures
verified; publishing v2 again changes nothing.

Cost: two publishes of real commits (pull-local, signature, one static delta) and a client's full pull of v1;
no compose of its own (``update_v1`` and ``update_v2`` are the update test's: this test is in their group, not the
session compose's, so the two groups run side by side)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from compose_helpers import SessionCompose
from updatesource import UpdateSource

from deb_bootc_compose import metadata as md
from deb_bootc_compose.commitmeta import PACKAGES_KEY, parse_packages
from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.paths import ComposePaths
from deb_bootc_compose.publish import HISTORY_FILE, History, KeySpec, publish
from httpserve import serve_directory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "publish"))
from pubhelpers import client, make_key, ostree, snapshot

pytestmark = pytest.mark.integration


def commit_of(compose: Path) -> tuple[str, str]:
    entry = md.load_ostree(ComposePaths.at(compose).ostree_json)[0]
    return entry.ref, entry.commit


def packages(repo: Path, commit: str) -> dict[str, str]:
    return parse_packages(ostree(repo, "show", f"--print-metadata-key={PACKAGES_KEY}", commit))


def test_publish_v1_then_v2_and_update_through_the_delta(update_v1: SessionCompose, update_v2: SessionCompose,
                                                         update_source: UpdateSource, tmp_path: Path) -> None:
    # a key v1's image does not trust is refused (machines would refuse it); the publisher's key is what it trusts
    with pytest.raises(PublishError, match="trust only key"):
        publish(update_v1.topdir, tmp_path / "refused", KeySpec(files=(make_key(tmp_path, "stranger").secret,)))
    assert not (tmp_path / "refused").exists()
    key = update_source.key
    spec = KeySpec(files=(key.secret,))
    dest = tmp_path / "pub"
    ref, c1 = commit_of(update_v1.topdir)
    ref2, c2 = commit_of(update_v2.topdir)
    assert ref == ref2 and c1 != c2
    first = publish(update_v1.topdir, dest, spec)
    assert first.refs[0].commit == c1 and first.refs[0].delta_from is None
    second = publish(update_v2.topdir, dest, spec)
    assert second.refs[0].commit == c2 and second.refs[0].delta_from == c1
    assert History.load(dest / HISTORY_FILE).refs[ref] == [c2, c1]  # v1 kept (--keep 3)
    assert ostree(dest, "static-delta", "list").split() == [f"{c1}-{c2}"]
    before = snapshot(dest)
    assert not publish(update_v2.topdir, dest, spec).changed
    assert snapshot(dest) == before

    with serve_directory(dest) as url:
        machine = client(tmp_path / "machine", url, key.public)
        ostree(machine, "pull", "origin", f"{ref}@{c1}")  # the machine runs v1
        # what v2 changes, from its commit metadata only (a few KB), before anything is downloaded
        ostree(machine, "pull", "--commit-metadata-only", "origin", ref)
        old, new = packages(machine, c1), packages(machine, c2)
        assert old["hello"] == "2.10-3" and new["hello"] == "2.10-5"
        assert "openssh-server" not in old and "openssh-server" in new
        assert dict(sorted(new.items())) == new  # sorted: same inputs, same commit
        done = subprocess.run(["ostree", f"--repo={machine}", "pull", "--require-static-deltas", "origin", ref],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        assert ostree(machine, "rev-parse", f"origin:{ref}") == c2
        assert "Good signature" in ostree(machine, "show", c2)
