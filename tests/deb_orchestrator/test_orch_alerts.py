"""The shipped alerting rules (contrib/prometheus/alerts.yml): valid for Prometheus, each alert firing in
its promtool unit test (contrib/prometheus/alerts_test.yml) and silent where it should be, and written
against metrics a real hub exports; the Grafana dashboard's queries (contrib/grafana) parsed by promtool and
written against the same metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from orch_helpers import FakeBuilder, make_source
from orch_hub import RunningHub
from orch_metrics import fetch, parse, promtool

pytestmark = pytest.mark.integration
CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
ALERTS, ALERT_TESTS = CONTRIB / "alerts.yml", CONTRIB / "alerts_test.yml"
DASHBOARD = CONTRIB.parent / "grafana" / "deb-orchestrator-hub.json"
WANTED = {"DebOrchestratorBuilderLost", "DebOrchestratorQueueStuck", "DebOrchestratorRepoPublishFailing",
          "DebBootcComposeFailed", "DebOrchestratorDataDiskFilling", "DiskFilling"}


def alerts() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def dashboard_queries() -> list[str]:
    """Every panel's PromQL, with the dashboard's variable replaced by what "All" selects."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"].replace("$job", ".*") for p in panels for t in p["targets"]]


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query{i}", "expr": q}
                                                         for i, q in enumerate(queries)]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    check = subprocess.run([promtool(), "check", "rules", str(tmp_path / "dashboard.yml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_promtool_checks_and_tests_the_rules() -> None:
    check = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run([promtool(), "test", "rules", ALERT_TESTS.name], cwd=CONTRIB, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr
    names = set(alerts())
    assert names >= WANTED, f"alerts the issue asks for are missing: {WANTED - names}"
    cases = [c for t in yaml.safe_load(ALERT_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert names <= fires, f"alerts no test shows firing: {names - fires}"
    assert names <= quiet, f"alerts no test shows silent: {names - quiet}"


def test_alerts_use_metrics_the_hub_exports(hub: RunningHub, tmp_path: Path) -> None:
    admin = hub.admin
    admin.add_tag("base", external_repos=[{"url": "http://deb.debian.org/debian", "suite": "trixie"}])
    admin.add_target("t", "base", "base")
    fb = FakeBuilder(hub.client(admin.add_host("b1", ["amd64"])["token"]), tmp_path / "b1")
    admin.submit("t", make_source(tmp_path, "orch-a", "1.0"))
    fb.step(0)
    admin.noop(1)  # one task left waiting: the queue's gauges have an architecture to report
    exported = {name for name, _ in parse(fetch(hub.url).text)}
    for what, exprs in (("alerts", list(alerts().values())), ("dashboard", dashboard_queries())):
        used = {n for expr in exprs for n in re.findall(r"\bdeb_orchestrator_\w+", expr)}
        assert used and used <= exported, f"the {what} use metrics the hub does not export: {used - exported}"
