"""metadata: ``metadata/composeinfo.json``, ``images.json``, ``packages.json`` and ``ostree.json`` of the compose.

Runs after checksums (images.json carries every deliverable's SHA256) and also when a no-op recompose
reuses the previous deliverables.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from deb_bootc_compose import metadata as md
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.lockfile import LockedPackage, LockedVariant
from deb_bootc_compose.lockfile import load as load_lockfile
from deb_bootc_compose.phases.base import Phase, VariantState
from debarchive.digest import file_digests
from debarchive.dsc import strip_epoch


def package_rows(lock: LockedVariant | list[LockedPackage], builds: dict[str, dict[str, Any]] | None = None
                 ) -> list[md.PackageMeta]:
    """PackageMeta rows from a lockfile variant (``LockedVariant``) or a list of its package entries.

    ``builds`` (the build phase's record, SOURCE_VERSION → {build_id, task_id, hub, dest_tag}) marks each
    .deb that came from the hub's tag repository with the orchestrator build and task that made it.
    """
    builds = builds or {}
    items = lock if isinstance(lock, list) else lock.packages
    rows = []
    for p in items:
        source = p.source or p.name
        source_version = p.source_version or p.version
        repo = p.repo
        made = builds.get(f"{source}_{strip_epoch(source_version)}")
        if made is not None and repo != f"{made.get('hub')}/repos/{made.get('dest_tag')}":
            made = None  # the same source version, but this .deb came from elsewhere (e.g. the mirror)
        rows.append(
            md.PackageMeta(
                name=p.name,
                version=p.version,
                arch=p.arch,
                source=source,
                source_version=source_version,
                sha256=p.sha256,
                size=p.size,
                filename=p.filename,
                url=p.url,
                apt_source=repo,
                orchestrator_build=made.get("build_id") if made else None,
                orchestrator_task=made.get("task_id") if made else None,
            )
        )
    return rows


class MetadataPhase(Phase):
    name = "metadata"
    needed_because = "metadata/ (composeinfo.json, images.json, packages.json) is the compose's output contract"

    def compose_meta(self) -> md.ComposeMeta:
        m = self.ctx.manifest
        return md.ComposeMeta(
            compose_id=self.ctx.compose_id,
            release_name=str(m.name),
            release_short=m.short_name,
            release_version=str(m.version),
        )

    def _lock_for(self, vs: VariantState) -> LockedVariant:
        if vs.lock is not None:
            return vs.lock
        lock = self.ctx.lockfile
        if lock is None and self.ctx.paths.lockfile.is_file():
            lock = load_lockfile(self.ctx.paths.lockfile)
        if lock is None:
            raise ComposeError(f"{vs.variant}/{vs.arch}: no lockfile to list packages from ({self.ctx.paths.lockfile})")
        return lock.variant(vs.variant, vs.arch)

    def run(self) -> None:
        paths = self.ctx.paths
        meta = self.compose_meta()
        variants: dict[str, md.VariantMeta] = {}
        images: list[md.ImageMeta] = []
        packages: dict[str, dict[str, list[md.PackageMeta]]] = {}
        commits: list[md.OstreeMeta] = []
        repo = os.path.relpath(self.ctx.target.ostree_repo, paths.topdir)
        for vs in self.ctx.variants:
            if vs.ref and vs.commit:
                commits.append(md.OstreeMeta(vs.variant, vs.arch, vs.ref, vs.commit, repo))
            vm = variants.setdefault(vs.variant, md.VariantMeta(vs.variant))
            vm.arches.append(vs.arch)
            if any(img.format in ("qcow2", "raw") for img in vs.images):
                vm.images_dir[vs.arch] = os.path.relpath(paths.images_dir(vs.variant, vs.arch), paths.topdir)
            for img in vs.images:
                if not img.checksums.get("sha256"):
                    raise ComposeError(f"{img.path}: no SHA256 recorded; the checksums phase must run before metadata")
                images.append(
                    md.ImageMeta(
                        variant=vs.variant,
                        arch=vs.arch,
                        path=os.path.relpath(img.path, paths.topdir),
                        type=img.type,
                        format=img.format,
                        size=img.size or img.path.stat().st_size,
                        sha256=img.checksums["sha256"],
                        mtime=int(img.path.stat().st_mtime),
                        subvariant=vs.variant,
                    )
                )
            packages.setdefault(vs.variant, {})[vs.arch] = package_rows(
                self._lock_for(vs), self.ctx.orchestrator_builds
            )
        try:
            md.dump(md.compose_info(meta, variants.values()), paths.composeinfo)
            md.dump(md.images_manifest(meta, images), paths.images_json)
        except (md.MetadataError, ValueError, TypeError) as exc:
            raise ComposeError(f"metadata: {exc}") from exc
        md.write_json(paths.packages_json, md.packages_manifest(meta, packages))
        try:
            md.write_json(paths.ostree_json, md.ostree_manifest(meta, commits))
        except md.MetadataError as exc:
            raise ComposeError(f"metadata: {exc}") from exc
        extra = self.extra_files()
        try:
            md.write_json(paths.extra_files_json, md.extra_files_manifest(meta, extra))
        except md.MetadataError as exc:
            raise ComposeError(f"metadata: {exc}") from exc
        count = sum(len(rows) for per_arch in packages.values() for rows in per_arch.values())
        self.progress(f"wrote composeinfo.json, images.json ({len(images)} images), packages.json ({count} packages), "
                      f"ostree.json ({len(commits)} commits), extra-files.json ({len(extra)} files)")

    def extra_files(self) -> list[md.ExtraFileMeta]:
        """The files plugins listed (the SBOMs…), with their size and SHA-256 now."""
        out = []
        for f in self.ctx.extra_files:
            path = self.ctx.paths.topdir / f.path
            size, digests = file_digests(path, ["sha256"])
            out.append(dataclasses.replace(f, size=size, sha256=digests["sha256"]))
        return out
