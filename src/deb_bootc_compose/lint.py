"""Lint a prepared tree against the OSTree/bootc layout rules; every compose runs it and fails on any problem.

Each rule has a short name; :func:`check` returns every broken rule (not just the first), so a user sees
the whole picture at once. ``container_form=True`` expects /etc at the top level (the OCI form);
``False`` expects /usr/etc (the form OSTree commits).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.intree import Tree

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
# the rule groups of :class:`_Rules`, in the order they run (``skip_groups`` names them)
GROUPS = ("etc_location", "kernel", "machine_id", "dpkg", "var_empty", "toplevel_links", "etc_content", "api_dirs")
VAR_ALLOWED = {"var/lib", "var/lib/dpkg", "var/cache", "var/cache/debconf", "var/log"}  # links, apt's log dir


@dataclass(frozen=True)
class Problem:
    rule: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] /{self.path}: {self.message}"


def check(tree: Path, *, container_form: bool = True, scan_special_files: bool = True,
          skip_groups: Collection[str] = ()) -> list[Problem]:
    """Every broken rule in ``tree`` (an empty list when the tree is fine).

    The tree is read the way the image would see it: links resolve inside it, never on the host.
    ``skip_groups`` leaves out rule groups (:data:`GROUPS`; ``lint IMAGE`` judges /var its own way)."""
    if not tree.is_dir():
        return [Problem("etc-location", "", f"{tree} is not a directory")]
    with Tree(tree) as t:
        return _check(t, container_form=container_form, scan_special_files=scan_special_files,
                      skip_groups=skip_groups)


def _check(t: Tree, *, container_form: bool, scan_special_files: bool, skip_groups: Collection[str]) -> list[Problem]:
    rules = _Rules(t, container_form)
    unknown = set(skip_groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown lint rule groups {sorted(unknown)} (known: {', '.join(GROUPS)})")
    for name in GROUPS:
        if name not in skip_groups:
            getattr(rules, name)()
    if scan_special_files:
        rules.special_files()
    return rules.problems


@dataclass
class _Rules:
    """The rules, in groups; each adds what it finds broken to ``problems``."""

    t: Tree
    container_form: bool
    problems: list[Problem] = field(default_factory=list)

    @property
    def etc(self) -> str:
        return "etc" if self.container_form else "usr/etc"

    def add(self, rule: str, path: str, message: str) -> None:
        self.problems.append(Problem(rule, path, message))

    def text(self, rel: str) -> str:
        try:
            return self.t.read_text(rel, errors="replace", limit=16 << 20)
        except OSError:
            return ""

    def etc_location(self) -> None:
        t, etc = self.t, self.etc
        other_etc = "usr/etc" if self.container_form else "etc"
        form = "container" if self.container_form else "OSTree"
        if not t.is_real_dir(etc):
            self.add("etc-location", etc, f"missing: the {form} form keeps /etc here")
        if t.lexists(other_etc):
            self.add("etc-location", other_etc, f"must not exist in the {form} form")

    def kernel(self) -> None:
        """The kernel and initramfs, and nothing of them in /boot or at /."""
        t, add = self.t, self.add
        modules = "usr/lib/modules"
        kdirs = [f"{modules}/{d}" for d in t.listdir(modules) if t.is_dir(f"{modules}/{d}")] \
            if t.is_dir(modules) else []
        kernels = [d for d in kdirs if t.is_file(f"{d}/vmlinuz")]
        if not kernels:
            add("kernel", "usr/lib/modules", "no usr/lib/modules/$kver/vmlinuz: the image has no bootable kernel")
        elif len(kernels) > 1:
            add("kernel", "usr/lib/modules", f"several kernels: {', '.join(d.rsplit('/', 1)[1] for d in kernels)}")
        for d in kernels:
            st = t.stat(f"{d}/initramfs.img")
            if st is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
                add("initramfs", f"{d}/initramfs.img", "missing or empty: build it with dracut --add ostree")
        boot = t.listdir("boot") if t.is_dir("boot") else []
        if boot:
            add("boot-empty", "boot", f"must be empty in the image, holds {', '.join(boot[:5])}")
        for name in t.listdir(""):
            if name.startswith(("vmlinuz", "initrd.img")):
                add("boot-links", name, "kernel/initrd symlinks at / belong to /boot-based systems: remove them")

    def machine_id(self) -> None:
        path = f"{self.etc}/machine-id"
        mid = self.t.stat(path)
        if mid is None or not stat.S_ISREG(mid.st_mode):
            self.add("machine-id", path, "missing: it must exist and be empty (systemd fills it at first boot)")
        elif mid.st_size != 0:
            self.add("machine-id", path, "not empty: every machine booted from the image would share one ID")

    def dpkg(self) -> None:
        """The dpkg database under /usr, the link to it and the tmpfiles.d entry that makes the link."""
        t, add = self.t, self.add
        if not t.is_file(f"{DPKG_DB}/status"):
            add("dpkg-db", f"{DPKG_DB}/status", "missing: the dpkg database belongs under /usr/lib/sysimage/dpkg")
        link = "var/lib/dpkg"
        if not t.is_symlink(link) or os.path.normpath(os.path.join("var/lib", t.readlink(link))) != DPKG_DB:
            add("dpkg-link", "var/lib/dpkg", f"must be a symlink to ../../{DPKG_DB} (dpkg -l in a container needs it)")
        tmpfiles_dir = "usr/lib/tmpfiles.d"
        tmpfiles = ""
        if t.is_dir(tmpfiles_dir):
            tmpfiles = "\n".join(self.text(f"{tmpfiles_dir}/{f}") for f in t.listdir(tmpfiles_dir)
                                 if f.endswith(".conf") and t.is_file(f"{tmpfiles_dir}/{f}"))
        if not any(line.split()[:2] in (["L+", "/var/lib/dpkg"], ["L", "/var/lib/dpkg"])
                   for line in tmpfiles.splitlines() if line.strip()):
            add("dpkg-link", "usr/lib/tmpfiles.d",
                "no tmpfiles.d 'L+ /var/lib/dpkg' entry: a booted system lacks the link")
        if t.is_real_dir("var/cache/debconf"):
            add("var-empty", "var/cache/debconf", "the debconf database belongs under /usr/lib/sysimage/debconf")

    def var_empty(self) -> None:
        """/var empty except the dpkg link (walked on the tree's own /var, links never followed)."""
        if not self.t.is_dir("var"):
            return
        var = self.t.host_path("var")
        for root, dirs, files in os.walk(var):
            for name in [*dirs, *files]:
                rel = os.path.normpath(os.path.join("var", os.path.relpath(os.path.join(root, name), var)))
                if rel not in VAR_ALLOWED:
                    self.add("var-empty", rel, "OSTree ships /var empty: make it a tmpfiles.d entry")
            dirs[:] = [d for d in dirs
                       if os.path.normpath(os.path.join("var", os.path.relpath(os.path.join(root, d), var)))
                       in VAR_ALLOWED]

    def toplevel_links(self) -> None:
        t = self.t
        for name, target in TOPLEVEL_LINKS.items():
            if not t.is_symlink(name) or t.readlink(name) != target:
                have = f"a symlink to {t.readlink(name)}" if t.is_symlink(name) else (
                    "a directory" if t.is_dir(name) else "missing")
                self.add("toplevel-links", name, f"must be a symlink to {target} (is {have})")
        if not t.is_real_dir("sysroot"):
            self.add("toplevel-links", "sysroot",
                     "must be an empty directory (the deployment mounts the physical root there)")

    def etc_content(self) -> None:
        """prepare-root.conf, and in /etc: no SSH host keys, root locked, a locale, GRUB's defaults."""
        t, add, etc = self.t, self.add, self.etc
        if not t.is_file("usr/lib/ostree/prepare-root.conf"):
            add("prepare-root", "usr/lib/ostree/prepare-root.conf",
                "missing: ostree-prepare-root needs it (before dracut)")
        if t.is_dir(f"{etc}/ssh"):
            for k in t.listdir(f"{etc}/ssh"):
                if k.startswith("ssh_host_"):
                    add("ssh-host-keys", f"{etc}/ssh/{k}", "SSH host keys must be made at first boot, not shipped")
        if t.is_file(f"{etc}/shadow"):
            for line in self.text(f"{etc}/shadow").splitlines():
                parts = line.split(":")
                if parts[0] == "root" and len(parts) > 1 and not parts[1].startswith(("!", "*")):
                    add("root-locked", f"{etc}/shadow",
                        "root has a usable password: lock it (a field starting with '!')")
        else:
            add("root-locked", f"{etc}/shadow", "missing")
        if not t.is_file(f"{etc}/locale.conf") or "LANG=" not in self.text(f"{etc}/locale.conf"):
            add("locale", f"{etc}/locale.conf", "missing or without LANG=")
        # 15_ostree does nothing without /etc/default/grub
        if not t.is_file(f"{etc}/default/grub"):
            add("grub-default", f"{etc}/default/grub", "missing: ostree's grub2 backend (15_ostree) needs it")

    def api_dirs(self) -> None:
        for name in ("dev", "proc", "sys", "run", "tmp"):
            if self.t.is_real_dir(name) and self.t.listdir(name):
                self.add("api-dirs-empty", name, "must be empty (it is mounted at boot)")

    def special_files(self) -> None:
        """No device nodes, sockets or fifos anywhere."""
        top = self.t.host_path("")
        for root, dirs, files in os.walk(top):
            for name in [*files, *dirs]:
                full = os.path.join(root, name)
                mode = os.lstat(full).st_mode
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    self.add("special-files", os.path.relpath(full, top),
                             "device nodes, fifos and sockets cannot be committed")
