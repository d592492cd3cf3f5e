"""Plugins through the whole orchestrator, for real: a hub process loading docs/plugins.md's example hub plugin,
a builder process running deb-mock with the lintian plugin the target enables (the target suite's own lintian,
as in deb-mock's plugin tests, on the same kind of package made to have a lintian error), the results kept and
shown by the hub, and the lintian-gate policy refusing to tag the build, naming the tag. A target switching off
the lintian plugin a builder's config enables, for real; wrong plugin options refused by the hub through the
CLI. One real build each."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from orch_helpers import install_example_hub_plugin
from orch_hub import CLI, HubProcess, stop_builder
from test_orch_builder_integration import debmock_cache

from deb_orchestrator.client import HubClient
from srcpkg import make_source

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubProcess]:
    """A hub process with the example hub plugin installed (a .dist-info on its PYTHONPATH) and enabled."""
    site = install_example_hub_plugin(tmp_path / "site")
    monkeypatch.setenv("PYTHONPATH", str(site))
    h = HubProcess(tmp_path / "data", "--plugin-option", f"journal:path={tmp_path / 'journal.jsonl'}",
                   log=tmp_path / "hub.log")
    yield h
    h.stop()


def build_lint_error_package(hub: HubProcess, token: str, test_cache: Path, tmp_path: Path, name: str,
                             *builder_args: str) -> None:
    """Build for target qa, with one builder process (``builder_args`` added), a package with a file in /home:
    lintian's error tag dir-or-file-in-home (deb-mock's plugin tests build the same package)."""
    (tmp_path / "src").mkdir()
    dsc = make_source(tmp_path / "src", name, "1.0", files={"README": "lint\n"},
                      install={name: f"README home/{name}\n"})
    builder = hub.builder(token, debmock_cache(test_cache), tmp_path / "builder.log", None, *builder_args)
    try:
        hub.cli("build", "qa", str(dsc), "--wait", timeout=1800)
    finally:
        stop_builder(builder)
    assert builder.returncode == 0, (tmp_path / "builder.log").read_text()[-3000:]


def test_lintian_results_reach_the_hub_and_its_policy_refuses_the_tag(hub: HubProcess, tmp_path: Path,
                                                                      test_cache: Path, mirror: str) -> None:
    bad = subprocess.run([*CLI, "hub", "--data", str(tmp_path / "other"), "--plugin", "nope"], capture_output=True,
                         text=True, timeout=60)  # a hub plugin that is not installed: the hub does not start
    assert bad.returncode == 2 and "hub plugin nope: not installed" in bad.stderr, bad.stderr
    with HubClient(hub.url, hub.token) as admin:
        admin.setup_target("qa", mirror=mirror, suite="trixie")
    hub.cli("edit-target", "qa", "--plugin", "lintian", "--plugin-option", "lintian:fail-on=none",
            "--policy", "lintian-gate:refuse-on=error")
    token = hub.cli("add-host", "b1", "--arch", "amd64").stdout.strip().splitlines()[-1]
    build_lint_error_package(hub, token, test_cache, tmp_path, "orch-lint")
    with HubClient(hub.url) as client:
        build = client.build("orch-lint_1.0")
        assert build["state"] == "complete" and build["plugins"] == {"lintian": {"fail-on": "none"}}
        (task_id, results), = build["plugin_results"].items()
        lint = results["lintian"]
        assert lint["state"] == "ok" and lint["fail_on"] == "none" and lint["version"].startswith("Lintian v2.")
        assert lint["counts"]["error"] >= 1 and "dir-or-file-in-home" in lint["tags"]["error"]
        assert client.task(int(task_id))["plugins"] == results
        tag_task = next(t for t in build["tasks"] if t["method"] == "tag")
        assert tag_task["state"] == "failed"
        assert tag_task["error"].startswith("refused by hub plugin lintian-gate: target qa refuses to tag "
                                            "orch-lint_1.0 into qa-dest: lintian found amd64: ")
        assert "dir-or-file-in-home" in tag_task["error"]
        assert client.list_tagged("qa-dest") == []
        logs = {f["name"] for f in build["files"] if f["task_id"]}
        assert {"lintian.log", "result.json"} <= logs
    refused = subprocess.run([*CLI, "tag-build", "qa-dest", "orch-lint_1.0"], env=hub.env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and "dir-or-file-in-home (HTTP 409)" in refused.stderr, refused.stderr
    page = httpx.get(f"{hub.url}/builds/orch-lint_1.0").text
    assert re.search(r"<td>lintian</td><td>ok</td><td>error \d+.*; error: [^<]*dir-or-file-in-home", page)
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert {"hook": "build_done", "build": "orch-lint_1.0", "state": "complete",
            "plugins": {"amd64": ["lintian", "tmpfs"]}} in journal
    assert not [r for r in journal if r["hook"] == "after_tag"]  # refused: never tagged


def test_a_target_switches_off_the_lintian_a_builder_config_enables(hub: HubProcess, tmp_path: Path,
                                                                    test_cache: Path, mirror: str) -> None:
    with HubClient(hub.url, hub.token) as admin:
        admin.setup_target("qa", mirror=mirror, suite="trixie")
    for args, said in ((["--plugin-option", "tmpfs:size=banana"],
                        "plugins: plugin tmpfs: option size='banana': not a tmpfs size: 'banana' (e.g. 4G, 512m, 50%)"),
                       (["--plugin-option", "lintian:fail-on=nonsense"],
                        "plugin lintian: option fail-on='nonsense': Input should be 'error', 'warning' or 'none'"),
                       (["--plugin", "lintian", "--disable-plugin", "lintian"],
                        "disable_plugins: lintian also enabled")):
        wrong = subprocess.run([*CLI, "edit-target", "qa", *args], env=hub.env, capture_output=True, text=True,
                               timeout=60)
        assert wrong.returncode == 1 and said in wrong.stderr and "(HTTP 400)" in wrong.stderr, wrong.stderr
    # a third-party name too: this builder has no such plugin, so it passes nothing for it (deb-mock would refuse it)
    hub.cli("edit-target", "qa", "--disable-plugin", "lintian", "--disable-plugin", "hello")
    listed = json.loads(hub.cli("list-targets", "--json").stdout)
    assert [t["disable_plugins"] for t in listed] == [["lintian", "hello"]]
    assert "Plugins off" in hub.cli("list-targets").stdout
    token = hub.cli("add-host", "b1", "--arch", "amd64").stdout.strip().splitlines()[-1]
    bad = subprocess.run([*CLI, "builder", "--hub", hub.url, "--plugin-option", "lintian:fail-on=often"],
                         env={**hub.env, "DEB_ORCHESTRATOR_TOKEN": token}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "plugin lintian: option fail-on='often'" in bad.stderr, bad.stderr
    # had the builder's lintian (fail-on=error by default) run, the build would have failed on the error tag
    build_lint_error_package(hub, token, test_cache, tmp_path, "orch-nolint", "--plugin", "lintian")
    with HubClient(hub.url) as client:
        build = client.build("orch-nolint_1.0")
        assert build["state"] == "complete", build
        assert build["disable_plugins"] == ["lintian", "hello"] and build["plugins"] == {}
        (results,) = build["plugin_results"].values()
        assert sorted(results) == ["tmpfs"] and results["tmpfs"]["state"] == "ok"  # lintian did not run
        assert "lintian.log" not in {f["name"] for f in build["files"] if f["task_id"]}
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert {"hook": "build_done", "build": "orch-nolint_1.0", "state": "complete",
            "plugins": {"amd64": ["tmpfs"]}} in journal
