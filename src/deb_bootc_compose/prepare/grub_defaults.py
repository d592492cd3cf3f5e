"""/etc/default/grub from the package's template: ostree's 15_ostree silently does nothing without it.

``GRUB_TIMEOUT`` is 1, as in the grub.cfg of a disk image made by the disk phase: ostree regenerates grub.cfg
from this file at every update, and Debian's template's 5 s made every boot after the first update wait four
seconds longer than the first one. A manifest's own /etc/default/grub (``files:``) is kept as it is."""

from __future__ import annotations

import re

from deb_bootc_compose.prepare.base import PrepareJob, Step

TIMEOUT = re.compile(r"^GRUB_TIMEOUT=.*$", re.M)


def run(job: PrepareJob) -> None:
    t = job.tree
    if not t.exists("etc/default/grub") and t.is_file("usr/share/grub/default/grub"):
        template = t.read_text("usr/share/grub/default/grub", errors="replace", limit=1 << 20)
        text, n = TIMEOUT.subn("GRUB_TIMEOUT=1", template)
        t.write_text("etc/default/grub", text if n else f"{template.rstrip()}\nGRUB_TIMEOUT=1\n", mode=0o644)


STEP = Step("grub-defaults", run)
