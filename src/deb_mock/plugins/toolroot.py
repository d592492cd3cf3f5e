"""Throw-away roots for what plugins run: the config's root cache, plus a cached layer of the tools asked for.

A plugin that needs the target suite's own lintian or gpg gets them installed the way build-dependencies are:
apt resolves them in the networked apt sandbox, the resolved set keys a layer in the build-dependency cache
(``depcache``, so it is shared by later builds and evicted with the others), and on a miss apt downloads
with the network while dpkg and the maintainer scripts run without it. The command itself runs in an
overlay over that layer and the root cache with a fresh upper directory, without network, as the config's
build user unless the plugin asks for ns-root (with ``cap_add``, ns-root keeps more capabilities, in the
sandbox's user namespace only): never on the host. :meth:`ToolRoots.fetch` has apt download, with the
network and installing nothing, what given packages need beyond the root cache (a local repository for a tool
that makes its own chroot, such as piuparts), and copies the root cache for such a tool's base system.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shlex
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deb_mock.chroot import depcache, rootcache
from deb_mock.chroot.paths import CachePaths
from deb_mock.config import SANDBOX_HOSTNAME, MockConfig
from deb_mock.errors import BadInput, InfraError
from deb_mock.session import relations
from deb_mock.session.sandboxes import apt_script, root_sandbox
from debsandbox.commands import CommandError, Completed
from debsandbox.locks import flock
from debsandbox.sandbox import Bind, OverlayRoot, Sandbox, owned_dir, remove_tree

_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_DEB_INSIDE = re.compile(r"^/deb-mock/[A-Za-z0-9][A-Za-z0-9/._+~-]*\.deb$")
FETCHED = "/deb-mock/fetched"  # where fetch() puts what apt downloads


@dataclass
class ToolRoots:
    """Everything needed to make throw-away roots of one build's config (one per plugin)."""

    config: MockConfig
    paths: CachePaths
    cache: rootcache.RootCache
    workdir: Path  # the plugin's scratch directory, inside the build's directory
    log: Path
    cancel: threading.Event | None = None
    _count: Iterator[int] = field(default_factory=itertools.count)
    _layers: dict[tuple[str, ...], depcache.DepsEntry | None] = field(default_factory=dict)

    def _stale(self) -> bool:
        return time.time() - self.cache.created > self.config.apt_lists_max_age_hours * 3600

    def _apt(self, script: str, network: bool, capture: bool = False) -> Completed:
        sb = root_sandbox((self.cache.root,), self.workdir, "tools", [], network=network)
        return sb.run(["sh", "-c", script], log=self.log, capture=capture, cancel=self.cancel, check=False)

    def layer(self, packages: Sequence[str]) -> depcache.DepsEntry | None:
        """The cached layer with ``packages`` installed over the root cache (None: they are installed already)."""
        bad = [p for p in packages if not _PACKAGE.match(p)]
        if bad:
            raise BadInput(f"not Debian package names: {', '.join(bad)}")
        install = "apt-get install -y --no-install-recommends " + " ".join(shlex.quote(p) for p in packages)
        full_update = self._stale()
        res = self._apt(apt_script(full_update=full_update, extra=False, body=f"{install} -s"), True, capture=True)
        if res.returncode != 0:
            raise InfraError(f"apt cannot install {', '.join(packages)} in {self.config.name}: "
                             f"{' '.join(res.tail_lines[-3:])[:400]}")
        resolved = relations.parse_simulation(res.output)
        if not resolved:
            remove_tree(self.workdir / "tools")
            return None
        key = depcache.key_for(self.cache.ident + "+tools", resolved)
        with flock(self.paths.lock(f"deps-{key}")):
            hit = depcache.lookup(self.paths, key)
            if hit:
                remove_tree(self.workdir / "tools")
                with open(self.log, "a") as fh:
                    fh.write(f"tools {' '.join(packages)}: cached layer {key}\n")
                return hit
            steps = [
                (apt_script(full_update=False, extra=False, body=f"{install} --download-only"), True),
                (f"set -e\nexport DEBIAN_FRONTEND=noninteractive\n{install}\napt-get clean\n"
                 + ("rm -rf /var/lib/apt/lists/*\n" if full_update else ""), False),
            ]
            for script, network in steps:
                done = self._apt(script, network)
                if done.returncode != 0:
                    raise InfraError(f"installing {', '.join(packages)} failed (see {self.log.name}): "
                                     f"{' '.join(done.tail_lines[-3:])[:400]}")
            entry = depcache.store(self.paths, key, self.workdir / "tools", resolved, self.cache.ident)
        remove_tree(self.workdir / "tools.work")
        return entry

    def run(
        self,
        script: str,
        *,
        packages: Sequence[str] = (),
        install: Sequence[str] = (),
        as_root: bool = False,
        binds: Sequence[Bind] = (),
        stdin: bytes | None = None,
        capture: bool = False,
        check: bool = True,
        cap_add: Sequence[str] = (),
    ) -> Completed:
        """Run ``script`` (sh) in a fresh throw-away root with ``packages`` installed (a cached layer) and
        ``install`` installed into this root alone (package names, or .deb files inside ``binds``), without
        network but for apt's downloads. ``cap_add``: capabilities ns-root keeps beyond a root container's
        (``SYS_ADMIN`` to mount, in the sandbox's namespaces only; ``as_root`` only)."""
        if cap_add and not as_root:
            raise ValueError("cap_add needs as_root")
        entry = None
        if packages:
            if tuple(packages) not in self._layers:
                self._layers[tuple(packages)] = self.layer(packages)
            entry = self._layers[tuple(packages)]
        n = next(self._count)
        with contextlib.ExitStack() as stack:
            lower: tuple[Path, ...] = (self.cache.root,)
            if entry is not None:
                stack.enter_context(depcache.using(entry, self.paths))
                lower = (entry.layer, *lower)
            try:
                if install:
                    self._install(lower, n, list(binds), install)
                uid = 0 if as_root else self.config.build_uid
                sb = self._sandbox(lower, n, list(binds), uid, network=False, cap_add=tuple(cap_add))
                return sb.run(["sh", "-c", script], log=self.log, stdin=stdin, capture=capture, check=check,
                              cancel=self.cancel)
            except CommandError as exc:
                raise RootCommandFailed(exc) from None
            finally:
                remove_tree(self.workdir / f"root{n}")
                remove_tree(self.workdir / f"root{n}.work")

    def _sandbox(self, lower: tuple[Path, ...], n: int, binds: list[Bind], uid: int, network: bool,
                 cap_add: tuple[str, ...] = ()) -> Sandbox:
        return Sandbox(
            root=OverlayRoot(lower, self.workdir / f"root{n}", self.workdir / f"root{n}.work"),
            binds=binds,
            tmpfs=["/tmp"],
            network=network,
            hostname=SANDBOX_HOSTNAME,
            uid=uid,
            gid=uid,
            cwd="/tmp",
            env={"HOME": "/tmp", "USER": "root" if uid == 0 else self.config.build_user},
            cap_add=cap_add,
        )

    def fetch(self, wanted: Sequence[str], into: Path, binds: Sequence[Bind] = (), base: Path | None = None) -> None:
        """apt downloads what ``wanted`` (package names, or .deb files inside ``binds``) needs beyond the root
        cache into ``into`` (a directory; nothing is installed), as ns-root with the network; with ``base``,
        a copy of the root cache is made there too (for tools that make a chroot of their own from it)."""
        _check_names(wanted)
        owned_dir(into)
        mounts = [*binds, Bind(into, FETCHED, ro=False)]
        body = ("apt-get install -y --no-install-recommends --download-only "
                f"-o Dir::Cache::Archives={FETCHED}/ " + " ".join(shlex.quote(a) for a in wanted)
                + f"\nrm -rf {FETCHED}/partial {FETCHED}/lock\n")
        if base is not None:
            owned_dir(base)
            mounts += [Bind(self.cache.root, "/deb-mock/rootfs", ro=True), Bind(base, "/deb-mock/base", ro=False)]
            body += "cp -a /deb-mock/rootfs/. /deb-mock/base/\n"
        n = next(self._count)
        sb = root_sandbox((self.cache.root,), self.workdir, f"fetch{n}", mounts, network=True)
        try:
            res = sb.run(["sh", "-c", apt_script(full_update=self._stale(), extra=False, body=body)], log=self.log,
                         check=False, cancel=self.cancel)
        finally:
            remove_tree(self.workdir / f"fetch{n}")
            remove_tree(self.workdir / f"fetch{n}.work")
        if res.returncode != 0:
            tail = " ".join(res.tail_lines[-3:])[:400]
            raise InstallFailed(f"apt cannot fetch what {', '.join(wanted)} need: {tail}")

    def _install(self, lower: tuple[Path, ...], n: int, binds: list[Bind], install: Sequence[str]) -> None:
        """apt downloads ``install`` with the network (ns-root), then installs it without (dpkg, maintainer scripts)."""
        _check_names(install)
        command = "apt-get install -y --no-install-recommends " + " ".join(shlex.quote(a) for a in install)
        steps = [(apt_script(full_update=self._stale(), extra=False, body=f"{command} --download-only"), True),
                 (f"set -e\nexport DEBIAN_FRONTEND=noninteractive\n{command}\n", False)]
        for script, network in steps:
            res = self._sandbox(lower, n, binds, 0, network).run(["sh", "-c", script], log=self.log, check=False,
                                                                  cancel=self.cancel)
            if res.returncode != 0:
                raise InstallFailed(f"apt cannot install {', '.join(install)}: {' '.join(res.tail_lines[-3:])[:400]}")


def _check_names(wanted: Sequence[str]) -> None:
    """What apt is given: package names, or .deb files inside the root (no ``..``), nothing else."""
    bad = [a for a in wanted if not (_PACKAGE.match(a) or _DEB_INSIDE.match(a)) or ".." in a.split("/")]
    if bad:
        raise BadInput(f"not package names or .deb files inside the root: {', '.join(bad)}")


class InstallFailed(Exception):
    """What a plugin asked to install into its root does not install (its packages, or their dependencies)."""


class RootCommandFailed(Exception):
    """A command a plugin ran in its root exited non-zero (``check=True``)."""

    def __init__(self, exc: CommandError) -> None:
        last = next((t for t in reversed(exc.tail.splitlines()) if t.strip()), "")
        super().__init__(f"exit {exc.returncode}: {last[:300]}")
        self.returncode = exc.returncode
        self.tail = exc.tail
