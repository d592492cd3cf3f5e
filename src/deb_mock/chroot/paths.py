"""Where deb-mock keeps things under its cache directory (one place, so nothing computes paths itself).

```
CACHE/root-cache/<config>-<key>/current -> gen-<n>    root caches (one generation per bootstrap)
CACHE/root-cache/<config>-<key>/gen-<n>/root/          the bootstrapped tree (ns-owned)
CACHE/deps-cache/<entry>/upper/                          build-dependency snapshots (overlay upper dirs)
CACHE/builds/<config>/<id>/                              throw-away build roots
CACHE/failed/<config>/                                   the root of the last failed build of a config
CACHE/chroots/<config>/                                  the persistent working chroot (--init/--shell)
CACHE/locks/                                             flock files (removed when free)
```
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

    def lock(self, name: str) -> Path:
        return self.root / "locks" / f"{name}.lock"
