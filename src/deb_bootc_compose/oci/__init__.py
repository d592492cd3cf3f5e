"""A pure-Python, deterministic writer of bootc OCI images (no container engine needed)."""

from deb_bootc_compose.oci.errors import OciCancelled, OciError
from deb_bootc_compose.oci.writer import (
    KERNEL_LABEL,
    OSTREE_COMMIT_LABEL,
    ImageOptions,
    LayerInfo,
    OciResult,
    check_inputs,
    plan_images,
    write_oci_image,
    write_planned_image,
)

__all__ = [
    "KERNEL_LABEL",
    "OSTREE_COMMIT_LABEL",
    "ImageOptions",
    "LayerInfo",
    "OciCancelled",
    "OciError",
    "OciResult",
    "check_inputs",
    "plan_images",
    "write_oci_image",
    "write_planned_image",
]
