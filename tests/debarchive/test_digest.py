"""File checksums read in chunks: the same as hashing the whole content at once, for every size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from debarchive.digest import CHUNK, file_digests, hashes_file, sha256_file


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 7])
def test_digests_match_hashlib_on_the_whole_content(tmp_path: Path, size: int) -> None:
    data = bytes(i * 7 % 251 for i in range(size))
    f = tmp_path / "f"
    f.write_bytes(data)
    assert sha256_file(f) == hashlib.sha256(data).hexdigest()
    assert hashes_file(f) == (size, hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())
    assert file_digests(f, ("sha1", "sha512")) == (
        size, {"sha1": hashlib.sha1(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()})


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "nope")
