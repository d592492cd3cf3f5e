"""The manifest's ``update:`` section: where installed machines fetch updates from, and the PUBLIC keys they
verify them with. Secret keys never appear in a manifest: only the commands that sign take them
(``publish --gpg-key``, ``push --sign-key``)::

    update:
      ostree: {url: "https://updates.example.org/debian-atomic", gpg_public_key: keys/ostree.asc}
      registry: {name: "registry.example.org/debian-atomic/{variant}", public_key: keys/registry.pub}

With ``update``, every image carries an OSTree remote for ``ostree.url`` with signature verification on and
that key installed, the ``deb-bootc`` client, and (with ``registry``) a ``/etc/containers/policy.json`` that
requires signatures by ``registry.public_key`` for ``registry.name``. Key paths are relative to the manifest.
"""

from __future__ import annotations

import re

from pydantic import field_validator, model_validator

from deb_bootc_compose.imagespec import CONTROL, StrictModel, template_sample

# an http(s) URL of printable ASCII without spaces or quotes: it lands in the image's ostree remote config
UPDATE_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[!#-&(-~]*)?$")
# HOST[:PORT]/PATH of a registry repository, without tag or digest (a tag comes from the compose's version)
REGISTRY_NAME = re.compile(
    r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)+$"
)
REGISTRY_FIELDS = {"variant", "name", "arch"}


def _key_path(value: str, what: str) -> str:
    if not value or CONTROL.search(value):
        raise ValueError(f"{what} {value!r} must be a file name without newlines or control characters")
    return value


class OstreeUpdateSpec(StrictModel):
    url: str  # the published repository (``deb-bootc-compose publish --to DIR``, served over HTTP(S))
    gpg_public_key: str  # an OpenPGP public key (armored or binary), relative to the manifest

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not UPDATE_URL.match(v):
            raise ValueError(f"url {v!r} must be an http:// or https:// URL (printable ASCII, no spaces or "
                             "quotes); machines fetch updates over the network, never from a build host's file://")
        return v.rstrip("/")

    @field_validator("gpg_public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _key_path(v, "gpg_public_key")


class RegistryUpdateSpec(StrictModel):
    name: str  # HOST[:PORT]/PATH, may hold {variant}, {name} and {arch}; no tag
    public_key: str  # the sigstore public key (``deb-bootc-compose keygen``), relative to the manifest
    # where OpenPGP ("simple signing") signatures are served (``push --lookaside-dir`` published there); needed
    # only when ``public_key`` is an OpenPGP key: sigstore signatures live in the registry beside the image
    lookaside: str | None = None

    @field_validator("lookaside")
    @classmethod
    def _lookaside(cls, v: str | None) -> str | None:
        if v is not None and not UPDATE_URL.match(v):
            raise ValueError(f"lookaside {v!r} must be an http:// or https:// URL (printable ASCII, no spaces or "
                             "quotes)")
        return v.rstrip("/") if v is not None else None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        sample = template_sample(v, REGISTRY_FIELDS, "registry name")
        if not REGISTRY_NAME.match(sample):
            raise ValueError(f"{v!r} is not a registry repository HOST[:PORT]/PATH (lower case; no tag or digest: "
                             "the tag is the compose's version)")
        return v

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _key_path(v, "public_key")

    def repository(self, *, name: str, variant: str, arch: str) -> str:
        """The registry repository of one variant (``{variant}`` etc. filled in)."""
        return self.name.format(name=name, variant=variant, arch=arch)


class UpdateSpec(StrictModel):
    ostree: OstreeUpdateSpec | None = None
    registry: RegistryUpdateSpec | None = None

    @model_validator(mode="after")
    def _some(self) -> UpdateSpec:
        if self.ostree is None and self.registry is None:
            raise ValueError("'update' needs 'ostree' (signed OSTree updates over HTTP(S)), 'registry' (signed "
                             "OCI images), or both; omit 'update' for images that follow no update source")
        return self


def key_files(update: UpdateSpec | None) -> list[tuple[tuple[str, ...], str]]:
    """(manifest location, relative path) of every key file the section names, for the manifest's file check."""
    if update is None:
        return []
    out: list[tuple[tuple[str, ...], str]] = []
    if update.ostree is not None:
        out.append((("update", "ostree", "gpg_public_key"), update.ostree.gpg_public_key))
    if update.registry is not None:
        out.append((("update", "registry", "public_key"), update.registry.public_key))
    return out


__all__ = ["OstreeUpdateSpec", "RegistryUpdateSpec", "UpdateSpec", "key_files"]
