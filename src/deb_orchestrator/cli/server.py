"""``hub`` and ``builder``: the two long-running commands."""

from __future__ import annotations

import argparse
import logging
import socket
from pathlib import Path

from deb_orchestrator.cli.common import UsageError, hub_and_token


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hub", help="run the hub (REST API, scheduler, tag repositories, web pages)")
    p.add_argument("--data", required=True, type=Path, help="data directory (SQLite DB, artifacts, repos, key)")
    p.add_argument("--db", help="database URL (default: sqlite under --data; postgresql+psycopg://… for production)")
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (default 127.0.0.1:8080)")
    p.add_argument("--lease", type=float, default=45.0, help="seconds before a silent builder loses its task")
    p.add_argument("--heartbeat", type=float, default=10.0, help="seconds between builder heartbeats")
    p.add_argument("--max-attempts", type=int, default=3, help="attempts per task for infrastructure errors")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=run_hub)

    b = sub.add_parser("builder", help="run a builder: claim tasks and build them with deb-mock")
    b.add_argument("--hub", help="hub URL (env DEB_ORCHESTRATOR_HUB)")
    b.add_argument("--token", help="the host's token from add-host (env DEB_ORCHESTRATOR_TOKEN)")
    b.add_argument("--token-file", help="read the token from this file")
    b.add_argument("--capacity", type=int, default=1, help="builds at once (default 1)")
    b.add_argument("--arch", action="append", dest="arches", help="architecture to build (repeat; default: host's)")
    b.add_argument("--cache-dir", type=Path, help="deb-mock cache directory (default: deb-mock's own)")
    b.add_argument("--work-dir", type=Path, help="where builds run (default: a temporary directory)")
    b.add_argument("--once", action="store_true", help="exit after one task (tests, debugging)")
    b.add_argument("--idle-exit", type=float, help="exit after this many seconds without work")
    b.add_argument("--log-level", default="info")
    b.set_defaults(func=run_builder, json=False)


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def run_hub(args: argparse.Namespace) -> int:
    import uvicorn

    from deb_orchestrator.hub.app import create_app
    from deb_orchestrator.hub.config import HubSettings
    from deb_orchestrator.hub.service import Hub

    host, port = _listen(args.listen)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = HubSettings(data=args.data.absolute(), db_url=args.db, lease_seconds=args.lease,
                           heartbeat_seconds=args.heartbeat, max_attempts=args.max_attempts)
    hub = Hub(settings)
    if hub.admin_token_path is not None:
        print(f"admin token: {hub.admin_token_path} (mode 0600; "
              f"export DEB_ORCHESTRATOR_TOKEN=$(cat {hub.admin_token_path}))", flush=True)
    print(f"hub listening on http://{host}:{port} (API http://{host}:{port}/api/v1, "
          f"database {'sqlite' if hub.db.is_sqlite else 'postgresql'})", flush=True)
    app = create_app(settings, hub)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.close()
    uvicorn.run(app, host=host, port=port, log_level=args.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=5)
    return 0


def run_builder(args: argparse.Namespace) -> int:
    from deb_orchestrator.builder.daemon import Builder, BuilderConfig

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url, token = hub_and_token(args)
    if not token:
        raise UsageError("the builder needs its host token: --token, --token-file or DEB_ORCHESTRATOR_TOKEN "
                         "(add-host prints it)")
    cfg = BuilderConfig(hub=url, token=token, capacity=args.capacity, arches=args.arches or [],
                        cache_dir=args.cache_dir, work_dir=args.work_dir, once=args.once,
                        idle_exit=args.idle_exit)
    return Builder(cfg).run()
