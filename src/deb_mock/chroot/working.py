"""The persistent working chroot of a config (``--init``, ``--install``, ``--shell``) and cleaning up.

It is an overlay upper directory over the config's current root cache, kept until ``--clean``. If the
root cache is refreshed, the working chroot is made again (its changes sat on the old root).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deb_mock.chroot import rootcache
from deb_mock.chroot.paths import CachePaths
from deb_mock.config import SANDBOX_HOSTNAME, MockConfig
from deb_mock.errors import BadInput
from debsandbox import idmap
from debsandbox.sandbox import Bind, OverlayRoot, Sandbox, launcher_argv, launcher_env, owned_dir, remove_tree


@dataclass(frozen=True)
class WorkingRoot:
    """A root to run commands in: lower layers plus an upper directory."""

    lower: tuple[Path, ...]
    upper: Path
    label: str

    def sandbox(self, *, network: bool, binds: list[Bind] | None = None) -> Sandbox:
        base = self.upper.parent
        return Sandbox(
            root=OverlayRoot(self.lower, self.upper, base / f"{self.upper.name}.work"),
            binds=list(binds or []),
            network=network,
            hostname=SANDBOX_HOSTNAME,
            env={"DEBIAN_FRONTEND": "noninteractive", "TERM": os.environ.get("TERM", "xterm")},
        )


def init(config: MockConfig, paths: CachePaths, cache: rootcache.RootCache) -> tuple[WorkingRoot, bool]:
    """Return the working chroot, making it if needed; the flag says whether it was (re)made."""
    base = paths.chroot(config.name)
    meta_path = base / "meta.json"
    made = False
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("root") != str(cache.root):
            remove_tree(base)
    if not meta_path.is_file():
        owned_dir(base)
        owned_dir(base / "upper")
        meta_path.write_text(json.dumps({"root": str(cache.root), "ident": cache.ident}))
        made = True
    return WorkingRoot((cache.root,), base / "upper", f"working chroot {base}"), made


def kept_root(config: MockConfig, paths: CachePaths) -> WorkingRoot | None:
    """The kept root of the config's last build (a failed one, or one run with ``--no-clean``), if its
    layers still exist."""
    base = paths.failed(config.name)
    try:
        meta = json.loads((base / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    lower = tuple(Path(p) for p in meta["lower"])
    if not all(p.is_dir() for p in lower):
        return None
    which = "failed build" if meta.get("state", "failed") != "success" else "build (kept with --no-clean)"
    return WorkingRoot(lower, base / meta.get("upper", "upper"), f"root of the last {which} ({base})")


def shell_root(config: MockConfig, paths: CachePaths, cache: rootcache.RootCache) -> WorkingRoot:
    """Where ``--shell``, ``--copyin`` and ``--copyout`` work: the kept root of the last build, else the
    working chroot (made if need be)."""
    return kept_root(config, paths) or init(config, paths, cache)[0]


def interactive(sandbox: Sandbox, argv: list[str]) -> int:
    """Run ``argv`` in the sandbox attached to this terminal (for ``--shell``); return its exit code."""
    spec = sandbox.write_spec(argv, idmap.current())
    try:
        return subprocess.call(launcher_argv(spec), env=launcher_env())
    finally:
        os.unlink(spec)


def clean(config: MockConfig, paths: CachePaths) -> list[Path]:
    """Remove the working chroot, the kept failed root and stale build roots of ``config``."""
    removed = []
    for p in (paths.chroot(config.name), paths.failed(config.name), paths.builds(config.name)):
        if p.exists():
            remove_tree(p)
            removed.append(p)
    return removed


SCRUB_CHOICES = ("all", "chroot", "cache", "root-cache", "deps-cache", "c-cache")


def scrub(config: MockConfig, paths: CachePaths, what: str) -> list[Path]:
    """mock's ``--scrub``: chroot, root-cache, deps-cache, c-cache (the ccache plugin's caches of the config),
    cache (= every cache), all (= everything)."""
    if what not in SCRUB_CHOICES:
        raise BadInput(f"unknown --scrub value {what!r}; choose from {', '.join(SCRUB_CHOICES)}")
    removed: list[Path] = []
    if what in ("chroot", "all"):
        removed += clean(config, paths)
    if what in ("root-cache", "cache", "all"):
        rc = paths.root_cache(config.name, config.root_cache_key())
        if rc.exists():
            remove_tree(rc)
            removed.append(rc)
    ccache = paths.ccaches(config.name)
    if what in ("c-cache", "cache", "all") and (ccache.exists() or ccache.is_symlink()):
        remove_tree(ccache)
        removed.append(ccache)
    if what in ("deps-cache", "cache", "all") and paths.deps_cache.exists():
        key = config.root_cache_key()
        for entry in paths.deps_cache.iterdir():
            try:
                root = json.loads((entry / "meta.json").read_text()).get("root", "")
            except (OSError, ValueError):
                root = key if entry.name.startswith(".") else ""
            if str(root).startswith(key) or entry.name == ".resolved":
                remove_tree(entry)
                removed.append(entry)
    return removed
