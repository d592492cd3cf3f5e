"""A failing manifest hook dooms the compose with its output, before the phase it precedes does anything (a
``before: {gather: …}`` hook: seconds, no apt); the hook, trying to write the compose directory, cannot. A hook
naming no phase, or a plugin that is not installed, is refused before anything is created (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES, run_cli

pytestmark = pytest.mark.integration


def manifest(tmp_path: Path, **extra: object) -> Path:
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data.update(extra)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_failing_hook_dooms_the_compose(tmp_path: Path) -> None:
    hook = 'echo "hook-output-4711 in $DEB_BOOTC_COMPOSE_PHASE"; echo doomed > "$DEB_BOOTC_COMPOSE_DIR/STATUS"'
    m = manifest(tmp_path, hooks={"before": {"gather": ["true", hook]}})
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t"), "--compose-type", "test"])
    assert run.returncode == 1, run.stderr[-3000:]
    assert "hooks.before.gather[1] failed with exit code 2" in run.stderr
    assert "hook-output-4711 in gather" in run.stderr and "Read-only file system" in run.stderr
    (topdir,) = (tmp_path / "t").glob("debian-bootc-13-*")
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"  # the compose's, not the hook's
    assert not (topdir / "metadata/lockfile.yaml").exists() and not (topdir / "logs/gather.log").exists()
    phases = {p["name"]: p["state"] for p in json.loads((topdir / "metadata/phases.json").read_text())["payload"]
              ["phases"]}
    assert phases["init"] == "done" and phases["gather"] == "failed" and phases["rootfs"] == "not-run"
    assert "hook-output-4711" in (topdir / "logs/hooks.log").read_text()
    assert list((tmp_path / "t/.state/hook-roots").iterdir()) == []  # the throwaway roots are gone
    print(f"failing hook: DOOMED in {run.seconds:.1f}s")


def test_bad_hooks_and_plugins_are_usage_errors(tmp_path: Path) -> None:
    m = manifest(tmp_path, hooks={"after": {"ostree-comit": ["true"]}}, plugins={"nosuch": {}})
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t")])
    assert run.returncode == 2
    assert f"{m}:" in run.stderr and "hooks.after.ostree-comit: no phase 'ostree-comit'" in run.stderr
    assert "plugins.nosuch: no plugin 'nosuch' is installed" in run.stderr
    m = manifest(tmp_path, plugins={"sbom": {"colour": "red"}})
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t")])
    assert run.returncode == 2 and "plugin sbom: bad options {'colour': 'red'}: unknown option(s) colour" in run.stderr
    assert not (tmp_path / "t").exists()
