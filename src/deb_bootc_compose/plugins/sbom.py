"""The built-in ``sbom`` plugin (on unless the manifest says ``plugins: {sbom: false}``): after ostree-commit,
an SPDX 2.3 JSON document per image, ``metadata/sbom/VARIANT.ARCH.spdx.json``, listed in
``metadata/extra-files.json``.

Every .deb of the image: name, version, architecture, source package, the SHA-256 the pool holds it under
(the lockfile's, verified when it entered the pool), its purl ``pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=SUITE``
and the licence its machine-readable copyright file in the tree declares (:mod:`deb_bootc_compose.sbom.copyright`:
no link followed, bounded reads; NOASSERTION otherwise). A no-op recompose, which makes no tree, copies the
documents of the compose it reuses: they are the same bytes (the document depends on the inputs only).
Options: ``namespace`` (the URL the documentNamespace starts with).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Mapping
from typing import Any

from deb_bootc_compose import __version__
from deb_bootc_compose.plugins.api import Plugin, PluginContext, PluginError, VariantView
from deb_bootc_compose.sbom import copyright as dcopyright
from deb_bootc_compose.sbom import document

KIND, FORMAT = "sbom", "spdx-2.3+json"
NAMESPACE = re.compile(r"^https?://[!#-~]+$")


class SbomPlugin(Plugin):
    name = "sbom"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - {"namespace"})
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)} (the sbom plugin takes: namespace)")
        self.namespace = str(self.options.get("namespace", document.DEFAULT_NAMESPACE))
        if not NAMESPACE.match(self.namespace) or "#" in self.namespace:
            raise ValueError(f"namespace {self.namespace!r} must be an http(s) URL without spaces, quotes or '#'")
        self.cache: dict[str, dcopyright.PackageLicense] = {}  # sha256 of a copyright file -> its licence

    def after(self, phase: str, ctx: PluginContext) -> None:
        if phase != "ostree-commit":
            return
        for view in ctx.variants:
            if ctx.cancel.is_set():
                raise KeyboardInterrupt("compose interrupted during the sbom plugin")
            self.write(ctx, view)

    def before(self, phase: str, ctx: PluginContext) -> None:
        if phase == "metadata" and ctx.reused_from is not None:
            self.copy_reused(ctx)

    def write(self, ctx: PluginContext, view: VariantView) -> None:
        t0 = time.monotonic()
        lock = ctx.lockfile
        if lock is None or view.tree is None or not view.tree.is_dir():
            raise PluginError(f"sbom: {view.variant}/{view.arch}: no lockfile or no tree to describe")
        packages = []
        texts: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            try:
                docs: dcopyright.DocDir | None = stack.enter_context(dcopyright.DocDir(view.tree))
                no_docs = ""
            except OSError as exc:  # /usr/share/doc is a link, or missing: no licence for anyone
                docs, no_docs = None, f"/usr/share/doc: {exc.strerror} (not followed)"
            for p in lock.variant(view.variant, view.arch).packages:
                found = self.licence(docs, p.name) if docs else dcopyright.PackageLicense(None, no_docs)
                for name, text in found.texts.items():
                    texts.setdefault(name, text)
                packages.append(document.SbomPackage(
                    name=p.name, version=p.version, arch=p.arch, source=p.source or p.name,
                    source_version=p.source_version or p.version, sha256=p.sha256, filename=p.filename, url=p.url,
                    license=found.expression, license_note=found.note))
        m = ctx.manifest
        image = document.SbomImage(
            name=m.name, version=m.version, suite=m.suite, variant=view.variant, arch=view.arch,
            source_date_epoch=lock.source_date_epoch, tool=f"deb-bootc-compose-{__version__}", ref=view.ref or "",
            commit=view.commit or "", namespace_base=self.namespace)
        path = ctx.paths.sbom(view.variant, view.arch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(document.render(document.build(image, packages, texts)))
        os.replace(tmp, path)
        ctx.add_file(path, kind=KIND, format=FORMAT, variant=view.variant, arch=view.arch)
        known = sum(1 for p in packages if p.license is not None)
        ctx.log(f"{view.variant}/{view.arch}: {path.name}: {len(packages)} packages, licence known for {known} "
                f"({time.monotonic() - t0:.1f}s)", show=True)

    def licence(self, docs: dcopyright.DocDir, package: str) -> dcopyright.PackageLicense:
        data, note = docs.read_copyright(package)
        if data is None:
            return dcopyright.PackageLicense(None, note)
        key = hashlib.sha256(data).hexdigest()
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = dcopyright.parse(data.decode("utf-8", "replace"))
        if not note:
            return found
        return dcopyright.PackageLicense(found.expression, f"{note}; {found.note}" if found.note else note,
                                         found.texts)

    def copy_reused(self, ctx: PluginContext) -> None:
        assert ctx.reused_from is not None
        prev = ctx.paths.target.compose(ctx.reused_from)
        for view in ctx.variants:
            src, dest = prev.sbom(view.variant, view.arch), ctx.paths.sbom(view.variant, view.arch)
            if not src.is_file() or src.is_symlink():
                raise PluginError(f"sbom: the reused compose {ctx.reused_from} has no SBOM for "
                                  f"{view.variant}/{view.arch} ({src})")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            ctx.add_file(dest, kind=KIND, format=FORMAT, variant=view.variant, arch=view.arch)
        ctx.log(f"copied the SBOMs of {ctx.reused_from} (same inputs, same documents)")
