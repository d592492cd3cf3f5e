"""gather: resolve the full package set with a private apt, keep the .debs in the pool, write the lockfile.

With ``--lockfile FILE`` nothing is resolved: exactly the locked versions are used, from the pool (or
downloaded from their recorded URL when the pool lacks them).
"""

from __future__ import annotations

from pathlib import Path

from deb_bootc_compose import pool
from deb_bootc_compose.aptconfig import PackageIndex, PrivateApt, ResolvedPackage
from deb_bootc_compose.clientdeb import ClientDeb
from deb_bootc_compose.clientsource import TaggedClient
from deb_bootc_compose.derive import pins as derive_pins
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.lockfile import AddedPackage, LockedPackage, LockedVariant, Lockfile, LockfileError
from deb_bootc_compose.lockfile import load as load_lockfile
from deb_bootc_compose.phases.base import Phase, VariantState
from deb_bootc_compose.resolution_cache import ReleaseState, ResolutionCache

KERNEL_FLAVOUR = {"amd64": "amd64", "arm64": "arm64", "i386": "686", "ppc64el": "powerpc64le", "s390x": "s390x",
                  "riscv64": "riscv64", "armhf": "armmp"}
GRUB_EFI = {"amd64": "grub-efi-amd64-bin", "arm64": "grub-efi-arm64-bin", "i386": "grub-efi-ia32-bin",
            "riscv64": "grub-efi-riscv64-bin", "armhf": "grub-efi-arm-bin"}


def bootable_additions(requested: list[str], arch: str) -> list[AddedPackage]:
    """What every bootable OSTree image needs, whether or not a disk image is asked for."""
    have = set(requested)
    out = [
        AddedPackage(name="ostree", reason="ostree admin and the OSTree deployment tools"),
        AddedPackage(name="ostree-boot", reason="ostree-prepare-root, the dracut module and 15_ostree"),
        AddedPackage(name="dracut", reason="the initramfs (only dracut carries the ostree module)"),
        AddedPackage(name="grub2-common", reason="/etc/default/grub and grub-mkconfig for ostree's grub2 backend"),
    ]
    if arch in GRUB_EFI:
        out.append(AddedPackage(name=GRUB_EFI[arch], reason="GRUB's EFI modules for the disk image's bootloader"))
    if not any(p.startswith("linux-image-") for p in requested):
        flavour = KERNEL_FLAVOUR.get(arch, arch)
        out.append(AddedPackage(name=f"linux-image-{flavour}", reason="a kernel (the manifest names none)"))
    return [a for a in out if a.name not in have]


class GatherPhase(Phase):
    name = "gather"
    needed_because = "every later phase works from the lockfile it writes"

    def run(self) -> None:
        given = self.ctx.lockfile_in
        cache: ResolutionCache | None = None
        releases: dict[str, ReleaseState] | None = None
        reused = False
        if given:
            lock = self._from_lockfile(given)
        else:
            client, base = self.ctx.client_deb, self.ctx.manifest.derived_from
            extra = (client.cache_key if client else "") + (f"base:{base.lockfile.digest()}" if base else "")
            cache = ResolutionCache(self.ctx.target.state, self.ctx.manifest, self.ctx.manifest_path.parent,
                                    extra=extra)
            releases, why = cache.check()
            previous, why_not = cache.reusable(releases)
            if previous is not None:
                lock, reused = previous, True
                self.progress(f"{why_not}: reusing that resolution (apt not run)")
            else:
                self.progress(f"resolving: {why or why_not}")
                lock = self._resolve()
        all_pkgs = [p for per_arch in lock.variants.values() for lv in per_arch.values() for p in lv.packages]
        n, size = pool.ensure(self.ctx.target, all_pkgs, cancel=self.ctx.cancel, progress=self.progress)
        self.progress(f"pool: {n} packages downloaded ({size / 1e6:.1f} MB), {len(all_pkgs)} in use")
        if not given and not reused:
            lock.source_date_epoch = max(pool.deb_timestamp(self.ctx.target.pool_deb(p.sha256)) for p in all_pkgs)
            if cache is not None and releases is not None:
                lists = [PrivateApt.lists_dir(self.ctx.target.apt_root(PrivateApt.key_for(self.ctx.manifest, a)))
                         for a in {vs.arch for vs in self.ctx.variants}]
                not_recorded = cache.record(releases, lock, lists, self.ctx.compose_id)
                if not_recorded:
                    self.progress(f"resolution not remembered: {not_recorded}")
        base = self.ctx.manifest.derived_from
        lock.base = derive_pins.record(base) if base is not None else None
        lock.write(self.ctx.paths.lockfile)
        self.ctx.source_date_epoch = lock.source_date_epoch
        self.ctx.lockfile = lock
        for vs in self.ctx.variants:
            lv = lock.variant(vs.variant, vs.arch)
            vs.lock = lv
            vs.added_packages = [a.name for a in lv.added]
        self.progress(f"lockfile {self.ctx.paths.lockfile} (SOURCE_DATE_EPOCH={lock.source_date_epoch})")

    def _from_lockfile(self, path: Path) -> Lockfile:
        try:
            lock = load_lockfile(path)
        except LockfileError as exc:
            raise ComposeError(str(exc)) from None
        m = self.ctx.manifest
        if lock.suite != m.suite:
            raise ComposeError(f"{path}: the lockfile is for suite {lock.suite!r} but the manifest says {m.suite!r}")
        for vs in self.ctx.variants:
            try:
                lock.variant(vs.variant, vs.arch)
            except LockfileError as exc:
                raise ComposeError(f"{path}: {exc}") from None
        # the lockfile belongs to this compose's identity now (same content, new compose ID)
        lock.name, lock.version = m.name, m.version
        self.progress(f"using lockfile {path}: nothing resolved")
        return lock

    def _resolve(self) -> Lockfile:
        m = self.ctx.manifest
        variants: dict[str, dict[str, LockedVariant]] = {}
        by_arch: dict[str, list[VariantState]] = {}
        for vs in self.ctx.variants:
            by_arch.setdefault(vs.arch, []).append(vs)
        for arch, states in by_arch.items():
            self.check_cancelled()
            apt = PrivateApt(
                self.ctx.target.apt_root(PrivateApt.key_for(m, arch)), m, arch, self.ctx.manifest_path.parent
            )
            apt.setup()
            self.progress(f"{arch}: apt-get update ({len(m.sources)} sources, private configuration)")
            apt.update(self.log_path, cancel=self.ctx.cancel)
            idx = apt.index()
            base = sorted(idx.essential | idx.required | {"apt"})
            for vs in states:
                self.check_cancelled()
                requested = m.variant_packages(vs.variant)
                self._check_names(requested, idx, arch)
                boot = bootable_additions(requested, arch)
                added = boot + self._client_additions([*requested, *(a.name for a in boot)])
                self.progress(
                    f"{vs.variant}/{arch}: resolving {len(requested)} requested + {len(added)} added packages "
                    f"+ the essential/required base"
                )
                names = [*base, *requested, *(a.name for a in added)]
                if m.derived_from is not None:
                    versions = derive_pins.pins(m.derived_from, arch, m, vs.variant)
                    self.progress(f"{vs.variant}/{arch}: {len(versions)} packages at the versions of the base "
                                  f"{m.derived_from.label} ({m.derived_from.variant})")
                    names = derive_pins.pinned(names, versions)
                try:
                    resolved = self._apt_resolve(apt, names)
                except ComposeError as exc:
                    if m.derived_from is None or "was not found" not in str(exc):
                        raise
                    raise ComposeError(f"{exc}\nthe versions of the base {m.derived_from.label} are no longer "
                                       "in the sources: compose the base again, then this manifest") from None
                client = self.ctx.client_deb
                locked = [client.locked()] if isinstance(client, ClientDeb) else []
                for r in resolved:
                    src, srcver = idx.source_of.get((r.name, r.version, r.arch), (r.name, r.version))
                    locked.append(
                        LockedPackage(name=r.name, version=r.version, arch=r.arch, sha256=r.sha256, size=r.size,
                                      url=r.url, repo=r.repo, source=src, source_version=srcver)
                    )
                variants.setdefault(vs.variant, {})[arch] = LockedVariant(
                    requested=requested, added=added, packages=sorted(locked, key=lambda p: p.name)
                )
                mb = sum(p.size for p in locked) / 1e6
                self.progress(f"{vs.variant}/{arch}: {len(locked)} packages, {mb:.1f} MB")
        return Lockfile(
            name=m.name,
            version=m.version,
            suite=m.suite,
            source_date_epoch=0,
            sources=[s.model_dump(mode="json", exclude_none=True) for s in m.sources],
            variants=variants,
        )

    def _apt_resolve(self, apt: PrivateApt, names: list[str]) -> list[ResolvedPackage]:
        """apt's resolution of ``names``: a client built locally is left out (the build phase made its .deb),
        one the orchestrator built is asked for at its exact version (``deb-bootc=VERSION``, from the tag)."""
        client, m = self.ctx.client_deb, self.ctx.manifest
        if client is not None:
            names = [n for n in names if n != client.name]
        if not isinstance(client, TaggedClient):
            return apt.resolve(names, m.exclude, self.log_path, cancel=self.ctx.cancel)
        try:
            resolved = apt.resolve([*names, client.apt_request], m.exclude, self.log_path, cancel=self.ctx.cancel)
        except ComposeError as exc:
            raise ComposeError(f"{exc}\n{client.name} {client.version} was built by the orchestrator into the "
                               f"tag {client.dest_tag} (build {client.build_id}); the manifest's orchestrator "
                               f"source must be that tag or one inheriting from it") from None
        got = [r for r in resolved if r.name == client.name]
        if [r.version for r in got] != [client.version]:
            raise ComposeError(f"apt resolved {client.name} {[r.version for r in got]}, not the orchestrator's "
                               f"build {client.version} from {client.dest_tag}")
        return resolved

    def _client_additions(self, have_already: list[str]) -> list[AddedPackage]:
        """The deb-bootc client (built by the build phase) and what it needs, for a manifest with ``update:``."""
        m, deb = self.ctx.manifest, self.ctx.client_deb
        if m.update is None:
            return []
        if deb is None:
            self.progress("the manifest has update: but the build phase was skipped: the image gets no deb-bootc")
            return []
        have = set(have_already)
        out = [AddedPackage(name=d, reason=f"needed by {deb.name}") for d in deb.depends]
        if m.update.registry is not None:
            out.append(AddedPackage(name="skopeo", reason=f"{deb.name} switch/upgrade from a registry"))
        out = [a for a in out if a.name not in have]
        # built locally, deb-bootc is not in apt's sources: it joins the locked set as the .deb the build phase
        # made; built by the orchestrator, apt takes it from the destination tag at its exact version
        reason = "the update client (the manifest has update:)"
        if isinstance(deb, TaggedClient):
            reason += f", built by the orchestrator ({deb.name} {deb.version} in {deb.dest_tag})"
        return [AddedPackage(name=deb.name, reason=reason), *out]

    def _check_names(self, requested: list[str], idx: PackageIndex, arch: str) -> None:
        m = self.ctx.manifest
        unknown = [p for p in requested if p not in idx.names and p not in idx.provides]
        if unknown:
            suites = "; ".join(f"{s.repo_url()} {s.repo_suite(m.suite)} {' '.join(s.components)}" for s in m.sources)
            raise ComposeError(
                f"package(s) {', '.join(unknown)} not found in suite {m.suite} for {arch} (sources: {suites}); "
                "check the spelling, or add the source that has them to 'sources:'"
            )
