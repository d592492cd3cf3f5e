"""Real Debian packages from the mirror (hello 2.10-3, binary and 3.0 (quilt) source) through our repository
writer: the stanzas must match dpkg's own tools, and apt in clean trixie and bookworm chroots must install
and run the binary and fetch the source from our indices."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from apt_chroot import AptChroot, Served
from debian.deb822 import Deb822, Sources

from debarchive import dsc
from debarchive.aptrepo import import_deb, import_dsc, publish, scan_deb
from debarchive.signing import SigningKey

pytestmark = pytest.mark.integration

HELLO_DEB = "pool/main/h/hello/hello_2.10-3_amd64.deb"
HELLO_DSC = "pool/main/h/hello/hello_2.10-3.dsc"


@pytest.fixture(scope="session")
def real_hello(test_cache: Path, mirror: str) -> tuple[Path, Path]:
    """hello 2.10-3: the amd64 .deb and the verified source package, downloaded once into the test cache."""
    cache = test_cache / "debarchive-real"
    cache.mkdir(parents=True, exist_ok=True)
    deb = cache / Path(HELLO_DEB).name
    if not deb.is_file():
        response = httpx.get(f"{mirror}/{HELLO_DEB}", timeout=120, follow_redirects=True)
        response.raise_for_status()
        part = deb.with_suffix(".part")
        part.write_bytes(response.content)
        part.rename(deb)
    pkg = dsc.fetch(f"{mirror}/{HELLO_DSC}", cache / "source")
    return deb, pkg.dsc_path


def test_real_stanzas_match_dpkg_tools(real_hello: tuple[Path, Path], tmp_path: Path) -> None:
    deb, dsc_path = real_hello
    root = tmp_path / "repo"
    entry = import_deb(root, deb)
    assert entry.filename == HELLO_DEB
    ours = Deb822(entry.stanza)
    theirs = Deb822(subprocess.run(["dpkg-scanpackages", "-m", "pool"], cwd=root, capture_output=True, text=True,
                                   check=True).stdout)
    for extra in ("SHA1", "SHA512"):
        theirs.pop(extra, None)
    assert dict(ours) == dict(theirs)
    assert scan_deb(root / HELLO_DEB, HELLO_DEB) == entry

    src = import_dsc(root, dsc_path)
    assert src.directory == "pool/main/h/hello"
    assert set(src.files) == {"hello_2.10-3.dsc", "hello_2.10.orig.tar.gz", "hello_2.10.orig.tar.gz.asc",
                              "hello_2.10-3.debian.tar.xz"}
    ref = Sources(subprocess.run(["dpkg-scansources", "pool"], cwd=root, capture_output=True, text=True,
                                 check=True).stdout)
    mine = Sources(src.stanza)
    for field in ("Package", "Version", "Binary", "Build-Depends", "Architecture", "Format", "Directory",
                  "Maintainer", "Standards-Version", "Homepage", "Vcs-Git"):
        assert mine.get(field) == ref.get(field), field
    assert {(f["sha256"], f["size"], f["name"]) for f in mine["Checksums-Sha256"]} == \
        {(f["sha256"], f["size"], f["name"]) for f in ref["Checksums-Sha256"]}
    assert {(f["md5sum"], f["size"], f["name"]) for f in mine["Files"]} == \
        {(f["md5sum"], f["size"], f["name"]) for f in ref["Files"]}


def test_real_package_installs_and_runs(chroot: AptChroot, real_hello: tuple[Path, Path], http_root: Served,
                                        signing_key: SigningKey) -> None:
    deb, dsc_path = real_hello
    root = http_root.root / f"real-{chroot.suite}"
    shutil.rmtree(root, ignore_errors=True)
    repo = publish(root, "real", packages=[import_deb(root, deb)], sources=[import_dsc(root, dsc_path)],
                   key=signing_key)
    keyring = chroot.root / "etc/apt/keyrings/real.asc"
    chroot.reset_sources()
    keyring.parent.mkdir(parents=True, exist_ok=True)
    signing_key.export_public(keyring)
    url = f"{http_root.url}/{root.name}"
    (chroot.root / "etc/apt/sources.list.d/real.sources").write_text(
        repo.deb822(url, "/etc/apt/keyrings/real.asc", source=True))
    update = chroot.run("apt-get", "update")
    assert update.returncode == 0 and "W:" not in update.stdout + update.stderr, update.stdout + update.stderr
    chroot.run("apt-get", "install", "-y", "hello", check=True)
    assert chroot.run("hello", check=True).stdout == "Hello, world!\n"
    src = chroot.run("sh", "-c", "cd /tmp && apt-get source --download-only hello && ls")
    assert src.returncode == 0, src.stdout + src.stderr
    assert {"hello_2.10-3.dsc", "hello_2.10.orig.tar.gz", "hello_2.10.orig.tar.gz.asc",
            "hello_2.10-3.debian.tar.xz"} <= set(src.stdout.split())
    chroot.run("apt-get", "purge", "-y", "hello", check=True)
