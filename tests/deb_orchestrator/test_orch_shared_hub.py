"""One hub per module (conftest.py ``hub``, orch_reset.py): a hub used the way tests use it (tags, targets,
hosts, tokens made and revoked, builds with their files, published and removed repositories, stray files), then
reset, is the same as a fresh hub: tables and identities, files and their permissions, what it keeps in memory.
So the reset cannot silently fall behind the hub: a new table, file or attribute fails here until it is reset."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import httpx
import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import HubFactory, RunningHub
from orch_reset import HUB_ATTRIBUTES, counters, hub_state, reset_hub, settings_changes

from deb_orchestrator.client import HubError

MIRROR = "http://deb.debian.org/debian"


def use(h: RunningHub, tmp_path: Path) -> None:
    """Leave something in every place a test can leave something."""
    admin = h.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("t", "build", "dest")
    token = admin.add_host("b1", ["amd64"])["token"]
    carol = admin.create_token("carol", ["tag"])
    assert h.client(carol["token"]).whoami()["user"] == "carol"  # cached by the hub
    admin.revoke_token(carol["id"])  # writes the revocation epoch file
    assert httpx.post(f"{h.url}/api/v1/tags", json={"name": "x"}).status_code == 401  # a refusal, audited
    admin.submit("t", make_source(tmp_path, "orch-reset", "1.0"))
    FakeBuilder(h.client(token), tmp_path / "fb").step(0)
    admin.wait_repo("build", build="orch-reset_1.0", timeout=60)
    admin.wait_repo("dest", build="orch-reset_1.0", timeout=60)
    admin.remove_target("t")
    admin.remove_tag("build")  # a repository taken off (renamed, then deleted)
    admin.noop(2)
    data = h.settings.data
    (data / "stray" / "dir").mkdir(parents=True)
    (data / "stray" / "dir" / "file").write_text("left by a test\n")
    (data / "repos" / "link").symlink_to(data / "stray")
    os.chmod(data / "store" / "objects", 0o700)
    shutil.rmtree(data / "store" / "tmp")


def test_a_reset_hub_is_a_fresh_hub(make_hub: HubFactory, hub: RunningHub, tmp_path: Path) -> None:
    h = make_hub()
    fresh = hub_state(h)
    assert fresh["hub attributes"] == sorted(HUB_ATTRIBUTES), (
        "the Hub's attributes changed: say in orch_reset.HUB_ATTRIBUTES what a reset does with each")
    assert [r["name"] for r in fresh["tables"]["users"]] == ["admin"] and len(fresh["tables"]["tokens"]) == 1
    assert not any(rows for name, rows in fresh["tables"].items() if name not in ("users", "tokens"))
    use(h, tmp_path)
    old_admin = h.admin_token
    used = hub_state(h)
    assert used != fresh
    assert len(counters(h.hub.metrics)) >= 4
    for key in ("tables", "files", "cached tokens", "counts"):  # the use above reaches each of these
        assert used[key] != fresh[key], key

    reset_hub(h)
    after = hub_state(h)
    assert after == fresh, {k: (fresh[k], after[k]) for k in fresh if after[k] != fresh[k]}
    # what the next test sees: ids from 1, a new first admin token, the old tokens refused, no repository
    assert h.admin_token != old_admin
    assert h.admin.builds() == [] and h.admin.events() == [] and h.admin.tags() == [] and h.admin.audit() == []
    assert httpx.get(f"{h.url}/repos/dest/dists/dest/InRelease").status_code == 404
    assert h.admin.whoami()["token_id"] == 1
    with pytest.raises(HubError) as err:
        h.client(old_admin).whoami()
    assert err.value.status == 401
    assert h.admin.add_tag("dest")["id"] == 1
    assert h.admin.noop(1) == [1]

    use(hub, tmp_path / "shared")  # for the next test: the module's hub, used


def test_the_shared_hub_comes_reset(make_hub: HubFactory, hub: RunningHub) -> None:
    """The ``hub`` fixture hands each test a hub like a fresh one (the previous test used it)."""
    assert hub_state(hub) == hub_state(make_hub())
    assert hub.admin.whoami()["token_id"] == 1 and hub.admin.tags() == []


def test_changed_settings_are_found_and_put_back(hub: RunningHub) -> None:
    """The hub fixture fails a test that changed the shared hub's settings (it needs make_hub) with what it
    changed, and puts them back for the next test."""
    before = copy.deepcopy(hub.settings)
    hub.settings.max_task_bytes = 1
    hub.settings.allow_source_hosts.append("example.org")
    assert settings_changes(hub.settings, before) == ["max_task_bytes=1", "allow_source_hosts=['example.org']"]
    assert hub.settings == before and settings_changes(hub.settings, before) == []
