from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from debarchive_helpers import DebMaker, build_source, gpgv

from debarchive.aptrepo import read_packages
from debarchive.signing import SigningKey


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debarchive", *args], capture_output=True, text=True, timeout=300)


def test_publish_add_remove_list(tmp_path: Path, make_deb: DebMaker) -> None:
    root, keys = tmp_path / "repo", tmp_path / "keys"
    tool = make_deb("dak-tool", "1.0-1", "amd64", depends="dak-data")
    data = make_deb("dak-data", "1.0-1", "all")
    (tmp_path / "src").mkdir()
    dsc = build_source(tmp_path / "src", "dak", "1.0")
    r = cli("publish", str(root), "dak", str(tool), str(data), str(dsc), "--key-home", str(keys),
            "--url", "http://127.0.0.1:8000/repo", "--label", "Hand made")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"deb [signed-by={root / 'key.asc'}] http://127.0.0.1:8000/repo dak main"
    assert "published 2 binary and 1 source packages" in r.stderr
    key = SigningKey.load(keys)
    assert gpgv(key, tmp_path, root / "dists/dak/InRelease").returncode == 0

    newer = make_deb("dak-tool", "2.0-1", "amd64", depends="dak-data")
    r = cli("publish", str(root), "dak", str(newer), "--key-home", str(keys))
    assert r.returncode == 0, r.stderr
    listing = cli("list", str(root), "dak").stdout.splitlines()
    assert listing == [
        "dak-data\t1.0-1\tall\tpool/main/d/dak-data/dak-data_1.0-1_all.deb",
        "dak-tool\t1.0-1\tamd64\tpool/main/d/dak-tool/dak-tool_1.0-1_amd64.deb",
        "dak-tool\t2.0-1\tamd64\tpool/main/d/dak-tool/dak-tool_2.0-1_amd64.deb",
        "dak\t1.0\tsource\tpool/main/d/dak",
    ]
    assert "Label: Hand made" in (root / "dists/dak/Release").read_text()  # kept from the first publish
    r = cli("publish", str(root), "dak", "--label", "Renamed", "--key-home", str(keys))
    assert r.returncode == 2 and f"Label 'Hand made' -> 'Renamed' of the repository published at {root}/dists/dak" \
        in r.stderr, r.stderr
    r = cli("publish", str(root), "dak", "--label", "Renamed", "--allow-identity-change", "--key-home", str(keys))
    assert r.returncode == 0, r.stderr

    r = cli("publish", str(root), "dak", "--remove", "dak-tool=1.0-1", "--remove", "dak", "--key-home", str(keys),
            "--prune")
    assert r.returncode == 0, r.stderr
    assert "pruned 0 pool files" in r.stderr  # older generations still name them
    assert [(e.name, e.version) for e in read_packages(root, "dak")] == [("dak-data", "1.0-1"), ("dak-tool", "2.0-1")]
    assert not (root / "dists/dak/main/source/Sources").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "{root}", "bad/suite"], "invalid suite name 'bad/suite'"),
        (["publish", "{root}", "s", "{tmp}/notes.txt"], "give .deb or .dsc files"),
        (["publish", "{root}", "s", "{tmp}/missing.deb"], "cannot scan"),
        (["publish", "{root}", "s", "--remove", "=1"], "give NAME or NAME=VERSION"),
        (["publish", "{root}", "s", "--arch", "all"], "not 'all'"),
        (["list", "{root}", "nothing"], "nothing published for suite nothing"),
        (["key", "--home", "{tmp}/notes.txt/home"], "cannot use"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "notes.txt").write_text("x")
    r = cli(*[a.format(root=tmp_path / "repo", tmp=tmp_path) for a in args])
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.startswith("error: ")
    assert not (tmp_path / "repo" / "dists" / "s").exists()


def test_key_command(tmp_path: Path) -> None:
    r = cli("key", "--home", str(tmp_path / "k"), "--export", str(tmp_path / "k.asc"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == SigningKey.load(tmp_path / "k").fingerprint
    assert (tmp_path / "k.asc").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
