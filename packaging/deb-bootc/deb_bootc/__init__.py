"""deb-bootc: the update client of Debian OSTree (bootc-style) images (Python standard library only)."""

VERSION = "0.1.0"
