from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "apt_repo_publish.py"


@pytest.mark.bench
def test_publish_benchmark_runs_and_meets_target(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("apt_repo_publish_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    # target: republishing 1,000 packages from kept stanzas in under a second (unsigned)
    assert module.main(["--sizes", "1000", "--max-seconds", "1.0", "--compare", "100"]) == 0
    out = capsys.readouterr().out
    assert "1000 packages" in out and "republish, one package added, signed" in out
    assert "ratio apt-ftparchive / ours" in out
