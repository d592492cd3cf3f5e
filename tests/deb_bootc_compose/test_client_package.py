"""The deb-bootc client as a .deb: its source identity, and a real build through deb-mock's Python API that
lands in the target's pool (by content and by source) and is not built again while the source is unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deb_bootc_compose import clientdeb
from deb_bootc_compose.paths import TargetPaths

SOURCE = Path(__file__).resolve().parents[2] / "packaging" / "deb-bootc"


def test_source_hash_follows_content_modes_and_names(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src)
    first = clientdeb.source_hash(src)
    assert first == clientdeb.source_hash(SOURCE)
    (src / "deb_bootc" / "__pycache__").mkdir(exist_ok=True)
    (src / "deb_bootc" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert clientdeb.source_hash(src) == first  # byte code is not source
    (src / "debian" / "rules").chmod(0o644)
    assert clientdeb.source_hash(src) != first
    (src / "debian" / "rules").chmod(0o755)
    (src / "deb_bootc" / "cli.py").write_text((src / "deb_bootc" / "cli.py").read_text() + "\n")
    changed = clientdeb.source_hash(src)
    assert changed != first
    (src / "extra").write_text("")
    assert clientdeb.source_hash(src) not in (first, changed)


def test_depends_names() -> None:
    assert clientdeb.depends_names("python3, ostree") == ("python3", "ostree")
    assert clientdeb.depends_names("python3:any (>= 3.11), ostree | ostree-tools, libc6 [amd64]") == (
        "python3", "ostree", "libc6")
    assert clientdeb.depends_names("") == ()


@pytest.mark.integration
def test_the_client_is_built_once_per_source(tmp_path: Path, test_cache: Path, mirror: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEB_MOCK_CACHE_DIR", str(test_cache / "deb-mock"))  # the builders' warm root cache
    target = TargetPaths(tmp_path / "target")
    log = tmp_path / "build.log"
    deb = clientdeb.ensure(target, tmp_path / "work" / "client-build", suite="trixie", arch="amd64", mirror=mirror,
                           log=log)
    assert deb.built and deb.name == "deb-bootc" and deb.arch == "all"
    assert deb.depends == ("python3", "ostree")
    assert deb.path == target.pool_deb(deb.sha256) and deb.path.is_file()
    kept = list(target.client_debs(clientdeb.source_hash(SOURCE)).iterdir())
    assert [p.name for p in kept] == [f"deb-bootc_{deb.version}_all.deb"]
    assert os.path.samefile(kept[0], deb.path)
    locked = deb.locked()
    assert (locked.sha256, locked.url, locked.repo) == (deb.sha256, deb.path.as_uri(), clientdeb.REPO_LABEL)
    again = clientdeb.ensure(target, tmp_path / "work2" / "client-build", suite="trixie", arch="amd64",
                             mirror=mirror, log=log)
    assert not again.built and again.sha256 == deb.sha256
    assert not (tmp_path / "work2").exists()  # nothing was built

    # the package installs a working client: the launcher finds its modules where the package puts them
    root = tmp_path / "unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb.path), str(root)], check=True)
    installed = subprocess.run(["dpkg-deb", "--field", str(deb.path), "Installed-Size"], check=True,
                               capture_output=True, text=True).stdout.strip()
    print(f"\nFIGURE deb-bootc: {deb.size} bytes, Installed-Size {installed} KiB")
    run = subprocess.run(["/usr/bin/python3", str(root / "usr/bin/deb-bootc"), "--help"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(root / "usr/lib/deb-bootc")}, check=False)
    assert run.returncode == 0 and "exit codes:" in run.stdout and "77" in run.stdout, run.stderr


def test_a_missing_client_source_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clientdeb.SOURCE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(clientdeb.ComposeError, match="DEB_BOOTC_CLIENT_SOURCE"):
        clientdeb.source_dir()
