"""/etc/default/grub from the package's template: ostree's 15_ostree silently does nothing without it."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t = job.tree
    if not t.exists("etc/default/grub") and t.is_file("usr/share/grub/default/grub"):
        t.copy("usr/share/grub/default/grub", "etc/default/grub")


STEP = Step("grub-defaults", run)
