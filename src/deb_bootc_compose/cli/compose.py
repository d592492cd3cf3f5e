"""The compose verb (the default): ``deb-bootc-compose --config M --target-dir D``.

Progress goes to stderr (rich, live on a terminal); the compose directory is the LAST line of stdout.
Exit codes: 0 FINISHED · 1 the compose failed (DOOMED) · 2 bad input (manifest, lockfile, options) ·
3 FINISHED_INCOMPLETE · 130 interrupted (DOOMED).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console

from deb_bootc_compose import metricsfile, status
from deb_bootc_compose.compose import Compose
from deb_bootc_compose.errors import ComposeError, Interrupted
from deb_bootc_compose.lockfile import LockfileError
from deb_bootc_compose.manifest import ManifestError
from deb_bootc_compose.phases.order import NAMES, skippable
from deb_bootc_compose.plugins.api import PluginLoadError

HELP = "compose a manifest into an OSTree commit, a bootc OCI image and disk images (the default verb)"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The compose verb; ``deb-bootc-compose --config … --target-dir …`` without a verb means it too."""
    p = sub.add_parser("compose", help=HELP, description=HELP, prog="deb-bootc-compose")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, type=Path, help="the manifest (YAML)")
    p.add_argument("--target-dir", "-t", required=True, type=Path,
                   help="where composes, the shared OSTree repo and the package pool live")
    p.add_argument("--compose-type", choices=["production", "nightly", "test"], default="production",
                   help="the compose ID suffix: production (none), nightly (.n), test (.t)")
    p.add_argument("--lockfile", type=Path, help="compose exactly the packages of this lockfile (nothing resolved)")
    p.add_argument("--orchestrator", metavar="URL",
                   help="override the url of the manifest's orchestrator sources (e.g. http://hub:8080)")
    p.add_argument("--allow-host-paths", action="store_true",
                   help="let files[].source and postprocess file: name files outside the manifest's directory "
                        "(absolute paths, '..', symlinks leading out)")
    p.add_argument("--skip-phase", action="append", default=[], metavar="PHASE",
                   help=f"leave this phase out (repeatable, or comma-separated): one of {', '.join(skippable())}; "
                   "the compose still ends FINISHED without that phase's outputs")
    p.add_argument("--just-phase", action="append", default=[], metavar="PHASE",
                   help="run only these of the phases that can be skipped (repeatable, or comma-separated); the "
                   f"others ({', '.join(n for n in NAMES if n not in skippable())}) always run")
    p.add_argument("--keep-work", action="store_true", help="keep the work/ directory (trees) for debugging")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, only the result")
    p.add_argument("--metrics-textfile", type=Path, metavar="FILE.prom",
                   help="after the run (whatever its end), replace FILE.prom with its result, duration, phase "
                        "durations and image sizes for node_exporter's textfile collector")


class Progress:
    """Phase messages to stderr: a live status line on a terminal, plain lines otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.status = self.console.status("starting") if self.live else None
        self.start = time.monotonic()

    def __enter__(self) -> Progress:
        if self.status is not None:
            self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(None, None, None)

    def __call__(self, phase: str, message: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        line = f"[{elapsed:6.1f}s] {phase}: {message}"
        if self.status is not None:
            self.status.update(f"[bold]{phase}[/bold]: {message}")
            self.console.print(line, markup=False)
        else:
            print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_signals(cancel: threading.Event) -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT stop the compose: the first one sets ``cancel`` (commands in other threads
    stop) and raises :class:`Interrupted` in the main thread, where the running command's process group is
    killed and reaped and the compose is DOOMED. Later signals are ignored so that this clean-up completes.
    A signal the process inherited as ignored (SIGINT in a background job, SIGHUP under nohup) stays ignored."""
    seen: list[str] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if seen:
            print(f"deb-bootc-compose: {name} received while stopping after {seen[0]}; still cleaning up",
                  file=sys.stderr, flush=True)
            return
        seen.append(name)
        cancel.set()
        raise Interrupted(name)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    textfile: Path | None = args.metrics_textfile
    if textfile is not None:
        try:
            metricsfile.check_path(textfile)
        except ComposeError as exc:
            err.print(f"deb-bootc-compose: {exc}", markup=False)
            return EXIT_USAGE
    start = time.monotonic()
    code, c = _compose(args, err)
    if textfile is not None:
        try:
            metricsfile.write(textfile, _metrics_run(args.config, code, c, time.monotonic() - start))
        except OSError as exc:  # the compose's own result stands; the stale file shows in monitoring
            err.print(f"deb-bootc-compose: cannot write --metrics-textfile {textfile}: {exc}", markup=False)
    return code


def _metrics_run(config: Path, code: int, c: Compose | None, seconds: float) -> metricsfile.ComposeRun:
    run = metricsfile.ComposeRun(manifest=config.name, exit_code=code, seconds=seconds)
    if c is not None and c.result is not None:
        result = c.result
        run.status, run.compose_id, run.phases = result.status, result.paths.compose_id, list(result.phases)
        if c.context is not None and result.status in (status.FINISHED, status.FINISHED_INCOMPLETE):
            run.images = [img for vs in c.context.variants for img in vs.images]
    return run


def _compose(args: argparse.Namespace, err: Console) -> tuple[int, Compose | None]:
    """The compose and its exit status, with the Compose object when one was made."""
    try:
        c = Compose(args.config, args.target_dir, compose_type=args.compose_type, lockfile=args.lockfile,
                    keep_work=args.keep_work, orchestrator_url=args.orchestrator, progress=None,
                    allow_host_paths=args.allow_host_paths, skip_phases=args.skip_phase,
                    just_phases=args.just_phase)
    except ComposeError as exc:
        err.print(f"deb-bootc-compose: {exc}", markup=False)
        return EXIT_USAGE, None
    return _run_compose(c, args, err), c


def _run_compose(c: Compose, args: argparse.Namespace, err: Console) -> int:
    try:
        with stop_on_signals(c.cancel), Progress(args.quiet) as progress:
            c.progress_cb = progress
            result = c.run()
    except (ManifestError, PluginLoadError) as exc:
        err.print(f"deb-bootc-compose: {exc}", markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        how = f"interrupted by {exc.signal}" if isinstance(exc, Interrupted) else "interrupted"
        err.print(f"deb-bootc-compose: {how} during the {c.phase} phase; the compose is DOOMED", markup=False)
        return EXIT_INTERRUPTED
    except (ComposeError, LockfileError) as exc:
        err.print(f"deb-bootc-compose: compose failed: {exc}", markup=False)
        return EXIT_FAILED
    except Exception as exc:  # a bug or an unexpected system error: still one clear line, details in the log
        err.print(f"deb-bootc-compose: compose failed with an unexpected error: {type(exc).__name__}: {exc} "
                  f"(the compose is DOOMED; traceback in its logs/global.log)", markup=False)
        return EXIT_FAILED
    if result.reused_from:
        err.print(f"inputs unchanged: reused {result.reused_from}", markup=False)
    err.print(f"{result.paths.compose_id}: {result.status} in {result.seconds:.1f}s", markup=False)
    print(result.paths.topdir)
    return EXIT_INCOMPLETE if result.status == status.FINISHED_INCOMPLETE else EXIT_OK
