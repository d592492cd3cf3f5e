"""What a derived manifest inherits from its base variant (docs/variants.md, "Derived images").

The base compose's manifest (its ``metadata/manifest.yaml``) gives, for the base variant: the apt sources (the
derived manifest's own are added after them), the package selection and ``exclude`` (the derived manifest's
``packages`` add to it), files and postprocess scripts (the derived manifest's come after), the ``os_release``
identity (the derived keys win, key by key), ``kernel_args``, ``locale``, users, groups, ``disk``,
``image_sources``, ``outputs`` and ``boot_test`` unless the derived manifest gives its own. Never inherited:
``update`` (a derived image follows its own update server), ``hooks``, ``plugins``, ``build``, the name,
version, ref and OCI name. The base's exact package versions come through the lockfile (gather pins them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deb_bootc_compose.derive.basecompose import BaseCompose, BaseError

if TYPE_CHECKING:
    from deb_bootc_compose.manifest import Manifest

AS_IS = ("kernel_args", "locale", "users", "groups", "disk", "image_sources", "outputs", "boot_test")


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    return list(value) if isinstance(value, list) else [value]  # not a list: the schema says so


def base_manifest(base: BaseCompose) -> Manifest:
    """The base compose's manifest, validated (its files are not looked for: the compose keeps none)."""
    from deb_bootc_compose import manifest, yamlmarks

    doc = yamlmarks.LocatedDocument(base.manifest_path, base.data)
    try:
        return manifest.parse(doc, check_files=False)
    except manifest.ManifestError as exc:
        raise BaseError("the base compose's manifest does not load:\n  " + "\n  ".join(exc.problems)) from None


def _no_host_files(bm: Manifest, variant: str, base: BaseCompose) -> None:
    """Files a base manifest names by path are not in the compose directory: refuse them, saying so."""
    settings = bm.for_variant(variant)
    named = [k.key for k in settings.files if k.spec.source is not None]
    named += [k.key for k in settings.postprocess if k.spec.file is not None]
    named += [f"sources[{i}].key" for i, s in enumerate(bm.sources) if s.key and "://" not in s.key]
    if named:
        raise BaseError(f"the base manifest ({base.manifest_path}) names files by path ({', '.join(named)}), "
                        "which its compose does not keep: give them inline in the base manifest (content:, "
                        "script:, a key URL) and compose the base again")


def merged(data: dict[str, Any], base: BaseCompose) -> dict[str, Any]:
    """The derived manifest's data with its base variant's settings under it (see the module docstring)."""
    bm = base_manifest(base)
    _no_host_files(bm, base.variant, base)
    bv = bm.for_variant(base.variant)
    out = dict(data)
    out["suite"] = bm.suite
    out.setdefault("arches", sorted(base.commits))
    out["sources"] = [*_dump(bm.sources), *_list(data, "sources")]
    out["packages"] = [*bv.packages, *_list(data, "packages")]
    out["exclude"] = [*bm.exclude, *_list(data, "exclude")]
    out["files"] = [*(_dump(k.spec) for k in bv.files), *_list(data, "files")]
    out["postprocess"] = [*(_dump(k.spec) for k in bv.postprocess), *_list(data, "postprocess")]
    own_release = data.get("os_release", {})
    out["os_release"] = {**bv.os_release, **own_release} if isinstance(own_release, dict) else own_release
    inherited = {"outputs": list(bv.outputs), "boot_test": bv.boot_test}
    for key in AS_IS:
        if key not in data:
            value = inherited.get(key, getattr(bm, key))
            if value is not None:
                out[key] = _dump(value)
    return out


def effective_yaml(m: Manifest, base: BaseCompose | None) -> str:
    """The manifest as the compose used it, without ``base:`` (a derived compose's ``metadata/manifest.yaml`` and
    every image's ``/usr/lib/deb-bootc/manifest.yaml``: it loads on its own, from anywhere)."""
    import yaml

    head = f"# The manifest {m.name} {m.version} was composed with"
    if base is not None:  # no compose ID or path here: the image carries this file, and only content
        head += f" (derived from a base's variant {base.variant}: its settings merged in; the lockfile records it)"
    head += ".\n"
    body = m.model_dump(mode="json", exclude_none=True, exclude={"base"})
    return head + yaml.safe_dump(body, sort_keys=True, width=200)  # content: the order of keys in a file is not
