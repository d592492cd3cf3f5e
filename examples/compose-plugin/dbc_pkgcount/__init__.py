"""An example deb-bootc-compose plugin (docs/plugins.md): after gather, the number of packages of every
variant/arch in ``metadata/plugins/pkgcount/counts.json``, listed in ``metadata/extra-files.json``; with the
option ``max_packages: N`` a variant with more packages fails the compose.

Enable it in a manifest with ``plugins: {pkgcount: {max_packages: 400}}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deb_bootc_compose.plugins.api import Plugin, PluginContext, PluginError


class PackageCount(Plugin):
    name = "pkgcount"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.max_packages = int(self.options.pop("max_packages", 0))  # 0: no limit
        if self.options:
            raise ValueError(f"unknown option(s): {', '.join(sorted(self.options))}")

    def after(self, phase: str, ctx: PluginContext) -> None:
        if phase != "gather" or ctx.lockfile is None:
            return
        counts = {f"{v.variant}/{v.arch}": len(ctx.lockfile.variant(v.variant, v.arch).packages)
                  for v in ctx.variants}
        out = ctx.paths.plugin_dir("pkgcount") / "counts.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
        ctx.add_file(out, kind="package-counts", format="json")
        ctx.log(f"{counts} (compose {ctx.compose_id})", show=True)
        over = {k: n for k, n in counts.items() if self.max_packages and n > self.max_packages}
        if over:
            raise PluginError(f"pkgcount: more than {self.max_packages} packages in {over}")
