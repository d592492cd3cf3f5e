"""The script the build sandbox runs (unpack, dpkg-buildpackage), and what a full tmpfs looks like.

dpkg-buildpackage leaves its results next to the source tree, in ``/build/reproducible-path``. When that tree
is a tmpfs (the tmpfs plugin's ``build_tree``), it vanishes with the sandbox, so the script copies the results
(``cp -a``: links stay links, FIFOs stay FIFOs, for the host's checks to refuse) to ``/build/deb-mock-results``
on the build's upper directory, where the host collects them. When the build fails, the script prints how
much room each tmpfs has left, so that a build that outgrew one is told which option to raise.
"""

from __future__ import annotations

import re
import shlex

BUILD_TREE = "/build/reproducible-path"
COPIED_RESULTS = "/build/deb-mock-results"
_PATTERNS = "*.deb *.udeb *.ddeb *.changes *.buildinfo"
_FREE = re.compile(r"^@@@ deb-mock tmpfs (\S+) (\d+) (\d+) (\d+)$", re.M)  # free blocks, blocks, block size
FULL_BELOW = 1 << 20  # a tmpfs with less than this left at the failure is taken as the cause


def output_dir(tmpfs: dict[str, str | None]) -> str:
    """Where the results are below the build's root (without the leading slash)."""
    return (COPIED_RESULTS if BUILD_TREE in tmpfs else BUILD_TREE).lstrip("/")


def script(workdir: str, unpack: str, make_dir: bool, flag: str, tmpfs: dict[str, str | None]) -> str:
    report = "; ".join(
        f"echo \"@@@ deb-mock tmpfs {m} $(stat -f -c '%a %b %S' {shlex.quote(m)})\"" for m in sorted(tmpfs)
    )
    lines = [
        "set -e",
        f"mkdir -p {BUILD_TREE}",
        f"mkdir -p {shlex.quote(workdir)}" if make_dir else "true",
        unpack,
        f"cd {shlex.quote(workdir)}",
        f"dpkg-buildpackage -us -uc {flag} || {{ rc=$?; {report or 'true'}; exit $rc; }}",
    ]
    if BUILD_TREE in tmpfs:
        lines += [
            f"mkdir -p {COPIED_RESULTS}",
            f"cd {BUILD_TREE}",
            f'for f in {_PATTERNS}; do if [ -e "$f" ] || [ -L "$f" ]; then cp -a -- "$f" {COPIED_RESULTS}/; fi; done',
        ]
    return "\n".join(lines)


def full_tmpfs(output: str, tmpfs: dict[str, str | None]) -> str | None:
    """The error for a build that failed because a tmpfs filled up (None: it did not)."""
    for m in _FREE.finditer(output):
        mount, bsize = m.group(1), int(m.group(4))
        free, total = int(m.group(2)) * bsize, int(m.group(3)) * bsize
        if mount in tmpfs and free < FULL_BELOW:
            size = tmpfs[mount] or f"{total >> 20} MiB, the kernel's default"
            return (
                f"the build ran out of space on its tmpfs {mount} (size {size}): raise the tmpfs plugin's "
                f"size option (--plugin-option tmpfs:size=8G, or size in [plugins.tmpfs]) or build on disk "
                f"(--disable-plugin tmpfs); see build.log"
            )
    return None
