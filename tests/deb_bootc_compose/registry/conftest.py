"""Fixtures of the registry tests: a real docker-registry over TLS with a test CA (one per test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from regserver import Podman, Registry, serve_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with serve_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    """podman with its own storage, run root and registries.d; its images and run root removed afterwards."""
    pm = Podman(tmp_path / "podman")
    try:
        yield pm
    finally:
        pm.close()
