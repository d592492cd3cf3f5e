"""bench/hub_pages.py in a quick mode (--builds 500, 3 rounds, --check): every page answers 200 with the
benchmark's filled database and its median stays under the 300 ms target on SQLite (and PostgreSQL when
DEB_TEST_POSTGRES_URL is set); the 10,000-task figures are in docs/orchestrator-performance.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "hub_pages.py"


@pytest.mark.bench
def test_hub_pages_bench_quick_meets_the_target(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--builds", "500", "--rounds", "3", "--check"],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    medians = re.findall(r"^\[(\w+)\] (/\S*): median ([\d.]+) ms", done.stdout, re.M)
    assert len({path for _, path, _ in medians}) == 19 and all(float(ms) < 300 for _, _, ms in medians)
