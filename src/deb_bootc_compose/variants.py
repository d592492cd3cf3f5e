"""What one variant of a manifest gets (Pungi's variants: one compose, several images).

A variant inherits everything from the manifest and has its own settings where it differs:

* ``add``/``remove`` (packages), ``files`` and ``postprocess`` **add** to the manifest's (the manifest's files
  and scripts first, then the variant's);
* ``outputs`` and ``boot_test`` **replace** the manifest's when the variant gives them;
* ``os_release`` is merged over the manifest's **key by key**.

:func:`settings_of` computes a :class:`VariantSettings`, the one place phases read these from
(``Manifest.for_variant(name)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from deb_bootc_compose import osrelease
from deb_bootc_compose.imagespec import BootTestSpec, FileSpec, OutputName, ScriptSpec

if TYPE_CHECKING:
    from deb_bootc_compose.manifest import Manifest

T = TypeVar("T")
DISK_FORMATS: tuple[OutputName, ...] = ("raw", "qcow2")


class Keyed(NamedTuple, Generic[T]):
    """A manifest entry and where the manifest says it (``files[0]``, ``variants.b.postprocess[1]``), for
    error messages."""

    key: str
    spec: T


@dataclass(frozen=True)
class VariantSettings:
    """One variant's effective settings (read-only)."""

    name: str
    packages: tuple[str, ...]  # packages + add − remove − exclude, order kept
    files: tuple[Keyed[FileSpec], ...]
    postprocess: tuple[Keyed[ScriptSpec], ...]
    outputs: tuple[OutputName, ...]
    boot_test: BootTestSpec
    os_release: Mapping[str, str]  # empty: the image keeps Debian's os-release untouched

    @property
    def disk_formats(self) -> tuple[OutputName, ...]:
        """The disk images this variant asks for (``raw``, ``qcow2``), in that order."""
        return tuple(f for f in DISK_FORMATS if f in self.outputs)

    @property
    def boots(self) -> bool:
        """Whether the boot test boots this variant: enabled, and a disk image to boot."""
        return self.boot_test.enabled and bool(self.disk_formats)


def _packages(manifest: Manifest, add: list[str], remove: list[str]) -> tuple[str, ...]:
    drop = set(remove) | set(manifest.exclude)
    seen: set[str] = set()
    out: list[str] = []
    for p in [*manifest.packages, *add]:
        if p not in drop and p not in seen:
            seen.add(p)
            out.append(p)
    return tuple(out)


def settings_of(manifest: Manifest, variant: str) -> VariantSettings:
    """``variant``'s settings: the manifest's, with the variant's own added, replacing or merged (see above)."""
    try:
        spec = manifest.variants[variant]
    except KeyError:
        raise KeyError(f"no variant {variant!r} in the manifest (its variants: {', '.join(manifest.variants)})"
                       ) from None
    own = f"variants.{variant}."
    files = [Keyed(f"files[{i}]", f) for i, f in enumerate(manifest.files)]
    files += [Keyed(f"{own}files[{i}]", f) for i, f in enumerate(spec.files)]
    scripts = [Keyed(f"postprocess[{i}]", s) for i, s in enumerate(manifest.postprocess)]
    scripts += [Keyed(f"{own}postprocess[{i}]", s) for i, s in enumerate(spec.postprocess)]
    return VariantSettings(
        name=variant,
        packages=_packages(manifest, spec.add, spec.remove),
        files=tuple(files),
        postprocess=tuple(scripts),
        outputs=tuple(spec.outputs if spec.outputs is not None else manifest.outputs),
        boot_test=(spec.boot_test or manifest.boot_test).model_copy(deep=True),
        os_release=MappingProxyType(osrelease.merge(manifest.os_release, spec.os_release)),
    )


def all_outputs(manifest: Manifest) -> set[OutputName]:
    """Every output some variant asks for."""
    return {out for v in manifest.variants for out in settings_of(manifest, v).outputs}
