"""debarchive.sourceauth's pieces on real files: gpgv over real signatures, a real Sources-shaped index."""

from __future__ import annotations

from pathlib import Path

import pytest

from debarchive.signing import SigningKey
from debarchive.sourceauth import SourceAuthError, find_in_sources, mirror_base, verify_clearsigned


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, Path]:
    d = tmp_path_factory.mktemp("key")
    k = SigningKey.ensure(d / "home", uid="sourceauth test <t@example.org>")
    return k, k.export_public(d / "pub.asc")


def test_a_good_signature_gives_the_signed_text(key: tuple[SigningKey, Path], tmp_path: Path) -> None:
    k, pub = key
    signed = verify_clearsigned(k.clearsign(b"Source: x\nVersion: 1\n"), [pub], "test")
    assert signed.fingerprints == (k.fingerprint,)
    assert b"Source: x" in signed.content and b"PGP" not in signed.content


def test_changed_text_or_an_unknown_key_is_refused(key: tuple[SigningKey, Path], tmp_path: Path) -> None:
    k, pub = key
    doc = k.clearsign(b"Source: x\nVersion: 1\n")
    with pytest.raises(SourceAuthError, match="bad signature"):
        verify_clearsigned(doc.replace(b"Version: 1", b"Version: 2"), [pub], "test")
    other = SigningKey.ensure(tmp_path / "other", uid="someone else <e@example.org>")
    with pytest.raises(SourceAuthError, match="no good signature"):
        verify_clearsigned(other.clearsign(b"Source: x\n"), [pub], "test")
    with pytest.raises(SourceAuthError, match="no good signature"):
        verify_clearsigned(b"Source: x\nVersion: 1\n", [pub], "test")
    with pytest.raises(SourceAuthError, match="no keyring"):
        verify_clearsigned(doc, [tmp_path / "missing.gpg"], "test")


def test_find_in_sources_picks_the_version(tmp_path: Path) -> None:
    index = tmp_path / "Sources"
    index.write_text(
        "Package: hello-extra\nVersion: 2.10-3\n\n"
        "Package: hello\nVersion: 2.10-2\nChecksums-Sha256:\n aa 1 hello_2.10-2.dsc\n\n"
        "Package: hello\nVersion: 2.10-3\nChecksums-Sha256:\n bb 2 hello_2.10-3.dsc\n"
    )
    para = find_in_sources(index, "hello", "2.10-3")
    assert para is not None and "bb 2 hello_2.10-3.dsc" in para["Checksums-Sha256"]
    assert find_in_sources(index, "hello", "9") is None
    assert find_in_sources(index, "hello-extra", "2.10-3") is not None
    assert find_in_sources(index, "extra", "2.10-3") is None


def test_mirror_base() -> None:
    url = "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc"
    assert mirror_base(url, ["http://deb.debian.org/debian/"]) == ["http://deb.debian.org/debian"]
    assert mirror_base("http://x.example/pool/a.dsc", []) == ["http://x.example"]
    assert mirror_base("http://x.example/a.dsc", []) == []
