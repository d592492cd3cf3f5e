"""Compose phases, one module each (Pungi's shape): init, gather, rootfs, ostree_prepare, ostree_commit,
oci, disk, boot_test, checksums, metadata."""
