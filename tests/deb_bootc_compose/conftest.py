"""Session fixtures for deb-bootc-compose: ONE real compose of examples/minimal.yaml, shared by many tests.

The compose itself runs cold in every session (a fresh target directory), but the .deb pool is kept under
``test_cache/compose`` between runs and hard-linked into each target directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_helpers import EXAMPLES, SessionCompose, harvest_target, run_cli, seed_target


@pytest.fixture(scope="session")
def compose_cache(test_cache: Path) -> Path:
    d = test_cache / "compose"
    (d / "pool").mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def minimal_compose(compose_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> SessionCompose:
    """A real compose of examples/minimal.yaml through the CLI (work tree kept for the tree tests)."""
    target = tmp_path_factory.mktemp("compose-target")
    seed_target(compose_cache, target)
    manifest = EXAMPLES / "minimal.yaml"
    run = run_cli(["--config", str(manifest), "--target-dir", str(target), "--compose-type", "test", "--keep-work"])
    harvest_target(compose_cache, target)
    if run.returncode not in (0, 3):
        pytest.fail(f"the session compose failed ({run.returncode}):\n{run.stderr[-4000:]}")
    return SessionCompose(target=target, topdir=Path(run.last_line), run=run, manifest=manifest)
