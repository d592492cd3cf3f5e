"""The root cache: a bootstrapped buildd chroot per config, made with mmdebstrap and reused by every build.

Each bootstrap makes a new *generation* directory, written under a temporary name and renamed into place
only when complete, then published by atomically replacing the ``current`` symlink. Builds hold a shared
lock on the generation they use, so an ``--update`` never pulls a root out from under a running build;
old generations are removed once nobody uses them. Two processes that need the same missing cache
serialize on one lock: the second finds the first's result and never bootstraps twice.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deb_mock.chroot.paths import CachePaths
from deb_mock.config import MockConfig
from deb_mock.errors import InfraError
from debsandbox.commands import CommandError, run
from debsandbox.locks import flock, remove_unless_locked
from debsandbox.sandbox import Sandbox, owned_dir, remove_tree

_GEN_RE = re.compile(r"^gen-(\d+)$")


@dataclass(frozen=True)
class RootCache:
    config: str
    key: str
    generation: str
    root: Path  # the tree
    created: float
    source_date_epoch: int

    @property
    def ident(self) -> str:
        return f"{self.key}-{self.generation}"

    @property
    def lock_name(self) -> str:
        return f"root-{self.config}-{self.key}-{self.generation}"


def mirror_date(config: MockConfig, timeout: float = 30.0) -> int:
    """The Date of the suite's Release file: the SOURCE_DATE_EPOCH of a bootstrap (content-derived)."""
    import httpx  # only here: about 50 ms of every run's start otherwise

    url = f"{config.mirror.rstrip('/')}/dists/{config.suite}/InRelease"
    try:
        resp = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise InfraError(f"mirror unreachable: cannot fetch {url}: {exc}") from None
    if resp.status_code != 200:
        raise InfraError(f"mirror problem: {url} answered HTTP {resp.status_code} (is {config.suite!r} a suite there?)")
    for line in resp.text.splitlines():
        if line.startswith("Date:"):
            return int(email.utils.parsedate_to_datetime(line[5:].strip()).timestamp())
    raise InfraError(f"{url} has no Date field")


def _read_meta(gen_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((gen_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _load(config: MockConfig, base: Path) -> RootCache | None:
    current = base / "current"
    if not current.is_symlink():
        return None
    gen_dir = base / os.readlink(current)
    meta = _read_meta(gen_dir)
    if meta is None or not (gen_dir / "root" / "usr").is_dir():
        return None
    return RootCache(
        config=config.name,
        key=config.root_cache_key(),
        generation=gen_dir.name,
        root=gen_dir / "root",
        created=float(meta["created"]),  # type: ignore[arg-type]
        source_date_epoch=int(meta["source_date_epoch"]),  # type: ignore[call-overload]
    )


def mmdebstrap_argv(config: MockConfig, output: Path) -> list[str]:
    uid = config.build_uid
    hooks = [
        f'chroot "$1" groupadd --gid {uid} {config.build_user}',
        f'chroot "$1" useradd --uid {uid} --gid {uid} --home-dir /build --create-home --shell /bin/sh '
        f"{config.build_user}",
        # the build's home holds the results: a normal user's deb-mock reads them from outside the sandbox
        'chmod 0755 "$1/build"',
        'mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io > "$1/etc/dpkg/dpkg.cfg.d/deb-mock-unsafe-io"',
        'printf \'APT::Install-Recommends "false";\\nAcquire::Languages "none";\\n\' '
        '> "$1/etc/apt/apt.conf.d/90deb-mock"',
    ]
    argv = [
        "mmdebstrap",
        "--mode=unshare",
        f"--variant={config.variant}",
        f"--architectures={config.arch}",
        f"--components={','.join(config.components)}",
        "--skip=cleanup/apt/lists",
        "--format=tar",
    ]
    if not config.check_valid_until:  # mmdebstrap also keeps it in the chroot's apt.conf.d
        argv.append('--aptopt=Acquire::Check-Valid-Until "false"')
    if config.keyring:
        argv.append(f"--keyring={config.keyring}")
    if config.packages:
        argv.append(f"--include={','.join(config.packages)}")
    argv += [f"--customize-hook={h}" for h in hooks]
    argv += [config.suite, str(output), config.mirror]
    return argv


def _is_disk_full(exc: CommandError) -> bool:
    return "No space left on device" in exc.tail or "Disk quota exceeded" in exc.tail


def _bootstrap(config: MockConfig, base: Path, log: Path, on_phase: Callable[[str], None] | None) -> RootCache:
    sde = mirror_date(config)
    gen = f"gen-{int(time.time() * 1000)}"
    staging = base / f".{gen}.tmp-{os.getpid()}"
    base.mkdir(parents=True, exist_ok=True)  # the host's, not ns-root's: only the tree under root/ is
    try:
        staging.mkdir(parents=True)
        tarball = staging / "root.tar"
        if on_phase:
            on_phase(f"bootstrapping {config.suite}/{config.arch} root cache with mmdebstrap")
        try:
            run(mmdebstrap_argv(config, tarball), log=log, extra_env={"SOURCE_DATE_EPOCH": str(sde)})
        except CommandError as exc:
            if _is_disk_full(exc):
                raise InfraError(f"disk full while writing the root cache in {staging}: {exc.tail[-300:]}") from None
            raise InfraError(f"mmdebstrap failed for {config.name} (see {log}): {exc.tail[-500:]}") from None
        root = owned_dir(staging / "root")
        if on_phase:
            on_phase("unpacking root cache")
        try:
            Sandbox().run(
                ["tar", "-C", "@root@", "--numeric-owner", "--exclude=./dev/*", "-xpf", "@tarball@"],
                log=log,
                paths={"root": root, "tarball": tarball},
            )
        except CommandError as exc:
            if _is_disk_full(exc):
                raise InfraError(f"disk full while unpacking the root cache in {staging}") from None
            raise InfraError(f"cannot unpack the root cache (see {log}): {exc.tail[-300:]}") from None
        tarball.unlink()
        meta = {
            "created": time.time(),
            "source_date_epoch": sde,
            "config": config.name,
            "key": config.root_cache_key(),
            "mmdebstrap": shlex.join(mmdebstrap_argv(config, Path("OUT"))),
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        staging.rename(base / gen)
    except BaseException:
        remove_tree(staging)
        raise
    tmp_link = base / f".current.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(gen)
    tmp_link.replace(base / "current")
    loaded = _load(config, base)
    assert loaded is not None
    return loaded


def prune_superseded_keys(config: MockConfig, paths: CachePaths) -> None:
    """Remove this config's root caches made under an older key (the config changed) once unused."""
    base = paths.root_cache(config.name, config.root_cache_key())
    key_re = re.compile(rf"^{re.escape(config.name)}-[0-9a-f]{{16}}$")
    for old in base.parent.iterdir() if base.parent.is_dir() else []:
        if old == base or not key_re.match(old.name):
            continue
        key = old.name.rsplit("-", 1)[1]
        busy = False
        for gen in old.iterdir():
            if not _GEN_RE.match(gen.name):
                continue
            if not remove_unless_locked(gen, paths.lock(f"root-{config.name}-{key}-{gen.name}")):
                busy = True
        if not busy:
            remove_tree(old)


def prune_generations(config: MockConfig, paths: CachePaths, keep: str | None = None) -> None:
    """Remove generations other than ``current`` (and ``keep``) that no build is using."""
    base = paths.root_cache(config.name, config.root_cache_key())
    if not base.is_dir():
        return
    current = os.readlink(base / "current") if (base / "current").is_symlink() else None
    for d in base.iterdir():
        if d.name.startswith(".gen-") and ".tmp-" in d.name:
            pid = d.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                remove_tree(d)  # a bootstrap that was killed
            continue
        if not _GEN_RE.match(d.name) or d.name in (current, keep):
            continue
        remove_unless_locked(d, paths.lock(f"root-{config.name}-{config.root_cache_key()}-{d.name}"))


def ensure(
    config: MockConfig,
    paths: CachePaths,
    *,
    update: bool = False,
    log: Path,
    on_phase: Callable[[str], None] | None = None,
) -> RootCache:
    """Return a usable root cache for ``config``, bootstrapping it if missing, stale or ``update``."""
    paths.secure()
    base = paths.root_cache(config.name, config.root_cache_key())
    existing = _load(config, base)
    max_age = config.root_cache_max_age_days * 86400
    if existing and not update and time.time() - existing.created < max_age:
        return existing
    with flock(paths.lock(f"bootstrap-{config.name}-{config.root_cache_key()}")):
        again = _load(config, base)
        if again and again != existing:
            return again  # someone else bootstrapped while we waited
        if again and not update and time.time() - again.created < max_age:
            return again
        fresh = _bootstrap(config, base, log, on_phase)
    prune_generations(config, paths)
    prune_superseded_keys(config, paths)
    return fresh


@contextlib.contextmanager
def using(cache: RootCache, paths: CachePaths) -> Iterator[RootCache]:
    """Hold a shared lock on a root cache generation while it is used as a lower layer."""
    with flock(paths.lock(cache.lock_name), shared=True):
        if not cache.root.is_dir():
            raise InfraError(f"root cache {cache.root} disappeared; run again (it will be re-created)")
        yield cache
