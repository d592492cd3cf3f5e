"""The tree preparation of the ostree-prepare phase, as small ordered steps (in the manner of osbuild's stages).

Each step is one module with one purpose and a ``STEP`` (:class:`~deb_bootc_compose.prepare.base.Step`);
:data:`STEPS` is their order. Adding a step (signing keys, an update client, Secure Boot files) is adding a
module and one line here. Every step edits the tree through the job's :class:`~deb_bootc_compose.intree.Tree`
(paths resolved inside the tree) and runs commands in it through :meth:`PrepareJob.in_tree`.

Order matters (docs/compose.md, "The OSTree-ready tree"): host files, apt sources, the update remote,
toplevel symlinks, os-release, users, files, postprocess scripts, the registry policy, image defaults, kernel, initramfs
(prepare-root.conf first), /boot, dpkg/debconf databases to /usr/lib/sysimage, /var to tmpfiles.d, API
filesystems emptied, the host's writes adopted into the tree's user namespace, lint.
"""

from __future__ import annotations

from deb_bootc_compose.prepare import (
    adopt,
    api_dirs,
    apt_sources,
    autovar,
    boot_dir,
    compose_record,
    files,
    grub_defaults,
    host_files,
    initramfs,
    kernel,
    kernel_args,
    lint_check,
    locale_conf,
    machine_id,
    os_release,
    postprocess,
    registry_policy,
    root_locked,
    ssh_host_keys,
    sysimage,
    tmpfiles_overrides,
    toplevel,
    update_remote,
    users,
)
from deb_bootc_compose.prepare.base import PrepareJob, Step

STEPS: list[Step] = [
    host_files.STEP,  # no /etc/hostname, empty /etc/resolv.conf
    apt_sources.STEP,  # image_sources (the manifest's reachable sources) in /etc/apt/sources.list.d/compose.sources
    update_remote.STEP,  # update.ostree: /etc/ostree/remotes.d/NAME.conf (gpg-verify) and its public key
    toplevel.STEP,  # /home, /root, /opt, /srv, /mnt, /usr/local into /var; /media, /ostree, /sysroot
    os_release.STEP,  # os_release: the manifest's and the variant's keys over Debian's /usr/lib/os-release
    users.STEP,  # the manifest's groups and users
    files.STEP,  # the manifest's files, then the variant's
    postprocess.STEP,  # the manifest's postprocess scripts, then the variant's (sandboxed, no network)
    registry_policy.STEP,  # update.registry: its key, /etc/containers/policy.json, registries.d
    compose_record.STEP,  # /usr/lib/deb-bootc/manifest.yaml and lockfile.yaml
    ssh_host_keys.STEP,  # none in the image; made at first boot
    root_locked.STEP,  # root's password locked
    locale_conf.STEP,  # the manifest's locale
    machine_id.STEP,  # empty /etc/machine-id
    grub_defaults.STEP,  # /etc/default/grub (15_ostree needs it)
    kernel_args.STEP,  # usr/lib/bootc/kargs.d/00-compose.toml
    tmpfiles_overrides.STEP,  # quiet systemd's /home and /srv tmpfiles
    kernel.STEP,  # the one kernel version
    initramfs.STEP,  # prepare-root.conf, dracut with the ostree module
    boot_dir.STEP,  # vmlinuz into /usr/lib/modules/$kver, /boot emptied
    sysimage.STEP,  # dpkg and debconf databases to /usr/lib/sysimage
    autovar.STEP,  # /var to tmpfiles.d lines
    api_dirs.STEP,  # /dev, /proc, /sys, /run, /tmp empty
    adopt.STEP,  # the host's writes owned as inside the image
    lint_check.STEP,  # the tree passes the lint
]


def prepare_tree(job: PrepareJob, steps: list[Step] | None = None) -> None:
    """Run ``steps`` (default: all of :data:`STEPS`, in order) on the job's tree."""
    for step in STEPS if steps is None else steps:
        if step.announce:
            job.progress(f"{job.label}: {step.announce.format(kver=job.kernel_version)}")
        step.run(job)


__all__ = ["STEPS", "PrepareJob", "Step", "prepare_tree"]
