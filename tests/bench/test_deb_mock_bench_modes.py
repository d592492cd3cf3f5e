"""bench/deb_mock_vs_sbuild.py's tables without builds: the tmpfs mode's variants, ratios and verdicts, and the
default mode's unchanged (the builds themselves: tests/bench/test_deb_mock_bench.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench" / "deb_mock_vs_sbuild.py"


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deb_mock_vs_sbuild", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def table(b: Any, res: Any, times: dict[str, list[float]]) -> str:
    for variant, ts in times.items():
        for t in ts:
            res.add("hello", variant, t)
            if variant in b.MOCK_ARGS:
                res.phases.setdefault("hello", {}).setdefault(variant, []).append({"deps": 0.0, "build": t - 1})
    out: list[str] = []
    b.report(res, {"hello": SimpleNamespace(ident="hello_2.10-3")}, out)
    return "\n".join(out)


def test_tmpfs_mode_reports_tmpfs_against_the_floor_and_sbuild() -> None:
    b = bench()
    res = b.Results(b.TMPFS_VARIANTS, dict(b.TMPFS_TARGETS))
    out = table(b, res, {"sbuild": [50.0, 60.0, 55.0], "warm": [25.0, 26.0, 24.0], "tmpfs": [22.0, 23.0, 30.0],
                         "floor": [24.0, 25.0, 24.5]})
    assert re.search(r"^hello_2\.10-3 +deb-mock tmpfs +23\.0 +22\.0–30\.0 +3$", out, re.M), out
    assert "hello_2.10-3 tmpfs: deps 0.0, build 22.0" in out
    assert ("hello_2.10-3: tmpfs/floor = 0.94 (target <= 1.0: met); tmpfs/sbuild = 0.42 (target <= 0.5: met); "
            "warm/floor = 1.02 (target <= 1.2: met)") in out, out
    assert "cold" not in out
    slow = b.Results(b.TMPFS_VARIANTS, dict(b.TMPFS_TARGETS))
    out = table(b, slow, {"sbuild": [50.0], "warm": [25.0], "tmpfs": [26.0], "floor": [24.0]})
    assert "tmpfs/floor = 1.08 (target <= 1.0: MISSED)" in out


def test_the_default_mode_is_unchanged() -> None:
    b = bench()
    out = table(b, b.Results(), {"sbuild": [50.0], "cold": [30.0], "warm": [24.0], "floor": [24.0]})
    assert "warm/sbuild = 0.48 (target <= 0.5: met); warm/floor = 1.00 (target <= 1.2: met); cold/sbuild = 0.60" in out
    assert "tmpfs" not in out
