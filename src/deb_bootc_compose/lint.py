"""Lint a prepared tree against the OSTree/bootc layout rules; every compose runs it and fails on any problem.

Each rule has a short name; :func:`check` returns every broken rule (not just the first), so a user sees
the whole picture at once. ``container_form=True`` expects /etc at the top level (the OCI form);
``False`` expects /usr/etc (the form OSTree commits).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

TOPLEVEL_LINKS = {
    "home": "var/home",
    "root": "var/roothome",
    "opt": "var/opt",
    "srv": "var/srv",
    "mnt": "var/mnt",
    "media": "run/media",
    "ostree": "sysroot/ostree",
    "usr/local": "../var/usrlocal",
}
DPKG_DB = "usr/lib/sysimage/dpkg"
VAR_ALLOWED = {"var/lib", "var/lib/dpkg"}


@dataclass(frozen=True)
class Problem:
    rule: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] /{self.path}: {self.message}"


def check(tree: Path, *, container_form: bool = True, scan_special_files: bool = True) -> list[Problem]:
    """Every broken rule in ``tree`` (an empty list when the tree is fine)."""
    p: list[Problem] = []
    t = tree

    def add(rule: str, path: str, message: str) -> None:
        p.append(Problem(rule, path, message))

    etc = "etc" if container_form else "usr/etc"
    other_etc = "usr/etc" if container_form else "etc"
    # /etc location
    if not (t / etc).is_dir() or (t / etc).is_symlink():
        add("etc-location", etc, f"missing: the {'container' if container_form else 'OSTree'} form keeps /etc here")
    if (t / other_etc).exists() or (t / other_etc).is_symlink():
        add("etc-location", other_etc, f"must not exist in the {'container' if container_form else 'OSTree'} form")

    # kernel and initramfs
    modules = t / "usr/lib/modules"
    kdirs = sorted(d for d in modules.iterdir() if d.is_dir()) if modules.is_dir() else []
    kernels = [d for d in kdirs if (d / "vmlinuz").is_file()]
    if not kernels:
        add("kernel", "usr/lib/modules", "no usr/lib/modules/$kver/vmlinuz: the image has no bootable kernel")
    elif len(kernels) > 1:
        add("kernel", "usr/lib/modules", f"several kernels: {', '.join(d.name for d in kernels)}")
    for d in kernels:
        rel = os.path.relpath(d, t)
        if not (d / "initramfs.img").is_file() or (d / "initramfs.img").stat().st_size == 0:
            add("initramfs", f"{rel}/initramfs.img", "missing or empty: build it with dracut --add ostree")
    boot = t / "boot"
    if boot.is_dir() and any(boot.iterdir()):
        held = ", ".join(sorted(c.name for c in boot.iterdir())[:5])
        add("boot-empty", "boot", f"must be empty in the image, holds {held}")
    for name in sorted(os.listdir(t)) if t.is_dir() else []:
        if name.startswith(("vmlinuz", "initrd.img")):
            add("boot-links", name, "kernel/initrd symlinks at / belong to /boot-based systems: remove them")

    # machine-id
    mid = t / etc / "machine-id"
    if not mid.is_file():
        add("machine-id", f"{etc}/machine-id", "missing: it must exist and be empty (systemd fills it at first boot)")
    elif mid.stat().st_size != 0:
        add("machine-id", f"{etc}/machine-id", "not empty: every machine booted from the image would share one ID")

    # dpkg database
    if not (t / DPKG_DB / "status").is_file():
        add("dpkg-db", f"{DPKG_DB}/status", "missing: the dpkg database belongs under /usr/lib/sysimage/dpkg")
    link = t / "var/lib/dpkg"
    if not link.is_symlink() or os.path.normpath(os.path.join("var/lib", os.readlink(link))) != DPKG_DB:
        add("dpkg-link", "var/lib/dpkg", f"must be a symlink to ../../{DPKG_DB} (dpkg -l in a container needs it)")
    tmpfiles_dir = t / "usr/lib/tmpfiles.d"
    tmpfiles = ""
    if tmpfiles_dir.is_dir():
        tmpfiles = "\n".join(f.read_text(errors="replace") for f in sorted(tmpfiles_dir.glob("*.conf")) if f.is_file())
    if not any(line.split()[:2] in (["L+", "/var/lib/dpkg"], ["L", "/var/lib/dpkg"])
               for line in tmpfiles.splitlines() if line.strip()):
        add("dpkg-link", "usr/lib/tmpfiles.d", "no tmpfiles.d 'L+ /var/lib/dpkg' entry: a booted system lacks the link")
    if (t / "var/cache/debconf").is_dir() and not (t / "var/cache/debconf").is_symlink():
        add("var-empty", "var/cache/debconf", "the debconf database belongs under /usr/lib/sysimage/debconf")

    # /var empty except the dpkg link
    var = t / "var"
    if var.is_dir():
        for root, dirs, files in os.walk(var):
            for name in [*dirs, *files]:
                rel = os.path.relpath(os.path.join(root, name), t)
                if rel not in VAR_ALLOWED:
                    add("var-empty", rel, "OSTree ships /var empty: make it a tmpfiles.d entry")
            dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(root, d), t) in VAR_ALLOWED]

    # toplevel symlinks
    for name, target in TOPLEVEL_LINKS.items():
        q = t / name
        if not q.is_symlink() or os.readlink(q) != target:
            have = f"a symlink to {os.readlink(q)}" if q.is_symlink() else ("a directory" if q.is_dir() else "missing")
            add("toplevel-links", name, f"must be a symlink to {target} (is {have})")
    if not (t / "sysroot").is_dir() or (t / "sysroot").is_symlink():
        add("toplevel-links", "sysroot", "must be an empty directory (the deployment mounts the physical root there)")

    # prepare-root.conf
    if not (t / "usr/lib/ostree/prepare-root.conf").is_file():
        add("prepare-root", "usr/lib/ostree/prepare-root.conf", "missing: ostree-prepare-root needs it (before dracut)")

    # no SSH host keys
    ssh = t / etc / "ssh"
    if ssh.is_dir():
        for k in sorted(ssh.glob("ssh_host_*")):
            add("ssh-host-keys", os.path.relpath(k, t), "SSH host keys must be made at first boot, not shipped")

    # root locked
    shadow = t / etc / "shadow"
    if shadow.is_file():
        for line in shadow.read_text(errors="replace").splitlines():
            parts = line.split(":")
            if parts[0] == "root" and len(parts) > 1 and not parts[1].startswith(("!", "*")):
                add("root-locked", f"{etc}/shadow", "root has a usable password: lock it (a field starting with '!')")
    else:
        add("root-locked", f"{etc}/shadow", "missing")

    # locale
    loc = t / etc / "locale.conf"
    if not loc.is_file() or "LANG=" not in loc.read_text(errors="replace"):
        add("locale", f"{etc}/locale.conf", "missing or without LANG=")

    # /etc/default/grub: 15_ostree does nothing without it
    if not (t / etc / "default/grub").is_file():
        add("grub-default", f"{etc}/default/grub", "missing: ostree's grub2 backend (15_ostree) needs it")

    # API filesystems empty
    for name in ("dev", "proc", "sys", "run", "tmp"):
        d = t / name
        if d.is_dir() and not d.is_symlink() and any(d.iterdir()):
            add("api-dirs-empty", name, "must be empty (it is mounted at boot)")

    # no device nodes, sockets or fifos anywhere
    if scan_special_files:
        for root, dirs, files in os.walk(t):
            for name in [*files, *dirs]:
                full = os.path.join(root, name)
                mode = os.lstat(full).st_mode
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    add("special-files", os.path.relpath(full, t),
                        "device nodes, fifos and sockets cannot be committed")
    return p
