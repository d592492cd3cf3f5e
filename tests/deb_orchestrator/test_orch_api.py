"""The REST API over real HTTP: tags, targets, builds, auth, build identity, uploads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from orch_helpers import FakeBuilder, make_source
from orch_hub import RunningHub

from deb_orchestrator.client import HubClient, HubError

MIRROR = "http://deb.debian.org/debian"
HUB_SETTINGS = {"lease_seconds": 120.0}  # the module's hub: a claim below must outlive a slow run


def setup_tags(admin: HubClient) -> None:
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("trixie-test", "build", "dest")


def test_admin_token_file_is_private(hub: RunningHub) -> None:
    path = hub.settings.data / "admin.token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert hub.admin.whoami() == {"user": "admin", "scopes": ["admin"], "host_id": None, "token_id": 1}


def test_tags_targets_inheritance(hub: RunningHub) -> None:
    admin = hub.admin
    setup_tags(admin)
    tag = admin.get("/tags/build")
    assert tag["parents"] == ["dest"]
    assert tag["inheritance"] == ["build", "dest", "base"]
    assert admin.get("/targets/trixie-test") == {"id": 1, "name": "trixie-test", "build_tag": "build",
                                                 "dest_tag": "dest", "plugins": {}, "request_plugins": [],
                                                 "policy": {}, "disable_plugins": []}
    with pytest.raises(HubError) as err:
        admin.request("PATCH", "/tags/base", json={"parents": ["build"]})
    assert err.value.status == 400 and "loop" in err.value.detail
    with pytest.raises(HubError) as err:
        admin.add_tag("base")
    assert err.value.status == 409
    with pytest.raises(HubError) as err:
        admin.add_target("x", "nope", "dest")
    assert err.value.status == 404 and "unknown tag 'nope'" in err.value.detail


def test_submit_upload_duplicate_and_unknown_target(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    setup_tags(admin)
    dsc = make_source(tmp_path, "orch-a", "1.0")
    first = admin.submit("trixie-test", dsc)
    assert first["existing"] is False
    assert first["build"]["ident"] == "orch-a_1.0" and first["build"]["state"] == "building"
    again = admin.submit("trixie-test", dsc)
    assert again["existing"] is True
    assert again["build"]["id"] == first["build"]["id"] and again["task"]["id"] == first["task"]["id"]
    assert "submitted before" in again["message"]
    assert len(admin.builds()) == 1
    with pytest.raises(HubError) as err:
        admin.submit("no-such-target", dsc)
    assert err.value.status == 404 and "unknown target 'no-such-target'" in err.value.detail
    # the build's source files are stored and downloadable
    got = admin.download("/builds/orch-a_1.0/files/orch-a_1.0.dsc", tmp_path / "got.dsc")
    assert got.read_bytes() == dsc.read_bytes()


def test_malformed_and_corrupt_dsc(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    setup_tags(admin)
    bad = tmp_path / "bad_1.0.dsc"
    bad.write_text("this is not a dsc\n")
    with pytest.raises(HubError) as err:
        admin.request("POST", "/builds/upload", data={"target": "trixie-test"},
                      files=[("files", ("bad_1.0.dsc", bad.read_bytes()))])
    assert err.value.status == 400 and "bad_1.0.dsc" in err.value.detail
    dsc = make_source(tmp_path, "orch-b", "1.0")
    tarball = tmp_path / "orch-b_1.0.tar.xz"
    with pytest.raises(HubError) as err:  # the tarball does not match its checksum
        admin.request("POST", "/builds/upload", data={"target": "trixie-test"},
                      files=[("files", (dsc.name, dsc.read_bytes())), ("files", (tarball.name, b"garbage"))])
    assert err.value.status == 400 and "orch-b_1.0.tar.xz" in err.value.detail
    assert admin.builds() == []


def test_missing_source_url_names_it(hub: RunningHub) -> None:
    admin = hub.admin
    setup_tags(admin)
    url = f"{MIRROR}/pool/main/h/hello/hello_0.0-404.dsc"
    with pytest.raises(HubError) as err:
        admin.submit("trixie-test", url)
    assert err.value.status in (400, 502) and url in err.value.detail


def test_auth_401_and_403(hub: RunningHub, tmp_path: Path) -> None:
    setup_tags(hub.admin)
    anonymous = hub.client()
    with pytest.raises(HubError) as err:
        anonymous.add_tag("x")
    assert err.value.status == 401
    with pytest.raises(HubError) as err:
        hub.client("dob_wrong").add_tag("x")
    assert err.value.status == 401 and "invalid" in err.value.detail
    builder_token = hub.admin.add_host("b1", ["amd64"])["token"]
    build_token = hub.admin.create_token("alice", ["build"])["token"]
    builder = hub.client(builder_token)
    with pytest.raises(HubError) as err:
        builder.tag_build("dest", "orch-a_1.0")
    assert err.value.status == 403 and "'tag' scope" in err.value.detail
    with pytest.raises(HubError) as err:
        hub.client(build_token).add_tag("y")
    assert err.value.status == 403 and "'admin' scope" in err.value.detail
    with pytest.raises(HubError) as err:
        hub.client(build_token).claim(["amd64"], wait=0)
    assert err.value.status == 403
    # a build token can submit; reads need no token
    dsc = make_source(tmp_path, "orch-c", "1.0")
    assert hub.client(build_token).submit("trixie-test", dsc)["build"]["owner"] == "alice"
    assert anonymous.build("orch-c_1.0")["state"] == "building"
    with pytest.raises(HubError) as err:
        hub.admin.create_token("bob", ["root"])
    assert err.value.status in (400, 422)


def test_path_traversal_upload_refused(hub: RunningHub, tmp_path: Path) -> None:
    setup_tags(hub.admin)
    token = hub.admin.add_host("b1", ["amd64"])["token"]
    hub.admin.submit("trixie-test", make_source(tmp_path, "orch-d", "1.0"))
    fb = FakeBuilder(hub.client(token), tmp_path / "fb")
    payload = fb.claim()
    assert payload is not None
    sha = "0" * 64
    for name in ("..%2F..%2Fetc%2Fpasswd", "..", ".hidden", "a%2Fb"):
        r = httpx.put(f"{hub.url}/api/v1/tasks/{payload['task_id']}/files/{name}",
                      params={"fence": payload["fence"], "sha256": sha}, content=b"x",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (400, 404, 405), (name, r.status_code, r.text)
    # the same through a multipart submission
    dsc = make_source(tmp_path, "orch-e", "1.0")
    with pytest.raises(HubError) as err:
        hub.admin.request("POST", "/builds/upload", data={"target": "trixie-test"},
                          files=[("files", ("../../evil.dsc", dsc.read_bytes()))])
    assert err.value.status == 400 and "unsafe" in err.value.detail
    assert not list(hub.settings.data.rglob("evil.dsc"))
    # a file whose declared checksum is wrong is refused and not recorded
    with pytest.raises(HubError) as err:
        hub.client(token).request("PUT", f"/tasks/{payload['task_id']}/files/x.deb",
                                  params={"fence": payload["fence"], "sha256": sha}, content=b"data")
    assert err.value.status == 400 and "declared sha256" in err.value.detail
    assert hub.admin.task(payload["task_id"])["files"] == []


def test_event_log_and_web_pages(hub: RunningHub, tmp_path: Path) -> None:
    setup_tags(hub.admin)
    hub.admin.submit("trixie-test", make_source(tmp_path, "orch-f", "1.0"))
    hub.admin.add_host("b1", ["amd64"])
    kinds = [e["kind"] for e in hub.admin.events()]
    # repositories are published in the background, so their events interleave with the admin's
    admin_kinds = [k for k in kinds if not k.startswith("repo.")]
    assert admin_kinds[:4] == ["tag.created", "tag.created", "tag.created", "target.created"]
    assert "build.submitted" in kinds
    for page in ("/tasks", "/builds", "/tags", "/hosts"):
        r = httpx.get(hub.url + page)
        assert r.status_code == 200 and "<table>" in r.text, page
    assert "orch-f_1.0" in httpx.get(hub.url + "/builds").text
