"""What the steps wrote as the host's root becomes what it means inside the image (root's files, ...)."""

from __future__ import annotations

from deb_bootc_compose import treeops
from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    treeops.adopt_host_writes(job.tree.root)


STEP = Step("adopt", run)
