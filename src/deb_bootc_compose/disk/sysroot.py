"""Stage an OSTree sysroot in a plain directory: repo, stateroot, deployment, bootloader files, fstab.

Everything is staged in a user namespace (root's subordinate range, as the compose's tree is made): the
host's ostree prepares the repository (init, pull-local, the remote, the remote ref) there, and the image's
own ostree (:class:`ImageTools`, package code) runs ``admin init-fs``, ``os-init`` and ``deploy REMOTE:REF``
there, so that ``/var`` is seeded the way the image's ostree does it and ``ostree admin upgrade`` has a ref
to follow. On disk the staged files belong to subordinate ids; what this module writes as the host's root
(fstab, the first grub.cfg) is adopted into the namespace before ``mkfs.ext4 -d`` reads the sysroot in it.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from debsandbox import idmap
from debsandbox.commands import run
from debsandbox.sandbox import owned_dir

from ..errors import ComposeError
from ..intree import Tree
from . import grub
from .errors import DiskError
from .imagetools import ImageTools, in_namespace, staging_ids
from .layout import BOOT_LABEL, ESP_LABEL, ROOT_LABEL

DEFAULT_CONSOLE_ARGS = ("console=tty0", "console=ttyS0,115200n8")


def kernel_args(extra: tuple[str, ...] | list[str], serial_console: bool = True) -> list[str]:
    """``root=`` by label, ``rw`` (ostree-prepare-root makes /sysroot read-only itself), consoles, extras."""
    args = [f"root=LABEL={ROOT_LABEL}", "rw"]
    if serial_console and not any(a.startswith("console=") for a in extra):
        args += DEFAULT_CONSOLE_ARGS
    for a in extra:
        if a not in args:
            args.append(a)
    return args


# systemd waits 90 s for a device by default; udev on a slow VM (TCG on a busy host) has been seen to need
# more before /dev/disk/by-label appears, which failed local-fs.target. A missing disk still fails the boot.
DEVICE_TIMEOUT = "x-systemd.device-timeout=5min"
FSTAB = (
    "# written by deb-bootc-compose at install time (the root filesystem is mounted by ostree-prepare-root)\n"
    f"LABEL={BOOT_LABEL} /boot ext4 defaults,{DEVICE_TIMEOUT} 1 2\n"
    f"LABEL={ESP_LABEL} /boot/efi vfat umask=0077,shortname=winnt,{DEVICE_TIMEOUT} 0 2\n"
)


@dataclass
class Deployment:
    sysroot: Path
    osname: str
    commit: str
    path: Path  # the deployment checkout inside the sysroot
    tools: ImageTools


@dataclass(frozen=True)
class InstallSource:
    """A commit in a local repository, and how the installed system follows updates: the signed remote the
    image carries (manifest ``update.ostree``), else ``remote_url`` when one is asked for (install-to-disk
    ``--remote-url``), else a remote without a URL (the machine follows no update source)."""

    repo: Path
    ref: str
    commit: str
    remote_url: str | None = None


def repo_mode(repo: Path) -> str:
    for line in (repo / "config").read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "mode":
            return value.strip()
    return "bare"


def _namespace_readable(src: InstallSource, staging: Path, ids: idmap.IdMap, log: Path,
                        cancel: threading.Event | None) -> Path:
    """A repo holding ``src.commit`` that the staging namespace reads right: an archive repo as it is (its
    objects record owners and modes, and are world-readable); from a bare or bare-user repo (owners are the
    object files' own, or files may be unreadable to others) the host pulls the commit into a bare-user repo
    that it then gives to the namespace's root."""
    if repo_mode(src.repo) in ("archive", "archive-z2"):
        return src.repo
    imported = staging / "import"
    run(["ostree", "init", f"--repo={imported}", "--mode=bare-user"], log=log)
    run(["ostree", "pull-local", f"--repo={imported}", str(src.repo), src.commit], log=log, cancel=cancel)
    run(["chown", "-R", "--no-dereference", f"{ids.root_uid}:{ids.root_gid}", str(imported)], log=log)
    return imported


def stage(src: InstallSource, staging: Path, osname: str, kargs: list[str], log: Path,
          cancel: threading.Event | None = None, ids: idmap.IdMap | None = None) -> Deployment:
    ids = ids or staging_ids()
    owned_dir(staging, ids, mode=0o700)
    sysroot = owned_dir(staging / "sysroot", ids)
    repo = owned_dir(sysroot / "ostree" / "repo", ids)
    owned_dir(sysroot / "ostree", ids)
    # one bind of the staging directory for the repo and the checkout: hard links do not cross mounts
    paths = {"src": _namespace_readable(src, staging, ids, log, cancel), "staging": staging}
    in_repo = "--repo=@staging@/" + repo.relative_to(staging).as_posix()

    def ostree(*args: str) -> None:
        in_namespace(["ostree", *args], paths, log, ids=ids, cancel=cancel)

    ostree("init", in_repo, "--mode=bare")
    ostree("pull-local", in_repo, "@src@", src.commit)
    # the image's tools: a hard-linked checkout of the commit (costs no space, removed before mkfs)
    toolroot = staging / "image-tools"
    ostree("checkout", in_repo, "--require-hardlinks", src.commit, f"@staging@/{toolroot.name}")
    tools = ImageTools(toolroot, log, cancel, ids)
    remote = _origin_remote(src, tools, osname)
    if remote == osname and _remote_in_image(tools) is None:  # the image carries none: one in the repo config
        # --remote-url is the operator's explicit choice for an image without update: (no key to verify with):
        # unverified, said so in its --help; the deb-bootc client refuses to upgrade from such a remote (exit 3)
        url = ["--no-gpg-verify", osname, src.remote_url] if src.remote_url else [osname, ""]
        ostree("remote", "add", in_repo, *url, src.ref)
    ostree("refs", in_repo, f"--create={remote}:{src.ref}", src.commit)
    if not tools.has("usr/bin/ostree"):
        raise DiskError(f"commit {src.commit} has no /usr/bin/ostree: add ostree and ostree-boot to the image")
    if not any((toolroot / "usr/lib/modules").glob("*/vmlinuz")):
        raise DiskError(f"commit {src.commit} has no kernel at /usr/lib/modules/<version>/vmlinuz")
    binds = {"/target": sysroot}
    tools.run(["ostree", "admin", "init-fs", "/target"], binds)
    tools.run(["ostree", "admin", "os-init", "--sysroot=/target", osname], binds)
    deploy = ["ostree", "admin", "deploy", "--sysroot=/target", f"--os={osname}"]
    deploy += [f"--karg-append={a}" for a in kargs]
    tools.run([*deploy, f"{remote}:{src.ref}"], binds)
    path = sysroot / "ostree" / "deploy" / osname / "deploy" / f"{src.commit}.0"
    if not path.is_dir():
        raise DiskError(f"ostree admin deploy did not create {path}; see {log}")
    return Deployment(sysroot, osname, src.commit, path, tools)


def _remote_in_image(tools: ImageTools) -> str | None:
    from deb_bootc_compose.prepare.update_remote import remote_in_tree

    try:
        return remote_in_tree(tools.tree)
    except ComposeError as exc:
        raise DiskError(str(exc)) from None


def _origin_remote(src: InstallSource, tools: ImageTools, osname: str) -> str:
    """The remote the deployment's origin names: the image's own (signed, from its remotes.d), else ``osname``."""
    carried = _remote_in_image(tools)
    if carried is None:
        return osname
    if src.remote_url:
        raise DiskError(f"the image follows its own signed update remote {carried!r} (/etc/ostree/remotes.d); "
                        f"--remote-url {src.remote_url} cannot replace it")
    return carried


def configure(dep: Deployment, workdir: Path, log: Path) -> Path:
    """fstab, /var check, bootloader files; returns the GRUB EFI binary to put on the ESP."""
    # the image's own ostree made the sysroot's directories and the deployment: every path below resolves
    # inside the sysroot (and the deployment's /etc inside the deployment), never on the host
    sysroot = Tree(dep.sysroot)
    if not sysroot.is_real_dir("boot"):
        raise DiskError(f"{dep.sysroot / 'boot'} is not a directory of the sysroot")
    with Tree(sysroot.host_path(dep.path.relative_to(dep.sysroot))) as deployment:
        deployment.write_text("etc/fstab", FSTAB)
        if not deployment.exists("etc/default/grub"):
            deployment.mkdir("etc/default", exist_ok=True)
            deployment.write_text("etc/default/grub", 'GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX=""\n')
    if not sysroot.is_dir(f"ostree/deploy/{dep.osname}/var"):
        raise DiskError(f"the stateroot has no /var ({dep.sysroot / 'ostree' / 'deploy' / dep.osname / 'var'})")
    entries = grub.read_entries(dep.sysroot / "boot" / "loader" / "entries", root=dep.sysroot)
    sysroot.write_text("boot/loader/grub.cfg", grub.grub_cfg(entries))
    sysroot.mkdir("boot/grub", exist_ok=True)
    sysroot.unlink("boot/grub/grub.cfg", missing_ok=True)
    sysroot.symlink("../loader/grub.cfg", "boot/grub/grub.cfg")
    # the image's GRUB modules: links copied as links, never followed
    shutil.copytree(dep.tools.tree.host_path(grub.GRUB_MODULES_DIR),
                    sysroot.host_path("boot/grub") / grub.GRUB_PLATFORM, symlinks=True, dirs_exist_ok=True)
    sysroot.mkdir("boot/efi", exist_ok=True)
    sysroot.close()
    # from now on every deployment regenerates loader/grub.cfg with grub-mkconfig + 15_ostree
    with Tree(dep.sysroot) as t:  # the repo's config, never through a link the image's ostree planted
        repo = t.host_path("ostree/repo")
    run(["ostree", "config", f"--repo={repo}", "set", "sysroot.bootloader", "grub2"], log=log)
    return grub.build_efi_image(dep.tools, owned_dir(workdir / "grub", dep.tools.ids))
