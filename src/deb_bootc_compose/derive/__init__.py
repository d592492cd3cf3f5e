"""Derived images: a manifest with ``base: {compose: DIR, variant: NAME}`` starts from another compose's variant
(docs/variants.md, "Derived manifests").

* :mod:`.basecompose` loads and checks the base compose (FINISHED, the variant, suite and arch, its OCI image);
* :mod:`.inherit` merges the base variant's settings under the derived manifest's own (never ``update``);
* :mod:`.pins` makes gather ask apt for the base's exact versions, and records the base in the lockfile;
* :mod:`.initramfs` keeps the base's initramfs when nothing that makes it changed;
* :mod:`.fileindex` and :mod:`.layers` write the derived OCI image: the base image's layers verbatim, then one
  layer of what differs (OCI whiteouts for what is gone);
* :mod:`.records` tells the base's target directory that a derived compose uses it (``prune`` keeps it).
"""
