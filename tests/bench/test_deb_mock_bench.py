"""bench/deb_mock_vs_sbuild.py --quick runs to the end and prints its table and ratios (so it cannot rot),
and deb-mock's hello_2.10-3_amd64.deb (bookworm) is bit-identical to sbuild's from the same run: sbuild is
Debian's reference builder and its output for hello is reproducible, so any difference means deb-mock's build
environment differs from the one Debian expects (build path, environment, tools). One sbuild run serves both.

Timing targets are not asserted here (the machine is shared and one round is noisy); the full run's figures
are in docs/deb-mock.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "deb_mock_vs_sbuild.py"


@pytest.mark.bench
def test_deb_mock_vs_sbuild_quick(test_cache: Path, tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    argv = [sys.executable, str(BENCH), "--quick", "--work", str(test_cache / "deb-mock-bench"), "--json", str(report)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for variant in ("sbuild (unshare)", "deb-mock cold", "deb-mock warm", "floor"):
        assert re.search(rf"hello_2\.10-3 +{re.escape(variant)} +\d+\.\d +\d+\.\d–\d+\.\d +1\n", out), (variant, out)
    ratios = re.search(
        r"hello_2\.10-3: warm/sbuild = (\d+\.\d\d) .*; warm/floor = (\d+\.\d\d) .*; cold/sbuild = (\d+\.\d\d) ", out
    )
    assert ratios is not None, out
    assert all(float(r) > 0 for r in ratios.groups())
    assert re.search(r"hello_2\.10-3 cold: source [\d.]+, root-cache [\d.]+, deps [\d.]+, build [\d.]+", out), out
    assert re.search(r"^hello_2\.10-3_amd64\.deb: identical across sbuild, deb-mock", out, re.M), out

    data = json.loads(report.read_text())
    assert set(data["times"]["hello"]) == {"sbuild", "cold", "warm", "floor"}
    assert all(len(t) == 1 and t[0] > 0 for t in data["times"]["hello"].values())
    debs = data["debs"]["hello"]
    assert {"sbuild", "deb-mock"} <= set(debs), debs
    assert debs["deb-mock"]["hello_2.10-3_amd64.deb"] == debs["sbuild"]["hello_2.10-3_amd64.deb"], debs
    # the warm run reused the build-dependency layer the cold run made: its deps phase is the cheaper one
    assert data["phases"]["hello"]["warm"][0]["deps"] < data["phases"]["hello"]["cold"][0]["deps"]
