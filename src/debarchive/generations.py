"""The generations of a published suite: index files (with .xz and by-hash copies), the by-hash files
carried over from the generations kept, their timestamps, retention, and the atomic switch of
``dists/<suite>``. :func:`debarchive.aptrepo.publish` puts them together."""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from debarchive.digest import hashes_file, sha256_file
from debsandbox.locks import flock


@dataclass
class IndexFile:
    """One index file of a generation, as its Release lists it."""

    path: str  # relative to dists/<suite>, e.g. main/binary-amd64/Packages.xz
    size: int
    md5: str
    sha256: str


@contextmanager
def suite_lock(gen_root: Path) -> Iterator[None]:
    gen_root.mkdir(parents=True, exist_ok=True)
    with flock(gen_root / ".lock", keep_file=True):
        yield


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=1)


def write_index(
    gen: Path, rel: str, data: bytes, previous: Path | None, indices: list[IndexFile]
) -> None:
    """Write ``rel`` (uncompressed) and ``rel.xz`` into generation ``gen``; reuse the previous
    generation's .xz when the content is unchanged (compression is the slow part)."""
    target = gen / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    raw_sha = hashlib.sha256(data).hexdigest()
    indices.append(IndexFile(rel, len(data), hashlib.md5(data).hexdigest(), raw_sha))
    xz_target = gen / f"{rel}.xz"
    reused = False
    if previous is not None:
        old_raw, old_xz = previous / rel, previous / f"{rel}.xz"
        if old_raw.is_file() and old_xz.is_file() and old_raw.stat().st_size == len(data) \
                and sha256_file(old_raw) == raw_sha:
            os.link(old_xz, xz_target)
            reused = True
    if not reused:
        xz_target.write_bytes(_xz(data))
    size, md5, sha = hashes_file(xz_target)
    indices.append(IndexFile(f"{rel}.xz", size, md5, sha))


def parse_release_hashes(release: Path) -> dict[str, tuple[str, str]]:
    """path -> (md5, sha256) from an existing Release file."""
    result: dict[str, list[str]] = {}
    section = None
    for line in release.read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            section = line.split(":", 1)[0]
            continue
        parts = line.split()
        if len(parts) == 3 and section in ("MD5Sum", "SHA256"):
            result.setdefault(parts[2], ["", ""])[0 if section == "MD5Sum" else 1] = parts[0]
    return {k: (v[0], v[1]) for k, v in result.items()}


def carry_by_hash(gen: Path, retained: Iterable[Path]) -> None:
    """Hard-link into ``gen`` the by-hash files named by the Release of each retained older generation,
    so a client that read that InRelease still gets its indices after ``dists/<suite>`` moves on."""
    for old in retained:
        release = old / "Release"
        if not release.is_file():
            continue
        for rel, digests in parse_release_hashes(release).items():
            for algo, digest in zip(("MD5Sum", "SHA256"), digests, strict=True):
                if not digest:
                    continue
                by_hash = Path(rel).parent / "by-hash" / algo / digest
                src, dest = old / by_hash, gen / by_hash
                if dest.exists() or not src.is_file():
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, dest)


def write_by_hash(gen: Path, indices: Sequence[IndexFile]) -> None:
    for idx in indices:
        src = gen / idx.path
        base = src.parent / "by-hash"
        for algo, digest in (("MD5Sum", idx.md5), ("SHA256", idx.sha256)):
            dest = base / algo / digest
            if dest.exists():  # carried over from an older generation: same hash, same content
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dest)


def generations(gen_root: Path) -> list[Path]:
    """Complete generations, oldest first (names sort by creation time)."""
    return sorted(p for p in gen_root.iterdir() if p.is_dir() and not p.name.startswith("."))


def stamp_after(previous: Path | None, gen: Path, index_paths: Sequence[str]) -> None:
    """Give the new generation's files a modification time in a later whole second than the previous
    generation's. HTTP's Last-Modified/If-Modified-Since have one-second resolution: a republish within the
    same second would otherwise be answered "304 Not Modified" and clients would keep the old InRelease."""
    stamp = int(time.time())
    if previous is not None:
        for name in ("InRelease", "Release"):
            try:
                stamp = max(stamp, int((previous / name).stat().st_mtime) + 1)
            except FileNotFoundError:
                continue
    for name in ("Release", "InRelease", "Release.gpg", *index_paths):
        path = gen / name
        if path.exists():
            os.utime(path, (stamp, stamp))


def retained(gens: Sequence[Path], keep: int, keep_seconds: float) -> list[Path]:
    """The last ``keep`` of ``gens`` plus those published less than ``keep_seconds`` ago."""
    now = time.time()
    result = []
    for i, gen in enumerate(gens):
        try:  # the directory's own time: file times may be a little ahead (see stamp_after)
            age = now - gen.stat().st_mtime
        except FileNotFoundError:
            age = float("inf")
        if i >= len(gens) - keep or age < keep_seconds:
            result.append(gen)
    return result


def new_generation_name(gen_root: Path) -> str:
    """``g<serial>-<UTC time>``: names sort in creation order, whatever the clock does."""
    serials = [int(m.group(1)) for p in gen_root.iterdir() if (m := re.match(r"^(?:\.tmp-)?g(\d+)-", p.name))]
    return f"g{max(serials, default=0) + 1:08d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def swap_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (rename of a new symlink over the old one)."""
    tmp = link.with_name(f".{link.name}.swap-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
