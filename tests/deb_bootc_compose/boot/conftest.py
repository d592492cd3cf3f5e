"""Session fixtures for the boot tests; the images come from the disk tests' fixtures (one build per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "disk"))
import imagefixtures


@pytest.fixture(scope="session")
def boot_compose_v1(test_cache: Path, mirror: str, tmp_path_factory: pytest.TempPathFactory
                    ) -> imagefixtures.FixtureCompose:
    return imagefixtures.composed("1", test_cache, mirror, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def boot_commit_v2(test_cache: Path, mirror: str) -> imagefixtures.FixtureCommit:
    return imagefixtures.build_commit(test_cache, mirror, "2")
