"""Compose phases, one module each (Pungi's shape). They run in the order of :data:`order.PHASES`:
init, build, gather, rootfs, ostree-prepare, ostree-commit, oci, disk, boot-test, checksums, metadata
(the names ``--skip-phase``/``--just-phase`` take; build, oci, disk and boot-test can be skipped)."""
