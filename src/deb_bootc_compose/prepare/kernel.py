"""The one kernel of the image (/boot/vmlinuz-$kver with /usr/lib/modules/$kver): its version, for the later
steps and the OCI image's label."""

from __future__ import annotations

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t = job.tree
    modules = "usr/lib/modules"
    kvers = [k for k in t.listdir(modules) if t.exists(f"boot/vmlinuz-{k}")] if t.is_dir(modules) else []
    if not kvers:
        raise ComposeError(f"{job.label}: no kernel in the tree (no /boot/vmlinuz-* with /usr/lib/modules/*)")
    if len(kvers) > 1:
        raise ComposeError(f"{job.label}: several kernels installed ({', '.join(kvers)}); an image boots one")
    job.kernel_version = job.vs.kernel_version = kvers[0]


STEP = Step("kernel", run)
