"""Benchmark: republishing an apt repository from kept stanzas (no .deb is read).

Prints the time of ``debarchive.aptrepo.publish`` for 1,000 and 5,000 packages, unsigned and signed,
first publish and an incremental republish (one package added, or nothing changed). The stanzas are
synthetic but realistic in size (about 900 bytes, like Debian's); no .deb is read, which is the point.

    .venv/bin/python bench/apt_repo_publish.py [--quick] [--sizes 1000,5000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from debarchive.aptrepo import PackageEntry, pool_path, publish
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--quick", action="store_true", help="one small size, for the test suite")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="exit 1 if the unsigned 1,000-package republish takes longer")
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
            results[n] = timed("republish, one package added, unsigned", root, [*entries, synthetic_entry(n)])
            timed("republish, unchanged, unsigned", root, [*entries, synthetic_entry(n)])
            timed("republish, one package added, signed", root, [*entries, synthetic_entry(n + 1)], key)
    if args.max_seconds is not None and 1000 in results and results[1000] > args.max_seconds:
        print(f"FAIL: 1,000 packages took {results[1000]:.2f} s > {args.max_seconds} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
