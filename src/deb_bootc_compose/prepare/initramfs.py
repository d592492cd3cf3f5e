"""prepare-root.conf (read-only /sysroot, no composefs), then ``dracut --no-hostonly --add ostree`` builds
/usr/lib/modules/$kver/initramfs.img inside the tree (the conf must be there first: dracut copies it in).

dracut's SOURCE_DATE_EPOCH is derived from what builds the initramfs, not from the whole image: the newest build
time among the kernel's package and the packages that make the initramfs (:data:`INITRAMFS_BUILDERS`). The
compose's SOURCE_DATE_EPOCH is the newest build time of *every* package, and dracut writes it into the
initramfs (``systemd-sysusers --root`` sets the last-password-change day of /etc/shadow from it): with it, an
update of any package -- one the initramfs does not contain -- rewrote the whole 40 MB compressed image, and a
one-package update downloaded it again (bench/ostree_update_bytes.py). A change to a package whose files are in
the initramfs changes it anyway, whatever its timestamp.

A derived image keeps its base's initramfs when nothing that makes it changed (derive/initramfs.py)."""

from __future__ import annotations

from deb_bootc_compose import pool
from deb_bootc_compose.derive import initramfs as derived_initramfs
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step
from debsandbox.commands import CommandError

PREPARE_ROOT_CONF = "[sysroot]\nreadonly = true\n\n[composefs]\nenabled = no\n"
INITRAMFS_BUILDERS = ("dracut", "dracut-core", "ostree-boot", "systemd")  # besides linux-image-$kver


def initramfs_epoch(job: PrepareJob) -> int | None:
    """The newest build time among the kernel's package and :data:`INITRAMFS_BUILDERS` (None: not known, the
    compose's SOURCE_DATE_EPOCH is used)."""
    lock = job.vs.lock
    if lock is None:
        return None
    names = {f"linux-image-{job.kver}", f"linux-image-{job.kver}-unsigned", *INITRAMFS_BUILDERS}
    times = [pool.deb_timestamp(job.ctx.target.pool_deb(p.sha256)) for p in lock.packages if p.name in names
             and job.ctx.target.pool_deb(p.sha256).is_file()]
    return max(times) if times else None


def run(job: PrepareJob) -> None:
    t, kver = job.tree, job.kver
    job.own_dir("usr/lib/ostree")
    t.write_text("usr/lib/ostree/prepare-root.conf", PREPARE_ROOT_CONF)
    if derived_initramfs.reuse(job):
        return
    epoch = initramfs_epoch(job)
    if epoch is not None:
        job.write_log(f"initramfs SOURCE_DATE_EPOCH={epoch} (the kernel's and dracut's packages)")
    try:
        job.in_tree(
            ["dracut", "--no-hostonly", "--reproducible", "--add", "ostree", "--force", "--kver", kver,
             f"/usr/lib/modules/{kver}/initramfs.img"],
            timeout=1800, source_date_epoch=epoch,
        )
    except CommandError as exc:
        raise ComposeError(f"{job.label}: dracut failed (log {job.log_path}):\n{exc.tail}") from exc
    t.chmod(f"usr/lib/modules/{kver}/initramfs.img", 0o644)


STEP = Step("initramfs", run, announce="dracut --no-hostonly --add ostree for {kver}")
