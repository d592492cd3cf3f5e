"""The single source of truth for where things live in a target directory and in one compose.

```
TARGET/<COMPOSE_ID>/STATUS, metadata/, compose/<variant>/<arch>/{oci,images,CHECKSUM}, logs/, work/
TARGET/ostree/repo            shared archive-mode OSTree repo
TARGET/pool/                  content-addressed .deb pool shared by composes
TARGET/.state/                cross-compose state (input records, apt roots, layer plans, publish records, locks)
TARGET/latest-<short>-<version> -> <COMPOSE_ID>
```
No other module joins names under a compose or target directory: they ask these classes. A compose
directory found on its own (``diff``, ``boot-test``, ``install-to-disk``) is read through
:meth:`ComposePaths.at`.
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

    def client_debs(self, source_hash: str) -> Path:
        """The deb-bootc .deb built from the client source whose hash is ``source_hash`` (hard links of pool
        files: the pool keeps local builds by source as well as by content)."""
        return self.pool / "by-source" / "deb-bootc" / source_hash

    def apt_root(self, key: str) -> Path:
        """A private apt configuration (sources, keyrings, lists, empty dpkg status), cached across composes."""
        return self.state / "apt" / key

    @property
    def bare_repo(self) -> Path:
        """The bare OSTree repo commits are made in first (fast), then pulled into :attr:`ostree_repo`."""
        return self.state / "ostree-bare"

    @property
    def input_records(self) -> Path:
        return self.state / "inputs"

    @property
    def hook_roots(self) -> Path:
        """Where a manifest hook's throwaway sandbox root is made (one per command, removed after it)."""
        return self.state / "hook-roots"

    def input_record(self, input_hash: str) -> Path:
        """What a FINISHED compose with these inputs produced, for no-op recomposes."""
        return self.input_records / f"{input_hash}.json"

    @property
    def lock(self) -> Path:
        """Held (flock) while a compose runs in this target directory."""
        return self.state / "compose.lock"

    @property
    def prune_lock(self) -> Path:
        """Held exclusively by ``prune``, shared by ``publish`` while it reads this target's commits."""
        return self.state / "prune.lock"

    @property
    def trash(self) -> Path:
        """Compose directories ``prune`` has taken out of the target and is removing (emptied by the next prune)."""
        return self.state / "trash"

    @property
    def published(self) -> Path:
        """``publish``'s records of where this target's commits were published (one JSON file per repository)."""
        return self.state / "published"

    @property
    def derived_uses(self) -> Path:
        """Records of derived composes (anywhere) built on a compose of this target (one JSON file each)."""
        return self.state / "derived"

    def oci_plan(self, name: str, variant: str, arch: str) -> Path:
        """The layer plan of the last FINISHED compose of manifest ``name``'s variant/arch (the next one's start)."""
        return self.state / "oci-plans" / f"{name}-{variant}.{arch}.json"

    def latest_link(self, short: str, version: str) -> Path:
        return self.target / f"latest-{short}-{version}"

    def compose(self, compose_id: str) -> ComposePaths:
        return ComposePaths(self.target / compose_id, self)


@dataclass(frozen=True)
class ComposePaths:
    """Paths inside one compose directory."""

    topdir: Path
    target: TargetPaths

    @classmethod
    def at(cls, topdir: Path) -> ComposePaths:
        """The paths of an existing compose directory (its target directory is the one above it)."""
        return cls(topdir, TargetPaths(topdir.parent))

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
    def manifest_copy(self) -> Path:
        """The manifest the compose was made from, as given (a derived manifest: with its base merged in)."""
        return self.metadata / "manifest.yaml"

    @property
    def composeinfo(self) -> Path:
        return self.metadata / "composeinfo.json"

    @property
    def images_json(self) -> Path:
        return self.metadata / "images.json"

    @property
    def packages_json(self) -> Path:
        return self.metadata / "packages.json"

    @property
    def ostree_json(self) -> Path:
        return self.metadata / "ostree.json"

    @property
    def client_build(self) -> Path:
        """deb-mock's result directory when the build phase builds the deb-bootc client locally."""
        return self.work / "client-build"

    @property
    def client_source(self) -> Path:
        """The deb-bootc client's source package made for the orchestrator (manifest with ``build.target``)."""
        return self.work / "client-source"

    @property
    def builds_json(self) -> Path:
        """What the build phase had the orchestrator build (only when the manifest has ``build:``)."""
        return self.metadata / "builds.json"

    @property
    def phases_json(self) -> Path:
        """Which phases ran, which were skipped and why."""
        return self.metadata / "phases.json"

    @property
    def extra_files_json(self) -> Path:
        """Our own list of the files besides images.json's (the SBOMs, what plugins add): path, variant, arch,
        kind, format, size, sha256."""
        return self.metadata / "extra-files.json"

    @property
    def sbom_dir(self) -> Path:
        return self.metadata / "sbom"

    def sbom(self, variant: str, arch: str) -> Path:
        """The SPDX 2.3 JSON document of one variant/arch image (the ``sbom`` plugin)."""
        return self.sbom_dir / f"{variant}.{arch}.spdx.json"

    def plugin_dir(self, name: str) -> Path:
        """Where plugin ``name`` writes its own metadata files (then lists them with ``ctx.add_file``)."""
        return self.metadata / "plugins" / name

    def plugin_log(self, name: str) -> Path:
        """A plugin's own log (``hooks`` for the manifest's hook commands)."""
        return self.logs / f"plugin-{name}.log"

    @property
    def hooks_log(self) -> Path:
        """What the manifest's hook commands printed."""
        return self.logs / "hooks.log"

    @property
    def logs(self) -> Path:
        return self.topdir / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def work(self) -> Path:
        """Scratch space (rootfs trees, temporary repos); removed when the compose finishes."""
        return self.topdir / "work"

    @property
    def deliverables(self) -> Path:
        """``compose/``: every deliverable (removed as a whole when the compose is DOOMED)."""
        return self.topdir / "compose"

    def variant_dir(self, variant: str, arch: str) -> Path:
        return self.deliverables / variant / arch

    def oci_dir(self, variant: str, arch: str) -> Path:
        return self.variant_dir(variant, arch) / "oci"

    def oci_plan(self, variant: str, arch: str) -> Path:
        """The layer plan the image of this variant/arch was cut with."""
        return self.oci_dir(variant, arch) / "layer-plan.json"

    def images_dir(self, variant: str, arch: str) -> Path:
        return self.variant_dir(variant, arch) / "images"

    def checksum_file(self, variant: str, arch: str) -> Path:
        return self.variant_dir(variant, arch) / "CHECKSUM"

    def log_global(self) -> Path:
        return self.logs / "global.log"

    def variant_work(self, variant: str, arch: str) -> Path:
        """Scratch space of one variant/arch (its tree, its local repository, the disk builder's files)."""
        return self.work / variant / arch

    def local_repo(self, variant: str, arch: str) -> Path:
        """The locked .debs of one variant/arch as a local apt repository mmdebstrap installs from."""
        return self.variant_work(variant, arch) / "repo"

    def tree(self, variant: str, arch: str) -> Path:
        """The prepared root filesystem (container form: /etc at the top level)."""
        return self.variant_work(variant, arch) / "tree"

    def mmdebstrap_tmp(self, variant: str, arch: str) -> Path:
        """mmdebstrap's TMPDIR and HOME (next to the tree, inside the work directory it is given)."""
        return self.variant_work(variant, arch) / "mmdebstrap-tmp"

    def git_source(self, index: int) -> Path:
        """Where the build phase checks out ``build.sources[index]`` (a git source) and makes its .dsc."""
        return self.work / "git-sources" / str(index)
