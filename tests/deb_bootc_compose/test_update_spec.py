"""The manifest's ``update:`` section: public keys and URLs only, every error naming file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_compose_manifest import MINIMAL, errors, write

from deb_bootc_compose import manifest

UPDATE = """\
update:
  ostree: {url: "https://updates.example.org/debian-atomic/", gpg_public_key: keys/ostree.asc}
  registry: {name: "registry.example.org:5000/debian-atomic/{variant}", public_key: keys/registry.pub}
"""


def keys(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/ostree.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    (tmp_path / "keys/registry.pub").write_text("-----BEGIN PUBLIC KEY-----\n")


def test_update_section_parses(tmp_path: Path) -> None:
    keys(tmp_path)
    m = manifest.load(write(tmp_path, MINIMAL + UPDATE))
    assert m.update is not None and m.update.ostree is not None and m.update.registry is not None
    assert m.update.ostree.url == "https://updates.example.org/debian-atomic"  # trailing slash dropped
    assert m.update.registry.repository(name=m.name, variant="base", arch="amd64") == \
        "registry.example.org:5000/debian-atomic/base"
    assert manifest.load(write(tmp_path, MINIMAL)).update is None


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    (problem,) = errors(tmp_path, MINIMAL + UPDATE.replace("  registry:", "  #"))
    assert "m.yaml:9:update.ostree.gpg_public_key" in problem and "is not a file" in problem


@pytest.mark.parametrize(("text", "wanted"), [
    ("update: {}", "needs 'ostree'"),
    ("update:\n  ostree: {url: 'file:///srv/repo', gpg_public_key: k.asc}", "never from a build host's file://"),
    ("update:\n  ostree: {url: 'https://x.org/a b', gpg_public_key: k.asc}", "must be an http:// or https:// URL"),
    ("update:\n  ostree: {url: 'https://x.org/'}", "update.ostree.gpg_public_key: required key is missing"),
    ("update:\n  ostree: {url: 'https://x.org/', gpg_public_key: k.asc, gpg_secret_key: s.asc}", "unknown key"),
    ("update:\n  registry: {name: 'Registry.org/Image:latest', public_key: k.pub}", "is not a registry repository"),
    ("update:\n  registry: {name: 'r.org/{flavour}', public_key: k.pub}", "unknown field(s) ['flavour']"),
])
def test_bad_update_sections(tmp_path: Path, text: str, wanted: str) -> None:
    (tmp_path / "k.asc").write_text("k")
    (tmp_path / "k.pub").write_text("k")
    problems = errors(tmp_path, MINIMAL + text + "\n")
    assert any(wanted in p and "m.yaml:" in p for p in problems), problems
