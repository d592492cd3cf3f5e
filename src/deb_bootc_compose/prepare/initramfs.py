"""prepare-root.conf (read-only /sysroot, no composefs), then ``dracut --no-hostonly --add ostree`` builds
/usr/lib/modules/$kver/initramfs.img inside the tree (the conf must be there first: dracut copies it in)."""

from __future__ import annotations

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step
from debsandbox.commands import CommandError

PREPARE_ROOT_CONF = "[sysroot]\nreadonly = true\n\n[composefs]\nenabled = no\n"


def run(job: PrepareJob) -> None:
    t, kver = job.tree, job.kver
    job.own_dir("usr/lib/ostree")
    t.write_text("usr/lib/ostree/prepare-root.conf", PREPARE_ROOT_CONF)
    try:
        job.in_tree(
            ["dracut", "--no-hostonly", "--reproducible", "--add", "ostree", "--force", "--kver", kver,
             f"/usr/lib/modules/{kver}/initramfs.img"],
            timeout=1800,
        )
    except CommandError as exc:
        raise ComposeError(f"{job.label}: dracut failed (log {job.log_path}):\n{exc.tail}") from exc
    t.chmod(f"usr/lib/modules/{kver}/initramfs.img", 0o644)


STEP = Step("initramfs", run, announce="dracut --no-hostonly --add ostree for {kver}")
