"""The compose benchmark's quick mode runs to the end and prints its figures (so it cannot rot).

In CI it reuses the session compose (its cold time from its global log) instead of composing again: one floor
round, one no-op recompose in the session's target directory, debos's recipe checked with --dry-run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from compose_helpers import SessionCompose, expected_status

BENCH = Path(__file__).resolve().parents[2] / "bench" / "compose_cold.py"


@pytest.mark.bench
def test_compose_cold_quick(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    if expected_status() != "FINISHED":
        pytest.fail("the benchmark needs a FINISHED session compose: the oci/checksums phases are not installed")
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--compose-target", str(minimal_compose.target),
                           "--work", str(tmp_path / "w")], capture_output=True, text=True, timeout=1800)
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    m = re.search(r"ratio compose/floor = (\d+\.\d+)", done.stdout)
    assert m is not None, done.stdout
    ratio = float(m.group(1))
    # the target is <= 1.3 (docs/compose.md has the measured figures); here the compose was timed at the start
    # of the session and the floor now, on a machine shared with other jobs (2.4 was seen when the load average
    # fell from 13 to 6 in between): only catch gross regressions
    assert ratio < 3.0, done.stdout
    assert re.search(r"floor round 1: [\d.]+s \(mmdebstrap [\d.]+s, dracut [\d.]+s, ostree-commit-bare", done.stdout)
    assert f"({minimal_compose.topdir.name}, FINISHED, made earlier in this run)" in done.stdout
    assert "debos: recipe accepted (--dry-run)" in done.stdout
    noop = re.search(r"no-op recompose: ([\d.]+)s .*mkosi Incremental=yes 5.8s: ratio", done.stdout)
    assert noop is not None, done.stdout
    assert float(noop.group(1)) <= 6.0, done.stdout
