"""Benchmark: republishing an apt repository from kept stanzas (no .deb is read).

Prints the time of ``debarchive.aptrepo.publish`` for 1,000 and 5,000 packages, unsigned and signed,
first publish and an incremental republish (one package added, or nothing changed). The stanzas are
synthetic but realistic in size (about 900 bytes, like Debian's); no .deb is read, which is the point.

With ``--compare N`` it also measures the peer, ``apt-ftparchive`` (apt-utils; with its cache database,
as a repository keeper would run it), on N real .deb files: regenerating the indices after one new
package, against ``scan_deb`` of the new package plus ``publish``. Both produce Packages, Packages.xz
(the same xz preset) and Release; neither signs, so the ratio is about index generation.

    .venv/bin/python bench/apt_repo_publish.py [--quick] [--sizes 1000,5000] [--compare 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from debarchive.aptrepo import PackageEntry, pool_path, publish, scan_deb
from debarchive.signing import SigningKey

DESCRIPTION = "a synthetic package for the publish benchmark\n" + "\n".join(
    f" Line {i} of a long description that looks like a real one, with enough words to be realistic."
    for i in range(6)
)


def synthetic_entry(i: int) -> PackageEntry:
    """A realistic-sized stanza (about 900 bytes, like Debian's average) without a real file."""
    name = f"bench-pkg{i:05d}"
    version = f"1.{i % 7}-{i % 3 + 1}"
    arch = "all" if i % 5 == 0 else "amd64"
    filename = pool_path(f"bench-src{i // 3:05d}", f"{name}_{version}_{arch}.deb")
    sha = hashlib.sha256(name.encode()).hexdigest()
    md5 = hashlib.md5(name.encode()).hexdigest()
    size = 10_000 + i
    stanza = (
        f"Package: {name}\nSource: bench-src{i // 3:05d}\nVersion: {version}\nInstalled-Size: {size // 1000}\n"
        f"Maintainer: Bench <bench@localhost>\nArchitecture: {arch}\n"
        f"Depends: libc6 (>= 2.36), bench-pkg{(i + 1) % 1000:05d} (= {version})\n"
        f"Description: {DESCRIPTION}\nHomepage: https://example.org/{name}\nSection: misc\nPriority: optional\n"
        f"Filename: {filename}\nSize: {size}\nMD5sum: {md5}\nSHA256: {sha}\n"
    )
    return PackageEntry(name, version, arch, f"bench-src{i // 3:05d}", version, filename, size, sha, stanza)


def timed(label: str, root: Path, packages: list[PackageEntry], key: SigningKey | None = None) -> float:
    start = time.perf_counter()
    publish(root, "bench", packages=packages, key=key)
    seconds = time.perf_counter() - start
    print(f"  {label:<48} {seconds * 1000:8.1f} ms")
    return seconds


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        out.append(f"{name:<16}{1_700_000_000:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode())
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def write_real_deb(directory: Path, i: int) -> Path:
    """A real (tiny) binary package in Debian's ar format, without forking dpkg-deb 1,000 times."""
    name, version = f"bench-pkg{i:05d}", "1.0-1"
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Bench <bench@localhost>\n"
               f"Installed-Size: 1\nDepends: libc6 (>= 2.36)\nDescription: {DESCRIPTION}\n").encode()
    deb = _ar([
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", _tar_gz({"./control": control})),
        ("data.tar.gz", _tar_gz({f"./usr/share/doc/{name}/README": f"{name}\n".encode()})),
    ])
    path = directory / pool_path(name, f"{name}_{version}_amd64.deb")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(deb)
    return path


def apt_ftparchive_regen(root: Path, db: Path) -> None:
    """What a repository keeper runs with apt-ftparchive after adding a package."""
    binary = root / "dists" / "bench" / "main" / "binary-amd64"
    binary.mkdir(parents=True, exist_ok=True)
    packages = subprocess.run(["apt-ftparchive", "--db", str(db), "packages", "pool"], cwd=root,
                              check=True, capture_output=True).stdout
    (binary / "Packages").write_bytes(packages)
    (binary / "Packages.xz").write_bytes(lzma.compress(packages, preset=1))
    release = subprocess.run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Suite=bench", "release", "dists/bench"],
        cwd=root, check=True, capture_output=True).stdout
    (root / "dists" / "bench" / "Release").write_bytes(release)


def compare(n: int, tmp: Path) -> float:
    """Print and return apt-ftparchive's time / ours for regenerating after one new package."""
    print(f"peer comparison on {n} real .deb files:")
    ours_root, peer_root = tmp / f"ours-{n}", tmp / f"peer-{n}"
    debs = [write_real_deb(ours_root, i) for i in range(n)]
    for d in debs:
        target = peer_root / d.relative_to(ours_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.hardlink_to(d)
    db = tmp / f"peer-{n}.db"
    start = time.perf_counter()
    entries = [scan_deb(d, str(d.relative_to(ours_root))) for d in debs]
    publish(ours_root, "bench", packages=entries)
    print(f"  {'ours: first scan of every .deb + publish':<48} {(time.perf_counter() - start) * 1000:8.1f} ms")
    start = time.perf_counter()
    apt_ftparchive_regen(peer_root, db)
    print(f"  {'apt-ftparchive: first run (cold cache db)':<48} {(time.perf_counter() - start) * 1000:8.1f} ms")

    new = write_real_deb(ours_root, n)
    (peer_root / new.relative_to(ours_root)).parent.mkdir(parents=True, exist_ok=True)
    (peer_root / new.relative_to(ours_root)).hardlink_to(new)
    start = time.perf_counter()
    entries.append(scan_deb(new, str(new.relative_to(ours_root))))
    publish(ours_root, "bench", packages=entries)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    apt_ftparchive_regen(peer_root, db)
    peer = time.perf_counter() - start
    ours_count = (ours_root / "dists/bench/main/binary-amd64/Packages").read_text().count("Package: ")
    peer_count = (peer_root / "dists/bench/main/binary-amd64/Packages").read_text().count("Package: ")
    assert ours_count == peer_count == n + 1, (ours_count, peer_count)
    print(f"  {'ours: +1 package (scan it, republish)':<48} {ours * 1000:8.1f} ms")
    print(f"  {'apt-ftparchive: +1 package (warm cache db)':<48} {peer * 1000:8.1f} ms")
    print(f"  ratio apt-ftparchive / ours: {peer / ours:.1f}x")
    return peer / ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--quick", action="store_true", help="one small size, for the test suite")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="exit 1 if the unsigned 1,000-package republish (best of 3) takes longer")
    parser.add_argument("--compare", type=int, default=0, metavar="N",
                        help="also compare with apt-ftparchive on N real .deb files")
    args = parser.parse_args(argv)
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",")]
    results: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-apt-") as tmp:
        key = SigningKey.ensure(Path(tmp) / "gnupg")
        for n in sizes:
            entries = [synthetic_entry(i) for i in range(n)]
            root = Path(tmp) / f"repo-{n}"
            print(f"{n} packages ({sum(len(e.stanza) for e in entries) / 1e6:.1f} MB of stanzas):")
            timed("first publish, unsigned", root, entries)
            results[n] = min(
                timed(f"republish, one package added, unsigned (run {run})", root, [*entries, synthetic_entry(n + run)])
                for run in (1, 2, 3)
            )
            timed("republish, unchanged, unsigned", root, [*entries, synthetic_entry(n + 3)])
            timed("republish, one package added, signed", root, [*entries, synthetic_entry(n + 4)], key)
        if args.compare:
            compare(args.compare, Path(tmp))
    if args.max_seconds is not None and 1000 in results and results[1000] > args.max_seconds:
        print(f"FAIL: 1,000 packages took {results[1000]:.2f} s > {args.max_seconds} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
