"""Clean Debian chroots (mmdebstrap, variant apt) for testing repositories with the real apt.

The tarball is cached under the test cache directory, keyed by suite, and unpacked once per test
session. Commands run inside with bubblewrap (``bwrap``): nothing is mounted on the host, so nothing
can be left behind; the host network is shared so apt reaches a server on 127.0.0.1 (see
:class:`RecordingHandler`, served by the ``http_root`` fixture).
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from debsandbox.bwrap import bwrap_argv
from debsandbox.commands import run
from debsandbox.locks import flock
from debsandbox.sandbox import Bind

CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}


def chroot_tarball(cache: Path, suite: str, mirror: str) -> Path:
    """A cached ``mmdebstrap --variant=apt`` tarball of ``suite`` (made once, then reused)."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"debarchive-{suite}-apt.tar"
    with flock(cache / f".debarchive-{suite}.lock", keep_file=True):
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            partial.unlink(missing_ok=True)
            run(["mmdebstrap", "--variant=apt", "--mode=root", "--format=tar",
                 suite, str(partial), mirror], log=cache / f"debarchive-{suite}-mmdebstrap.log", timeout=1200)
            os.replace(partial, tarball)
    return tarball


@dataclass
class AptChroot:
    suite: str
    root: Path

    def reset_sources(self) -> None:
        """Only the repositories the test writes afterwards; forget the indices of earlier tests."""
        etc = self.root / "etc" / "apt"
        (etc / "sources.list").write_text("")
        for d in (etc / "sources.list.d", self.root / "var" / "lib" / "apt" / "lists"):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        (self.root / "var" / "lib" / "apt" / "lists" / "partial").mkdir()

    def run(self, *argv: str, check: bool = False, binds: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside; ``binds`` maps host paths to paths inside (read-only)."""
        ro_binds = [Bind(Path(host), inside) for host, inside in (binds or {}).items()]
        cmd = bwrap_argv(argv, root=self.root, binds=ro_binds, network=True, user_namespace=False, all_caps=True,
                         env=CHROOT_ENV)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


def unpack_chroot(tarball: Path, dest: Path, suite: str) -> AptChroot:
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest)], check=True)
    return AptChroot(suite, dest)


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files quietly and records request paths. A hook registered for a path runs once, after that
    file has been read and before its content is sent: the client gets the old file, then the hook's
    changes are in place before the client can ask for anything else."""

    requests: list[str]
    hooks: dict[str, Callable[[], None]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        hook = self.hooks.pop(self.path, None)
        if hook is None:
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        content, mtime = path.read_bytes(), path.stat().st_mtime
        hook()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Last-Modified", self.date_time_string(int(mtime)))
        self.end_headers()
        self.wfile.write(content)


@dataclass
class Served:
    root: Path  # served directory; each repository is a subdirectory
    url: str
    requests: list[str] = field(default_factory=list)
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)
