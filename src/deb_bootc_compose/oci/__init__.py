"""A pure-Python, deterministic writer of bootc OCI images (no container engine needed)."""

from deb_bootc_compose.oci.errors import OciCancelled, OciError
from deb_bootc_compose.oci.writer import KERNEL_LABEL, OSTREE_COMMIT_LABEL, LayerInfo, OciResult, write_oci_image

__all__ = [
    "KERNEL_LABEL",
    "OSTREE_COMMIT_LABEL",
    "LayerInfo",
    "OciCancelled",
    "OciError",
    "OciResult",
    "write_oci_image",
]
