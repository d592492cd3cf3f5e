"""Removing tags and targets (remove-tag, remove-target) over real HTTP: refusals (401, 403, 404, 409 naming
what is in the way), --force for inheriting tags, the published repository taken off at once, events."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import RunningHub

from deb_orchestrator.cli import main
from deb_orchestrator.client import HubClient, HubError

MIRROR = "http://deb.debian.org/debian"


def _status(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(HubError) as err:
        call()
    return err.value.status, err.value.detail


def _setup(admin: HubClient) -> None:
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("t", "build", "dest")


def test_remove_target_and_tags(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    _setup(admin)
    token = admin.add_host("b1", ["amd64"])["token"]
    admin.submit("t", make_source(tmp_path, "orch-rm", "1.0"))

    # auth: no token, a build token, a builder token
    build_token = admin.create_token("alice", ["build"])["token"]
    assert _status(lambda: hub.client().remove_tag("dest"))[0] == 401
    status, detail = _status(lambda: hub.client(build_token).remove_tag("dest"))
    assert status == 403 and "'tag' scope" in detail
    assert _status(lambda: hub.client(token).remove_target("t"))[0] == 403
    # unknown names
    status, detail = _status(lambda: admin.remove_tag("nope"))
    assert status == 404 and "unknown tag 'nope'" in detail
    status, detail = _status(lambda: admin.remove_target("nope"))
    assert status == 404 and "unknown target 'nope'" in detail

    # a target with a build in progress stays; so do the tags it uses
    status, detail = _status(lambda: admin.remove_target("t"))
    assert status == 409 and "orch-rm_1.0" in detail and "in progress" in detail
    status, detail = _status(lambda: admin.remove_tag("dest"))
    assert status == 409 and "t (destination tag)" in detail and "remove-target" in detail
    status, detail = _status(lambda: admin.remove_tag("build"))
    assert status == 409 and "t (build tag)" in detail

    FakeBuilder(hub.client(token), tmp_path / "fb").step(0)
    admin.wait_repo("dest", build="orch-rm_1.0", timeout=60)
    repo = hub.settings.repos_dir / "dest"
    assert (repo / "dists" / "dest" / "InRelease").exists()
    assert httpx.get(f"{hub.url}/repos/dest/dists/dest/InRelease").status_code == 200

    out = admin.remove_target("t")
    assert out == {"target": "t", "deleted": True, "builds_detached": ["orch-rm_1.0"]}
    assert admin.build("orch-rm_1.0")["target"] is None and admin.build("orch-rm_1.0")["state"] == "complete"
    assert [t["name"] for t in admin.get("/targets")] == []
    status, detail = _status(lambda: admin.resubmit("orch-rm_1.0"))
    assert status == 409

    # dest is still a parent of build: refused without --force, naming the child
    status, detail = _status(lambda: admin.remove_tag("dest"))
    assert status == 409 and "parent of build" in detail and "--force" in detail
    # the build's own publication of "build" (it inherits dest) is over: the next generation is the removal's
    before = admin.wait_repo("build", build="orch-rm_1.0", timeout=60)["generation"]
    removed = admin.remove_tag("dest", force=True)
    assert removed == {"tag": "dest", "deleted": True, "untagged_builds": ["orch-rm_1.0"],
                   "children_detached": ["build"], "repo_removed": True}
    assert not repo.exists() and not [p for p in hub.settings.repos_dir.iterdir() if "dest" in p.name]
    assert httpx.get(f"{hub.url}/repos/dest/dists/dest/InRelease").status_code == 404
    assert httpx.get(f"{hub.url}/repos/dest/key.asc").status_code == 404
    assert _status(lambda: admin.get("/tags/dest"))[0] == 404
    assert _status(lambda: admin.repo("dest"))[0] == 404
    build_tag = admin.get("/tags/build")
    assert build_tag["parents"] == [] and build_tag["inheritance"] == ["build"]
    # the child's repository is published again without what it inherited from dest
    after = admin.wait_repo("build", after=before, timeout=60)
    assert after["builds"] == [] and after["packages"] == 0
    assert admin.build("orch-rm_1.0")["state"] == "complete"  # the build and its files stay

    # a tag nobody uses goes without --force; its name can be used again
    admin.remove_tag("build")
    admin.add_tag("build", parents=["base"])
    assert admin.get("/tags/build")["inheritance"] == ["build", "base"]

    events = [e for e in admin.events() if e["kind"] in ("tag.deleted", "target.deleted")]
    assert [(e["kind"], e["data"]["name"]) for e in events] == [
        ("target.deleted", "t"), ("tag.deleted", "dest"), ("tag.deleted", "build")]
    assert events[0]["data"]["builds"] == ["orch-rm_1.0"] and events[0]["actor"] == "admin"
    assert events[1]["data"]["children"] == ["build"] and events[1]["data"]["force"] is True


def test_remove_commands(hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    _setup(hub.admin)
    monkeypatch.setenv("DEB_ORCHESTRATOR_HUB", hub.url)
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", hub.admin_token)
    monkeypatch.setenv("DEB_ORCHESTRATOR_CONFIG", str(tmp_path / "none.toml"))
    assert main(["remove-tag", "dest"]) == 1
    assert "tag dest is used by target(s) t (destination tag)" in capsys.readouterr().err
    assert main(["remove-target", "t"]) == 0
    assert "removed target t" in capsys.readouterr().err
    assert main(["remove-tag", "dest"]) == 1
    assert "(HTTP 409)" in capsys.readouterr().err
    assert main(["remove-tag", "dest", "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["children_detached"] == ["build"] and out["deleted"] is True
    tag_token = hub.admin.create_token("carol", ["tag"])["token"]
    assert main(["remove-tag", "build", "--token", tag_token]) == 0  # the tag scope may remove tags
    assert "removed tag build" in capsys.readouterr().err
    assert main(["remove-target", "t"]) == 1
    assert "unknown target 't'" in capsys.readouterr().err
