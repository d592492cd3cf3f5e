"""The content-addressed .deb pool shared by composes (``TARGET/pool/by-sha256/ab/<sha256>.deb``).

The mirror drops superseded versions; the pool keeps every .deb a compose used, so an old lockfile can be
composed again. Files are verified on the way in and written atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import httpx

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.lockfile import LockedPackage
from deb_bootc_compose.paths import TargetPaths


def deb_timestamp(path: Path) -> int:
    """The build time dpkg-deb recorded in the ar header of the first member (SOURCE_DATE_EPOCH of the build)."""
    with open(path, "rb") as fh:
        head = fh.read(8 + 60)
    if head[:8] != b"!<arch>\n":
        raise ComposeError(f"{path} is not a .deb (no ar header)")
    return int(head[8 + 16 : 8 + 28].decode("ascii").strip() or 0)


def _download(client: httpx.Client, pkg: LockedPackage, dest: Path, cancel: threading.Event | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
    h = hashlib.sha256()
    try:
        parsed = urlparse(pkg.url)
        if parsed.scheme == "file":
            with open(parsed.path, "rb") as src, open(tmp, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    h.update(chunk)
                    out.write(chunk)
        else:
            with client.stream("GET", pkg.url) as resp:
                if resp.status_code == 404:
                    raise ComposeError(
                        f"{pkg.name} {pkg.version} ({pkg.arch}) is no longer at {pkg.url} (404) and is not in the "
                        "pool; the mirror drops superseded versions: compose from a target directory whose pool "
                        "has it, or use snapshot.debian.org as a source"
                    )
                resp.raise_for_status()
                with open(tmp, "wb") as out:
                    for chunk in resp.iter_bytes(1 << 20):
                        if cancel is not None and cancel.is_set():
                            raise KeyboardInterrupt("download cancelled")
                        h.update(chunk)
                        out.write(chunk)
        if h.hexdigest() != pkg.sha256:
            raise ComposeError(
                f"{pkg.url}: SHA-256 mismatch (expected {pkg.sha256}, got {h.hexdigest()}); "
                "the mirror or a proxy served a different file"
            )
        tmp.replace(dest)
    except httpx.HTTPError as exc:
        raise ComposeError(f"cannot download {pkg.name} {pkg.version} from {pkg.url}: {exc}") from exc
    except OSError as exc:
        raise ComposeError(f"cannot fetch {pkg.url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def ensure(
    target: TargetPaths,
    packages: Iterable[LockedPackage],
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int = 6,
) -> tuple[int, int]:
    """Make sure every package is in the pool (download what is missing). Returns (downloaded, bytes)."""
    wanted: dict[str, LockedPackage] = {}
    for p in packages:
        wanted.setdefault(p.sha256, p)
    missing = [p for sha, p in wanted.items() if not target.pool_deb(sha).is_file()]
    if not missing:
        return 0, 0
    total = sum(p.size for p in missing)
    if progress:
        progress(f"downloading {len(missing)} packages ({total / 1e6:.1f} MB) into the pool")
    with httpx.Client(timeout=httpx.Timeout(60, connect=15), follow_redirects=True) as client, ThreadPoolExecutor(
        workers
    ) as pool:
        futures = [pool.submit(_download, client, p, target.pool_deb(p.sha256), cancel) for p in missing]
        errors = []
        for f in futures:
            exc = f.exception()
            if exc is not None:
                errors.append(exc)
        if errors:
            first = errors[0]
            if isinstance(first, KeyboardInterrupt):
                raise first
            if len(errors) > 1 and isinstance(first, ComposeError):
                raise ComposeError(f"{first} (and {len(errors) - 1} more download failures)")
            raise first
    return len(missing), total


def link_into(target: TargetPaths, packages: Iterable[LockedPackage], repo_dir: Path) -> list[Path]:
    """Hard-link (or copy) the pool files into ``repo_dir`` under their Debian file names."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for p in packages:
        src = target.pool_deb(p.sha256)
        dest = repo_dir / p.filename
        if dest.exists():
            dest.unlink()
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
        out.append(dest)
    return out
