"""The build phase against a real hub (uvicorn in a thread, real HTTP, real signed repos) whose builder is
scripted (tests/deb_orchestrator's FakeBuilder: the real protocol, dpkg-deb instead of deb-mock), so the
dep-wait and failure paths are tested in seconds: a dep-wait satisfied by another build of the same compose,
one nothing can satisfy, a failed build (reason, log tail, link), and no second submission of a build; and
the deb-bootc client of a manifest with update: going through the hub once per client source."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deb_orchestrator"))
from e2e_loop import phase_context
from orch_helpers import FakeBuilder, make_source
from orch_hub import RunningHub, start_hub

from deb_bootc_compose import clientdeb
from deb_bootc_compose.clientsource import TaggedClient
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phases import build as build_phase
from deb_bootc_compose.phases.base import ComposeContext
from deb_orchestrator.hub.config import HubSettings
from debarchive.signing import SigningKey

MIRROR = "http://deb.debian.org/debian"
Answer = Callable[[dict[str, Any], FakeBuilder], None]


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("e2e-gnupg") / "gnupg"
    SigningKey.ensure(home)
    return home


@pytest.fixture
def hub(tmp_path: Path, signing: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningHub]:
    settings = HubSettings(data=tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'hub.db'}", lease_seconds=20.0,
                           heartbeat_seconds=0.5, reap_interval=0.2)
    h = start_hub(settings, signing)
    admin = h.admin
    names = {"base": "base", "dest": "dest", "build": "build", "target": "t"}
    for _ in range(2):  # the second time everything exists and is kept
        assert admin.setup_target("t", mirror=MIRROR, suite="trixie", base="base", dest="dest", build="build") == names
    assert admin.get("/targets/t")["build_tag"] == "build" and admin.get("/targets/t")["dest_tag"] == "dest"
    assert admin.get("/tags/build")["parents"] == ["dest"] and admin.get("/tags/dest")["parents"] == ["base"]
    monkeypatch.setenv("DEB_ORCHESTRATOR_TOKEN", h.admin_token)
    monkeypatch.setattr(build_phase, "POLL_SECONDS", 0.2)
    yield h
    h.stop()


class ScriptedBuilder:
    """Claims tasks in a thread and answers each with ``answer(payload, builder)``."""

    def __init__(self, hub: RunningHub, tmp_path: Path, answer: Answer) -> None:
        name = f"fake-{len(hub.admin.hosts()) + 1}"
        token = hub.admin.add_host(name, ["amd64"])["token"]
        self.fb = FakeBuilder(hub.client(token), tmp_path / name)
        self.answer = answer
        self.stop = threading.Event()
        self.seen: list[str] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                payload = self.fb.claim(wait=0.5)
                if payload is not None:
                    self.seen.append(payload["build"])
                    self.answer(payload, self.fb)
            except BaseException as exc:  # surfaced by the test
                self.errors.append(exc)
                return

    def __enter__(self) -> ScriptedBuilder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.errors, self.errors


def context(tmp_path: Path, hub_url: str, sources: list[Path]) -> tuple[ComposeContext, list[str]]:
    return phase_context(tmp_path, hub_url, sources, target="t", tag="dest", mirror=MIRROR)


def test_dep_wait_satisfied_by_another_build_of_the_compose(hub: RunningHub, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    app = make_source(tmp_path / "src", "orch-app", "1.0", build_depends="liborch-dev (>= 1)")
    lib = make_source(tmp_path / "src", "liborch", "1.0")
    missing = [{"relation": "liborch-dev (>= 1)", "packages": ["liborch-dev"]}]

    def answer(p: dict[str, Any], fb: FakeBuilder) -> None:
        if p["build"] == "orch-app_1.0" and "orch-app_1.0" not in fb_seen_done:
            fb_seen_done.add("orch-app_1.0")
            fb.finish(p, 3, missing=missing, error="unsatisfiable: liborch-dev (>= 1)")
        else:
            if p["build"] == "liborch_1.0":  # held until the phase (it polls) has seen app waiting for it
                deadline = time.monotonic() + 60
                while not any("orch-app_1.0:" in m and "dep-wait" in m for m in messages):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
            fb.finish(p, 0, provides="liborch-dev" if p["build"] == "liborch_1.0" else "")

    fb_seen_done: set[str] = set()
    ctx, messages = context(tmp_path, hub.url, [app, lib])  # app first: it waits for lib
    with ScriptedBuilder(hub, tmp_path, answer) as sb:
        build_phase.BuildPhase(ctx).run()
    assert sb.seen == ["orch-app_1.0", "liborch_1.0", "orch-app_1.0"]
    assert any("orch-app_1.0:" in m and "dep-wait" in m for m in messages), messages
    record = ctx.orchestrator_builds
    admin = hub.admin
    for ident in ("orch-app_1.0", "liborch_1.0"):
        b = admin.build(ident)
        assert b["state"] == "complete"
        assert record[ident]["build_id"] == b["id"] and record[ident]["task_id"] == b["task_id"]
        assert record[ident]["dest_tag"] == "dest" and record[ident]["submitted"] is True
        assert b["requested_by"] == record[ident]["requested_by"] == f"compose {ctx.compose_id}"
    assert {b["ident"] for b in admin.list_tagged("dest", inherit=False)} >= {"orch-app_1.0", "liborch_1.0"}

    # the same compose again: both builds exist, nothing is submitted twice
    (tmp_path / "again").mkdir()
    ctx2, messages2 = context(tmp_path / "again", hub.url, [app, lib])
    with ScriptedBuilder(hub, tmp_path, answer) as sb2:
        build_phase.BuildPhase(ctx2).run()
    assert sb2.seen == []
    assert sum("not submitted again" in m for m in messages2) == 2
    assert all(not r["submitted"] for r in ctx2.orchestrator_builds.values())


def test_dep_wait_nothing_can_satisfy_fails_with_the_missing_relation(
    hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_phase, "DEP_WAIT_GRACE", 2.0)
    app = make_source(tmp_path, "orch-app", "1.0", build_depends="liborch-dev (>= 1)")
    missing = [{"relation": "liborch-dev (>= 1)", "packages": ["liborch-dev"]}]
    ctx, _ = context(tmp_path, hub.url, [app])
    with ScriptedBuilder(hub, tmp_path, lambda p, fb: fb.finish(p, 3, missing=missing)), \
            pytest.raises(ComposeError) as err:
        build_phase.BuildPhase(ctx).run()
    msg = str(err.value)
    assert "orch-app_1.0" in msg and "liborch-dev (>= 1)" in msg
    assert f"{hub.url}/api/v1/tasks/" in msg and "build.sources" in msg
    assert ctx.orchestrator_builds == {}


def test_failed_build_fails_with_reason_log_tail_and_link(hub: RunningHub, tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "orch-bad", "1.0")

    def answer(p: dict[str, Any], fb: FakeBuilder) -> None:
        fb.client.heartbeat(p["task_id"], p["fence"], log=["make: *** [Makefile:12: all] Error 1"])
        fb.finish(p, 1, error="dpkg-buildpackage failed (exit 2)")

    ctx, _ = context(tmp_path, hub.url, [dsc])
    with ScriptedBuilder(hub, tmp_path, answer), pytest.raises(ComposeError) as err:
        build_phase.BuildPhase(ctx).run()
    msg = str(err.value)
    assert "orch-bad_1.0" in msg and "dpkg-buildpackage failed (exit 2)" in msg
    assert "make: *** [Makefile:12: all] Error 1" in msg
    assert f"{hub.url}/api/v1/tasks/" in msg and "deb-orchestrator resubmit orch-bad_1.0" in msg
    # a second compose does not resubmit it behind the user's back: same clear failure at once
    (tmp_path / "again").mkdir()
    ctx2, _ = context(tmp_path / "again", hub.url, [dsc])
    with pytest.raises(ComposeError, match=r"orch-bad_1\.0"):
        build_phase.BuildPhase(ctx2).run()
    assert [b["ident"] for b in hub.admin.builds()] == ["orch-bad_1.0"]


def test_build_deleted_by_gc_fails_with_advice(hub: RunningHub, tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "orch-gone", "1.0")
    hub.admin.submit("t", dsc)
    FakeBuilder(hub.client(hub.admin.add_host("fb", ["amd64"])["token"]), tmp_path / "fb").step(1)
    assert [b.ident for b in hub.admin.gc(retention={"failed_build_days": 0}).builds] == ["orch-gone_1.0"]
    ctx, _ = context(tmp_path, hub.url, [dsc])
    with pytest.raises(ComposeError, match=r"orch-gone_1\.0 .* was deleted by the orchestrator's gc .* build a new "
                                           r"version; see http"):
        build_phase.BuildPhase(ctx).run()


def test_build_without_an_orchestrator_source_says_what_to_add(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, "http://127.0.0.1:9", [tmp_path / "x.dsc"])
    ctx.manifest.sources = [s for s in ctx.manifest.sources if s.orchestrator is None]
    with pytest.raises(ComposeError, match=r"names no orchestrator source; add '- orchestrator: \{url"):
        build_phase.BuildPhase(ctx).run()


def test_unreachable_hub_is_a_clear_error(tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "orch-a", "1.0")
    ctx, _ = context(tmp_path, "http://127.0.0.1:9", [dsc])
    with pytest.raises(ComposeError, match=r"cannot reach the hub at http://127.0.0.1:9"):
        build_phase.BuildPhase(ctx).run()


def test_build_made_for_another_target_is_tagged_into_the_dest_tag(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    admin.add_tag("other", parents=["base"])
    admin.add_target("t-other", "build", "other")
    dsc = make_source(tmp_path, "orch-elsewhere", "1.0")
    with ScriptedBuilder(hub, tmp_path, lambda p, fb: fb.finish(p, 0)):
        admin.wait_task(admin.submit("t-other", dsc)["task"]["id"], timeout=60)
    assert "orch-elsewhere_1.0" not in {b["ident"] for b in admin.list_tagged("dest")}
    ctx, messages = context(tmp_path, hub.url, [dsc])
    build_phase.BuildPhase(ctx).run()
    assert any("complete but not in dest: tagging it there" in m for m in messages), messages
    assert "orch-elsewhere_1.0" in {b["ident"] for b in admin.list_tagged("dest", inherit=False)}
    assert ctx.orchestrator_builds["orch-elsewhere_1.0"]["submitted"] is False


def test_git_source_is_built_and_recorded_with_its_commit(hub: RunningHub, tmp_path: Path) -> None:
    """A {git: URL, ref: REF} entry: compose makes the .dsc from the exact commit, submits it (requested_by
    names the compose), and metadata/builds.json records the URL, the ref and the resolved commit."""
    import json

    from git_repos import git, quilt_repo

    from deb_bootc_compose.manifest import GitBuildSource
    from httpserve import serve_directory

    served = tmp_path / "served"
    served.mkdir()
    bare = quilt_repo(served, "orch-git", "1.0")
    commit = git(bare, "rev-parse", "main")
    with serve_directory(served) as url:
        ctx, messages = phase_context(tmp_path, hub.url, [{"git": f"{url}/orch-git.git", "ref": "main"}],
                                      target="t", tag="dest", mirror=MIRROR)
        assert ctx.manifest.build.sources == [GitBuildSource(git=f"{url}/orch-git.git", ref="main")]
        with ScriptedBuilder(hub, tmp_path, lambda p, fb: fb.finish(p, 0)) as sb:
            build_phase.BuildPhase(ctx).run()
    assert sb.seen == ["orch-git_1.0-1"]
    assert any(f"orch-git_1.0-1: made from {url}/orch-git.git at {commit} (3.0 (quilt))" in m for m in messages)
    assert f"orch-git_1.0-1: submitting {url}/orch-git.git at {commit[:12]} to target t" in messages
    b = hub.admin.build("orch-git_1.0-1")
    assert b["state"] == "complete" and b["requested_by"] == f"compose {ctx.compose_id}"
    assert {f["name"] for f in b["files"] if f["kind"] == "source"} == {
        "orch-git_1.0-1.dsc", "orch-git_1.0.orig.tar.gz", "orch-git_1.0-1.debian.tar.xz"}
    data = json.loads((ctx.paths.metadata / build_phase.BUILDS_JSON).read_text())
    assert data["header"]["type"] == "deb-bootc-compose.builds"
    assert data["payload"]["compose"]["id"] == ctx.compose_id
    rec = data["payload"]["builds"]["orch-git_1.0-1"]
    assert rec["git"] == {"url": f"{url}/orch-git.git", "ref": "main", "commit": commit, "format": "3.0 (quilt)"}
    assert rec["build_id"] == b["id"] and rec["task_id"] == b["task_id"]
    arch_task = next(t for t in b["tasks"] if t["method"] == "buildArch")
    assert rec["arch_tasks"] == {arch_task["arch"]: arch_task["id"]} and rec["hosts"] == [arch_task["host"]]
    assert rec["requested_by"] == f"compose {ctx.compose_id}" and rec["ref"] == f"{url}/orch-git.git"


CLIENT = Path(__file__).resolve().parents[2] / "packaging" / "deb-bootc"


def _client_compose(tmp: Path, hub: RunningHub, answer: Answer) -> tuple[ComposeContext, list[str], list[str]]:
    """The build phase of a manifest with update: and build.target (no other sources); returns the context,
    its progress messages and the builds the builder was given."""
    tmp.mkdir()
    ctx, messages = phase_context(tmp, hub.url, [], target="t", tag="dest", mirror=MIRROR, update=True)
    with ScriptedBuilder(hub, tmp, answer) as sb:
        build_phase.BuildPhase(ctx).run()
    return ctx, messages, sb.seen


def _client_version(src: Path) -> str:
    import subprocess

    base = subprocess.run(["dpkg-parsechangelog", "-l", str(src / "debian" / "changelog"), "-S", "Version"],
                          check=True, capture_output=True, text=True).stdout.strip()
    return f"{base}+src{clientdeb.source_hash(src)[:12]}"


def test_update_client_is_built_by_the_hub_once_per_source(hub: RunningHub, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """update: + build.target: the client's source package (version + source hash) goes to the hub like a
    build source; an unchanged client is not submitted again; a changed one is a new version; going back to
    an older source tags its build into the destination again (the tag shows the latest tagging)."""
    import json
    import shutil

    src = tmp_path / "client-src"
    shutil.copytree(CLIENT, src, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv(clientdeb.SOURCE_ENV, str(src))
    version = _client_version(src)
    ident = f"deb-bootc_{version}"

    ctx, messages, seen = _client_compose(tmp_path / "c1", hub, lambda p, fb: fb.finish(p, 0))
    assert seen == [ident]
    assert f"{ident}: submitting the deb-bootc client ({src}, source {version[-12:]}) to target t" in messages
    client = ctx.client_deb
    assert isinstance(client, TaggedClient) and client.apt_request == f"deb-bootc={version}"
    b = hub.admin.build(ident)
    assert b["state"] == "complete" and b["requested_by"] == f"compose {ctx.compose_id}"
    assert (client.build_id, client.dest_tag, client.depends) == (b["id"], "dest", ("python3", "ostree"))
    assert {f["name"] for f in b["files"] if f["kind"] == "source"} == {f"{ident}.dsc", f"{ident}.tar.xz"}
    rec = json.loads(ctx.paths.builds_json.read_text())["payload"]["builds"][ident]
    assert rec["submitted"] is True and rec["build_id"] == b["id"] and rec["ref"] == str(src)
    assert rec["client"] == {"source_hash": clientdeb.source_hash(src), "tree": str(src)} and rec["git"] is None
    packages = hub.admin.request("GET", "/repos/dest/dists/dest/main/binary-amd64/Packages", api=False).text
    assert "Package: deb-bootc\n" in packages and f"Version: {version}\n" in packages  # it waited for the repo

    # a second compose, the client unchanged: the same version, which the hub has; nothing is submitted
    ctx2, messages2, seen2 = _client_compose(tmp_path / "c2", hub, lambda p, fb: fb.finish(p, 0))
    assert seen2 == [] and any(f"{ident}: the hub has build {b['id']} (complete)" in m for m in messages2)
    assert isinstance(ctx2.client_deb, TaggedClient) and ctx2.client_deb.version == version
    assert ctx2.orchestrator_builds[ident]["submitted"] is False

    # the client's source changes: a new version, built once
    cli = src / "deb_bootc" / "cli.py"
    original = cli.read_text()
    cli.write_text(original + "\n# changed\n")
    version3 = _client_version(src)
    assert version3 != version
    ctx3, _, seen3 = _client_compose(tmp_path / "c3", hub, lambda p, fb: fb.finish(p, 0))
    assert seen3 == [f"deb-bootc_{version3}"] and isinstance(ctx3.client_deb, TaggedClient)
    assert ctx3.client_deb.version == version3
    assert sorted(x["ident"] for x in hub.admin.builds() if x["source"] == "deb-bootc") == sorted(
        [ident, f"deb-bootc_{version3}"])

    # back to the first source: its build is reused and tagged into dest again, where gather looks for it
    cli.write_text(original)
    ctx4, messages4, seen4 = _client_compose(tmp_path / "c4", hub, lambda p, fb: fb.finish(p, 0))
    assert seen4 == [] and f"{ident}: dest shows a later tagging of deb-bootc: tagging {ident} again" in messages4
    assert isinstance(ctx4.client_deb, TaggedClient) and ctx4.client_deb.version == version
    assert [x["ident"] for x in hub.admin.list_tagged("dest") if x["source"] == "deb-bootc"] == [ident]


def test_update_client_and_build_sources_go_to_the_hub_together(hub: RunningHub, tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "orch-with-client", "1.0")
    ctx, _ = phase_context(tmp_path, hub.url, [dsc], target="t", tag="dest", mirror=MIRROR, update=True)
    with ScriptedBuilder(hub, tmp_path, lambda p, fb: fb.finish(p, 0)) as sb:
        build_phase.BuildPhase(ctx).run()
    client = ctx.client_deb
    assert isinstance(client, TaggedClient)
    assert sorted(sb.seen) == sorted(["orch-with-client_1.0", f"deb-bootc_{client.version}"])
    assert set(ctx.orchestrator_builds) == {"orch-with-client_1.0", f"deb-bootc_{client.version}"}
    assert ctx.orchestrator_builds["orch-with-client_1.0"]["client"] is None


@pytest.mark.integration
def test_update_client_in_a_tag_the_manifest_does_not_follow_is_a_clear_error(
    hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub builds the client into the target's dest tag, but the manifest's orchestrator source is another
    tag: gather (real apt over the mirror and the tag's signed repo) says where the client went."""
    from deb_bootc_compose.phases.gather import GatherPhase
    from deb_bootc_compose.phases.init import InitPhase

    admin = hub.admin
    admin.add_tag("elsewhere", parents=["base"])
    admin.regen_repo("elsewhere")
    admin.wait_repo("elsewhere", timeout=60)
    ctx, _ = phase_context(tmp_path, hub.url, [], target="t", tag="elsewhere", mirror=MIRROR, update=True)
    InitPhase(ctx).run()
    with ScriptedBuilder(hub, tmp_path, lambda p, fb: fb.finish(p, 0)):
        build_phase.BuildPhase(ctx).run()
    client = ctx.client_deb
    assert isinstance(client, TaggedClient) and client.dest_tag == "dest"
    with pytest.raises(ComposeError) as err:
        GatherPhase(ctx).run()
    msg = str(err.value)
    assert f"deb-bootc {client.version} was built by the orchestrator into the tag dest (build " in msg
    assert "the manifest's orchestrator source must be that tag or one inheriting from it" in msg


def test_the_phase_waits_on_the_event_stream_and_polls_behind_a_buffering_proxy(
    hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the hub's event stream the phase sees the build finish at once, although it would look only once a
    minute without it; behind a proxy that buffers responses it notices and polls."""
    from orch_proxy import buffering_proxy

    from deb_orchestrator import eventfeed

    def answer(p: dict[str, Any], fb: FakeBuilder) -> None:
        time.sleep(1.0)  # the phase is waiting by then
        fb.finish(p, 0)

    monkeypatch.setattr(build_phase, "POLL_SECONDS", 60.0)
    monkeypatch.setattr(build_phase, "STREAM_WAIT", 60.0)
    (tmp_path / "a").mkdir()
    ctx, _ = context(tmp_path / "a", hub.url, [make_source(tmp_path / "a", "orch-streamed", "1.0")])
    started = time.monotonic()
    with ScriptedBuilder(hub, tmp_path, answer):
        build_phase.BuildPhase(ctx).run()
    assert time.monotonic() - started < 30
    assert list(ctx.orchestrator_builds) == ["orch-streamed_1.0"]

    monkeypatch.setattr(build_phase, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(eventfeed, "OPEN_TIMEOUT", 1.0)
    caplog.set_level("INFO", logger="deb_orchestrator.client")
    (tmp_path / "b").mkdir()
    with buffering_proxy(hub.url) as proxy:
        ctx, _ = context(tmp_path / "b", proxy, [make_source(tmp_path / "b", "orch-polled", "1.0")])
        with ScriptedBuilder(hub, tmp_path, answer):
            build_phase.BuildPhase(ctx).run()
    assert list(ctx.orchestrator_builds) == ["orch-polled_1.0"]
    assert "event stream unusable (the stream's opening did not arrive within 1 s" in caplog.text
