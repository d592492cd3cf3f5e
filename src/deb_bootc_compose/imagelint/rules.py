"""The rules ``lint IMAGE`` checks, each with a severity and what to do.

The compose's own tree lint (:func:`deb_bootc_compose.lint.check`, container form) runs on the image's tree
with the severities below (an image may differ from a fresh compose where booting does not suffer: a root
password, a locale); its ``var-empty`` walk is replaced by bootc's view of /var (``var-tmpfiles``,
``var-files``, ``apt-cache``: warnings, as ``bootc container lint`` gives). The image rules add what a
Containerfile can break: the initramfs must match the kernel and carry ostree's module, a kernel's modules
must be there, file names must be UTF-8, /var/run a link, the apt sources usable from outside, the labels
true.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from deb_bootc_compose import lint
from deb_bootc_compose.imagelint import initramfs
from deb_bootc_compose.imagesources import local_url_reason
from deb_bootc_compose.intree import Tree

ERROR, WARNING = "error", "warning"
MODULES = "usr/lib/modules"
# --tmpdir /tmp: dracut's default, /var/tmp, does not exist in an image (tmpfiles.d makes it at boot)
REGEN = ("regenerate it in the Containerfile, after the kernel change: RUN dracut --no-hostonly --reproducible "
         "--add ostree --tmpdir /tmp --force /usr/lib/modules/{kver}/initramfs.img {kver}")
SHOWN = 5  # paths named per message


@dataclass(frozen=True)
class Rule:
    severity: str
    hint: str  # what to do


RULES: dict[str, Rule] = {
    # the compose's tree lint (deb_bootc_compose.lint)
    "etc-location": Rule(ERROR, "keep /etc at the top and no /usr/etc (deployment makes /usr/etc)"),
    "kernel": Rule(ERROR, "keep exactly one kernel, as /usr/lib/modules/VERSION/vmlinuz (docs/variants.md: a "
                          "kernel change)"),
    "initramfs": Rule(ERROR, REGEN),
    "boot-empty": Rule(WARNING, "empty /boot in the RUN that filled it (rm -rf /boot/*): it is hidden at boot; the "
                                "kernel belongs in /usr/lib/modules/VERSION"),
    "boot-links": Rule(WARNING, "remove them: rm -f /vmlinuz* /initrd.img*"),
    "machine-id": Rule(ERROR, "empty it: RUN truncate -s 0 /etc/machine-id"),
    "dpkg-db": Rule(ERROR, "keep the dpkg database in /usr/lib/sysimage/dpkg, where the base image has it"),
    "dpkg-link": Rule(ERROR, "keep /var/lib/dpkg a link to ../../usr/lib/sysimage/dpkg"),
    "var-empty": Rule(ERROR, "keep /var/cache/debconf a link to ../../usr/lib/sysimage/debconf"),
    "toplevel-links": Rule(ERROR, "keep the base image's top-level links (/home -> var/home, ...)"),
    "prepare-root": Rule(ERROR, "keep /usr/lib/ostree/prepare-root.conf from the base image"),
    "ssh-host-keys": Rule(ERROR, "remove them: RUN rm -f /etc/ssh/ssh_host_* (they are made at first boot)"),
    "root-locked": Rule(WARNING, "every machine booted from the image has that root password; lock it with "
                                 "passwd -l root unless that is what you want"),
    "locale": Rule(WARNING, "keep /etc/locale.conf with LANG="),
    "grub-default": Rule(ERROR, "keep /etc/default/grub (ostree's GRUB integration reads it)"),
    "api-dirs-empty": Rule(WARNING, "it is hidden at boot (a fresh file system is mounted there): remove it"),
    "special-files": Rule(ERROR, "remove device nodes and FIFOs: OSTree cannot commit them"),
    # the image's own
    "kernel-modules": Rule(ERROR, "the kernel's package was removed: keep the kernel whose vmlinuz is shipped"),
    "kernel-incomplete": Rule(WARNING, "a kernel installed the /boot way is not booted: copy /boot/vmlinuz-VERSION "
                                       "to /usr/lib/modules/VERSION/vmlinuz and build its initramfs, or remove it"),
    "initramfs-kernel": Rule(ERROR, REGEN),
    "initramfs-ostree": Rule(ERROR, REGEN),
    "var-run": Rule(ERROR, "/var/run must be a link to /run: remove the directory"),
    "var-tmpfiles": Rule(WARNING, "/var in an image is seeded only at the first installation: create these at "
                                  "boot with a tmpfiles.d entry (usr/lib/tmpfiles.d/NAME.conf: d /var/PATH ...)"),
    "var-files": Rule(WARNING, "/var in an image is seeded only at the first installation, never updated: remove "
                               "them in the RUN that made them, or ship them under /usr"),
    "apt-cache": Rule(WARNING, "clean up in the RUN that ran apt: apt-get clean && rm -rf /var/lib/apt /var/cache/apt "
                                "/var/log/* (apt makes them again when it needs them)"),
    "apt-sources": Rule(WARNING, "name sources apt can reach from where the image is built and used "
                                 "(manifest image_sources:), signed by a keyring the image holds"),
    "utf8": Rule(ERROR, "rename it: OSTree commits only UTF-8 names"),
    "buildah-injected": Rule(WARNING, "podman/buildah leave an empty /etc/hostname in a RUN's layer (it is mounted "
                                      "there, a RUN cannot remove it); harmless: systemd takes an empty file for no "
                                      "static hostname"),
    "labels": Rule(WARNING, "set the label in the Containerfile (LABEL containers.bootc=1 ostree.linux=VERSION)"),
}


@dataclass(frozen=True)
class ImageProblem:
    rule: str
    severity: str
    path: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.severity}: [{self.rule}] /{self.path}: {self.message}\n    → {self.hint}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _problem(rule: str, path: str, message: str, **fill: str) -> ImageProblem:
    r = RULES[rule]
    hint = r.hint.format(**fill) if fill else r.hint.replace("{kver}", "VERSION")
    return ImageProblem(rule, r.severity, path, message, hint)


def _listing(paths: list[str]) -> str:
    shown = ", ".join(f"/{p}" for p in paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def _kernels(t: Tree, out: list[ImageProblem]) -> None:
    """Modules of each kernel, a kernel left without its vmlinuz, and an initramfs for the kernel, with ostree."""
    kdirs = sorted(d for d in t.listdir(MODULES) if t.is_dir(f"{MODULES}/{d}")) if t.is_dir(MODULES) else []
    for kver in kdirs:
        d = f"{MODULES}/{kver}"
        has_kernel, has_modules = t.is_file(f"{d}/vmlinuz"), t.is_file(f"{d}/modules.dep")
        if has_kernel and not has_modules:
            out.append(_problem("kernel-modules", d, f"vmlinuz without modules (no {d}/modules.dep): the kernel "
                                "boots without drivers"))
        if has_modules and not has_kernel:
            where = f" (its vmlinuz is /boot/vmlinuz-{kver})" if t.lexists(f"boot/vmlinuz-{kver}") else ""
            out.append(_problem("kernel-incomplete", d, f"modules of kernel {kver} but no vmlinuz{where}"))
        st = t.stat(f"{d}/initramfs.img")
        if not has_kernel or st is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            continue  # the tree lint's 'kernel' and 'initramfs' rules say so
        try:
            listing = initramfs.list_names(t.host_path(f"{d}/initramfs.img"))
        except initramfs.InitramfsError as exc:
            out.append(_problem("initramfs", f"{d}/initramfs.img", f"not an initramfs: {exc}", kver=kver))
            continue
        versions = listing.kernel_versions
        if kver not in versions:
            built = ", ".join(sorted(versions)) or "no kernel"
            out.append(_problem("initramfs-kernel", f"{d}/initramfs.img",
                                f"built for {built}, not for the kernel {kver} it sits beside", kver=kver))
        if not listing.has_ostree:
            out.append(_problem("initramfs-ostree", f"{d}/initramfs.img", "no ostree-prepare-root in it: it "
                                "cannot mount the deployment (dracut ran without --add ostree)", kver=kver))


def tmpfiles_paths(t: Tree) -> set[str]:
    """The paths (without the leading /) tmpfiles.d lines of the image name."""
    paths: set[str] = set()
    for d in ("usr/lib/tmpfiles.d", "etc/tmpfiles.d"):
        for name in t.listdir(d) if t.is_dir(d) else []:
            if not name.endswith(".conf") or not t.is_file(f"{d}/{name}"):
                continue
            for line in t.read_text(f"{d}/{name}", errors="replace", limit=16 << 20).splitlines():
                fields = line.split()
                if len(fields) >= 2 and not fields[0].startswith("#") and fields[1].startswith("/"):
                    paths.add(fields[1].replace("\\x20", " ").strip("/"))
    return paths


APT_JUNK = re.compile(r"^var/(lib/apt/lists/(?!lock$|partial$|auxfiles$)[^/]+|cache/apt/[^/]+\.bin|"
                      r"cache/apt/archives/[^/]+\.deb)$")


def _var(t: Tree, out: list[ImageProblem]) -> None:
    """bootc's view of /var: content with no tmpfiles.d line, files (seeded once), apt's leftovers."""
    if t.lexists("var/run") and not t.is_symlink("var/run"):
        out.append(_problem("var-run", "var/run", "a directory, not a link to /run"))
    if not t.is_real_dir("var"):
        return
    covered = tmpfiles_paths(t)
    covered |= {os.path.dirname(p) for p in list(covered)}
    while (parents := {os.path.dirname(p) for p in covered} - covered - {""}):
        covered |= parents  # an entry creates its parents
    junk, files, untracked = [], [], []
    var = t.host_path("var")
    for root, dirs, names in os.walk(var):
        for name in sorted([*dirs, *names]):
            rel = os.path.normpath(os.path.join("var", os.path.relpath(os.path.join(root, name), var)))
            mode = os.lstat(os.path.join(root, name)).st_mode
            if rel in lint.VAR_ALLOWED or rel == "var/cache/debconf":
                continue  # the dpkg link, and debconf (the tree lint's rules)
            if APT_JUNK.match(rel):
                junk.append(rel)
            elif not (stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                files.append(rel)
            elif rel not in covered and not rel.startswith("var/lib/apt/lists"):
                untracked.append(rel)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join("var", os.path.relpath(
            os.path.join(root, d), var))) != "var/cache/debconf"]
    if junk:
        out.append(_problem("apt-cache", os.path.commonpath(junk), f"apt's package lists or caches: "
                            f"{_listing(junk)}"))
    if files:
        out.append(_problem("var-files", "var", f"{len(files)} file(s) in /var: {_listing(files)}"))
    if untracked:
        out.append(_problem("var-tmpfiles", "var", f"{len(untracked)} directories or links in /var without a "
                            f"tmpfiles.d entry: {_listing(untracked)}"))


def _apt_sources(t: Tree, out: list[ImageProblem]) -> None:
    d = "etc/apt/sources.list.d"
    for name in sorted(t.listdir(d)) if t.is_dir(d) else []:
        rel = f"{d}/{name}"
        if not name.endswith(".sources") or not t.is_file(rel):
            continue
        for stanza in re.split(r"\n\s*\n", t.read_text(rel, errors="replace", limit=1 << 20)):
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
            if fields.get("Enabled", "yes").strip().lower() == "no":
                continue
            for url in fields.get("URIs", "").split():
                if why := local_url_reason(url):
                    out.append(_problem("apt-sources", rel, f"{url} is {why}: apt-get in a container or on a "
                                        "machine cannot reach it"))
            for key in fields.get("Signed-By", "").split():
                if key.startswith("/") and not t.is_file(key.lstrip("/")):
                    out.append(_problem("apt-sources", rel, f"Signed-By {key} is not in the image: apt-get "
                                        "update refuses the source"))


def _labels(t: Tree, labels: dict[str, str], out: list[ImageProblem]) -> None:
    if labels.get("containers.bootc") != "1":
        out.append(_problem("labels", "", "no label containers.bootc=1: bootc tools do not take it for a bootable "
                            "image"))
    kernels = [k for k in t.listdir(MODULES) if t.is_file(f"{MODULES}/{k}/vmlinuz")] if t.is_dir(MODULES) else []
    named = labels.get("ostree.linux")
    if named is not None and len(kernels) == 1 and named != kernels[0]:
        out.append(_problem("labels", "", f"label ostree.linux={named} but the kernel is {kernels[0]} (the label "
                            "came from the base image)"))


BOOT_RULES = frozenset({"kernel", "initramfs", "kernel-modules", "initramfs-kernel", "initramfs-ostree"})


def boot_problems(root: Path) -> list[ImageProblem]:
    """The errors that make the image at ``root`` unbootable (:data:`BOOT_RULES`: no kernel, no initramfs or one
    for another kernel or without ostree): what ``install-to-disk`` refuses an image for."""
    found = [_problem(p.rule, p.path, p.message) for p in lint.check(
        root, scan_special_files=False, skip_groups=set(lint.GROUPS) - {"kernel"})]
    with Tree(root) as t:
        _kernels(t, found)
    return [p for p in found if p.rule in BOOT_RULES and p.severity == ERROR]


def lint_tree(root: Path, *, labels: dict[str, str] | None = None, non_utf8: list[str] | None = None,
              skip: set[str] | frozenset[str] = frozenset()) -> list[ImageProblem]:
    """Every problem of the image whose tree (or skeleton) is ``root``; errors first, then warnings."""
    problems = [_problem(p.rule, p.path, p.message) for p in lint.check(root, skip_groups={"var_empty"})]
    with Tree(root) as t:
        _kernels(t, problems)
        _var(t, problems)
        _apt_sources(t, problems)
        if t.is_file("etc/hostname") and (t.stat("etc/hostname") or os.stat_result((0,) * 10)).st_size == 0:
            problems.append(_problem("buildah-injected", "etc/hostname", "an empty file"))
        if labels is not None:
            _labels(t, labels, problems)
    for name in non_utf8 or []:
        problems.append(_problem("utf8", name, "not a UTF-8 name (or link target)"))
    problems = [p for p in problems if p.rule not in skip]
    return sorted(problems, key=lambda p: (p.severity != ERROR, p.rule, p.path))
