"""The manifest flavour of ``init`` from a compose directory or one of our images: a derived manifest
(``base: {compose, variant}`` or ``base: {image}``) that names the base, a path relative to the project, and adds
only the new identity; everything else comes from the base when it is composed (:mod:`deb_bootc_compose.derive`)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from deb_bootc_compose import manifest as manifest_mod
from deb_bootc_compose.derive.basecompose import BaseCompose, BaseError, load_base
from deb_bootc_compose.derive.baseimage import TRANSPORTS, load_base_image
from deb_bootc_compose.derive.inherit import merged

from . import templates
from .project import Identity, ScaffoldError, _Dumper, _new_dir, _write


def _base_entry(base: Path | str, variant: str | None, dest: Path) -> tuple[dict[str, str], BaseCompose]:
    """The manifest's ``base:`` (paths relative to the project) and the base it names, loaded and checked."""
    here = os.path.abspath(dest)
    if isinstance(base, str) and base.startswith(TRANSPORTS):
        transport = next(t for t in TRANSPORTS if base.startswith(t))
        rest = base[len(transport):]
        local = transport != "docker://"  # a path: relative to the project, like a compose directory
        ref = transport + os.path.abspath(rest) if local else base
        loaded = load_base_image(ref, Path.cwd(), variant, None, None)
        entry = {"image": transport + os.path.relpath(ref[len(transport):], here) if local else ref}
        return ({**entry, "variant": variant} if variant else entry), loaded
    given = Path(os.path.abspath(base))  # a latest- link stays a link: the project follows the newest base
    loaded = load_base(str(given), Path.cwd(), variant or "base", None, None)
    return {"compose": os.path.relpath(given, here), "variant": loaded.variant}, loaded


def derived_project(name: str, base: Path | str, variant: str | None, dest: Path,
                    identity: Identity) -> list[Path]:
    """Write the project under ``dest`` (the base checked first: nothing is written for a bad one). ``base``: a
    compose directory, or an image reference (``oci:``, ``oci-archive:``, ``docker://``) whose variant is its
    label's unless ``variant`` is given."""
    try:
        entry, loaded = _base_entry(base, variant, dest)
        merged({}, loaded)  # all the base's checks
    except BaseError as exc:
        raise ScaffoldError(str(exc)) from None
    variant = loaded.variant
    _new_dir(dest)
    data: dict[str, Any] = {
        "base": entry,
        "name": name, "version": identity.version, "packages": [],
        "os_release": identity.os_release(variant),
        "files": [{"path": "/etc/issue", "content": identity.issue}, {"path": "/etc/motd", "content": identity.motd}],
        "variants": {variant: {}},
    }
    out = dest / f"{name}.yaml"
    out.write_text(f"# {identity.pretty}: derived from {base} ({variant}), made by deb-bootc-compose init.\n"
                   "# It adds to the base compose's variant (its sources, packages at their versions, files,\n"
                   "# scripts); add packages under 'packages:'.\n"
                   f"#   deb-bootc-compose --config {out.name} --target-dir composes\n"
                   + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=110), encoding="utf-8")
    try:
        parsed = manifest_mod.load(out)  # what was written loads
    except manifest_mod.ManifestError as exc:
        raise ScaffoldError(f"the project's manifest does not load:\n{exc}") from None
    checks = "".join(f" \\\n    --command {shlex.quote(c)}" for c in parsed.for_variant(variant).boot_test.commands)
    return [out,
            _write(dest / "build.sh", templates.BUILD_MANIFEST.format(name=name, manifest=out.name, variant=variant,
                                                                    checks=checks), 0o755),
            _write(dest / "README.md", templates.README.format(
                pretty=identity.pretty, base=f"{base} ({variant})", how="a derived manifest", source=out.name,
                what="what it adds to the base compose's variant (`base:`): this identity, then your packages",
                identity=f"`{out.name}` (`os_release`, the `/etc/issue` and `/etc/motd` files)"))]
