"""The ``deb-bootc`` update client as a real .deb, for images whose manifest has an ``update:`` section.

Its source is the Debian source package in ``packaging/deb-bootc`` (``$DEB_BOOTC_CLIENT_SOURCE`` names
another copy). For a manifest without ``build:`` the build phase builds it locally through deb-mock's
Python API (DESIGN.md allows compose exactly this use) for the manifest's suite and mirror, and keeps the
.deb in the target's pool twice over: by content (``pool/by-sha256``, like every .deb a compose uses) and
by the hash of the source it was built from (``pool/by-source/deb-bootc/<hash>/``), so an unchanged client
is never built again. gather adds it, with the dependencies its control file names, to every variant's
package set.

With ``build.target`` (an orchestrator) the client goes through the hub instead, like any build source,
its version carrying this module's :func:`source_hash` (:mod:`deb_bootc_compose.clientsource`); this
module's local build serves manifests without ``build:`` (docs/client.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.lockfile import LockedPackage
from deb_bootc_compose.paths import TargetPaths
from deb_mock.api import BuildRequest, build
from debarchive.digest import sha256_file
from debsandbox.commands import CommandError, run

NAME = "deb-bootc"
SOURCE_ENV = "DEB_BOOTC_CLIENT_SOURCE"
REPO_LABEL = "deb-bootc-compose:packaging/deb-bootc"  # the lockfile's ``repo`` of the locally built client
IGNORED = ("__pycache__", ".pytest_cache", ".mypy_cache")


@dataclass(frozen=True)
class ClientDeb:
    path: Path  # in the pool (by-sha256)
    name: str
    version: str
    arch: str
    sha256: str
    size: int
    depends: tuple[str, ...]  # package names from Depends (first alternative of each)
    source_hash: str
    built: bool  # built by this compose (False: found in the pool)

    @property
    def cache_key(self) -> str:
        """What the resolution cache adds to its key for this client."""
        return f"client:{self.sha256}"

    def locked(self) -> LockedPackage:
        return LockedPackage(name=self.name, version=self.version, arch=self.arch, sha256=self.sha256,
                             size=self.size, url=self.path.as_uri(), repo=REPO_LABEL, source=self.name,
                             source_version=self.version)


def source_dir() -> Path:
    env = os.environ.get(SOURCE_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "packaging" / NAME
    if not (path / "debian" / "control").is_file():
        raise ComposeError(f"the deb-bootc client's source package is not at {path} (no debian/control); the "
                           f"manifest's update: section needs it: set {SOURCE_ENV} to a copy of packaging/deb-bootc")
    return path


def source_hash(root: Path) -> str:
    """The identity of a source tree: every path, its kind, its executable bit and its content."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED)
        for name in sorted([*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name.endswith(".pyc"):
                continue
            if path.is_symlink():
                h.update(f"L {rel} {os.readlink(path)}\0".encode())
            else:
                exe = "x" if os.stat(path).st_mode & 0o111 else "-"
                h.update(f"F {rel} {exe} {sha256_file(path)}\0".encode())
    return h.hexdigest()


def depends_names(depends: str) -> tuple[str, ...]:
    """``python3 (>= 3.11), ostree | foo`` -> (python3, ostree): what gather asks apt to install with it."""
    out = []
    for part in depends.split(","):
        first = part.split("|")[0].strip()
        name = re.split(r"[\s(:\[]", first, maxsplit=1)[0]
        if name:
            out.append(name)
    return tuple(out)


def describe(deb: Path, source_hash_: str, built: bool) -> ClientDeb:
    try:
        out = run(["dpkg-deb", "--field", str(deb), "Package", "Version", "Architecture", "Depends"],
                  capture=True).output
    except CommandError as exc:
        raise ComposeError(f"{deb} is not a readable .deb: {exc.tail}") from exc
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    if fields.get("Package") != NAME:
        raise ComposeError(f"{deb}: expected package {NAME}, found {fields.get('Package')!r}")
    return ClientDeb(path=deb, name=NAME, version=fields["Version"], arch=fields["Architecture"],
                     sha256=sha256_file(deb), size=deb.stat().st_size,
                     depends=depends_names(fields.get("Depends", "")), source_hash=source_hash_, built=built)


def _keep(target: TargetPaths, deb: Path, source_hash_: str) -> Path:
    """Put the built .deb into the pool (by content, then by source) atomically; its pool path."""
    sha = sha256_file(deb)
    pooled = target.pool_deb(sha)
    if not pooled.is_file():
        pooled.parent.mkdir(parents=True, exist_ok=True)
        tmp = pooled.with_name(f".{pooled.name}.{os.getpid()}.part")
        shutil.copyfile(deb, tmp)
        tmp.replace(pooled)
    by_source = target.client_debs(source_hash_)
    tmpdir = by_source.with_name(f".{by_source.name}.{os.getpid()}.part")
    shutil.rmtree(tmpdir, ignore_errors=True)
    tmpdir.mkdir(parents=True)
    os.link(pooled, tmpdir / deb.name)
    try:
        tmpdir.rename(by_source)
    except OSError:  # another compose kept the same build meanwhile
        shutil.rmtree(tmpdir, ignore_errors=True)
    return pooled


def ensure(target: TargetPaths, resultdir: Path, *, suite: str, arch: str, mirror: str, log: Path,
           cancel: threading.Event | None = None, progress: Callable[[str], None] | None = None) -> ClientDeb:
    """The client .deb for this source: from the pool, or built now with deb-mock and kept there."""
    src = source_dir()
    digest = source_hash(src)
    kept = sorted(target.client_debs(digest).glob(f"{NAME}_*.deb"))
    if kept:
        return describe(target.pool_deb(sha256_file(kept[0])), digest, built=False)
    copy = resultdir.parent / "client-source" / NAME
    shutil.rmtree(copy.parent, ignore_errors=True)
    shutil.copytree(src, copy, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED, "*.pyc"))
    if progress:
        progress(f"building the {NAME} client (source {digest[:12]}) with deb-mock for {suite}/{arch}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        def line(text: str) -> None:
            fh.write(text if text.endswith("\n") else text + "\n")

        result = build(BuildRequest(
            source=copy, resultdir=resultdir, suite=suite, arch=arch, mirror=mirror, build_what="binary",
            cancel=cancel, on_log_line=line, timeout=3600,
            trusted_source=f"deb-bootc-compose's own client source ({src}, {digest[:12]})"))
    if result.state != "success":
        raise ComposeError(f"building the {NAME} client with deb-mock failed ({result.state}, exit code "
                           f"{result.exit_code}): {result.error or 'see the log'}; logs in {resultdir} "
                           f"(build.log, root.log)")
    debs = [f for f in result.files if f.name.startswith(f"{NAME}_") and f.name.endswith(".deb")]
    if not debs:
        raise ComposeError(f"deb-mock built {NAME} but its results in {resultdir} hold no {NAME}_*.deb")
    pooled = _keep(target, resultdir / debs[0].name, digest)
    return describe(pooled, digest, built=True)
