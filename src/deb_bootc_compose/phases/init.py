"""init: create the compose directory (already named by the compose ID), write STATUS STARTED, copy the manifest
(a derived manifest: with its base merged in, and the base's target told that this compose uses it), set up the
variant states."""

from __future__ import annotations

import shutil

from deb_bootc_compose import status
from deb_bootc_compose.derive.inherit import effective_yaml
from deb_bootc_compose.derive.records import record_use
from deb_bootc_compose.phases.base import Phase, VariantState


class InitPhase(Phase):
    name = "init"
    needed_because = "it creates the compose directory, its STATUS and the variant list"

    def run(self) -> None:
        p = self.ctx.paths
        for d in (p.metadata, p.logs, p.work):
            d.mkdir(parents=True, exist_ok=True)
        status.write(p, status.STARTED)
        m = self.ctx.manifest
        base = m.derived_from
        if base is None:
            shutil.copyfile(self.ctx.manifest_path, p.manifest_copy)
        else:
            p.manifest_copy.write_text(effective_yaml(m, base))
            record_use(base, p)
            self.progress(f"derived from {base.label} variant {base.variant}")
        self.ctx.variants = [
            VariantState(variant=v, arch=a, packages=m.variant_packages(v), ref=m.ref_for(v, a))
            for v in m.variants
            for a in m.arches
        ]
        self.progress(
            f"compose {self.ctx.compose_id} ({self.ctx.compose_type}): "
            + ", ".join(f"{v.variant}/{v.arch} -> {v.ref}" for v in self.ctx.variants)
        )
