"""The compose benchmark's quick mode runs to the end and prints its figures (so it cannot rot).

One cold compose and one floor round side by side, one no-op recompose, debos's recipe checked with --dry-run.
It runs in CI's "alone" pass (the whole machine to itself, after the parallel tests): the session compose is
made while other workers compete for the cores, so its time cannot be set against a floor measured later
(a 3.7 ratio was seen that way, against 1.1 when both are measured quietly).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from compose_helpers import expected_status

BENCH = Path(__file__).resolve().parents[2] / "bench" / "compose_cold.py"


@pytest.mark.bench
@pytest.mark.alone
def test_compose_cold_quick(tmp_path: Path) -> None:
    if expected_status() != "FINISHED":
        pytest.fail("the benchmark needs a FINISHED compose: the oci/checksums phases are not installed")
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=1800)
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    m = re.search(r"ratio compose/floor = (\d+\.\d+)", done.stdout)
    assert m is not None, done.stdout
    ratio = float(m.group(1))
    # the target is <= 1.3 (docs/compose.md has the measured figures: 1.09-1.15 quiet, 1.95 once at load 5-13);
    # one round each, back to back: catch real regressions, not noise
    assert ratio < 2.5, done.stdout
    assert re.search(r"floor round 1: [\d.]+s \(mmdebstrap [\d.]+s, dracut [\d.]+s, ostree-commit-bare", done.stdout)
    assert re.search(r"compose cold round 1: [\d.]+s \(\S+, FINISHED, cold\)", done.stdout), done.stdout
    assert "debos: recipe accepted (--dry-run)" in done.stdout
    noop = re.search(r"no-op recompose: ([\d.]+)s .*mkosi Incremental=yes 5.8s: ratio", done.stdout)
    assert noop is not None, done.stdout
    assert float(noop.group(1)) <= 6.0, done.stdout
