"""What every tree-preparation step gets: :class:`PrepareJob` (one variant/arch's tree and the compose it
belongs to) and :class:`Step` (a name, the function, and the line the phase prints before it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose import treeops
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.manifest import Manifest, resolve_manifest_file
from deb_bootc_compose.phases.base import ComposeContext, Phase, VariantState
from deb_bootc_compose.variants import VariantSettings
from debsandbox.commands import Completed


@dataclass
class PrepareJob:
    """One variant/arch's tree being prepared. Every host-side edit goes through ``tree`` (paths resolved
    inside it); commands run in it through :meth:`in_tree` (the tree's user namespace, no network)."""

    ctx: ComposeContext
    vs: VariantState
    tree: Tree
    log_path: Path
    progress: Callable[[str], None]  # to the user and the phase log
    write_log: Callable[[str], None]  # to the phase log only
    kernel_version: str | None = None  # set by the kernel step

    @classmethod
    def of(cls, phase: Phase, vs: VariantState, tree: Tree) -> PrepareJob:
        return cls(ctx=phase.ctx, vs=vs, tree=tree, log_path=phase.log_path, progress=phase.progress,
                   write_log=phase.write_log)

    @property
    def label(self) -> str:
        return f"{self.vs.variant}/{self.vs.arch}"

    @property
    def manifest(self) -> Manifest:
        return self.ctx.manifest

    @property
    def settings(self) -> VariantSettings:
        """This variant's files, postprocess scripts, os-release keys… (the manifest's with the variant's own)."""
        return self.ctx.manifest.for_variant(self.vs.variant)

    @property
    def kver(self) -> str:
        if self.kernel_version is None:
            raise ComposeError(f"{self.label}: no kernel version yet (the kernel step runs first)")
        return self.kernel_version

    def check_cancelled(self) -> None:
        if self.ctx.cancel.is_set():
            raise KeyboardInterrupt("compose interrupted during ostree-prepare")

    def in_tree(self, argv: list[str], *, capture: bool = False, timeout: float = 3600,
                source_date_epoch: int | None = None) -> Completed:
        """Run ``argv`` in the tree (SOURCE_DATE_EPOCH set: the compose's, or ``source_date_epoch``; logged to the
        phase log); CommandError on failure."""
        sde = self.ctx.source_date_epoch if source_date_epoch is None else source_date_epoch
        env = {"SOURCE_DATE_EPOCH": str(sde)}
        return treeops.in_tree(self.tree.root, argv, log=self.log_path, env=env, cancel=self.ctx.cancel,
                               capture=capture, timeout=timeout)

    def own_dir(self, rel: str) -> None:
        """A directory compose writes its own files into. A link there that leads to a directory of the tree
        is followed (inside the tree); anything else there (a link to a host path, which means nothing in
        the image, a file) is replaced by a directory."""
        t = self.tree
        if t.lexists(rel) and not t.is_dir(rel):
            t.rmtree(rel)
        t.mkdir(rel, parents=True, exist_ok=True)

    def manifest_file(self, value: str, key: str) -> bytes:
        """A file the manifest names, resolved (and checked) the way the manifest's validation did."""
        try:
            path = resolve_manifest_file(self.ctx.manifest_path, value, allow_host_paths=self.ctx.allow_host_paths)
        except ValueError as exc:
            raise ComposeError(f"manifest {key}: {exc}") from exc
        return path.read_bytes()


@dataclass(frozen=True)
class Step:
    """One preparation step: ``run(job)`` does one thing to the tree. ``announce`` (with ``{kver}`` for the
    kernel version) is printed before it, for the steps that start a stage worth telling the user about."""

    name: str
    run: Callable[[PrepareJob], None]
    announce: str | None = None
