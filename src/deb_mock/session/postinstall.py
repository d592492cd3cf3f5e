"""``--postinstall``: install the packages a build made into that build's own root, as mock does.

It shows that they install (their dependencies resolve, their maintainer scripts run), and with
``--no-clean`` leaves them installed in the kept root for ``--shell``. The packages are the copies in the
result directory (already checked and copied out of the build), bound read-only into the sandbox. The
installation is split as for build-dependencies: apt resolves and downloads (with the network, with the
build's extra repositories), then dpkg and the maintainer scripts (untrusted code) run without network.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from deb_mock.chroot import depcache, rootcache
from deb_mock.errors import BuildFailed, InfraError
from deb_mock.request import BuildResult
from deb_mock.session.sandboxes import apt_script, root_sandbox
from debsandbox.commands import CommandError
from debsandbox.sandbox import Bind

if TYPE_CHECKING:
    from deb_mock.session.session import Build

INSIDE = "/deb-mock/postinstall"


def install(build: Build, cache: rootcache.RootCache, deps: depcache.DepsEntry, result: BuildResult) -> None:
    """Install every .deb of ``result`` into the build's root; :class:`BuildFailed` if they do not install."""
    assert build.extra is not None
    debs = [f.name for f in result.files if f.name.endswith(".deb")]
    binds = build.apt_binds(build.extra)
    binds += [Bind(build.request.resultdir / name, f"{INSIDE}/{name}", ro=True) for name in debs]
    command = "apt-get install -y --no-install-recommends " + " ".join(shlex.quote(f"{INSIDE}/{n}") for n in debs)
    build.state.note(f"postinstall: installing {', '.join(debs)} into the build's root", root_log=True)
    steps = [
        (apt_script(full_update=build.lists_stale(cache), extra=build.extra.present, body=f"{command} --download-only"),
         True),
        (f"set -e\nexport DEBIAN_FRONTEND=noninteractive\n{command}\n", False),
    ]
    for script, network in steps:
        sb = root_sandbox((deps.layer, cache.root), build.builddir, "upper", binds, network=network)
        try:
            sb.run(["sh", "-c", script], log=build.state.root_log, cancel=build.request.cancel)
        except CommandError as exc:
            if exc.returncode == 42 or "Failed to fetch" in exc.tail:
                raise InfraError(f"--postinstall: apt could not download what the packages need: {_why(exc)}") from None
            raise BuildFailed(f"--postinstall: the built packages do not install: {_why(exc)} (see root.log)") from None
    build.state.note(f"postinstall: {len(debs)} package(s) installed", root_log=True)


def _why(exc: CommandError) -> str:
    """apt's and dpkg's own explanation: the lines that say what is wrong, else the last line."""
    lines = [t.strip() for t in exc.tail.splitlines() if t.strip()]
    said = [t for t in lines if t.startswith(("E:", "dpkg:")) or " Depends: " in t or "Conflicts:" in t]
    return "; ".join(said[-6:] or lines[-1:])[:600]
