"""root's password is locked (``!`` in /etc/shadow): an image has no root password."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t = job.tree
    lines = t.read_text("etc/shadow").splitlines()
    for i, line in enumerate(lines):
        parts = line.split(":")
        if parts[0] == "root" and not parts[1].startswith(("!", "*")):
            parts[1] = "!" + parts[1]
            lines[i] = ":".join(parts)
        elif parts[0] == "root" and parts[1] == "*":
            parts[1] = "!*"
            lines[i] = ":".join(parts)
    t.write_text("etc/shadow", "\n".join(lines) + "\n")


STEP = Step("root-locked", run)
