"""bench/oci_layers.py --quick runs to the end and prints its figures (so it cannot rot)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "oci_layers.py"


@pytest.mark.bench
def test_oci_layers_quick(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--work", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    ratio = re.search(r"ratio ours/umoci = (\d+\.\d+)", done.stdout)
    assert ratio is not None, done.stdout
    assert float(ratio.group(1)) < 1.0, done.stdout  # measured 0.2-0.3 here; the writer must stay faster than umoci
    change = re.search(r"one-package change \(sed\): layers (.*) changed: \d+ of \d+ bytes = (\d+\.\d)%", done.stdout)
    assert change is not None, done.stdout
    assert float(change.group(2)) <= 10.0, done.stdout
    assert change.group(1).count("(") == 2, "exactly the package's layer and the unowned layer (dpkg status)"
