"""Plugins in the orchestrator (docs/plugins.md, "deb-orchestrator") on a real hub with the real builder daemon,
its deb-mock call injected (test_orch_plugins_integration.py runs the real deb-mock): what a target and a request
enable reaches deb-mock; builders run only the plugins they allow; plugin results are kept bounded and shown
(API, build page); the lintian-gate policy refuses a tagging naming the tags; docs/plugins.md's example hub
plugin, installed as a distribution, is called at each moment and can refuse; errors in after-hooks are logged."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from orch_helpers import built, install_example_hub_plugin, make_source
from orch_hub import HubFactory, RunningHub
from sqlalchemy import update

from deb_mock.request import BuildRequest, BuildResult
from deb_orchestrator.builder.daemon import Builder, BuilderConfig
from deb_orchestrator.client import HubError
from deb_orchestrator.hub.models import Target
from deb_orchestrator.hub.plugins import loader
from debarchive.dsc import parse_dsc

MIRROR = "http://deb.debian.org/debian"
LINT_ERRORS = {"state": "ok", "version": "Lintian v2.122.0", "fail_on": "none",
               "counts": {"error": 1, "warning": 2, "info": 0, "pedantic": 0, "experimental": 0, "overridden": 0},
               "tags": {"error": ["dir-or-file-in-home"],
                        "warning": ["no-manual-page", "initial-upload-closes-no-bugs"]}}
LINT_CLEAN = {**LINT_ERRORS, "counts": {**LINT_ERRORS["counts"], "error": 0}, "tags": {"warning": ["no-manual-page"]}}


def fake_deb_mock(plugins: Callable[[BuildRequest], dict[str, Any]], seen: list[BuildRequest]
                  ) -> Callable[[BuildRequest], BuildResult]:
    """deb-mock's place: builds the .deb with dpkg-deb and reports ``plugins(request)`` as the plugin results."""

    def build(request: BuildRequest) -> BuildResult:
        seen.append(request)
        return built(request, log=False, plugins=plugins(request))

    return build


def build_all(hub: RunningHub, token: str, work: Path, build_fn: Callable[[BuildRequest], BuildResult],
              allow: list[str] | None = None, own: dict[str, dict[str, Any]] | None = None) -> None:
    """Run the builder daemon until it has been idle for a second (``own``: the plugins its config enables)."""
    cfg = BuilderConfig(hub=hub.url, token=token, work_dir=work, idle_exit=1.0, claim_wait=0.5, build_fn=build_fn,
                        allow_plugins=allow or [], plugins=own or {})
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(Builder(cfg)._loop()))
    t.start()
    t.join(timeout=120)
    assert codes == [0]


def setup(hub: RunningHub, **target: Any) -> str:
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
    admin.add_tag("dest", parents=["base"])
    admin.add_tag("build", parents=["dest"])
    admin.add_target("t", "build", "dest", **target)
    admin.wait_repo("build", timeout=60)  # its key.asc is what a builder fetches first
    return str(admin.add_host("b1", ["amd64"])["token"])


def refused(call: Callable[[], object]) -> HubError:
    with pytest.raises(HubError) as err:
        call()
    return err.value


def test_target_and_request_plugins_reach_deb_mock_and_results_are_kept_bounded(hub: RunningHub,
                                                                               tmp_path: Path) -> None:
    token = setup(hub, plugins={"lintian": {"fail-on": "none", "suppress-tags": ["no-manual-page"]}},
                  request_plugins=["autopkgtest", "lintian"])
    admin = hub.admin
    assert admin.target("t")["request_plugins"] == ["autopkgtest", "lintian"]
    # the request adds autopkgtest; its lintian options lose to the target's
    admin.submit("t", make_source(tmp_path, "orch-plug", "1.0"),
                 plugins={"autopkgtest": {"fail-on": "none"}, "lintian": {"fail-on": "error", "info": False}})
    wanted = {"autopkgtest": {"fail-on": "none"},
              "lintian": {"fail-on": "none", "info": False, "suppress-tags": ["no-manual-page"]}}
    assert admin.build("orch-plug_1.0")["plugins"] == wanted
    # a plugin the target does not let requests add: refused before anything is stored
    err = refused(lambda: admin.submit("t", make_source(tmp_path / "p", "orch-plug-p", "1.0"),
                                       plugins={"piuparts": {}}))
    assert err.status == 403 and "does not let a build request add plugin(s) piuparts" in err.detail
    assert "it allows: autopkgtest, lintian" in err.detail
    for bad in ({"Lintian": {}}, {"lintian": {"fail on": 1}}, {"lintian": {"x": {"nested": 1}}},
                {"lintian": {"x": "y" * 5000}}):
        assert refused(lambda b=bad: admin.submit("t", "http://deb.debian.org/x_1.dsc", plugins=b)).status == 422
    assert [b["ident"] for b in admin.builds()] == ["orch-plug_1.0"]

    seen: list[BuildRequest] = []
    huge = {"state": "ok", "blob": "x" * (70 << 10)}
    build_all(hub, token, tmp_path / "work", fake_deb_mock(
        lambda r: {"tmpfs": {"state": "ok"}, "lintian": LINT_ERRORS, "autopkgtest": {"state": "ok", "tests": {}},
                   "huge": huge, "Bad Name": {"state": "ok"}}, seen))
    (request,) = seen
    assert sorted(request.enable_plugins) == ["autopkgtest", "lintian"] and request.plugin_options == wanted
    build = admin.build("orch-plug_1.0")
    assert build["state"] == "complete"
    task_id = next(t["id"] for t in build["tasks"] if t["method"] == "buildArch")
    kept = admin.task(task_id)["plugins"]
    assert kept["lintian"] == LINT_ERRORS and kept["tmpfs"] == {"state": "ok"}
    assert kept["huge"] == {"state": "ok", "truncated": True, "bytes": len(json.dumps(huge, separators=(",", ":")))}
    assert "Bad Name" not in kept and "plugins" not in admin.task(task_id)["result"]  # kept once, bounded
    assert build["plugin_results"] == {str(task_id): kept}
    page = httpx.get(f"{hub.url}/builds/orch-plug_1.0").text
    section = page[page.index('id="plugins"'):page.index("<h2>Logs</h2>")]
    assert "autopkgtest</code> (fail-on=none)" in section
    assert re.search(r"<td>lintian</td><td>ok</td><td>error 1, warning 2; error: dir-or-file-in-home; "
                     r"warning: no-manual-page, initial-upload-closes-no-bugs</td>", section), section
    assert "result too large to keep" in section


def test_builders_run_only_the_plugins_they_allow(hub: RunningHub, tmp_path: Path) -> None:
    # a third-party plugin (code deb-mock would import), sign (a path on the builder: here a secret of the host)
    token = setup(hub, plugins={"hello": {"greeting": "hi"}, "sign": {"key": "/root/.ssh/id_rsa"}, "lintian": {}})
    admin = hub.admin
    admin.submit("t", make_source(tmp_path, "orch-third", "1.0"))
    seen: list[BuildRequest] = []
    build_fn = fake_deb_mock(lambda r: {}, seen)
    build_all(hub, token, tmp_path / "w1", build_fn)  # this builder does not allow hello: nothing imported or run
    assert not seen
    task = next(t for t in admin.tasks() if t["method"] == "buildArch")
    # an infrastructure error (exit 4): another builder may take it; with none, it fails when the attempts run out
    assert task["state"] == "failed" and task["attempts"] == 3
    assert "this builder does not run plugin(s) hello, sign for the hub (it runs autopkgtest, ccache" in task["error"]
    assert "builder --allow-plugin NAME" in task["error"]
    admin.resubmit("orch-third_1.0")  # the same plugins (kept on the build)
    build_all(hub, token, tmp_path / "w2", build_fn, allow=["hello", "sign"])  # its operator allows them
    assert [(r.enable_plugins, r.plugin_options) for r in seen] == [
        (["hello", "lintian", "sign"], {"hello": {"greeting": "hi"}, "sign": {"key": "/root/.ssh/id_rsa"}})]
    assert admin.build("orch-third_1.0")["state"] == "complete"


def test_wrong_deb_mock_plugin_options_are_refused_naming_plugin_option_and_what_it_takes(hub: RunningHub,
                                                                                        tmp_path: Path) -> None:
    admin = hub.admin
    setup(hub, plugins={"lintian": {"fail-on": "none"}}, request_plugins=["autopkgtest", "tmpfs"])
    wrong = [
        ({"plugins": {"tmpfs": {"size": "banana"}}},
         "plugins: plugin tmpfs: option size='banana': not a tmpfs size: 'banana' (e.g. 4G, 512m, 50%)"),
        ({"plugins": {"lintian": {"fail-on": "nonsense", "colour": 1}}},
         "plugins: plugin lintian: option fail-on='nonsense': Input should be 'error', 'warning' or 'none'; "
         "plugin lintian: unknown option 'colour' (its options: fail-on, info, pedantic, profile, suppress-tags)"),
        ({"plugins": {"lintan": {}}}, "plugins: unknown plugin 'lintan': did you mean lintian? (deb-mock's own "
                                      "plugins: autopkgtest, ccache, lintian, piuparts, sign, tmpfs"),
        ({"request_plugins": ["piupart"]}, "request_plugins: unknown plugin 'piupart': did you mean piuparts?"),
        ({"disable_plugins": ["ccach"]}, "disable_plugins: unknown plugin 'ccach': did you mean ccache?"),
        ({"plugins": {"lintian": {}}, "request_plugins": ["tmpfs"], "disable_plugins": ["lintian", "tmpfs", "ccache"]},
         "disable_plugins: lintian, tmpfs also enabled (plugins) or allowed to requests (request_plugins)"),
    ]
    for fields, message in wrong:
        err = refused(lambda f=fields: admin.add_target("t2", "build", "dest", **f))  # type: ignore[misc]
        assert (err.status, err.detail[:len(message)]) == (400, message), err.detail
        err = refused(lambda f=fields: admin.edit_target("t", **f))  # type: ignore[misc]
        assert (err.status, err.detail[:len(message)]) == (400, message), err.detail
    assert [t["name"] for t in admin.targets()] == ["t"]
    assert admin.target("t")["plugins"] == {"lintian": {"fail-on": "none"}}  # nothing changed
    err = refused(lambda: admin.edit_target("t", disable_plugins=["lintian"]))  # against the kept plugins
    assert err.status == 400 and err.detail.startswith("disable_plugins: lintian also enabled"), err.detail
    # with the plugins replaced in the same edit, switching lintian off is no contradiction
    admin.edit_target("t", plugins={"tmpfs": {"size": "2G"}}, disable_plugins=["lintian"], request_plugins=[])
    admin.edit_target("t", plugins={}, disable_plugins=[], request_plugins=["autopkgtest", "tmpfs"])
    # a third-party plugin's options are its own: accepted as given, checked by the builders that allow it
    admin.edit_target("t", plugins={"hello": {"greeting": "hi", "anything": [1, 2]}})
    for plugins, message in (({"autopkgtest": {"fail-on": "sometimes"}},
                              "build request for target t: plugins: plugin autopkgtest: option fail-on='sometimes': "
                              "Input should be 'failure' or 'none'"),
                             ({"tmpfs": {"size": "banana"}}, "build request for target t: plugins: plugin tmpfs: "
                                                             "option size='banana': not a tmpfs size")):
        err = refused(lambda p=plugins: admin.submit("t", make_source(tmp_path, "orch-wrong", "1.0"),  # type: ignore[misc]
                                                     plugins=p))
        assert err.status == 400 and err.detail.startswith(message), err.detail
        err = refused(lambda p=plugins: admin.submit("t", "http://deb.debian.org/x_1.dsc", plugins=p))  # type: ignore[misc]
        assert err.status == 400 and err.detail.startswith(message), err.detail  # before anything is fetched
    assert admin.builds() == []


def test_a_target_switches_off_plugins_a_builder_config_enables(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    token = setup(hub, plugins={"lintian": {"fail-on": "none"}}, disable_plugins=["ccache", "tmpfs", "hello"])
    assert admin.target("t")["disable_plugins"] == ["ccache", "tmpfs", "hello"]
    admin.submit("t", make_source(tmp_path, "orch-off", "1.0"))
    admin.edit_target("t", disable_plugins=[])  # a build keeps what it was submitted with
    assert admin.target("t")["disable_plugins"] == []
    build = admin.build("orch-off_1.0")
    assert build["disable_plugins"] == ["ccache", "tmpfs", "hello"]
    page = httpx.get(f"{hub.url}/builds/orch-off_1.0").text
    assert "Its builds switch off: <code>ccache</code>, <code>tmpfs</code>, <code>hello</code>" in page
    seen: list[BuildRequest] = []
    build_all(hub, token, tmp_path / "work", fake_deb_mock(lambda r: {"lintian": LINT_CLEAN}, seen),
              own={"ccache": {"max-size": "5G"}, "lintian": {"info": False}})
    (request,) = seen
    # hello is not installed on this builder: nothing to switch off (deb-mock would refuse the unknown name)
    assert request.disable_plugins == ["ccache", "tmpfs"]
    assert request.enable_plugins == ["lintian"] and request.plugin_options == {"lintian": {"fail-on": "none"}}
    assert request.config_overrides == {"plugins": {"ccache": {"max-size": "5G", "enabled": True},
                                                    "lintian": {"info": False, "enabled": True}}}
    assert admin.build("orch-off_1.0")["state"] == "complete"
    admin.edit_target("t", disable_plugins=["piuparts"])
    listing = httpx.get(f"{hub.url}/targets").text
    assert "lintian (fail-on=none); off: piuparts" in listing


def test_lintian_gate_refuses_to_tag_a_build_with_lintian_errors(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    token = setup(hub, plugins={"lintian": {"fail-on": "none"}}, policy={"lintian-gate": {"refuse-on": "error"}})
    for policy, message in (({"nope": {}}, "names hub plugin nope, which this hub does not run"),
                            ({"lintian-gate": {"refuse-on": "info"}}, "policy lintian-gate: invalid options")):
        err = refused(lambda p=policy: admin.edit_target("t", policy=p))
        assert err.status == 400 and message in err.detail
    admin.submit("t", make_source(tmp_path, "orch-dirty", "1.0"))
    admin.submit("t", make_source(tmp_path, "orch-clean", "1.0"))
    results = {"orch-dirty": LINT_ERRORS, "orch-clean": LINT_CLEAN}
    build_all(hub, token, tmp_path / "work", fake_deb_mock(
        lambda r: {"lintian": results[parse_dsc(Path(r.source)).source]}, []))
    why = ("refused by hub plugin lintian-gate: target t refuses to tag orch-dirty_1.0 into dest: lintian found "
           "amd64: 1 error tag(s): dir-or-file-in-home")
    dirty = admin.build("orch-dirty_1.0")
    assert dirty["state"] == "complete"  # built; only its tagging was refused
    tag_task = admin.task(next(t["id"] for t in dirty["tasks"] if t["method"] == "tag"))
    assert tag_task["state"] == "failed" and tag_task["error"] == why
    assert [e["data"] for e in admin.events() if e["kind"] == "tag.refused"] == [
        {"build": "orch-dirty_1.0", "reason": why}]
    assert [b["ident"] for b in admin.list_tagged("dest")] == ["orch-clean_1.0"]  # warnings do not refuse
    err = refused(lambda: admin.tag_build("dest", "orch-dirty_1.0"))  # by hand: refused the same way
    assert err.status == 409 and err.detail == why
    admin.tag_build("build", "orch-dirty_1.0")  # no target lands in build: no policy
    admin.edit_target("t", policy={"lintian-gate": {"refuse-on": "warning"}})
    admin.untag_build("dest", "orch-clean_1.0")
    err = refused(lambda: admin.tag_build("dest", "orch-clean_1.0"))
    assert err.detail.endswith("lintian found amd64: 2 warning tag(s): no-manual-page")
    admin.add_tag("other")
    admin.add_target("nolint", "build", "other")
    admin.submit("nolint", make_source(tmp_path, "orch-unlinted", "1.0"))
    build_all(hub, token, tmp_path / "w2", fake_deb_mock(lambda r: {"tmpfs": {"state": "ok"}}, []))
    admin.edit_target("nolint", policy={"lintian-gate": {}})
    admin.untag_build("other", "orch-unlinted_1.0")
    err = refused(lambda: admin.tag_build("other", "orch-unlinted_1.0"))
    assert "its amd64 build has no lintian summary (lintian did not run)" in err.detail
    # policies fail closed: stored ones the hub cannot apply (a plugin gone, options it no longer takes) refuse
    for stored, message in (({"gone": {}}, "target t's policy names hub plugin(s) gone, which this hub does not run"),
                            ({"lintian-gate": {"refuse-on": "bogus"}},
                             "hub plugin lintian-gate failed (ValidationError")):
        with hub.hub.db.session() as s:
            s.execute(update(Target).where(Target.name == "t").values(policy=stored))
        assert message in refused(lambda: admin.tag_build("dest", "orch-dirty_1.0")).detail
    admin.edit_target("t", policy={})
    admin.tag_build("dest", "orch-dirty_1.0")


@pytest.fixture
def journal_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docs/plugins.md's example hub plugin, installed as a distribution (a .dist-info with its entry point) in a
    directory on sys.path."""
    site = install_example_hub_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "orch_journal", raising=False)
    return site


def test_the_example_hub_plugin_is_called_and_can_refuse(make_hub: HubFactory, journal_plugin: Path,
                                                         tmp_path: Path) -> None:
    assert [p.name for p in loader.load({})] == ["lintian-gate"]  # installed, not named: not even imported
    assert "orch_journal" not in sys.modules
    with pytest.raises(loader.PluginError, match=r"hub plugin nope: not installed .*installed: journal, lintian-gate"):
        loader.load({"nope": {}})
    with pytest.raises(loader.PluginError, match="hub plugin journal: invalid options: path: Field required"):
        loader.load({"journal": {}})
    journal = tmp_path / "journal.jsonl"
    hub = make_hub(plugins={"journal": {"path": str(journal)}})  # a private hub: its plugins are loaded at start
    token = setup(hub)
    admin = hub.admin
    admin.add_tag("frozen")
    admin.add_target("ft", "build", "frozen", policy={"journal": {"reason": "release freeze"}})
    admin.submit("t", make_source(tmp_path, "orch-journal", "1.0"))
    admin.submit("ft", make_source(tmp_path, "orch-frozen", "1.0"))
    build_all(hub, token, tmp_path / "work", fake_deb_mock(lambda r: {"lintian": LINT_CLEAN}, []))
    admin.wait_repo("dest", build="orch-journal_1.0", timeout=60)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {"hook": "build_done", "build": "orch-journal_1.0", "state": "complete",
            "plugins": {"amd64": ["lintian"]}} in records
    assert {"hook": "after_tag", "tag": "dest", "build": "orch-journal_1.0", "actor": "hub"} in records
    published = [r for r in records if r["hook"] == "repo_published" and r["tag"] == "dest"]
    assert published and published[-1]["builds"] == ["orch-journal_1.0"]
    assert not any(r.get("build") == "orch-frozen_1.0" and r["hook"] == "after_tag" for r in records)
    frozen = admin.build("orch-frozen_1.0")
    tag_task = next(t for t in frozen["tasks"] if t["method"] == "tag")
    assert tag_task["state"] == "failed"
    assert tag_task["error"] == "refused by hub plugin journal: frozen is frozen by target ft: release freeze"
    hub.stop()

    # after-hooks that fail (the journal's directory is gone) are logged; the hub carries on
    hub = make_hub(plugins={"journal": {"path": str(tmp_path / "gone" / "journal.jsonl")}})
    admin = hub.admin
    admin.submit("t", make_source(tmp_path, "orch-after", "1.0"))
    build_all(hub, token, tmp_path / "w2", fake_deb_mock(lambda r: {}, []))
    assert [b["ident"] for b in admin.list_tagged("dest", inherit=False)] == ["orch-after_1.0", "orch-journal_1.0"]
    admin.wait_repo("dest", build="orch-after_1.0", timeout=60)
