"""The kernel lives in /usr/lib/modules/$kver/vmlinuz (OSTree's place); /boot is emptied and the /vmlinuz*
and /initrd.img* links at the top go."""

from __future__ import annotations

import fnmatch
import stat

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t, kver = job.tree, job.kver
    vmlinuz = f"usr/lib/modules/{kver}/vmlinuz"
    # newer kernel packages (sid) ship usr/lib/modules/$kver/vmlinuz themselves, /boot's is a link to it
    st = t.lstat(vmlinuz)
    if st is None or not stat.S_ISREG(st.st_mode):
        # /boot's kernel, any link resolved inside the tree (never on the host)
        t.copy(f"boot/vmlinuz-{kver}", vmlinuz)
    t.chmod(vmlinuz, 0o644)
    for child in t.listdir("boot"):
        t.rmtree(f"boot/{child}")
    for name in t.listdir(""):
        if fnmatch.fnmatch(name, "vmlinuz*") or fnmatch.fnmatch(name, "initrd.img*"):
            t.rmtree(name)


STEP = Step("boot-dir", run)
