"""bench/ostree_update_bytes.py --quick runs to the end and meets its goal: a one-package update, published with a
static delta, downloads at most 10% of a full pull, and the initramfs does not change with a package it does not
contain (although the update moves the compose's SOURCE_DATE_EPOCH).

v1 is the session compose; the bench composes v2 from v1's lockfile with hello rebuilt (one compose, without
the oci/disk/boot-test phases), publishes both and pulls over HTTP on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from compose_helpers import SessionCompose

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ostree_update_bytes.py"


@pytest.mark.bench
def test_ostree_update_bytes_quick(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    report = tmp_path / "bytes.json"
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--v1", str(minimal_compose.topdir), "--work",
                           str(tmp_path / "w"), "--json", str(report)], capture_output=True, text=True, timeout=3600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    m = re.search(r"ratio update/full = (\d+\.\d+)% \(goal <= 10%\); without deltas (\d+\.\d+)%", done.stdout)
    assert m is not None, done.stdout
    assert float(m.group(1)) <= 10.0, done.stdout
    assert "initramfs: unchanged" in done.stdout
    data = json.loads(report.read_text())
    assert data["change"]["sde"][1] > data["change"]["sde"][0]  # the update moved SOURCE_DATE_EPOCH
    assert data["change"]["from"] != data["change"]["to"]
    changed = {path for _, path, _ in data["changed"]}
    assert "/usr/bin/hello" in changed
    assert 0 < data["update"]["bytes"] < data["full"]["bytes"]
