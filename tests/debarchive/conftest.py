"""Fixtures for debarchive: a signing key, tiny real .deb files and a real source package."""

from __future__ import annotations

from pathlib import Path

import pytest
from debarchive_helpers import DebMaker, build_deb

from debarchive.signing import SigningKey


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return SigningKey.ensure(tmp_path_factory.mktemp("key") / "gnupg", uid="debarchive tests <tests@localhost>")


@pytest.fixture
def make_deb(tmp_path: Path) -> DebMaker:
    out = tmp_path / "debs"
    out.mkdir()

    def make(name: str, version: str, arch: str = "all", **kwargs: str) -> Path:
        return build_deb(out, name, version, arch, **kwargs)

    return make
