"""The hub under attack by its own users and builders (issue 10), each attack performed for real over HTTP
against a real hub: crafted .debs, files named like another build's, oversized uploads, other users'
builds, a builder raising its own capacity, malformed .dsc files and URLs."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from orch_helpers import FakeBuilder, craft_deb, deb_control, make_source, put_file, tar_bytes
from orch_hub import HubFactory, RunningHub

from deb_orchestrator.client import HubClient, HubError
from deb_orchestrator.wire import BuildClaim, NoopClaim
from httpserve import serve_directory

MIRROR = "http://deb.debian.org/debian"
HUB_SETTINGS = {"lease_seconds": 300.0}  # the module's hub: claims must outlive a slow run


def setup_target(admin: HubClient) -> None:
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_target("t", "base", "dest")


def claimed(hub: RunningHub, tmp_path: Path, name: str, **source: Any) -> tuple[HubClient, BuildClaim | NoopClaim]:
    """Submit a source made with dpkg-source and claim its buildArch task with a new host's token."""
    token = hub.admin.add_host(f"h-{name}", ["amd64"])["token"]
    builder = hub.client(token)
    hub.admin.submit("t", make_source(tmp_path, name, "1.0", **source))
    payload = builder.claim(["amd64"], wait=5)
    assert payload is not None and payload["source"] == name
    return builder, payload


def refused(resp: httpx.Response, *words: str) -> None:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    for w in words:
        assert w in resp.json()["detail"], (w, resp.text)


def test_deb_control_fields_parsed_like_dpkg_and_only_this_builds_packages(hub: RunningHub, tmp_path: Path) -> None:
    setup_target(hub.admin)
    builder, p = claimed(hub, tmp_path, "orch-s", binaries=["orch-s", "orch-s-data"])
    debs = tmp_path / "debs"
    debs.mkdir()

    def deb(file_name: str, control: str) -> httpx.Response:
        return put_file(builder, p, craft_deb(debs / file_name, control))

    # python-debian splits lines on these, dpkg only on \n: the hub must not see another Package than dpkg
    for i, sep in enumerate(["\u0085", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\u2028", "\u2029"]):
        smuggled = f"Package: libc6\nVersion: 99.0\nX-Note: x{sep}Package: orch-s\nX-Other: y{sep}Version: 1.0\n" \
                   "Architecture: all\nMaintainer: T <t@example.org>\nSource: orch-s (1.0)\nDescription: x\n y\n"
        refused(deb("orch-s_1.0_all.deb", smuggled), "orch-s_1.0_all.deb")
        assert builder.request("GET", f"/tasks/{p['task_id']}").json()["files"] == [], i
    # a repeated field is refused as dpkg refuses it
    refused(deb("orch-s_1.0_all.deb", deb_control("orch-s", "1.0") + "Package: libc6\n"), "Package")
    # packages the source does not build, other versions, other arches
    refused(deb("libc6_1.0_all.deb", deb_control("libc6", "1.0", source="orch-s")), "libc6")
    refused(deb("orch-s_9.9_all.deb", deb_control("orch-s", "9.9", source="orch-s (1.0)")), "9.9")
    refused(deb("orch-s_1.0+b1x_all.deb", deb_control("orch-s", "1.0+b1x", source="orch-s (1.0)")), "1.0+b1x")
    refused(deb("orch-s_1.0_arm64.deb", deb_control("orch-s", "1.0", "arm64")), "arm64")
    # what the task may produce: the Package-List's binaries and their -dbgsym, the version or a binNMU of it
    for name, control in [("orch-s_1.0_all.deb", deb_control("orch-s", "1.0")),
                          ("orch-s-data_1.0+b2_all.deb", deb_control("orch-s-data", "1.0+b2", source="orch-s (1.0)")),
                          ("orch-s-dbgsym_1.0_amd64.deb", deb_control("orch-s-dbgsym", "1.0", "amd64",
                                                                      source="orch-s"))]:
        resp = deb(name, control)
        assert resp.status_code == 201, (name, resp.text)


def test_deb_unpacked_data_size_is_capped(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(lease_seconds=300.0, max_deb_data_bytes=8 << 20)  # own hub: the limit is read at its start
    setup_target(hub.admin)
    builder, p = claimed(hub, tmp_path, "orch-z")
    big = craft_deb(tmp_path / "orch-z_1.0_all.deb", deb_control("orch-z", "1.0"),
                    tar_bytes({"./usr/share/zeros": bytes(20 << 20)}))
    assert big.stat().st_size < 1 << 20
    refused(put_file(builder, p, big), "orch-z_1.0_all.deb", "8 MiB")
    assert builder.request("GET", f"/tasks/{p['task_id']}").json()["files"] == []


def test_uploads_capped_while_streaming(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(lease_seconds=300.0, max_upload_bytes=1 << 20)  # own hub: limits read at start, changed below
    setup_target(hub.admin)
    builder, p = claimed(hub, tmp_path, "orch-u")

    def endless() -> Iterator[bytes]:  # no Content-Length: the hub must count while reading
        for _ in range(64):
            yield bytes(1 << 16)

    r = httpx.put(f"{hub.url}/api/v1/tasks/{p['task_id']}/files/build.log", content=endless(),
                  params={"fence": p["fence"], "sha256": "0" * 64},
                  headers={"Authorization": f"Bearer {builder.token}"})
    assert r.status_code == 413, r.text
    assert "1 MiB" in r.json()["detail"]
    # many files, each under the limit: all files of one task together are capped too
    hub.settings.max_task_bytes = 2 << 20
    part = tmp_path / "part.log"
    part.write_bytes(bytes(900 << 10))
    for i in range(2):
        assert put_file(builder, p, part, f"part{i}.log").status_code == 201
    assert put_file(builder, p, part, "part0.log").status_code == 201  # the same name again replaces it
    r = put_file(builder, p, part, "part2.log")
    assert r.status_code == 413 and "for the files of one task" in r.json()["detail"], r.text
    assert [f["name"] for f in builder.request("GET", f"/tasks/{p['task_id']}").json()["files"]] == \
        ["part0.log", "part1.log"]
    dsc = make_source(tmp_path, "orch-u2", "1.0")
    r = httpx.post(f"{hub.url}/api/v1/builds/upload", data={"target": "t"},
                   files=[("files", (dsc.name, dsc.read_bytes())), ("files", ("big.tar.xz", bytes(3 << 20)))],
                   headers={"Authorization": f"Bearer {hub.admin_token}"})
    assert r.status_code == 413, r.text
    assert not [p for p in (hub.settings.store_dir / "tmp").rglob("*") if p.is_file()]


def test_artifacts_come_from_their_own_task_with_safe_types(hub: RunningHub, tmp_path: Path) -> None:
    setup_target(hub.admin)
    dsc = make_source(tmp_path, "orch-h", "1.0")
    page = b"<html><script>alert(document.cookie)</script></html>"
    # a source package naming an .html file: it lands in the tag repo's pool
    (tmp_path / "orch-h_1.0.html").write_bytes(page)
    import hashlib

    text = dsc.read_text()
    for field, algo in (("Checksums-Sha1", "sha1"), ("Checksums-Sha256", "sha256"), ("Files", "md5")):
        line = f" {hashlib.new(algo, page).hexdigest()} {len(page)} orch-h_1.0.html\n"
        text = text.replace(f"{field}:\n", f"{field}:\n{line}")
    dsc.write_text(text)
    token = hub.admin.add_host("hh", ["amd64"])["token"]
    builder = hub.client(token)
    hub.admin.request("POST", "/builds/upload", data={"target": "t"},
                      files=[("files", (n, (tmp_path / n).read_bytes()))
                             for n in (dsc.name, "orch-h_1.0.tar.xz", "orch-h_1.0.html")])
    fb = FakeBuilder(builder, tmp_path / "fb")
    p = fb.claim()
    assert p is not None
    # a hostile builder uploads a file named like the build's .dsc: other builders fetch the source by name
    fake = tmp_path / "fake.dsc"
    fake.write_bytes(b"Source: evil\n")
    assert put_file(builder, p, fake, dsc.name).status_code == 201
    evil = tmp_path / "evil.html"
    evil.write_bytes(page)
    assert put_file(builder, p, evil).status_code == 201
    got = httpx.get(f"{hub.url}/api/v1/builds/orch-h_1.0/files/{dsc.name}")
    assert got.content == dsc.read_bytes()
    assert any(f["url"].endswith(dsc.name) for f in p["files"])
    for url in ("/api/v1/builds/orch-h_1.0/files/evil.html", f"/api/v1/tasks/{p['task_id']}/files/evil.html",
                "/api/v1/builds/orch-h_1.0/files/orch-h_1.0.html"):
        r = httpx.get(hub.url + url)
        assert r.status_code == 200 and r.content == page, url
        assert "html" not in r.headers["content-type"] and r.headers["x-content-type-options"] == "nosniff", url
    fb.finish(p)
    log = httpx.get(f"{hub.url}/api/v1/tasks/{p['task_id']}/files/build.log")
    assert log.headers["content-type"].startswith("text/plain") and log.headers["x-content-type-options"] == "nosniff"
    hub.admin.wait_repo("dest", build="orch-h_1.0", timeout=60)
    r = httpx.get(f"{hub.url}/repos/dest/pool/main/o/orch-h/orch-h_1.0.html")
    assert r.status_code == 200 and r.content == page
    assert "html" not in r.headers["content-type"] and r.headers["x-content-type-options"] == "nosniff"


def test_users_touch_only_their_builds_and_builders_not_their_capacity(hub: RunningHub, tmp_path: Path) -> None:
    setup_target(hub.admin)
    alice = hub.client(hub.admin.create_token("alice", ["build"])["token"])
    bob = hub.client(hub.admin.create_token("bob", ["build"])["token"])
    a = alice.submit("t", make_source(tmp_path, "orch-alice", "1.0"))
    for call in (lambda: bob.cancel_build("orch-alice_1.0"), lambda: bob.post(f"/tasks/{a['task']['id']}/cancel", {})):
        with pytest.raises(HubError) as err:
            call()
        assert err.value.status == 403 and "alice" in err.value.detail
    alice.cancel_build("orch-alice_1.0")
    with pytest.raises(HubError) as err:
        bob.resubmit("orch-alice_1.0")
    assert err.value.status == 403
    assert alice.resubmit("orch-alice_1.0")["build"]["state"] == "building"
    hub.admin.cancel_build("orch-alice_1.0")  # admins may cancel anyone's
    # a builder asking for more than the capacity its admin gave it gets no more, and the capacity stays
    token = hub.admin.add_host("small", ["amd64"], capacity=1)["token"]
    builder = hub.client(token)
    hub.admin.noop(3)
    assert builder.claim(["amd64"], capacity=8, wait=0) is not None
    assert builder.claim(["amd64"], capacity=8, wait=0) is None
    assert hub.admin.get("/hosts/small")["capacity"] == 1


def test_malformed_input_answers_4xx(hub: RunningHub, tmp_path: Path) -> None:
    setup_target(hub.admin)
    good = make_source(tmp_path, "orch-m", "1.0")
    tarball = tmp_path / "orch-m_1.0.tar.xz"
    text = good.read_text()
    size = str(tarball.stat().st_size)
    cases = {
        "non-numeric size": text.replace(f" {size} orch-m_1.0.tar.xz", " 12ab orch-m_1.0.tar.xz"),
        "version with spaces": text.replace("Version: 1.0", "Version: 1.0 evil"),
        "missing Files": text.split("Files:")[0],
        "bad source name": text.replace("Source: orch-m", "Source: ../orch-m"),
        "no Source": text.replace("Source: orch-m\n", ""),
    }
    for what, body in cases.items():
        r = httpx.post(f"{hub.url}/api/v1/builds/upload", data={"target": "t"},
                       files=[("files", (good.name, body.encode())), ("files", (tarball.name, tarball.read_bytes()))],
                       headers={"Authorization": f"Bearer {hub.admin_token}"})
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
        assert r.json()["detail"], what
    for url in ("http://[::1/x.dsc", "http://127.0.0.1:99999/x.dsc", "http://exa mple/x.dsc", "http:///x.dsc"):
        r = httpx.post(f"{hub.url}/api/v1/builds", json={"target": "t", "source_url": url},
                       headers={"Authorization": f"Bearer {hub.admin_token}"})
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    assert hub.admin.builds() == []


class HostileHandler(http.server.BaseHTTPRequestHandler):
    """/redirect.dsc -> Location from the server's ``redirect_to``; /endless.dsc: zeros without end;
    /slow.dsc: one byte every 0.2 s; /huge_1.0.dsc: a .dsc naming a 1 GiB file; anything else 404."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        server: Any = self.server
        server.requests.append(self.path)
        if self.path.endswith("/redirect.dsc"):
            self.send_response(302)
            self.send_header("Location", server.redirect_to)
            self.end_headers()
            return
        if self.path.endswith(("/endless.dsc", "/slow.dsc")):
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    if self.path.endswith("/slow.dsc"):
                        self.wfile.write(b"S")
                        self.wfile.flush()
                        time.sleep(0.2)
                    else:
                        self.wfile.write(bytes(1 << 16))
            except OSError:
                return
        if self.path.endswith("/huge_1.0.dsc"):
            body = (f"Format: 3.0 (native)\nSource: huge\nBinary: huge\nArchitecture: all\nVersion: 1.0\n"
                    f"Checksums-Sha256:\n {'0' * 64} {1 << 30} huge_1.0.tar.xz\n"
                    f"Files:\n {'0' * 32} {1 << 30} huge_1.0.tar.xz\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_error(404)


@contextmanager
def hostile_server(redirect_to: str = "") -> Iterator[tuple[str, Any]]:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    server.daemon_threads = True
    server.requests = []
    server.redirect_to = redirect_to
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def test_source_urls_only_from_allowed_hosts_within_limits(make_hub: HubFactory, tmp_path: Path) -> None:
    # own hub: fetch pool and limits of its own (the pool is made at start); authentication: the next test
    hub = make_hub(lease_seconds=300.0, source_timeout=3.0, source_fetch_workers=2, source_fetch_queue=4,
                   source_max_bytes=64 << 20, verify_source=False)
    (tmp_path / "mirror").mkdir()
    make_source(tmp_path / "mirror", "orch-url", "1.0")
    make_source(tmp_path / "mirror", "orch-url2", "1.0")
    with serve_directory(tmp_path / "mirror") as mirror, hostile_server() as (elsewhere, off_list), \
            hostile_server() as (hostile, server):
        off_host = elsewhere.replace("127.0.0.1", "localhost")  # same machine, a host name not on the list
        server.redirect_to = f"{off_host}/orch-url_1.0.dsc"
        hub.admin.add_tag("base", external_repos=[{"url": f"{mirror}/debian", "suite": "trixie"}])
        hub.admin.add_target("t", "base", "base")
        user = hub.client(hub.admin.create_token("carol", ["build"])["token"])

        def submit(url: str) -> httpx.Response:
            return httpx.post(f"{hub.url}/api/v1/builds", json={"target": "t", "source_url": url},
                              headers={"Authorization": f"Bearer {user.token}"}, timeout=60)

        r = submit(f"{off_host}/orch-url_1.0.dsc")
        assert r.status_code == 403 and "allow-list" in r.json()["detail"] and "localhost" in r.json()["detail"]
        r = submit(f"{hostile}/redirect.dsc")
        assert r.status_code == 403 and "redirects to" in r.json()["detail"], r.text
        assert off_list.requests == [], "an off-list host was contacted"
        r = submit(f"{hostile}/endless.dsc")
        assert r.status_code == 413, r.text
        r = submit(f"{hostile}/huge_1.0.dsc")
        assert r.status_code == 413 and "64 MiB" in r.json()["detail"], r.text
        started = time.monotonic()
        r = submit(f"{hostile}/slow.dsc")
        assert r.status_code == 504 and "3 s" in r.json()["detail"], r.text
        assert time.monotonic() - started < 6
        # many slow drips at once: the API and the builders' heartbeats still answer at once
        hub.admin.submit("t", tmp_path / "mirror" / "orch-url2_1.0.dsc")
        token = hub.admin.add_host("hb", ["amd64"])["token"]
        payload = hub.client(token).claim(["amd64"], wait=5)
        assert payload is not None
        with ThreadPoolExecutor(24) as pool:
            slow = [pool.submit(submit, f"{hostile}/slow.dsc") for _ in range(24)]
            time.sleep(0.5)
            times = []
            with hub.client(token) as beating:
                while not all(f.done() for f in slow):
                    t0 = time.monotonic()
                    beating.heartbeat(payload["task_id"], payload["fence"])
                    assert beating.request("GET", "/tasks").status_code == 200
                    times.append(time.monotonic() - t0)
                    time.sleep(0.1)
            codes = sorted(f.result().status_code for f in slow)
        times.sort()
        assert len(times) > 10 and times[len(times) // 2] < 0.5 and times[-1] < 2.0, \
            f"a heartbeat and a listing took {times} s while slow sources were fetched"
        print(f"24 slow sources at once ({codes.count(504)} fetched until the deadline, {codes.count(503)} refused "
              f"at once): heartbeat + task listing median {times[len(times) // 2] * 1000:.0f} ms, "
              f"worst {times[-1] * 1000:.0f} ms")
        assert set(codes) == {503, 504} and codes.count(504) <= 6, codes
        # an allowed host works
        r = submit(f"{mirror}/orch-url_1.0.dsc")
        assert r.status_code == 201, r.text
    assert [b["ident"] for b in hub.admin.builds()] == ["orch-url_1.0", "orch-url2_1.0"]


def _pool_dir(root: Path, name: str) -> Path:
    d = root / "pool" / "main" / name[0] / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_fetched_sources_are_authenticated(hub: RunningHub, signing_home: Path, tmp_path: Path) -> None:
    """A mirror whose bookworm InRelease is signed by the external repo's key (the target's suite is trixie:
    the hub looks in sibling releases too): a listed .dsc is accepted, a tampered one and an unlisted unsigned
    one are refused with 422 before any of their files is fetched, and nothing of them is stored."""
    from debarchive import aptrepo
    from debarchive.signing import SigningKey

    key = SigningKey.load(signing_home)
    root = tmp_path / "www" / "debian"
    good = make_source(_pool_dir(root, "orch-auth"), "orch-auth", "1.0")
    bad = make_source(_pool_dir(root, "orch-bad"), "orch-bad", "1.0")
    plain = make_source(_pool_dir(root, "orch-plain"), "orch-plain", "1.0")
    aptrepo.publish(root, "bookworm", packages=[], key=key,
                    sources=[aptrepo.scan_dsc(d, f"pool/main/o/{d.name.split('_')[0]}") for d in (good, bad)])
    # the attacker (on the wire, or on the mirror) changes the .dsc the signed index vouches for
    bad.write_text(bad.read_text().replace("Maintainer: Test", "Maintainer: Mallory", 1))
    seen: list[str] = []

    class Recording(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            super().do_GET()

    with serve_directory(tmp_path / "www", Recording) as base:
        hub.admin.add_tag("base", external_repos=[{"url": f"{base}/debian", "suite": "trixie",
                                                   "key": key.public_armored()}])
        hub.admin.add_target("t", "base", "base")
        user = hub.client(hub.admin.create_token("dave", ["build"])["token"])

        def submit(dsc: Path) -> httpx.Response:
            url = f"{base}/debian/pool/main/o/{dsc.name.split('_')[0]}/{dsc.name}"
            return httpx.post(f"{hub.url}/api/v1/builds", json={"target": "t", "source_url": url},
                              headers={"Authorization": f"Bearer {user.token}"}, timeout=60)

        r = submit(bad)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert "tampered" in detail and "bookworm" in detail and "Upload the source package" in detail \
            and "--no-verify-source" in detail, detail
        r = submit(plain)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert "cannot authenticate" in detail and "orch-plain 1.0 is in no signed index" in detail \
            and "--source-keyring" in detail, detail
        assert not [p for p in seen if p.endswith(".tar.xz")], f"files of a refused source were fetched: {seen}"
        assert hub.admin.builds() == []
        stored = {p.parent.name + p.name for p in (hub.settings.store_dir / "objects").rglob("*") if p.is_file()}
        refused = {hashlib.sha256(f.read_bytes()).hexdigest() for d in (bad, plain)
                   for f in d.parent.iterdir() if f.name.startswith(d.name.removesuffix(".dsc"))}
        assert not stored & refused, "a refused source was stored"
        r = submit(good)
        assert r.status_code == 201, r.text
        b = r.json()["build"]
        assert b["source_trust"] == "archive" and b["source_verified"] is True, b
        assert "bookworm" in b["source_verification"] and "signed index" in b["source_verification"], b
    # the unlisted source uploaded by a token holder: trusted as theirs, and recorded so
    up = user.submit("t", plain)["build"]
    assert up["source_trust"] == "caller" and "uploaded by dave" in up["source_verification"], up
    assert hub.admin.build("orch-auth_1.0")["source_trust"] == "archive"
    page = httpx.get(f"{hub.url}/builds/orch-auth_1.0").text
    assert "Source authenticated" in page and "archive: found in the signed index" in page


def test_no_verify_source_accepts_and_records(make_hub: HubFactory, tmp_path: Path) -> None:
    hub = make_hub(verify_source=False)  # own hub: a setting of its own
    (tmp_path / "www").mkdir()
    plain = make_source(tmp_path / "www", "orch-unchecked", "1.0")
    with serve_directory(tmp_path / "www") as base:
        hub.admin.add_tag("base", external_repos=[{"url": f"{base}/debian", "suite": "trixie"}])
        hub.admin.add_target("t", "base", "base")
        b = hub.admin.submit("t", f"{base}/{plain.name}")["build"]
    assert b["source_trust"] == "none" and b["source_verified"] is False
    assert "--no-verify-source" in b["source_verification"]
    assert hub.admin.build("orch-unchecked_1.0")["source_verified"] is False
