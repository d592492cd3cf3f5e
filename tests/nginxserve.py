"""Debian's nginx serving a directory on a loopback port, as a web server serves a published OSTree repository:
our own instance (private configuration, prefix, pid file and logs under ``workdir``; the package's service is
never started), stopped at the end of the block."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""
# what a server block holds unless the caller gives its own (e.g. the location block the docs show)
SERVE_ROOT = """\
        root {root};
        autoindex off;
        location ~ /\\. {{ deny all; }}"""


@contextmanager
def nginx(root: Path, port: int, workdir: Path, server: str | None = None) -> Iterator[str]:
    """Serve ``root`` (symbolic links followed) on 127.0.0.1:``port``, or what the ``server`` block's own
    directives say; yields the base URL."""
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    user = "user root root;" if os.geteuid() == 0 else ""  # workers read what the test (root) wrote
    body = server if server is not None else SERVE_ROOT.format(root=root)
    conf.write_text(CONFIG.format(user=user, work=workdir, port=port, server=body))
    with open(workdir / "stderr.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited {proc.returncode}: "
                                   f"{(workdir / 'error.log').read_text(errors='replace')[-1500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not listen on 127.0.0.1:{port} within 20 s") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # fast shutdown of the master and its worker
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
