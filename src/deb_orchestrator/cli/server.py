"""``hub`` and ``builder``: the two long-running commands."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from deb_orchestrator.cli import gc
from deb_orchestrator.cli.common import UsageError, config_path, hub_and_token, load_config
from deb_orchestrator.cli.plugins import add_builder_plugin_args, builder_plugins
from deb_orchestrator.cli.plugins import parse as parse_plugins
from deb_orchestrator.hub.config import DEFAULT_LISTEN, HubSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hub", help="run the hub (REST API, scheduler, tag repositories, web pages)")
    p.add_argument("--data", required=True, type=Path, help="data directory (SQLite DB, artifacts, repos, key)")
    p.add_argument("--db", help="database URL (default: sqlite under --data; postgresql+psycopg://… for production)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT (default {DEFAULT_LISTEN})")
    p.add_argument("--lease", type=float, default=HubSettings.lease_seconds,
                   help="seconds before a silent builder loses its task")
    p.add_argument("--heartbeat", type=float, default=HubSettings.heartbeat_seconds,
                   help="seconds between builder heartbeats")
    p.add_argument("--max-attempts", type=int, default=HubSettings.max_attempts,
                   help="attempts per task for infrastructure errors")
    p.add_argument("--workers", type=int,
                   help="hub processes serving the API (default: 1 on SQLite, the CPU count on PostgreSQL; "
                        "more than 1 needs PostgreSQL)")
    p.add_argument("--allow-source-host", action="append", default=[], metavar="HOST[:PORT]",
                   help="a host the hub may fetch .dsc URLs from, besides the hosts of the targets' external "
                        "repositories (repeat)")
    p.add_argument("--source-keyring", action="append", default=[], metavar="FILE",
                   help="a keyring whose keys may sign a .dsc fetched by URL that is in no signed index of its "
                        "mirror (repeat; e.g. /usr/share/keyrings/debian-keyring.gpg)")
    p.add_argument("--no-verify-source", action="store_true",
                   help="accept .dsc URLs that cannot be authenticated (neither in a signed index of the "
                        "target's external repositories nor signed by a --source-keyring key); logged and "
                        "recorded on each build as source_trust none")
    p.add_argument("--metrics-token-required", action="store_true",
                   default=HubSettings.metrics_token_required,
                   help="GET /metrics needs a valid API token (any scope); without this option scraping is "
                        "anonymous, like the other reads")
    p.add_argument("--retain", action="append", default=[], metavar="KIND=DAYS",
                   help=gc.RETAIN_HELP + "; defaults: untagged-builds=30, failed-builds=14, logs=60, events=90, "
                   "audit=365, objects=1h, tmp=1 (docs/operations.md)")
    p.add_argument("--allow-webhook-host", action="append", default=[], metavar="HOST[:PORT]",
                   help="a host webhooks may be sent to although it resolves to a private or loopback address "
                        "(repeat; public hosts need no entry)")
    p.add_argument("--webhook-lease", type=float, default=HubSettings.webhook_lease_seconds, metavar="SECONDS",
                   help="how long the hub process sending webhooks holds its lease; another process takes over "
                        "this long after it died")
    p.add_argument("--webhook-retry", type=float, default=HubSettings.webhook_retry_base, metavar="SECONDS",
                   help="first retry of a failed webhook delivery after this long, doubling up to an hour")
    p.add_argument("--no-event-stream", action="store_true",
                   help="turn GET /api/v1/events/stream off (clients then poll)")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR[/PREFIX]",
                   help="a reverse proxy whose forwarding header names the client in the audit log (repeat; an "
                        "address or a network). Without it, or from any other peer, the header is ignored")
    p.add_argument("--forwarded-header", choices=("x-forwarded-for", "forwarded"),
                   default=HubSettings.forwarded_header,
                   help="the header your trusted proxies set: X-Forwarded-For (default) or RFC 7239 Forwarded; "
                        "the other one is never read")
    p.add_argument("--plugin", action="append", default=[], metavar="NAME",
                   help="load this installed hub plugin (entry point group deb_orchestrator.plugins; repeat)")
    p.add_argument("--plugin-option", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="an option of a hub plugin (VALUE is TOML or text; repeat); loads it too")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=run_hub)

    b = sub.add_parser("builder", help="run a builder: claim tasks and build them with deb-mock")
    b.add_argument("--hub", help="hub URL (env DEB_ORCHESTRATOR_HUB)")
    b.add_argument("--token-file", help="read the host's token (from add-host) from this file; made 0600 if it is "
                                        "readable by others (or set DEB_ORCHESTRATOR_TOKEN)")
    b.add_argument("--token", help="the host's token on the command line: works, but every user of the machine "
                                   "sees it in ps; prefer --token-file")
    b.add_argument("--capacity", type=int, default=1,
                   help="builds at once (default 1); at most the host's capacity set by its admin (add-host)")
    b.add_argument("--arch", action="append", dest="arches", help="architecture to build (repeat; default: host's)")
    b.add_argument("--cache-dir", type=Path, help="deb-mock cache directory (default: deb-mock's own)")
    b.add_argument("--work-dir", type=Path, help="where builds run (default: a temporary directory)")
    b.add_argument("--once", action="store_true", help="exit after one task (tests, debugging)")
    b.add_argument("--idle-exit", type=float, help="exit after this many seconds without work")
    b.add_argument("--metrics-listen", metavar="ADDR:PORT",
                   help="serve the builder's own metrics (Prometheus) at http://ADDR:PORT/metrics, e.g. "
                        "127.0.0.1:9465 (anonymous: bind an address only your Prometheus reaches)")
    add_builder_plugin_args(b)
    b.add_argument("--log-level", default="info")
    b.set_defaults(func=run_builder, json=False)


def _trusted_proxies(specs: list[str]) -> list[str]:
    from deb_orchestrator.hub.clientaddr import parse_network

    try:
        return [str(parse_network(s)) for s in specs]
    except ValueError as exc:
        raise UsageError(f"--trusted-proxy {exc}") from None


def _listen(text: str, option: str = "--listen", example: str = "127.0.0.1:8080") -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"{option} {text!r}: give HOST:PORT, e.g. {example}")
    return host.strip("[]"), int(port)


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # every worker has its own listening socket; the kernel spreads connections over them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    # uvicorn picks uvloop and httptools when they are installed (they are dependencies of this project).
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS) as
    # the client's address; the hub reads proxy headers itself, from --trusted-proxy peers only (clientaddr.py)
    return uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), access_log=False,
                          timeout_graceful_shutdown=5, proxy_headers=False)


def run_hub(args: argparse.Namespace) -> int:
    import uvicorn

    from deb_orchestrator.hub.app import create_app
    from deb_orchestrator.hub.metrics import enable_multiprocess
    from deb_orchestrator.hub.plugins.loader import PluginError
    from deb_orchestrator.hub.service import Hub

    host, port = _listen(args.listen)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    is_sqlite = args.db is None or args.db.startswith("sqlite")
    workers = args.workers if args.workers is not None else (1 if is_sqlite else (os.cpu_count() or 1))
    if workers < 1:
        raise UsageError(f"--workers {workers}: give 1 or more")
    if workers > 1 and is_sqlite:
        raise UsageError(f"--workers {workers} needs PostgreSQL (--db postgresql+psycopg://…): SQLite serializes "
                         "writers, so one hub process is all it can use")
    settings = HubSettings(data=args.data.absolute(), db_url=args.db, lease_seconds=args.lease,
                           heartbeat_seconds=args.heartbeat, max_attempts=args.max_attempts, workers=workers,
                           allow_source_hosts=[h.strip().lower() for h in args.allow_source_host if h.strip()],
                           verify_source=not args.no_verify_source,
                           source_keyrings=[str(Path(k).absolute()) for k in args.source_keyring],
                           metrics_token_required=args.metrics_token_required,
                           retention=gc.retention_from(args.retain),
                           allow_webhook_hosts=[h.strip().lower() for h in args.allow_webhook_host if h.strip()],
                           webhook_lease_seconds=args.webhook_lease, webhook_retry_base=args.webhook_retry,
                           event_stream=not args.no_event_stream,
                           trusted_proxies=_trusted_proxies(args.trusted_proxy),
                           forwarded_header=args.forwarded_header,
                           plugins=parse_plugins(args.plugin, args.plugin_option))
    for k in settings.source_keyrings:
        if not Path(k).is_file():
            raise UsageError(f"--source-keyring {k}: no such file")
    if not settings.verify_source:
        logging.getLogger("deb_orchestrator.hub").warning(
            "--no-verify-source: .dsc URLs that cannot be authenticated are accepted (recorded on each build)")
    enable_multiprocess(settings.metrics_dir)  # counters of every worker in one place, emptied now
    try:
        hub = Hub(settings)  # migrations, first admin token and signing key, once, before any worker starts
    except PluginError as exc:
        raise UsageError(str(exc)) from None
    if hub.admin_token_path is not None:
        print(f"admin token: {hub.admin_token_path} (mode 0600; "
              f"export DEB_ORCHESTRATOR_TOKEN=$(cat {hub.admin_token_path}))", flush=True)
    print(f"hub listening on http://{host}:{port} (API http://{host}:{port}/api/v1, "
          f"database {'sqlite' if hub.db.is_sqlite else 'postgresql'}, {workers} worker"
          f"{'s' if workers > 1 else ''})", flush=True)
    if workers == 1:
        _bind(host, port, reuse_port=False).close()  # a clear error now if the address is taken
        uvicorn.run(app=create_app(settings, hub), host=host, port=port, log_level=args.log_level.lower(),
                    access_log=False, timeout_graceful_shutdown=5, proxy_headers=False)  # see _uvicorn_config
        return 0
    hub.db.dispose()
    _bind(host, port, reuse_port=True).close()
    return _supervise(settings, host, port, workers, args.log_level)


def _worker(settings: Any, host: str, port: int, index: int, log_level: str, supervisor: int) -> None:
    import uvicorn

    from deb_orchestrator.hub.app import create_app
    from deb_orchestrator.hub.service import Hub

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor turns ^C into SIGTERM for everyone
    _die_with_parent(supervisor)
    sock = _bind(host, port, reuse_port=True)
    hub = Hub(settings, primary=index == 0)  # worker 0 publishes repos and reaps leases
    server = uvicorn.Server(_uvicorn_config(create_app(settings, hub), host, port, log_level))
    server.run(sockets=[sock])


def _die_with_parent(supervisor: int) -> None:
    """A worker gets SIGTERM when the supervisor dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # the supervisor died before the call took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _supervise(settings: Any, host: str, port: int, workers: int, log_level: str) -> int:
    """Start the worker processes; stop them all on SIGTERM/SIGINT or when one of them dies."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(settings, host, port, i, log_level, os.getpid()),
                         name=f"hub-worker-{i}") for i in range(workers)]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for p in procs:
            p.start()
        from multiprocessing.connection import wait

        while True:
            wait([p.sentinel for p in procs])
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                break
        if not stopping:
            print(f"hub worker {dead[0].name} exited (status {dead[0].exitcode}); stopping the others",
                  file=sys.stderr, flush=True)
            stop(signal.SIGTERM, None)
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0 if stopping else 1


def _private_token_file(path: Path) -> None:
    """A token file others can read is made 0600 at start (if it is ours), with a warning."""
    try:
        st = path.stat()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, 0o600)
        print(f"deb-orchestrator builder: {path} was readable by others (mode {st.st_mode & 0o777:04o}); "
              "made it 0600", file=sys.stderr, flush=True)


def _read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None


def run_builder(args: argparse.Namespace) -> int:
    from deb_orchestrator.builder.daemon import Builder, BuilderConfig

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.token:
        print("deb-orchestrator builder: warning: --token puts the token in the process list (ps, /proc) for every "
              "user of this machine to read; use --token-file FILE (mode 0600) or DEB_ORCHESTRATOR_TOKEN",
              file=sys.stderr, flush=True)
    if args.token_file and not args.token:
        _private_token_file(Path(args.token_file).expanduser())
        args.token = _read_token(Path(args.token_file).expanduser())
    if not args.token and not os.environ.get("DEB_ORCHESTRATOR_TOKEN") and config_path().is_file() \
            and load_config().get("token"):
        _private_token_file(config_path())  # the token is in the config file: keep that private too
    url, token = hub_and_token(args)
    if not token:
        raise UsageError("the builder needs its host token: --token-file FILE or DEB_ORCHESTRATOR_TOKEN "
                         "(add-host prints it)")
    listen = _listen(args.metrics_listen, "--metrics-listen", "127.0.0.1:9465") if args.metrics_listen else None
    cfg = BuilderConfig(hub=url, token=token, capacity=args.capacity, arches=args.arches or [],
                        cache_dir=args.cache_dir, work_dir=args.work_dir, once=args.once,
                        idle_exit=args.idle_exit, allow_plugins=args.allow_plugin,
                        plugins=builder_plugins(args.plugin, args.plugin_option))
    builder = Builder(cfg)
    if listen is not None:
        try:
            builder.metrics.serve(*listen)
        except OSError as exc:
            raise UsageError(f"--metrics-listen {args.metrics_listen}: cannot listen there: {exc.strerror}") from None
        print(f"builder metrics on http://{args.metrics_listen}/metrics", flush=True)
    try:
        return builder.run()
    finally:
        builder.metrics.close()
