"""The single source of truth for where things live in a target directory and in one compose.

```
TARGET/<COMPOSE_ID>/STATUS, metadata/, compose/<variant>/<arch>/{oci,images,CHECKSUM}, logs/, work/
TARGET/ostree/repo            shared archive-mode OSTree repo
TARGET/pool/                  content-addressed .deb pool shared by composes
TARGET/latest-<short>-<version> -> <COMPOSE_ID>
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TargetPaths:
    """Paths shared by every compose in one target directory."""

    target: Path

    @property
    def ostree_repo(self) -> Path:
        return self.target / "ostree" / "repo"

    @property
    def pool(self) -> Path:
        return self.target / "pool"

    @property
    def state(self) -> Path:
        """Cross-compose state: input hashes, previous layer plans, locks."""
        return self.target / ".state"

    def pool_deb(self, sha256: str) -> Path:
        """Where the pool keeps the .deb whose SHA-256 is ``sha256``."""
        return self.pool / "by-sha256" / sha256[:2] / f"{sha256}.deb"

    def apt_root(self, key: str) -> Path:
        """A private apt configuration (sources, keyrings, lists, empty dpkg status), cached across composes."""
        return self.state / "apt" / key

    @property
    def bare_repo(self) -> Path:
        """The bare OSTree repo commits are made in first (fast), then pulled into :attr:`ostree_repo`."""
        return self.state / "ostree-bare"

    def input_record(self, input_hash: str) -> Path:
        """What a FINISHED compose with these inputs produced, for no-op recomposes."""
        return self.state / "inputs" / f"{input_hash}.json"

    @property
    def lock(self) -> Path:
        """Held (flock) while a compose runs in this target directory."""
        return self.state / "compose.lock"

    def latest_link(self, short: str, version: str) -> Path:
        return self.target / f"latest-{short}-{version}"

    def compose(self, compose_id: str) -> ComposePaths:
        return ComposePaths(self.target / compose_id, self)


@dataclass(frozen=True)
class ComposePaths:
    """Paths inside one compose directory."""

    topdir: Path
    target: TargetPaths

    @property
    def compose_id(self) -> str:
        return self.topdir.name

    @property
    def status(self) -> Path:
        return self.topdir / "STATUS"

    @property
    def metadata(self) -> Path:
        return self.topdir / "metadata"

    @property
    def lockfile(self) -> Path:
        return self.metadata / "lockfile.yaml"

    @property
    def logs(self) -> Path:
        return self.topdir / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def work(self) -> Path:
        """Scratch space (rootfs trees, temporary repos); removed when the compose finishes."""
        return self.topdir / "work"

    def variant_dir(self, variant: str, arch: str) -> Path:
        return self.topdir / "compose" / variant / arch

    def oci_dir(self, variant: str, arch: str) -> Path:
        return self.variant_dir(variant, arch) / "oci"

    def images_dir(self, variant: str, arch: str) -> Path:
        return self.variant_dir(variant, arch) / "images"

    def checksum_file(self, variant: str, arch: str) -> Path:
        return self.variant_dir(variant, arch) / "CHECKSUM"

    def log_global(self) -> Path:
        return self.logs / "global.log"

    def local_repo(self, variant: str, arch: str) -> Path:
        """The locked .debs of one variant/arch as a local apt repository mmdebstrap installs from."""
        return self.work / variant / arch / "repo"

    def tree(self, variant: str, arch: str) -> Path:
        """The prepared root filesystem (container form: /etc at the top level)."""
        return self.work / variant / arch / "tree"
