"""rootfs: mmdebstrap installs exactly the locked .debs, served from the pool as a local apt repository.

mmdebstrap runs in a user namespace made by the debsandbox launcher (ns-root is the first id of root's
subordinate range, see :mod:`deb_bootc_compose.treeops`), with its own mount, pid, ipc, uts and network
namespaces: the maintainer scripts of the packages it installs never hold a capability of the host, nothing
mounted in the tree survives it, and there is no network (the packages come from a local ``file:`` repository).
mmdebstrap's ``root`` mode is used *inside* that namespace: its ``unshare`` mode, started by the host's root,
would not make a user namespace at all. The work directory is bound at a fresh mount point under ``/run`` so
that ns-root can reach it whatever the permissions of the directories above it are. SOURCE_DATE_EPOCH comes
from the lockfile: the tree is bit-reproducible from run to run.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

from deb_bootc_compose import pool, treeops
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.phases.base import Phase, VariantState
from debsandbox.commands import CommandError, run
from debsandbox.sandbox import Bind, Sandbox, owned_dir

HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "ppc64le": "ppc64el", "s390x": "s390x",
             "riscv64": "riscv64", "armv7l": "armhf"}


def write_local_repo(repo: Path, log: Path) -> None:
    """Index the .debs in ``repo`` as a flat apt repository (Packages + Release)."""
    packages = run(["apt-ftparchive", "packages", "."], cwd=repo, capture=True, log=None).output
    (repo / "Packages").write_text(packages)
    release = run(
        ["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=deb-bootc-compose", "release", "."],
        cwd=repo, capture=True, log=None,
    ).output
    (repo / "Release").write_text(release)
    with open(log, "a") as fh:
        fh.write(f"local repository {repo}: {packages.count('Package: ')} packages\n")


def shipped_dirs(tree: Path | Tree) -> set[str]:
    """Every path the installed packages ship (from dpkg's .list files), as "/var/tmp"."""
    t = tree if isinstance(tree, Tree) else Tree(tree)
    shipped: set[str] = set()
    info = "var/lib/dpkg/info"
    for name in t.listdir(info) if t.is_dir(info) else []:
        if name.endswith(".list"):
            shipped.update(t.read_text(f"{info}/{name}", errors="replace").splitlines())
    return shipped


def remove_mountpoint_dirs(tree: Path, host_path: Path) -> list[str]:
    """mmdebstrap's file-mirror-automount mounts the local repository at its host path inside the tree and,
    in root mode, leaves the empty mount point behind (e.g. ``var/lib/composes/<id>/work/base/amd64/repo``).
    It would end up in the image (as tmpfiles lines under /var) and make the commit depend on the target
    directory. Remove that chain of empty directories, deepest first, stopping at anything a package ships
    or that is not empty (or not a real directory of the tree). Returns what was removed, as "/path"."""
    with Tree(tree) as t:
        shipped = shipped_dirs(t)
        removed: list[str] = []
        rel = host_path.relative_to("/").as_posix()
        while rel not in ("", ".") and t.is_real_dir(rel):
            inner = "/" + rel
            if inner in shipped or t.listdir(rel):
                break
            t.rmdir(rel)
            removed.append(inner)
            rel = os.path.dirname(rel)
        return removed


class RootfsPhase(Phase):
    name = "rootfs"
    needed_because = "the OSTree commit and the OCI image are made from the tree it installs"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            self.build(vs)

    def build(self, vs: VariantState) -> None:
        lv = vs.lock
        if lv is None:
            raise ComposeError(f"{vs.variant}/{vs.arch}: no locked package set (gather must run before rootfs)")
        paths = self.ctx.paths
        repo = paths.local_repo(vs.variant, vs.arch)
        tree = paths.tree(vs.variant, vs.arch)
        host = HOST_ARCH.get(platform.machine(), platform.machine())
        if vs.arch != host and not Path(f"/proc/sys/fs/binfmt_misc/qemu-{_qemu_name(vs.arch)}").exists():
            raise ComposeError(
                f"{vs.variant}/{vs.arch}: composing a foreign architecture on {host} needs qemu-user binfmt "
                "support (apt-get install qemu-user-static binfmt-support)"
            )
        treeops.remove_tree(repo)
        treeops.remove_tree(tree)
        pool.link_into(self.ctx.target, lv.packages, repo)
        write_local_repo(repo, self.log_path)
        includes = ",".join(f"{p.name}={p.version}" for p in lv.packages)
        self.progress(f"{vs.variant}/{vs.arch}: mmdebstrap of {len(lv.packages)} locked packages "
                      "(user namespace, no network)")
        ids = treeops.tree_ids()
        work = paths.variant_work(vs.variant, vs.arch)
        scratch_dir = paths.mmdebstrap_tmp(vs.variant, vs.arch)
        if {repo.parent, tree.parent, scratch_dir.parent} != {work}:  # one bind mount serves all three
            raise ComposeError(f"{vs.variant}/{vs.arch}: the local repository {repo}, the tree {tree} and "
                               f"mmdebstrap's scratch directory {scratch_dir} must sit in {work}")
        work.mkdir(parents=True, exist_ok=True)
        owned_dir(tree, ids)
        scratch = owned_dir(scratch_dir, ids)
        # the mount point the work directory is bound at inside the namespace: reachable by ns-root (/run is
        # 0755 everywhere), empty on the host, removed afterwards
        mnt = Path(tempfile.mkdtemp(prefix="deb-bootc-compose-", dir="/run"))
        try:
            mnt.chmod(0o755)
            inner_tree, inner_repo = mnt / tree.name, mnt / repo.name
            argv = [
                "mmdebstrap", "--mode=root", "--format=directory", "--variant=custom",
                f"--architectures={vs.arch}", f"--include={includes}",
                "--aptopt=Acquire::Languages \"none\"",
                "--dpkgopt=force-unsafe-io", "--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount",
                # the image must not keep the unsafe-io setting
                "--customize-hook=rm -f \"$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap\"",
                "", str(inner_tree), f"deb [trusted=yes] file://{inner_repo} ./",
            ]
            # INITRD=No: the kernel postinst must not build a host-only initramfs; ostree-prepare builds the
            # real one. HOME: not the host's root's home (ns-root cannot read it, and it is not the image's)
            env = {"SOURCE_DATE_EPOCH": str(self.ctx.source_date_epoch), "LC_ALL": "C.UTF-8", "INITRD": "No",
                   "TMPDIR": str(mnt / scratch.name), "HOME": str(mnt / scratch.name)}
            # SYS_ADMIN (in the namespace only): mmdebstrap mounts /proc, /sys, /dev and the repository into
            # the tree, in the namespace's own mount namespace
            sandbox = Sandbox(root=None, binds=[Bind(work, str(mnt), ro=False)], network=False, env=env,
                              hostname="localhost", cap_add=("SYS_ADMIN",))
            try:
                sandbox.run(argv, ids=ids, log=self.log_path, cancel=self.ctx.cancel, timeout=3600, tail=30)
            except CommandError as exc:
                raise ComposeError(
                    f"{vs.variant}/{vs.arch}: mmdebstrap failed (log: {self.log_path}):\n{exc.tail}"
                ) from exc
        finally:
            mnt.rmdir()
            treeops.remove_tree(scratch)
        # mmdebstrap's file-mirror-automount left the repository's mount point in the tree: at its inner path
        repo = inner_repo
        gone = remove_mountpoint_dirs(tree, repo)
        if gone:
            self.progress(f"{vs.variant}/{vs.arch}: removed the local repository's empty mount point {gone[-1]}")
        with Tree(tree) as t:
            installed = treeops.dpkg_installed(t.read_text("var/lib/dpkg/status", errors="replace"))
        locked = {(p.name, p.version) for p in lv.packages}
        if installed != locked:
            extra = sorted(installed - locked)
            missing = sorted(locked - installed)
            raise ComposeError(
                f"{vs.variant}/{vs.arch}: the tree does not hold exactly the locked packages "
                f"(extra: {extra[:10]}, missing: {missing[:10]})"
            )
        vs.tree = tree
        self.progress(f"{vs.variant}/{vs.arch}: rootfs ready, {len(installed)} packages")


def _qemu_name(arch: str) -> str:
    return {"arm64": "aarch64", "armhf": "arm", "ppc64el": "ppc64le", "i386": "i386"}.get(arch, arch)
