"""The two project flavours of ``deb-bootc-compose init`` (see :mod:`deb_bootc_compose.scaffold`)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deb_bootc_compose import manifest as manifest_mod
from deb_bootc_compose import osrelease
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.imagespec import CONTROL, PACKAGE_NAME
from deb_bootc_compose.paths import ComposePaths
from debarchive.safeio import read_below

from . import templates

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")  # what os-release allows for ID, and a compose name
TRANSPORTS = ("oci-archive:", "oci:", "docker://", "containers-storage:")
MAX_COPIED_FILE = 64 << 20  # one file the base manifest names


class ScaffoldError(ComposeError):
    """The project cannot be made (bad name, unknown base, existing directory); nothing was written."""


@dataclass(frozen=True)
class Identity:
    name: str  # the ID: particle-os
    pretty: str  # Particle-OS
    version: str
    suite: str

    def os_release(self, variant: str) -> dict[str, str]:
        """The os-release keys, checked as a manifest's ``os_release`` is (no newline can reach the files made)."""
        keys = {"ID": self.name, "ID_LIKE": "debian", "NAME": self.pretty, "VERSION_ID": self.version,
                "VARIANT_ID": variant, "PRETTY_NAME": f"{self.pretty} {self.version} (Debian {self.suite} based)"}
        try:
            return osrelease.check(keys)
        except osrelease.OsReleaseProblem as exc:
            raise ScaffoldError(f"the identity: {exc}") from None

    @property
    def issue(self) -> str:
        return f"{self.pretty} {self.version} \\n \\l\n\n"

    @property
    def motd(self) -> str:
        return f"Welcome to {self.pretty} {self.version}, an image-mode Debian system (bootc, OSTree).\n"


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise ScaffoldError(f"{name!r}: a variant name is lower case letters, digits, '.', '_' and '-', starting "
                            "with a letter or digit (it becomes the os-release ID and the compose name)")


def _new_dir(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ScaffoldError(f"{dest} already exists and is not an empty directory; choose another --dir")
    dest.mkdir(parents=True, exist_ok=True)


def _base_manifest(base: Path) -> Path:
    if base.is_dir():
        copy = ComposePaths.at(base).manifest_copy
        if not copy.is_file():
            raise ScaffoldError(f"{base}: a directory without {copy.relative_to(base)}; name a manifest or a "
                                "compose directory")
        return copy
    if not base.is_file():
        raise ScaffoldError(f"{base}: no such manifest or compose directory")
    return base


def manifest_project(name: str, given: str | Path, variant: str | None, dest: Path,
                     identity: Identity) -> list[Path]:
    """The manifest flavour: write the project under ``dest``; the files written. From a compose directory or an
    image reference (``oci:``, ``oci-archive:``, ``docker://``) the project is a derived manifest (``base:``,
    scaffold/derived.py); from a manifest, a copy of it (``variant``: ``base`` unless given)."""
    from deb_bootc_compose.derive.baseimage import TRANSPORTS

    from .derived import derived_project

    if isinstance(given, str) and given.startswith(TRANSPORTS):
        return derived_project(name, given, variant, dest, identity)
    base = Path(given)
    if base.is_dir() and ComposePaths.at(base).status.is_file():
        return derived_project(name, base, variant, dest, identity)
    variant = variant or "base"
    source = _base_manifest(base)
    try:
        parsed = manifest_mod.load(source, check_files=not base.is_dir())
    except manifest_mod.ManifestError as exc:
        raise ScaffoldError(f"the base manifest does not load:\n{exc}") from None
    if variant not in parsed.variants:
        raise ScaffoldError(f"{source}: no variant {variant!r} (it has: {', '.join(parsed.variants)})")
    data: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    theirs = (data.get("variants") or {}).get(variant) or {}
    data.pop("update", None)
    data.pop("short", None)
    data.update(name=name, version=identity.version)
    own = dict(theirs)
    own["os_release"] = identity.os_release(variant)  # over Debian's, not over the base's identity
    own["files"] = [*(theirs.get("files") or []), {"path": "/etc/issue", "content": identity.issue},
                    {"path": "/etc/motd", "content": identity.motd}]
    data.pop("os_release", None)
    data["variants"] = {variant: own}
    copies = _read_sources(data, own, source)  # everything read (and refused) before anything is written
    _new_dir(dest)
    written = [_write(dest / rel, content) for rel, content in copies]
    out = dest / f"{name}.yaml"
    out.write_text(f"# {identity.pretty}: a variant of {base} ({variant}), made by deb-bootc-compose init.\n"
                   f"#   deb-bootc-compose --config {out.name} --target-dir composes\n"
                   + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=110), encoding="utf-8")
    try:
        manifest_mod.load(out)  # what was written loads
    except manifest_mod.ManifestError as exc:
        raise ScaffoldError(f"the project's manifest does not load:\n{exc}") from None
    checks = "".join(f" \\\n    --command {shlex.quote(c)}" for c in parsed.for_variant(variant).boot_test.commands)
    extra = [_write(dest / "build.sh", templates.BUILD_MANIFEST.format(name=name, manifest=out.name,
                                                                     variant=variant, checks=checks), 0o755),
             _write(dest / "README.md", templates.README.format(
                 pretty=identity.pretty, base=f"{base} ({variant})", how="a manifest", source=out.name,
                 what="the base manifest's packages, files and scripts, with this identity",
                 identity=f"`{out.name}` (`os_release`, the `/etc/issue` and `/etc/motd` files)"))]
    return [out, *written, *extra]


def containerfile_project(name: str, base: str, variant: str, arch: str, dest: Path, identity: Identity,
                          packages: list[str]) -> list[Path]:
    """The Containerfile flavour: write the project under ``dest``; the files written."""
    image = image_reference(base, variant, arch)
    bad = [p for p in packages if not PACKAGE_NAME.match(p)]
    if bad:
        raise ScaffoldError(f"--package {', '.join(map(repr, bad))}: not a Debian package name")
    release = "".join(f"{k}={osrelease.quote(v)}\n" for k, v in identity.os_release(variant).items())
    _new_dir(dest)
    return [
        _write(dest / "Containerfile", templates.CONTAINERFILE.format(pretty=identity.pretty, base=base, image=image,
                                                                      packages=" ".join(packages))),
        _write(dest / "os-release", release),
        _write(dest / "issue", identity.issue),
        _write(dest / "motd", identity.motd),
        _write(dest / "build.sh", templates.BUILD_CONTAINERFILE.format(
            name=name, checks="".join(f" \\\n    --command {shlex.quote(f'dpkg -s {p}')}" for p in packages)), 0o755),
        _write(dest / "README.md", templates.README.format(
            pretty=identity.pretty, base=base, how="a Containerfile", source="Containerfile",
            what=f"`FROM` {image}, the packages it installs and the identity files",
            identity="`os-release`, `issue` and `motd`")),
    ]


def _write(path: Path, content: str | bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    path.chmod(mode)
    return path


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (file contents, scripts) as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def _read_sources(data: dict[str, Any], own: dict[str, Any], source: Path) -> list[tuple[str, bytes]]:
    """The files the base manifest reads (``files[].source``, ``postprocess[].file``), read below its directory
    without following a link (a manifest is untrusted input); the entries are left naming the same relative
    paths, which the project gets."""
    copies: dict[str, bytes] = {}
    entries = [*(data.get("files") or []), *(own.get("files") or []), *(data.get("postprocess") or []),
               *(own.get("postprocess") or [])]
    for entry in entries:
        for key in ("source", "file"):
            rel = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(rel, str) or rel in copies:
                continue
            try:
                copies[rel] = read_below(source.parent, rel, limit=MAX_COPIED_FILE)
            except (OSError, ValueError) as exc:
                raise ScaffoldError(f"{source}: {key} {rel!r} cannot be copied from beside it ({exc}); init from "
                                    "the manifest itself, next to the files it names") from None
    return [(str(Path(*Path(rel).parts)), content) for rel, content in copies.items()]


def image_reference(base: str, variant: str, arch: str) -> str:
    """``BASE`` as a reference podman's ``FROM`` takes."""
    if CONTROL.search(base) or " " in base:
        raise ScaffoldError(f"{base!r}: an image reference has no spaces or control characters")
    if base.startswith(TRANSPORTS):
        return base
    path = Path(base)
    if path.is_dir() and ComposePaths.at(path.resolve()).status.is_file():
        layout = ComposePaths.at(path.resolve()).oci_dir(variant, arch) / "layout"
        if not (layout / "index.json").is_file():
            raise ScaffoldError(f"{base}: the compose has no OCI image for {variant}/{arch} ({layout})")
        return f"oci:{layout}"
    if path.is_file():
        return f"oci-archive:{path.resolve()}"
    raise ScaffoldError(f"{base}: not an image reference ({', '.join(TRANSPORTS)}), an OCI archive or a compose "
                        "directory")
