"""An empty /etc/machine-id (systemd makes one at first boot) and no D-Bus machine-id."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    job.tree.write_text("etc/machine-id", "")
    job.tree.unlink("var/lib/dbus/machine-id", missing_ok=True)


STEP = Step("machine-id", run)
