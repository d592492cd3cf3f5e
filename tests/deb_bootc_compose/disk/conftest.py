"""Session fixtures for the disk tests: real fixture commits and a compose built by the real DiskPhase."""

from __future__ import annotations

from pathlib import Path

import imagefixtures
import pytest


@pytest.fixture(scope="session")
def commit_v1(test_cache: Path, mirror: str) -> imagefixtures.FixtureCommit:
    return imagefixtures.build_commit(test_cache, mirror)


@pytest.fixture(scope="session")
def compose_v1(test_cache: Path, mirror: str, tmp_path_factory: pytest.TempPathFactory) -> imagefixtures.FixtureCompose:
    return imagefixtures.composed(test_cache, mirror, tmp_path_factory.getbasetemp())
