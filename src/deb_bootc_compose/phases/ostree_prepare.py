"""ostree-prepare: turn the mmdebstrap tree into an OSTree-ready tree (container form: /etc at the top).

The work is the ordered steps of :mod:`deb_bootc_compose.prepare` (one module each: host files, apt sources,
toplevel symlinks, users, files, postprocess scripts, image defaults, kernel, initramfs, /boot, sysimage,
/var to tmpfiles.d, API filesystems, adoption, lint); this phase runs them on each variant's tree.
"""

from __future__ import annotations

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.phases.base import Phase, VariantState
from deb_bootc_compose.prepare import PrepareJob, prepare_tree


class OstreePreparePhase(Phase):
    name = "ostree-prepare"
    needed_because = "the OSTree commit and the OCI image are made from the tree it prepares"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            if vs.tree is None:
                raise ComposeError(f"{vs.variant}/{vs.arch}: no rootfs tree to prepare")
            self.prepare(vs)

    def prepare(self, vs: VariantState) -> None:
        assert vs.tree is not None
        label = f"{vs.variant}/{vs.arch}"
        # every host-side edit of the tree resolves its paths inside it (packages may have planted links)
        with Tree(vs.tree) as t:
            job = PrepareJob.of(self, vs, t)
            try:
                prepare_tree(job)
            except OSError as exc:
                raise ComposeError(f"{label}: cannot edit the tree: {exc}") from exc
        self.progress(f"{label}: tree ready (kernel {vs.kernel_version}), lint clean")
