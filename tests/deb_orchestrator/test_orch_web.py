"""The web pages for real objects over real HTTP: build, task, tag and host detail pages (with the files'
checksums and download links, the task tree, buildroot, .buildinfo, attempts and fencing history, log tail,
inheritance, repository state), every link on them answering, escaping, and 404 pages for unknown names."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import httpx
from orch_helpers import make_deb, make_source, sha256
from orch_hub import HubFactory, RunningHub

MIRROR = "http://deb.debian.org/debian"
BUILDINFO = "Format: 1.0\nSource: orch-web\nBinary: orch-web\nArchitecture: all\nVersion: 1.0\n" \
            "Installed-Build-Depends:\n dpkg (= 1.22.6),\n <b>not-markup</b> (= 1)\n"


def links(page: str) -> set[str]:
    return {html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)}


def check_links(web: httpx.Client, page: str) -> None:
    for href in links(page):
        if href.startswith("/"):
            r = web.get(href)
            assert r.status_code == 200, (href, r.status_code, r.text[:300])


def test_detail_pages(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(lease_seconds=2.0)  # own hub: a short lease it waits out
    web = hub.client().http  # one connection for all pages (closed with the hub's clients)
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("t", "build", "dest")
    token = admin.add_host("b1", ["amd64"], capacity=2)["token"]
    builder = hub.client(token)
    sub = admin.submit("t", make_source(tmp_path, "orch-web", "1.0"))
    parent_id = sub["task"]["id"]

    # first attempt: claimed, then silent until its lease expires; the second attempt builds it
    first = builder.claim(["amd64"], wait=5)
    assert first is not None
    tid = first["task_id"]
    deadline = time.monotonic() + 30
    while admin.task(tid)["state"] != "free":
        assert time.monotonic() < deadline, "the lease did not expire"
        time.sleep(0.2)
    second = builder.claim(["amd64"], wait=5)
    assert second is not None and second["task_id"] == tid and second["fence"] == 2
    fence = second["fence"]
    builder.heartbeat(tid, fence, ["dpkg-buildpackage -us -uc", "<script>alert('x')</script> & more"])
    deb = make_deb(tmp_path, "orch-web", "1.0", "all")
    buildinfo = tmp_path / "orch-web_1.0_amd64.buildinfo"
    buildinfo.write_text(BUILDINFO)
    log = tmp_path / "build.log"
    log.write_text("the whole build log\n")
    for path in (deb, buildinfo, log):
        builder.upload(tid, fence, path)
    builder.complete(tid, fence, {
        "state": "success", "exit_code": 0, "source": {"name": "orch-web", "version": "1.0"}, "arch": "amd64",
        "files": [{"name": deb.name, "sha256": sha256(deb), "size": deb.stat().st_size}],
        "buildroot": [{"package": "dpkg", "version": "1.22.6", "arch": "amd64"},
                      {"package": "gcc-14", "version": "14.2.0-19", "arch": "amd64"}],
        "logs": {"build": "build.log"}})
    admin.wait_repo("dest", build="orch-web_1.0", timeout=60)
    admin.submit("t", make_source(tmp_path, "orch-busy", "1.0"))

    # the build, by SOURCE_VERSION and by ID
    page = web.get("/builds/orch-web_1.0")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    by_id = web.get(f"/builds/{sub['build']['id']}").text  # the same page; its sign-in link returns to its URL
    assert by_id.replace(f"next=/builds/{sub['build']['id']}", "next=/builds/orch-web_1.0") == page.text
    text = page.text
    for expected in ("Build orch-web_1.0", "complete", "orch-web 1.0", "admin", "upload:orch-web_1.0.dsc",
                     sha256(deb), "orch-web_1.0_all.deb", "gcc-14", "14.2.0-19", "pool/main/o/orch-web/"):
        assert expected in text, expected
    assert "&lt;b&gt;not-markup&lt;/b&gt;" in text and "<b>not-markup" not in text  # .buildinfo shown, escaped
    hrefs = links(text)
    assert {f"/tasks/{parent_id}", f"/tasks/{tid}", "/tags/build", "/tags/dest", f"/api/v1/tasks/{tid}/files/build.log",
            f"/api/v1/builds/{sub['build']['id']}/files/orch-web_1.0_all.deb?task={tid}"} <= hrefs, hrefs
    got = web.get(f"/api/v1/builds/{sub['build']['id']}/files/orch-web_1.0_all.deb?task={tid}")
    assert got.content == deb.read_bytes()
    check_links(web, text)

    # the buildArch task: attempts and fencing history, escaped log tail, host and parent links
    text = web.get(f"/tasks/{tid}").text
    assert "2 of 3" in text and "task.claimed" in text and "fence=1" in text and "fence=2" in text
    assert "task.requeued" in text and "lease expired: builder b1 stopped heartbeating" in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in text and "<script>" not in text
    assert {"/hosts/b1", f"/tasks/{parent_id}", "/builds/1"} <= links(text)
    check_links(web, text)
    # the build task: its subtasks (buildArch and tag)
    text = web.get(f"/tasks/{parent_id}").text
    assert "Subtasks" in text and f'href="/tasks/{tid}"' in text and "tag" in text

    # tags: inheritance chain, inherited-by, targets, external repos, builds, repository links
    text = web.get("/tags/build").text
    assert re.search(r'href="/tags/build">build</a> → <a href="/tags/dest">dest</a> → <a href="/tags/base">base',
                     text)
    assert MIRROR in text and "trixie" in text and "orch-web_1.0" in text
    assert "/repos/build/key.asc" in text and "/repos/build/dists/build/InRelease" in text
    assert f"deb [signed-by=/etc/apt/keyrings/build.asc] {hub.url}/repos/build build main" in text
    check_links(web, text)
    text = web.get("/tags/dest").text
    assert 'href="/tags/build">build</a>' in text and "t (destination)" in text and "ready" in text
    text = web.get("/tags/base").text
    assert "t (" not in text and 'href="/tags/dest"' in text

    # the host: arches, capacity, heartbeat, its current task (a second build, claimed just now)
    busy = builder.claim(["amd64"], wait=5)
    assert busy is not None
    text = web.get("/hosts/b1").text
    assert "amd64" in text and "<td>2</td>" in text and "UTC" in text and "s ago" in text
    current = text.split("Current tasks")[1].split("Recent tasks")[0]
    assert f'href="/tasks/{busy["task_id"]}"' in current and f'href="/tasks/{tid}"' not in current
    check_links(web, text)

    # the lists link to the detail pages
    for listing, wanted in [("/builds", "/builds/1"), ("/tasks", f"/tasks/{tid}"), ("/tags", "/tags/base"),
                            ("/hosts", "/hosts/b1"), ("/targets", "/tags/dest")]:
        text = web.get(listing).text
        assert wanted in links(text), listing
        check_links(web, text)


def test_unknown_objects_404(hub: RunningHub) -> None:
    web = hub.client().http
    for path, message in [("/builds/nope_1.0", "no build &#39;nope_1.0&#39;"), ("/builds/999", "no build"),
                          ("/tasks/999", "no task 999"), ("/tasks/abc", "tasks are named by number"),
                          ("/tags/nope", "unknown tag &#39;nope&#39;"), ("/hosts/nope", "no host &#39;nope&#39;"),
                          ("/tags/%3Cscript%3E", "unknown tag &#39;&lt;script&gt;&#39;")]:
        r = web.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path
        assert message in r.text and "Not found" in r.text, (path, r.text)
