"""The host's /etc/hostname and /etc/resolv.conf, which mmdebstrap copied, do not belong in an image."""

from __future__ import annotations

import stat

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t = job.tree
    t.unlink("etc/hostname", missing_ok=True)
    st = t.lstat("etc/resolv.conf")
    if st is not None and stat.S_ISREG(st.st_mode):
        t.write_text("etc/resolv.conf", "")


STEP = Step("host-files", run, announce="apt sources, hostname, toplevel symlinks")
