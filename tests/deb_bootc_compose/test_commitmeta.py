"""The package list in commit metadata: a JSON string ostree stores and prints back, read with the standard
library (as the deb-bootc client reads it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deb_bootc_compose.commitmeta import PACKAGES_KEY, metadata_argument, packages_json, parse_packages
from deb_bootc_compose.errors import ComposeError

PKGS = [("systemd", "257.9-1~deb13u1", "amd64"), ("base-files", "13.8+deb13u1", "amd64"),
        ("libc6", "2.41-12", "i386"), ("tzdata", "2025b-4+deb13u1", "all"), ("epoch", "1:2.0", "amd64")]


def test_sorted_and_foreign_arches_keyed() -> None:
    text = packages_json(PKGS, "amd64")
    assert text == ('{"base-files":"13.8+deb13u1","epoch":"1:2.0","libc6:i386":"2.41-12",'
                    '"systemd":"257.9-1~deb13u1","tzdata":"2025b-4+deb13u1"}')
    assert packages_json(reversed(PKGS), "amd64") == text  # order of the lockfile does not matter
    assert parse_packages(repr(text))["libc6:i386"] == "2.41-12"


@pytest.mark.parametrize(("name", "version"), [("bad'name", "1"), ("ok", "1'"), ("ok", "1\\x"), ("Upper", "1")])
def test_quotes_never_reach_the_metadata(name: str, version: str) -> None:
    with pytest.raises(ComposeError, match="not a Debian package name"):
        packages_json([(name, version, "amd64")], "amd64")


def test_too_long_for_one_argument_is_none() -> None:
    many = [(f"package-number-{i}", f"1.{i}-1", "amd64") for i in range(6000)]
    assert metadata_argument(many, "amd64") is None
    assert metadata_argument(PKGS, "amd64") is not None


@pytest.mark.integration
def test_ostree_stores_and_prints_it(tmp_path: Path) -> None:
    repo, tree = tmp_path / "repo", tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    subprocess.run(["ostree", "init", f"--repo={repo}", "--mode=bare-user"], check=True)

    def commit() -> str:
        arg = metadata_argument(PKGS, "amd64")
        assert arg is not None
        return subprocess.run(["ostree", f"--repo={repo}", "commit", "--branch=r", f"--tree=dir={tree}",
                               "--parent=none", "--timestamp=@1", "--no-bindings", arg],
                              check=True, capture_output=True, text=True).stdout.strip()

    c = commit()
    assert commit() == c  # deterministic: same inputs, same commit
    shown = subprocess.run(["ostree", f"--repo={repo}", "show", f"--print-metadata-key={PACKAGES_KEY}", c],
                           check=True, capture_output=True, text=True).stdout
    assert parse_packages(shown) == {"base-files": "13.8+deb13u1", "epoch": "1:2.0", "libc6:i386": "2.41-12",
                                     "systemd": "257.9-1~deb13u1", "tzdata": "2025b-4+deb13u1"}
