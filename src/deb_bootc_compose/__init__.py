"""deb-bootc-compose: from a manifest to an OSTree commit, a bootc OCI image and bootable disk images."""

__version__ = "0.1.0"
