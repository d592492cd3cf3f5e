"""Fetching and verifying source packages: local paths, the real mirror, corrupt and missing files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from debarchive.dsc import SourceFetchError, SourcePackageError, fetch, parse_dsc, safe_name
from srcpkg import make_source

HELLO = "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc"


def test_local_dsc_is_copied_and_verified(tmp_path: Path) -> None:
    dsc = make_source(tmp_path / "src", "demo", "1.0")
    pkg = fetch(dsc, tmp_path / "out")
    assert (pkg.source, pkg.version, pkg.ident) == ("demo", "1.0", "demo_1.0")
    assert pkg.directory == tmp_path / "out"
    assert all((pkg.directory / f.name).is_file() for f in pkg.files)
    assert "debhelper-compat" in pkg.build_depends


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    dsc = make_source(tmp_path / "src", "demo", "1.0")
    tarball = next((tmp_path / "src").glob("demo_1.0.tar.*"))
    data = bytearray(tarball.read_bytes())
    data[-1] ^= 0xFF
    tarball.write_bytes(bytes(data))
    with pytest.raises(SourcePackageError, match=rf"mismatch for {tarball.name}"):
        fetch(dsc, tmp_path / "out")


def test_truncated_file_is_reported_with_sizes(tmp_path: Path) -> None:
    dsc = make_source(tmp_path / "src", "demo", "1.0")
    tarball = next((tmp_path / "src").glob("demo_1.0.tar.*"))
    tarball.write_bytes(tarball.read_bytes()[:10])
    with pytest.raises(SourcePackageError, match=r"has size 10, the .dsc says"):
        fetch(dsc, tmp_path / "out")


def test_missing_file_is_reported(tmp_path: Path) -> None:
    dsc = make_source(tmp_path / "src", "demo", "1.0")
    next((tmp_path / "src").glob("demo_1.0.tar.*")).unlink()
    with pytest.raises(SourcePackageError, match="is missing"):
        fetch(dsc, tmp_path / "out")


def test_garbage_dsc(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dsc"
    bad.write_text("this is not a dsc\n")
    with pytest.raises(SourcePackageError, match=r"not a valid \.dsc"):
        parse_dsc(bad)
    with pytest.raises(SourcePackageError, match="no such file"):
        parse_dsc(tmp_path / "absent.dsc")


def test_path_traversal_in_dsc_is_refused(tmp_path: Path) -> None:
    dsc = make_source(tmp_path / "src", "demo", "1.0")
    text = dsc.read_text()
    name = next((tmp_path / "src").glob("demo_1.0.tar.*")).name
    dsc.write_text(text.replace(f" {name}", f" ../../{name}"))
    with pytest.raises(SourcePackageError, match="unsafe"):
        parse_dsc(dsc)
    assert safe_name("hello_2.10.orig.tar.gz")
    with pytest.raises(SourcePackageError):
        safe_name("../etc/passwd")


@pytest.mark.integration
def test_fetch_from_the_mirror(tmp_path: Path) -> None:
    pkg = fetch(HELLO, tmp_path)
    assert pkg.ident == "hello_2.10-3"
    assert {f.name for f in pkg.files} == {
        "hello_2.10.orig.tar.gz",
        "hello_2.10.orig.tar.gz.asc",
        "hello_2.10-3.debian.tar.xz",
    }
    # a second fetch into the same directory reuses the files and verifies them again
    (tmp_path / "hello_2.10-3.debian.tar.xz").write_bytes(
        b"x" * (tmp_path / "hello_2.10-3.debian.tar.xz").stat().st_size
    )
    with pytest.raises(SourcePackageError, match="mismatch"):
        fetch(HELLO, tmp_path)
    shutil.rmtree(tmp_path)


@pytest.mark.integration
def test_a_file_the_mirror_does_not_serve_names_the_url(tmp_path: Path) -> None:
    url = "http://deb.debian.org/debian/pool/main/h/hello/hello_0.0-0.dsc"
    with pytest.raises(SourceFetchError) as exc:
        fetch(url, tmp_path)
    assert exc.value.url == url
    assert url in str(exc.value) and "404" in str(exc.value)
    assert not exc.value.network


def test_unreachable_server_is_a_network_error(tmp_path: Path) -> None:
    with pytest.raises(SourceFetchError) as exc:
        fetch("http://127.0.0.1:9/debian/x_1.dsc", tmp_path, timeout=5)
    assert exc.value.network
