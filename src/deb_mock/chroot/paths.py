"""Where deb-mock keeps things under its cache directory (one place, so nothing computes paths itself).

```
CACHE/root-cache/<config>-<key>/current -> gen-<n>    root caches (one generation per bootstrap)
CACHE/root-cache/<config>-<key>/gen-<n>/root/          the bootstrapped tree (ns-owned)
CACHE/root-cache/<config>-<key>/gen-<n>/lists/<ms>/    fresh apt lists once the tree's are stale (aptlists)
CACHE/deps-cache/<entry>/upper/                          build-dependency snapshots (overlay upper dirs)
CACHE/builds/<config>/<id>/                              throw-away build roots
CACHE/failed/<config>/                                   the root of the last failed build of a config
CACHE/chroots/<config>/                                  the persistent working chroot (--init/--shell)
CACHE/scratch/<name>/                                    short-lived work directories (--copyout's staging)
CACHE/ccache/<config>/<source>/                          the ccache plugin's caches (one per config and source)
CACHE/locks/                                             flock files (removed when free)
```

Run by root, the directories holding trees (root-cache, deps-cache, builds, failed, chroots, scratch, ccache)
are root's and 0700: the trees in them are owned by the sandbox's mapped ids (the overlay shows them with their
real owners), so no host path may lead a mapped id to them. Sandboxes reach their layers only through bind
mounts that real root makes for them (see :mod:`debsandbox.nsexec`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("DEB_MOCK_CACHE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/deb-mock")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deb-mock"


@dataclass(frozen=True)
class CachePaths:
    root: Path

    def root_cache(self, config: str, key: str) -> Path:
        return self.root / "root-cache" / f"{config}-{key}"

    @property
    def deps_cache(self) -> Path:
        return self.root / "deps-cache"

    def builds(self, config: str) -> Path:
        return self.root / "builds" / config

    def failed(self, config: str) -> Path:
        return self.root / "failed" / config

    def chroot(self, config: str) -> Path:
        return self.root / "chroots" / config

    def scratch(self, name: str) -> Path:
        """A short-lived work directory (the caller makes it and removes it)."""
        return self.root / "scratch" / name

    def ccaches(self, config: str) -> Path:
        """The ccache plugin's caches of one config (``--scrub c-cache`` removes them)."""
        return self.root / "ccache" / config

    def ccache(self, config: str, source: str) -> Path:
        """The ccache plugin's cache of one source package built with one config (written by its builds)."""
        return self.ccaches(config) / source

    def lock(self, name: str) -> Path:
        """The lock file ``name`` (its directory made if need be)."""
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        return self.root / "locks" / f"{name}.lock"

    def secure(self) -> None:
        """Create the cache directory; run by root, make the directories that hold trees (root caches,
        snapshots, build roots, working chroots) root's and 0700, also when they exist already. Only
        deb-mock's own subdirectories: the cache directory itself may be anything the caller chose."""
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        for d in (
            self.root / "root-cache",
            self.deps_cache,
            self.root / "builds",
            self.root / "failed",
            self.root / "chroots",
            self.root / "scratch",
            self.root / "ccache",
        ):
            d.mkdir(exist_ok=True)
            st = d.lstat()
            if st.st_uid != 0 or st.st_gid != 0:
                os.lchown(d, 0, 0)
            if st.st_mode & 0o7777 != 0o700:
                d.chmod(0o700)
