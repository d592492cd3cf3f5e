from __future__ import annotations

import json
from pathlib import Path

from deb_mock.request import BuildResult, BuildrootPackage, MissingDependency, ResultFile


def test_result_json_has_the_contract_shape(tmp_path: Path) -> None:
    res = BuildResult(
        state="dep-wait",
        exit_code=3,
        source={"name": "foo", "version": "1.0-1"},
        arch="amd64",
        files=[ResultFile("foo_1.0-1_amd64.deb", "ab" * 32, 10)],
        missing=[MissingDependency("libfoo-dev (>= 2) | libbar-dev", ["libfoo-dev", "libbar-dev"])],
        buildroot=[BuildrootPackage("gcc", "4:14.2.0-1", "amd64")],
        phases={"deps": 1.5},
        error="unsatisfiable build-dependencies: libfoo-dev (>= 2) | libbar-dev",
    )
    res.write(tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert set(data) == {
        "state",
        "exit_code",
        "source",
        "arch",
        "files",
        "missing",
        "buildroot",
        "phases",
        "logs",
        "error",
        "plugins",  # {} when no plugin was enabled (docs/plugins.md)
    }
    assert data["logs"] == {"build": "build.log", "root": "root.log", "state": "state.log"}
    assert data["files"][0] == {"name": "foo_1.0-1_amd64.deb", "sha256": "ab" * 32, "size": 10}
    assert data["missing"][0]["packages"] == ["libfoo-dev", "libbar-dev"]
    assert data["buildroot"][0] == {"package": "gcc", "version": "4:14.2.0-1", "arch": "amd64"}
    again = BuildResult.load(tmp_path)
    assert again.to_json() == res.to_json()


def test_success_has_no_error_key(tmp_path: Path) -> None:
    BuildResult(state="success", exit_code=0, source={"name": "a", "version": "1"}, arch="amd64").write(tmp_path)
    assert "error" not in json.loads((tmp_path / "result.json").read_text())
