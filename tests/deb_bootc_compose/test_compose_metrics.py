"""``deb-bootc-compose --metrics-textfile FILE``: the node_exporter textfile after a compose that fails in
gather (its only source unreachable: cheap, and the path an unattended nightly compose takes when the mirror
is down), after a refused manifest, and its rendering for a finished compose with deliverables."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES, run_cli
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from deb_bootc_compose import metricsfile
from deb_bootc_compose.phaserecord import PhaseOutcome
from deb_bootc_compose.phases.base import ImageRecord

ALERTS = Path(__file__).resolve().parents[2] / "contrib" / "prometheus" / "alerts.yml"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def read(path: Path) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (scripts/install-deps.sh does)"
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr


def only(samples: Samples, name: str) -> tuple[dict[str, str], float]:
    found = [(dict(labels), v) for (n, labels), v in samples.items() if n == name]
    assert len(found) == 1, (name, found)
    return found[0]


@pytest.mark.integration
def test_failed_and_refused_composes(tmp_path: Path) -> None:
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    prom = textdir / "compose-minimal.prom"
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data["sources"] = [{"url": "http://127.0.0.1:9/debian", "components": ["main"]}]
    manifest = tmp_path / "minimal.yaml"
    manifest.write_text(yaml.safe_dump(data))
    target = tmp_path / "t"

    bad = run_cli(["--config", str(manifest), "--target-dir", str(target), "--metrics-textfile",
                   str(textdir / "compose.txt")])
    assert bad.returncode == 2 and "must end in .prom" in bad.stderr, bad.stderr
    assert not target.exists()  # refused before anything was composed

    before = time.time()
    run = run_cli(["--config", str(manifest), "--target-dir", str(target), "--metrics-textfile", str(prom)])
    assert run.returncode == 1, run.stderr[-2000:]
    m = read(prom)
    assert only(m, "deb_bootc_compose_success") == ({"manifest": "minimal.yaml"}, 0)
    assert only(m, "deb_bootc_compose_exit_code")[1] == 1
    assert before <= only(m, "deb_bootc_compose_last_run_timestamp_seconds")[1] <= time.time()
    assert 0 < only(m, "deb_bootc_compose_duration_seconds")[1] <= run.seconds
    info, _ = only(m, "deb_bootc_compose_info")
    (topdir,) = [p for p in target.iterdir() if p.name.startswith("debian-bootc-13-")]
    assert info == {"manifest": "minimal.yaml", "compose_id": topdir.name, "status": "DOOMED",
                    "failed_phase": "gather"}
    phases = {dict(lbl)["phase"] for (n, lbl) in m if n == "deb_bootc_compose_phase_duration_seconds"}
    assert phases == {"init", "gather"}  # build had nothing to do; nothing ran after gather
    assert not [n for n, _ in m if n == "deb_bootc_compose_image_size_bytes"]  # nothing was delivered
    assert os.listdir(textdir) == [prom.name]  # no temporary file left beside it
    promtool_check(prom.read_text())
    used = {n for n in re.findall(r"\bdeb_bootc_compose_\w+", ALERTS.read_text())}
    assert used and used <= {n for n, _ in m}, f"alerts.yml uses what compose does not write: {used}"

    # the next run replaces the file by a rename: a reader holding the old one never sees it change
    os.link(prom, tmp_path / "old.prom")
    manifest.write_text(manifest.read_text() + "bogus: 1\n")
    refused = run_cli(["--config", str(manifest), "--target-dir", str(target), "--metrics-textfile", str(prom)])
    assert refused.returncode == 2 and "bogus: unknown key" in refused.stderr, refused.stderr
    m = read(prom)
    assert only(m, "deb_bootc_compose_exit_code")[1] == 2
    assert only(m, "deb_bootc_compose_info")[0]["status"] == "none"
    assert not [n for n, _ in m if n == "deb_bootc_compose_phase_duration_seconds"]
    assert read(tmp_path / "old.prom")[("deb_bootc_compose_exit_code",
                                        frozenset({("manifest", "minimal.yaml")}))] == 1
    assert os.stat(prom).st_ino != os.stat(tmp_path / "old.prom").st_ino


def test_finished_compose_with_deliverables(tmp_path: Path) -> None:
    images = [ImageRecord("base", "amd64", tmp_path / "x.qcow2", "qcow2", "qcow2", size=812_000_000),
              ImageRecord("base", "amd64", tmp_path / "x.ociarchive", "bootable-container", "ociarchive",
                          size=455_000_000)]
    run = metricsfile.ComposeRun("minimal.yaml", 0, "FINISHED", "debian-bootc-13-20260101.0", 301.5, 1.7e9,
                                 [PhaseOutcome("init", "done", 0.1), PhaseOutcome("boot-test", "skipped",
                                                                                    reason="--skip-phase"),
                                  PhaseOutcome("disk", "done", 80.2)], images)
    prom = tmp_path / "c.prom"
    metricsfile.write(prom, run)
    m = read(prom)
    assert only(m, "deb_bootc_compose_success")[1] == 1
    assert m[("deb_bootc_compose_image_size_bytes", frozenset({("manifest", "minimal.yaml"), ("variant", "base"),
                                                                ("arch", "amd64"), ("format", "qcow2")}))] == 812e6
    assert {dict(lbl)["phase"]: v for (n, lbl), v in m.items() if n == "deb_bootc_compose_phase_duration_seconds"} \
        == {"init": 0.1, "disk": 80.2}  # a skipped phase has no duration
    assert only(m, "deb_bootc_compose_info")[0]["failed_phase"] == ""
    assert prom.read_text() == generate_latest(metricsfile.registry(run)).decode()
