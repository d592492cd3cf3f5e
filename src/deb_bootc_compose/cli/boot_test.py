"""``deb-bootc-compose boot-test COMPOSE_DIR_OR_IMAGE`` (implemented in :mod:`deb_bootc_compose.boot.cli`)."""

from __future__ import annotations

from deb_bootc_compose.boot.cli import main

HELP = "boot a compose's disk image in QEMU (TCG/KVM, OVMF, no network) and check the running system"

__all__ = ["HELP", "main"]
