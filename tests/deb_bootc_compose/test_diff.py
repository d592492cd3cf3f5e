"""``deb-bootc-compose diff OLD NEW``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from composefixtures import lockfile_for
from synthetic import KVER, SDE, make_tree

from deb_bootc_compose import metadata as md
from deb_bootc_compose.cli import main as cli_main
from deb_bootc_compose.diff import DiffError, diff_composes
from deb_bootc_compose.oci import write_oci_image
from deb_bootc_compose.phases.metadata import package_rows

OLD = {"bash": "5.2.37-2", "hello": "2.10-3", "libc6": "2.41-12", "sed": "4.9-2"}
NEW = {"bash": "5.2.37-3", "hello": "2.10-3", "libc6": "2.41-11", "nano": "8.4-1"}


def make_compose(target: Path, compose_id: str, versions: dict[str, str], *, packages_json: bool = True) -> Path:
    topdir = target / compose_id
    lock = lockfile_for(versions)
    lock.write(topdir / "metadata" / "lockfile.yaml")
    if packages_json:
        meta = md.ComposeMeta(compose_id, "debian-bootc", "debian-bootc", "13")
        rows = {v: {a: package_rows(lv) for a, lv in arches.items()} for v, arches in lock.variants.items()}
        md.write_json(topdir / "metadata" / "packages.json", md.packages_manifest(meta, rows))
    return topdir


def test_diff_lists_added_removed_changed(tmp_path: Path) -> None:
    old = make_compose(tmp_path, "debian-bootc-13-20261121.0", OLD)
    new = make_compose(tmp_path, "debian-bootc-13-20261122.0", NEW)
    result = diff_composes(old, new)
    assert sorted(result.variants) == ["base/amd64", "kde-desktop/amd64"]
    base = result.variants["base/amd64"]
    assert [p.name for p in base.added] == ["nano"]
    assert [p.name for p in base.removed] == ["sed"]
    assert [(c.name, c.old, c.new, c.direction) for c in base.changed] == [
        ("bash", "5.2.37-2", "5.2.37-3", "upgrade"),
        ("libc6", "2.41-12", "2.41-11", "downgrade"),
    ]
    text = result.human()
    assert "base/amd64: 1 added, 1 removed, 2 changed" in text
    assert "  ~ bash:amd64 5.2.37-2 -> 5.2.37-3 (upgrade)" in text
    assert "  + nano:amd64 8.4-1" in text and "  - sed:amd64 4.9-2" in text
    assert not result.empty
    assert diff_composes(old, old).empty


def test_diff_cli_human_json_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_compose(tmp_path, "debian-bootc-13-20261121.0", OLD)
    new = make_compose(tmp_path, "debian-bootc-13-20261122.0", NEW, packages_json=False)  # lockfile only
    os.symlink(new.name, tmp_path / "latest-debian-bootc-13")
    assert cli_main(["diff", str(old), str(tmp_path / "latest-debian-bootc-13"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["new"]["compose"] == "debian-bootc-13-20261122.0"
    assert data["new"]["source"].endswith("metadata/lockfile.yaml")
    assert data["variants"]["base/amd64"]["added"] == [{"name": "nano", "arch": "amd64", "version": "8.4-1"}]
    assert cli_main(["diff", str(old), str(new), "--exit-code"]) == 1
    assert "old: debian-bootc-13-20261121.0" in capsys.readouterr().out
    assert cli_main(["diff", str(old), str(old / "metadata/packages.json"), "--exit-code"]) == 0
    # the installed console script
    done = subprocess.run(
        [str(Path(sys.executable).parent / "deb-bootc-compose"), "diff", str(old), str(new)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "kde-desktop/amd64: 1 added, 1 removed, 2 changed" in done.stdout


def test_diff_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_compose(tmp_path, "debian-bootc-13-20261121.0", OLD)
    with pytest.raises(DiffError, match="does not exist"):
        diff_composes(tmp_path / "nope", old)
    with pytest.raises(DiffError, match=r"neither metadata/packages\.json nor metadata/lockfile\.yaml"):
        diff_composes(tmp_path, old)  # the target directory, not a compose
    broken = tmp_path / "broken.json"
    broken.write_text('{"header": {"type": "other"}}')
    with pytest.raises(DiffError, match="is not a deb-bootc-compose packages"):
        diff_composes(broken, old)
    bad_lock = tmp_path / "lockfile.yaml"
    bad_lock.write_text("lockfile_version: 7\n")
    with pytest.raises(DiffError, match="lockfile_version 7 is not supported"):
        diff_composes(bad_lock, old)
    assert cli_main(["diff", str(tmp_path / "nope"), str(old)]) == 2
    assert "deb-bootc-compose diff:" in capsys.readouterr().err


def test_diff_compares_oci_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = make_tree(tmp_path / "tree")
    tops = []
    plan = tmp_path / "plan.json"
    for i, versions in enumerate((OLD, NEW)):
        top = make_compose(tmp_path / "target", f"debian-bootc-13-2026112{i + 1}.0", versions)
        if i:
            (tree / "usr/bin/hello").write_bytes(b"hello, upgraded\n")
        write_oci_image(
            tree,
            top / "compose/base/amd64/oci",
            ref_name="13",
            labels={},
            source_date_epoch=SDE,
            kernel_version=KVER,
            ostree_commit=None,
            previous_plan=plan if plan.exists() else None,
            plan_out=plan,
        )
        tops.append(top)
    result = diff_composes(tops[0], tops[1])
    change = result.images["base/amd64"]
    assert change.changed_layers == 1 and change.layers == 7  # 5 packages, kernel, unowned
    assert 0 < change.bytes_to_pull < change.total_bytes / 2
    assert cli_main(["diff", str(tops[0]), str(tops[1])]) == 0
    out = capsys.readouterr().out
    assert re.search(r"OCI base/amd64: 1 of 7 layers changed, [\d.]+ MB of [\d.]+ MB to pull \([\d.]+%\)", out), out
    assert cli_main(["diff", "--json", str(tops[1]), str(tops[1])]) == 0
    same = json.loads(capsys.readouterr().out)["images"]["base/amd64"]
    assert same["changed_layers"] == 0 and same["old_digest"] == same["new_digest"]
    (tops[1] / "compose/base/amd64/oci/layout/index.json").write_text("{}")
    with pytest.raises(DiffError, match="not a readable OCI layout"):
        diff_composes(tops[0], tops[1])
