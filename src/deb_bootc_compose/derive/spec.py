"""The manifest key ``base:`` (docs/variants.md, "Derived manifests")."""

from __future__ import annotations

import re

from pydantic import field_validator, model_validator

from deb_bootc_compose.imagespec import CONTROL, StrictModel

VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")  # the manifest's NAME


class BaseSpec(StrictModel):
    """``base: {compose: DIR, variant: NAME}`` or ``base: {image: REF}``: a derived manifest starts from that compose's
    variant (DIR relative to the manifest; a ``latest-`` link is followed), or from one of our images
    (``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker://REF``); see :mod:`deb_bootc_compose.derive`."""

    compose: str | None = None
    image: str | None = None
    variant: str | None = None  # default: base (a compose), the image's own (an image)

    @field_validator("compose", "image")
    @classmethod
    def _where(cls, v: str | None) -> str | None:
        if v is not None and (not v or CONTROL.search(v)):
            raise ValueError("must be a compose directory (or its latest- link) or an image reference, without "
                             "control characters")
        return v

    @field_validator("variant")
    @classmethod
    def _variant(cls, v: str | None) -> str | None:
        if v is not None and not VARIANT.match(v):
            raise ValueError(f"{v!r} is not a variant name (letters, digits, '.', '_', '+' and '-')")
        return v

    @model_validator(mode="after")
    def _one(self) -> BaseSpec:
        if (self.compose is None) == (self.image is None):
            raise ValueError("give exactly one of 'compose: DIR' (a compose directory) or 'image: REF' (oci:DIR, "
                             "oci-archive:FILE, docker://REF)")
        return self
