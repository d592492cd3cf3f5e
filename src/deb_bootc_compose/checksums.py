"""SHA256 of deliverables and Pungi's ``CHECKSUM`` files (BSD style, which ``sha256sum -c`` also reads).

```
# debian-bootc-base-13.amd64.oci-archive: 123456789 bytes
SHA256 (oci/debian-bootc-base-13.amd64.oci-archive) = 0123…
```
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from debarchive.digest import sha256_file

LINE_RE = re.compile(r"^SHA256 \((?P<name>.+)\) = (?P<hex>[0-9a-f]{64})$")


class ChecksumError(ValueError):
    """A CHECKSUM file cannot be read or a file does not match it; the message says which and where."""


@dataclass(frozen=True)
class FileChecksum:
    name: str  # relative to the CHECKSUM file's directory
    size: int
    sha256: str


def checksum(path: Path, base: Path) -> FileChecksum:
    """The checksum of ``path``, named relative to ``base``."""
    try:
        size = path.stat().st_size
        digest = sha256_file(path)
    except FileNotFoundError:
        raise ChecksumError(f"deliverable {path} does not exist; nothing to checksum") from None
    return FileChecksum(os.path.relpath(path, base), size, digest)


def format_checksums(items: list[FileChecksum]) -> str:
    lines = []
    for item in sorted(items, key=lambda i: i.name):
        lines.append(f"# {os.path.basename(item.name)}: {item.size} bytes\n")
        lines.append(f"SHA256 ({item.name}) = {item.sha256}\n")
    return "".join(lines)


def write_checksum_file(path: Path, items: list[FileChecksum]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(format_checksums(items), encoding="utf-8")
    os.replace(tmp, path)


def read_checksum_file(path: Path) -> dict[str, str]:
    """name → sha256 from a CHECKSUM file; comments and blank lines are skipped."""
    result: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChecksumError(f"{path} does not exist") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = LINE_RE.match(line)
        if match is None:
            raise ChecksumError(f"{path}:{number}: not a 'SHA256 (name) = hex' line: {line[:80]!r}")
        result[match["name"]] = match["hex"]
    return result


def verify_checksum_file(path: Path) -> list[str]:
    """Problems found checking every file a CHECKSUM file lists (empty when all match)."""
    problems = []
    for name, expected in read_checksum_file(path).items():
        target = path.parent / name
        if not target.is_file():
            problems.append(f"{target}: listed in {path} but missing")
        elif sha256_file(target) != expected:
            problems.append(f"{target}: SHA256 does not match {path}")
    return problems
