"""The ``piuparts`` plugin (``--run-piuparts``): piuparts-style install, remove and purge checks of the built
packages in a clean root of the build's config, and what the purge left behind.

piuparts itself is not run (``result.json`` says so: ``"tool": "piuparts-style"``). piuparts makes a chroot
of its own (debootstrap, or a base tarball), mounts ``/proc`` and ``/dev/pts`` in it, and lets apt download
the packages' dependencies *inside* that chroot, where the maintainer scripts then run with the network.
deb-mock's rule is that no untrusted code runs with network and that nothing of a build runs as real root on
the host; in deb-mock's sandbox piuparts would have neither its network nor its mounts. So this plugin does
the checks of piuparts' basic test that matter, the way the rest of deb-mock installs things:

1. in a clean root of the config, the built packages' ``Depends``/``Pre-Depends`` are read (``dpkg-deb``);
2. in a fresh root, those dependencies are installed (apt downloads with the network, dpkg and the
   maintainer scripts run without), then, as ns-root without network, the file list is recorded, the built
   packages are installed (``dpkg -i``), removed (``dpkg --remove``) and purged (``dpkg --purge``), and the
   file list is recorded again;
3. files that are there after the purge and were not before (less the paths piuparts ignores too: dpkg's
   and apt's state, logs, caches) are the package's leftovers.

``result.json``'s ``plugins.piuparts``: ``result`` (``pass``/``fail``), ``checks`` (``install``, ``remove``,
``purge``, ``leftovers``: ``pass``/``fail``/``not-run``), ``failed`` (the checks that failed), ``leftovers``
(up to 100 paths) and ``packages``. ``fail-on``: ``failure`` (the default) or ``none``.
Not checked (piuparts does): upgrades from the suite's version, running processes, broken symlinks.
"""

from __future__ import annotations

import re
import shlex
import shutil
from typing import ClassVar, Literal

from deb_mock.plugins.base import Plugin, PluginContext, PluginFailed, PluginOptions
from deb_mock.plugins.toolroot import InstallFailed
from debarchive import safeio
from debsandbox.sandbox import Bind, owned_dir

DEBS = "/deb-mock/piuparts/debs"
OUT = "/deb-mock/piuparts/out"
TOOL = "piuparts-style"
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+")
_STEP = re.compile(r"^@@@ piuparts (install|remove|purge) (\d+)$", re.M)
LIST_LIMIT = 64 << 20
SHOWN = 100
# what piuparts ignores too: the package manager's own state, logs, caches, files tools regenerate
IGNORED = (
    "/var/lib/dpkg/", "/var/lib/apt/", "/var/cache/apt/", "/var/cache/debconf/", "/var/log/", "/var/cache/man/",
    "/var/cache/ldconfig/", "/var/lib/ucf/", "/var/lib/systemd/deb-systemd-helper-", "/var/lib/systemd/catalog/",
    "/var/lib/dbus/", "/var/lib/polkit-1/", "/root/", "/var/backups/",
)
IGNORED_FILES = ("/etc/ld.so.cache", "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-",
                 "/etc/subuid-", "/etc/subgid-", "/var/cache/ldconfig")
# the file list of the root: every path but the kernel's, the tmpfs and deb-mock's own binds
LIST = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /run -o -path /deb-mock "
        "\\) -prune -o -print0")


class PiupartsOptions(PluginOptions):
    fail_on: Literal["failure", "none"] = "failure"


def relation_names(fields: str) -> list[str]:
    """The first alternative of each relation in ``Depends``/``Pre-Depends`` values (one per line)."""
    names = []
    for line in fields.splitlines():
        for rel in line.split(","):
            first = rel.split("|")[0].strip()
            if m := _NAME.match(first):
                names.append(m.group(0).split(":")[0])
    return list(dict.fromkeys(names))


def leftovers(before: set[str], after: set[str]) -> list[str]:
    """Paths after the purge that were not there before, less what piuparts ignores too."""
    new = sorted(after - before)
    return [p for p in new if not p.startswith(IGNORED) and p not in IGNORED_FILES]


def _paths(data: bytes) -> set[str]:
    return {p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p}


class PiupartsPlugin(Plugin):
    name = "piuparts"
    Options: ClassVar[type[PluginOptions]] = PiupartsOptions
    order = 42

    def after_build(self, ctx: PluginContext) -> None:
        debs = sorted(f.name for f in ctx.result.files if f.name.endswith(".deb"))
        if not debs:
            raise PluginFailed("the build made no .deb to check")
        staging = ctx.workdir / "piuparts"
        (staging / "debs").mkdir(parents=True, mode=0o755)
        for name in debs:
            shutil.copyfile(ctx.resultdir / name, staging / "debs" / name)
            (staging / "debs" / name).chmod(0o644)
        out = owned_dir(staging / "out")
        binds = [Bind(staging / "debs", DEBS, ro=True), Bind(out, OUT, ro=False)]
        checks = dict.fromkeys(("install", "remove", "purge", "leftovers"), "not-run")
        ctx.data.update(tool=TOOL, note="deb-mock's own piuparts-style checks; piuparts itself is not run "
                        "(see docs/plugins.md)", packages=[d.split("_")[0] for d in debs], checks=checks,
                        fail_on=ctx.options.fail_on)
        names = [d.split("_")[0] for d in debs]
        fields = ctx.run_in_root("for d in " + " ".join(f"{DEBS}/{shlex.quote(d)}" for d in debs)
                                 + '; do dpkg-deb -f "$d" Pre-Depends Depends | sed "s/^[A-Za-z-]*: //"; done',
                                 binds=binds[:1], capture=True)
        depends = [n for n in relation_names(fields.output) if n not in names]
        ctx.note(f"dependencies installed first: {', '.join(depends) or '(none)'}")
        pkgs = " ".join(shlex.quote(n) for n in names)
        script = "\n".join([
            f"{LIST} > {OUT}/before",
            "export DEBIAN_FRONTEND=noninteractive",
            f"dpkg -i {DEBS}/*.deb; echo \"@@@ piuparts install $?\"",
            f"dpkg --remove {pkgs}; echo \"@@@ piuparts remove $?\"",
            f"dpkg --purge {pkgs}; echo \"@@@ piuparts purge $?\"",
            f"{LIST} > {OUT}/after",
        ])
        try:
            res = ctx.run_in_root(script, install=depends, as_root=True, binds=binds, capture=True, check=False)
        except InstallFailed as exc:
            checks["install"] = "fail"
            self._verdict(ctx, checks, f"the dependencies do not install: {exc}")
            return
        steps = {m.group(1): int(m.group(2)) for m in _STEP.finditer(res.output)}
        for step in ("install", "remove", "purge"):
            if step in steps:
                checks[step] = "pass" if steps[step] == 0 else "fail"
        if len(steps) == 3:
            try:
                before = _paths(safeio.read_below(staging, "out/before", limit=LIST_LIMIT))
                after = _paths(safeio.read_below(staging, "out/after", limit=LIST_LIMIT))
            except (OSError, safeio.UnsafeEntry) as exc:
                raise PluginFailed(f"cannot read the file lists of the test root: {exc}") from None
            left = leftovers(before, after)
            checks["leftovers"] = "fail" if left else "pass"
            ctx.data.update(leftovers=left[:SHOWN], leftover_count=len(left))
            for p in left:
                ctx.note(f"left after purge: {p}")
        self._verdict(ctx, checks, None)

    def _verdict(self, ctx: PluginContext, checks: dict[str, str], why: str | None) -> None:
        failed = [c for c, r in checks.items() if r == "fail"]
        ctx.data.update(result="fail" if failed else "pass", failed=failed)
        if not failed:
            return
        if why is None:
            parts = [c for c in failed if c != "leftovers"]
            why = (f"{', '.join(parts)} failed" if parts else "")
            if "leftovers" in failed:
                left, count = ctx.data.get("leftovers", []), ctx.data.get("leftover_count", 0)
                shown = ", ".join(left[:5]) + (", …" if count > 5 else "")
                why += ("; " if why else "") + f"{count} file(s) left after purge: {shown}"
        if ctx.options.fail_on == "failure":
            raise PluginFailed(f"{TOOL} checks failed (fail-on: failure): {why}")
        ctx.note(f"failed (fail-on: none): {why}")
