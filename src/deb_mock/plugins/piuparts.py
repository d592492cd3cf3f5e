"""The ``piuparts`` plugin (``--run-piuparts``): the target suite's own piuparts tests the built packages
(installation, removal and purge, and what a purge leaves behind) as sbuild runs it, in deb-mock's sandbox.

1. **Fetch** (ns-root, with the network for apt only): in a throw-away root of the build's config, apt
   downloads the built packages' dependencies that the config's root cache lacks into a local repository
   directory (nothing is installed, no maintainer script runs), and the root cache is copied beside it: the
   base system of piuparts' chroot.
2. **piuparts** (ns-root, without network): in a throw-away root of the config with piuparts installed (a
   cached layer, :mod:`deb_mock.plugins.toolroot`), the repository is indexed (``apt-ftparchive``) and the base
   copy's apt sources name only it (``[trusted=yes]``: deb-mock made it). piuparts then makes its chroot from
   the copy (``--existing-chroot`` with ``--hard-link``), bind-mounts the repository in (``--bindmount``),
   mounts ``/proc``, ``/dev/pts`` and ``/dev/shm`` in it and binds the devices (so its sandbox keeps
   ``CAP_SYS_ADMIN``, in the sandbox's own user namespace only), and tests the .debs.
   Everything piuparts runs *in* its chroot (apt, dpkg, the maintainer scripts) goes through a ``chroot``
   that drops ``CAP_SYS_ADMIN`` and ``CAP_SYS_CHROOT`` from the bounding set after entering the chroot: a
   maintainer script can neither mount nor leave the chroot (and the processes outside it hold capabilities
   it lacks, so it cannot reach them through ``/proc`` either).

The upgrade test runs when the suite has some of the built packages: step 1 then also fetches the suite's own
versions of them (and what they need), and piuparts installs those from the local repository, upgrades to the
built ones and purges. Otherwise it is left out (``--no-upgrade-test``).

``result.json``'s ``plugins.piuparts``: ``tool`` (``piuparts``), ``version``, ``result`` (``pass``/``fail``),
``upgrade_from`` (the suite's versions the upgrade test started from, by package; empty: no upgrade test),
``passed`` and ``failed`` (piuparts' own ``PASS:``/``FAIL:`` findings), ``failed_command`` (what piuparts saw
fail: a maintainer script's ``apt-get install``, say), ``leftovers`` (up to 100 paths a purge left),
``packages``, ``exit_code`` and ``fail_on`` (``failure``, the default, or ``none``). piuparts' whole log is
``piuparts.log`` in the result directory.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import ClassVar, Literal

from deb_mock.plugins import piupartslog
from deb_mock.plugins.base import Plugin, PluginContext, PluginFailed, PluginOptions
from deb_mock.plugins.toolroot import InstallFailed
from debarchive import safeio
from debsandbox.sandbox import Bind, owned_dir

TOOL = "piuparts"
INSIDE = "/deb-mock/piuparts"
REPO = f"{INSIDE}/repo"
LOG = "piuparts-run.log"  # piuparts' own log file (--log-file), read back bounded
LOG_LIMIT = 32 << 20
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
TOOLS = ["piuparts", "apt-utils"]  # apt-utils: apt-ftparchive indexes the local repository
# piuparts runs "chroot DIR COMMAND…" for everything it runs inside its chroot: this one (first in PATH)
# enters the chroot, then drops CAP_SYS_ADMIN (21) and CAP_SYS_CHROOT (18) from the bounding set, so
# apt, dpkg and the maintainer scripts run without them (the inheritable and ambient sets are empty)
CHROOT = """#!/usr/bin/python3
import ctypes, os, sys, warnings  # everything execvp needs, imported before the chroot
libc = ctypes.CDLL(None, use_errno=True)
root, argv = sys.argv[1], sys.argv[2:] or ["/bin/sh", "-i"]
os.chroot(root)
os.chdir("/")
for cap in (21, 18):
    if libc.prctl(24, cap, 0, 0, 0) != 0:
        sys.exit(f"deb-mock chroot: cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}")
os.execvp(argv[0], argv)
"""


class PiupartsOptions(PluginOptions):
    fail_on: Literal["failure", "none"] = "failure"


def piuparts_argv(suite: str, debs: list[str], upgrade: bool) -> list[str]:
    """piuparts' command line (see the module's docstring for why each option)."""
    return [
        "piuparts", "--existing-chroot", f"{INSIDE}/base", "--hard-link", "--tmpdir", f"{INSIDE}/tmp",
        "--distribution", suite, "--mirror", f"file://{REPO}", "--keep-sources-list", "--bindmount", REPO,
        *([] if upgrade else ["--no-upgrade-test"]), "--log-level", "info", "--log-file", f"{INSIDE}/{LOG}",
        *[f"{INSIDE}/debs/{d}" for d in debs],
    ]


def in_suite(listing: str, names: list[str]) -> list[str]:
    """The built packages the suite has too (``NAME VERSION`` lines of apt-cache), for the upgrade test."""
    found = {line.split()[0] for line in listing.splitlines() if len(line.split()) == 2}
    return [n for n in names if n in found]


def fetched_versions(files: list[str], names: list[str]) -> dict[str, str]:
    """The versions of ``names`` among the fetched .debs (``NAME_VERSION_ARCH.deb``, epochs as ``%3a``)."""
    out = {}
    for f in files:
        parts = f.removesuffix(".deb").split("_")
        if len(parts) == 3 and parts[0] in names:
            out[parts[0]] = parts[1].replace("%3a", ":")
    return out


def script(suite: str, debs: list[str], upgrade: bool) -> str:
    """The shell script run in piuparts' root (ns-root, no network)."""
    argv = shlex.join(piuparts_argv(suite, debs, upgrade))
    return "\n".join([
        "set -e",
        f"cat > /usr/local/sbin/chroot <<'EOF'\n{CHROOT}EOF",
        "chmod 0755 /usr/local/sbin/chroot",
        f"cd {REPO}",
        "apt-ftparchive packages . > Packages",
        "apt-ftparchive release . > Release",
        "cd /",
        f"echo 'deb [trusted=yes] file:{REPO} ./' > {INSIDE}/base/etc/apt/sources.list",
        f"rm -f {INSIDE}/base/etc/apt/sources.list.d/*.list {INSIDE}/base/etc/apt/sources.list.d/*.sources",
        f"mkdir -p {INSIDE}/tmp",
        f"exec {argv}",
    ]) + "\n"


class PiupartsPlugin(Plugin):
    name = "piuparts"
    Options: ClassVar[type[PluginOptions]] = PiupartsOptions
    order = 42

    def after_build(self, ctx: PluginContext) -> None:
        debs = sorted(f.name for f in ctx.result.files if f.name.endswith(".deb"))
        if not debs:
            raise PluginFailed("the build made no .deb to check")
        staging = owned_dir(ctx.workdir / "piuparts")
        (staging / "debs").mkdir(mode=0o755)
        for name in debs:
            shutil.copyfile(ctx.resultdir / name, staging / "debs" / name)
            (staging / "debs" / name).chmod(0o644)
        ctx.data.update(tool=TOOL, packages=[d.split("_")[0] for d in debs], fail_on=ctx.options.fail_on)
        try:
            ctx.fetch([f"{INSIDE}/debs/{d}" for d in debs], staging / "repo",
                      binds=[Bind(staging / "debs", f"{INSIDE}/debs")], base=staging / "base")
        except InstallFailed as exc:
            ctx.data.update(result="fail", failed=["the dependencies cannot be fetched"])
            self._verdict(ctx, f"apt cannot resolve the packages' dependencies: {exc}")
            return
        upgrade_from = self._previous(ctx, [d.split("_")[0] for d in debs], staging)
        fetched = sorted(p.name for p in (staging / "repo").glob("*.deb"))
        ctx.note(f"fetched for piuparts' chroot: {', '.join(fetched) or '(nothing)'}")
        ctx.data.update(upgrade_from=upgrade_from)
        res = ctx.run_in_root(script(ctx.config.suite, debs, bool(upgrade_from)), packages=TOOLS, as_root=True,
                              check=False, cap_add=["SYS_ADMIN"], binds=[Bind(staging, INSIDE, ro=False)])
        try:
            log = safeio.read_below(staging, LOG, limit=LOG_LIMIT).decode("utf-8", "replace")
        except (OSError, safeio.UnsafeEntry):
            log = ""
        found = piupartslog.parse(log)
        code = res.returncode
        ok = code == 0 and "All tests" in found.passed
        left = found.leftovers
        ctx.data.update(version=found.version, result="pass" if ok else "fail", passed=found.passed,
                        failed=found.failed, exit_code=code, leftovers=left[:piupartslog.SHOWN])
        if found.failed_command:
            ctx.data.update(failed_command=found.failed_command[:500])
        if found.version is None:
            raise PluginFailed(f"piuparts did not run (exit {res.returncode}): {' '.join(res.tail_lines[-2:])[:300]}")
        if not ok:
            self._verdict(ctx, piupartslog.summary(found))

    def _previous(self, ctx: PluginContext, names: list[str], staging: Path) -> dict[str, str]:
        """Fetch the suite's own versions of the built packages it has (and what they need), for piuparts'
        upgrade test; returns them by name (empty: no upgrade test)."""
        names = [n for n in names if _NAME.match(n)]
        listing = ctx.run_in_root(
            f"for n in {' '.join(shlex.quote(n) for n in names)}; do apt-cache show --no-all-versions \"$n\" "
            "2>/dev/null | sed -n \"s/^Version: /$n /p\"; done", capture=True, check=False).output
        known = in_suite(listing, names)
        if not known:
            return {}
        try:
            ctx.fetch(known, staging / "repo")
        except InstallFailed as exc:
            ctx.note(f"no upgrade test: the suite's {', '.join(known)} cannot be fetched: {exc}")
            return {}
        return fetched_versions([p.name for p in (staging / "repo").glob("*.deb")], known)

    def _verdict(self, ctx: PluginContext, why: str) -> None:
        if ctx.options.fail_on == "failure":
            raise PluginFailed(f"piuparts failed (fail-on: failure): {why}")
        ctx.note(f"piuparts failed (fail-on: none): {why}")
