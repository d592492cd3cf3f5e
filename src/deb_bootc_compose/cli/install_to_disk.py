"""``deb-bootc-compose install-to-disk SOURCE DISK`` (implemented in :mod:`deb_bootc_compose.disk.cli`)."""

from __future__ import annotations

from deb_bootc_compose.disk.cli import main

HELP = "install a compose, an OSTree ref or an OCI bootc image onto a disk image file or block device"

__all__ = ["HELP", "main"]
