"""The builder: long-polls the hub for tasks, builds each with deb-mock's Python API, reports back.

One thread per running build (``--capacity``); each has a heartbeat thread that renews the lease and
streams new log lines. If the hub says the attempt is stale (lease lost) or canceled, the build is
cancelled. On SIGTERM/SIGINT the builder stops claiming, cancels running builds and hands their tasks
back so another builder takes them at once, then exits 0.

A builder with one slot reports a finished task with ``complete-and-claim``: the same request claims the
next task (without waiting), which the main loop starts at once; only an idle builder long-polls ``claim``.
"""

from __future__ import annotations

import logging
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deb_mock.api import AptSource, BuildRequest, BuildResult, ExitCode, ResultState, plugin_names
from deb_orchestrator.builder.metrics import BuilderMetrics
from deb_orchestrator.client import HubClient, HubError
from deb_orchestrator.wire import BuildClaim, CompleteOut, NoopClaim
from debarchive.digest import sha256_file

TRANSIENT_STATUSES = (0, 502, 503, 504)  # 0: no answer at all (HubUnreachable)
# deb-mock plugins a builder runs when a claim asks (a target's or a request's): deb-mock's own that act only
# inside the build's sandbox and take no path on this machine. Others (third-party ones, sign with its key
# file) only when the builder's own config allows them (builder --allow-plugin NAME): a hub must not make a
# builder import code or read its files
HUB_PLUGINS = ("autopkgtest", "ccache", "lintian", "piuparts", "tmpfs")

log = logging.getLogger("deb_orchestrator.builder")

BuildFn = Callable[[BuildRequest], BuildResult]


def _default_build(request: BuildRequest) -> BuildResult:
    from deb_mock.api import build

    return build(request)


@dataclass
class BuilderConfig:
    hub: str
    token: str
    capacity: int = 1
    arches: list[str] = field(default_factory=list)
    cache_dir: Path | None = None
    work_dir: Path | None = None
    once: bool = False
    idle_exit: float | None = None
    claim_wait: float = 20.0
    build_fn: BuildFn = _default_build
    keep_work: bool = False
    report_retry: float = 900.0  # seconds to keep retrying a finished task's upload while the hub is away
    allow_plugins: list[str] = field(default_factory=list)  # plugins a claim may enable besides HUB_PLUGINS
    # deb-mock plugins this builder's config enables for every build, with options ([plugins.NAME] tables: builder
    # --plugin, --plugin-option); a claim's disable_plugins (a target's) switch them off
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)


class Lost(Exception):
    """The hub no longer considers this attempt ours."""


class Job:
    def __init__(self, claim: BuildClaim | NoopClaim) -> None:
        self.claim = claim
        self.task_id = claim.task_id
        self.fence = claim.fence
        self.cancel = threading.Event()
        self.lost = False
        self.handed_back = False
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def add_line(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
            if len(self.lines) > 5000:
                del self.lines[:-2000]

    def take_lines(self) -> list[str]:
        with self.lock:
            out, self.lines = self.lines[-1000:], []
        return out


class Builder:
    def __init__(self, cfg: BuilderConfig) -> None:
        self.cfg = cfg
        self.stopping = threading.Event()
        self.jobs: dict[int, tuple[Job, threading.Thread]] = {}
        self.done = 0
        self.prefetched: queue.SimpleQueue[BuildClaim | NoopClaim] = queue.SimpleQueue()  # claimed with a completion
        self.wake = threading.Event()
        self.started = False  # the hub accepted this builder's token
        self.metrics = BuilderMetrics()  # served by `builder --metrics-listen`
        self.metrics.watch(self._state, self._running, cfg.capacity)

    def _state(self) -> str:
        if self.stopping.is_set():
            return "stopping"
        if not self.started:
            return "starting"
        return "building" if self._running() else "idle"

    def _running(self) -> int:
        return sum(1 for _, thread in list(self.jobs.values()) if thread.is_alive())

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._loop()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("signal %d: handing back running tasks and stopping", signum)
        self.stopping.set()
        for job, _ in list(self.jobs.values()):
            job.handed_back = True
            job.cancel.set()

    def _loop(self) -> int:
        work_root = self.cfg.work_dir or Path(tempfile.mkdtemp(prefix="deb-orchestrator-builder-"))
        work_root.mkdir(parents=True, exist_ok=True)
        idle_since = time.monotonic()
        with HubClient(self.cfg.hub, self.cfg.token) as hub:
            who = hub.whoami()
            if who.host_id is None:
                log.error("this token (user %s) belongs to no host; use the token add-host printed", who.user)
                return 2
            self.started = True
            self.metrics.heard_from_hub()
            log.info("builder for %s started (capacity %d)", who.user, self.cfg.capacity)
            while not self.stopping.is_set():
                self._reap()
                if self.cfg.once and self.done >= 1 and not self.jobs:
                    break
                claim: BuildClaim | NoopClaim | None
                try:  # a task claimed together with the last completion is ours already: start it
                    claim = self.prefetched.get_nowait()
                except queue.Empty:
                    claim = None
                if claim is not None:
                    self._start(claim, work_root)
                    idle_since = time.monotonic()
                    continue
                if len(self.jobs) >= self.cfg.capacity or (self.cfg.once and (self.jobs or self.done)):
                    self.wake.wait(0.2)
                    self.wake.clear()
                    continue
                try:
                    claim = hub.claim(self.cfg.arches, self.cfg.capacity, wait=self.cfg.claim_wait)
                    self.metrics.heard_from_hub()
                except HubError as exc:
                    self.metrics.hub_errors.inc()
                    if exc.status in (401, 403):
                        log.error("the hub refused this builder: %s", exc.detail)
                        return 2
                    log.warning("claim failed: %s; retrying", exc)
                    self.stopping.wait(2.0)
                    continue
                if claim is None:
                    if self.cfg.idle_exit is not None and not self.jobs and \
                            time.monotonic() - idle_since > self.cfg.idle_exit:
                        break
                    continue
                idle_since = time.monotonic()
                self._start(claim, work_root)
            for _job, thread in list(self.jobs.values()):
                thread.join()
            self._hand_back_prefetched(hub)
        if self.cfg.work_dir is None and not self.cfg.keep_work:
            shutil.rmtree(work_root, ignore_errors=True)
        return 0

    def _start(self, claim: BuildClaim | NoopClaim, work_root: Path) -> None:
        job = Job(claim)
        thread = threading.Thread(target=self._run_job, args=(job, work_root), name=f"task-{job.task_id}")
        self.jobs[job.task_id] = (job, thread)
        thread.start()

    def _hand_back_prefetched(self, hub: HubClient) -> None:
        while True:
            try:
                p = self.prefetched.get_nowait()
            except queue.Empty:
                return
            try:
                hub.release(p.task_id, p.fence, "builder stopping")
                log.info("task %s handed back (claimed with the last completion)", p.task_id)
            except HubError as exc:
                log.warning("task %s: could not hand it back: %s", p.task_id, exc)

    def _finish(self, hub: HubClient, job: Job, result: dict[str, Any]) -> CompleteOut:
        """Report the result and, on a builder with one slot that is not stopping, claim the next task in
        the same request. (With more slots the main loop is usually inside a long-poll ``claim`` and would
        start a task claimed here only after it.)"""
        if self.stopping.is_set() or self.cfg.once or self.cfg.capacity != 1:
            return hub.complete(job.task_id, job.fence, result)
        answer = hub.complete_and_claim(job.task_id, job.fence, result, self.cfg.arches, self.cfg.capacity)
        if answer.next is not None:
            self.prefetched.put(answer.next)
            self.wake.set()
        return answer.completed

    def _reap(self) -> None:
        for tid, (_, thread) in list(self.jobs.items()):
            if not thread.is_alive():
                thread.join()
                del self.jobs[tid]
                self.done += 1

    # ------------------------------------------------------------------ one task
    def _run_job(self, job: Job, work_root: Path) -> None:
        p = job.claim
        log.info("task %d: %s %s for %s (attempt %d)", job.task_id, p.method,
                 p.build if isinstance(p, BuildClaim) else "", p.arch, p.attempt)
        hub = HubClient(self.cfg.hub, self.cfg.token)
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(hub, job, beat_stop), daemon=True)
        beat.start()
        workdir = work_root / f"task-{job.task_id}-{job.fence}"
        started, outcome = time.monotonic(), "error"
        try:
            if isinstance(p, NoopClaim):
                self._finish(hub, job, {"state": ResultState.SUCCESS, "exit_code": ExitCode.SUCCESS, "source": {},
                                        "arch": p.arch})
                outcome = ResultState.SUCCESS
                return
            result = self._build(hub, p, job, workdir)
            if job.handed_back:
                beat_stop.set()
                beat.join()
                hub.release(job.task_id, job.fence, "builder stopping (SIGTERM)")
                log.info("task %d handed back", job.task_id)
                outcome = "handed-back"
                return
            if job.lost:
                log.warning("task %d: attempt lost (lease expired or canceled); dropping the result", job.task_id)
                outcome = "lost"
                return
            # the heartbeat keeps running while the result goes up: if the hub was away, the lease is renewed
            # as soon as it is back, before the retried upload arrives
            self._retrying(job, "reporting the result", lambda: self._report(hub, job, result))
            outcome = result.state
        except HubError as exc:
            level = logging.WARNING if exc.status == 409 else logging.ERROR
            log.log(level, "task %d: %s", job.task_id, exc)
            self.metrics.hub_errors.inc()
            outcome = "lost" if exc.status == 409 else "error"
        except Exception:
            log.exception("task %d: builder error", job.task_id)
        finally:
            self.metrics.finished(str(outcome), time.monotonic() - started)
            beat_stop.set()
            hub.close()
            if not self.cfg.keep_work:
                shutil.rmtree(workdir, ignore_errors=True)

    def _retrying(self, job: Job, what: str, action: Callable[[], None]) -> None:
        """Run ``action`` again (uploads and completion are idempotent for one attempt) while the hub is
        unreachable or answers 502/503/504 — a hub restart must not cost a finished build — for at most
        ``report_retry`` seconds, or until the hub says the attempt is no longer ours."""
        deadline = time.monotonic() + self.cfg.report_retry
        delay = 0.5
        while True:
            try:
                action()
                return
            except HubError as exc:
                if exc.status not in TRANSIENT_STATUSES or job.lost or time.monotonic() + delay > deadline:
                    raise
                log.warning("task %d: %s: %s; trying again in %.1f s", job.task_id, what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 15.0)

    def _heartbeat(self, hub: HubClient, job: Job, stop: threading.Event) -> None:
        interval = job.claim.heartbeat_seconds
        while not stop.wait(interval):
            try:
                answer = hub.heartbeat(job.task_id, job.fence, job.take_lines())
                self.metrics.heard_from_hub()
            except HubError as exc:
                if exc.status in (404, 409):
                    job.lost = True
                    job.cancel.set()
                    return
                log.warning("task %d: heartbeat failed: %s", job.task_id, exc)
                self.metrics.hub_errors.inc()
                continue
            if answer.cancel:
                log.info("task %d was canceled on the hub", job.task_id)
                job.lost = True
                job.cancel.set()
                return

    def _build(self, hub: HubClient, p: BuildClaim, job: Job, workdir: Path) -> BuildResult:
        src_dir = workdir / "source"
        resultdir = workdir / "result"
        src_dir.mkdir(parents=True, exist_ok=True)
        resultdir.mkdir(parents=True, exist_ok=True)

        def infra(message: str, code: int = ExitCode.INFRA_ERROR) -> BuildResult:
            return BuildResult(state="error", exit_code=code, source={"name": p.source, "version": p.version},
                               arch=p.arch, error=message, resultdir=resultdir)

        try:
            for f in p.files:
                dest = hub.download(f.url.removeprefix("/api/v1"), src_dir / f.name)
                if sha256_file(dest) != f.sha256:
                    return infra(f"downloaded {f.name} does not match its sha256 {f.sha256}")
            key_text = hub.request("GET", p.tag_repo.key_path, api=False).text
        except HubError as exc:
            return infra(f"cannot fetch the inputs from the hub: {exc}")
        externals = p.external_repos
        if not externals:
            return infra(f"build tag {p.build_tag} inherits no external repo (e.g. the Debian mirror); "
                         "add one with add-tag --external-repo", ExitCode.BAD_INPUT)
        base, extra = externals[0], externals[1:]
        if p.dsc is None:
            return infra(f"build {p.build}: the hub lists no .dsc among its source files", ExitCode.BAD_INPUT)
        allowed = (*HUB_PLUGINS, *self.cfg.allow_plugins)
        refused = sorted(n for n in p.plugins if n not in allowed)
        if refused:  # exit 4: the hub gives the task to another builder, which may allow them
            return infra(f"this builder does not run plugin(s) {', '.join(refused)} for the hub (it runs "
                         f"{', '.join(allowed)}; builder --allow-plugin NAME allows another)")
        sources = [AptSource(url=f"{hub.url}{p.tag_repo.path}", suite=p.tag_repo.suite,
                             components=tuple(p.tag_repo.components), key=key_text)]
        sources += [AptSource(url=e.url, suite=e.suite, components=tuple(e.components), key=e.key) for e in extra]
        request = BuildRequest(
            source=src_dir / p.dsc, resultdir=resultdir, suite=base.suite, arch=p.arch,
            mirror=base.url, extra_sources=sources, build_what=p.build_what, cache_dir=self.cfg.cache_dir,
            on_log_line=job.add_line, cancel=job.cancel,
            # the hub's stored copy (uploaded by a token holder or fetched by the hub), each file checked above
            # against the sha256 the hub recorded: trusted as the hub's own (docs/security.md)
            trusted_source=f"stored on the hub {hub.url}; each file's sha256 checked against the hub's record",
            enable_plugins=list(p.plugins), plugin_options={name: dict(o) for name, o in p.plugins.items() if o},
            # a plugin not installed here does not run anyway, and deb-mock would refuse its name
            disable_plugins=self._installed(p.disable_plugins),
            config_overrides=self._config_tables(),
        )
        try:
            result = self.cfg.build_fn(request)
        except Exception as exc:  # deb-mock promises not to raise; never lose the task if it does
            log.exception("task %d: deb-mock raised", job.task_id)
            return infra(f"deb-mock raised {type(exc).__name__}: {exc}")
        result.resultdir = resultdir
        return result

    @staticmethod
    def _installed(names: list[str]) -> list[str]:
        """Those of ``names`` deb-mock has here (its entry points are read once, and only when there are names)."""
        if not names:
            return []
        here = set(plugin_names())
        return [n for n in names if n in here]

    def _config_tables(self) -> dict[str, Any]:
        """The builder's own plugins as deb-mock config tables (-D plugins.NAME...): a run's --disable-plugin wins."""
        if not self.cfg.plugins:
            return {}
        return {"plugins": {name: {**options, "enabled": True} for name, options in self.cfg.plugins.items()}}

    def _report(self, hub: HubClient, job: Job, result: BuildResult) -> None:
        resultdir = result.resultdir
        data = result.to_json()
        if resultdir is not None:
            names = [f.name for f in result.files] + [n for n in result.logs.values()]
            for extra in sorted(resultdir.glob("*")):
                if extra.suffix in (".buildinfo", ".changes") and extra.name not in names:
                    names.append(extra.name)
            result.write(resultdir)
            names.append("result.json")
            for name in dict.fromkeys(names):
                path = resultdir / name
                if path.is_file() and path.resolve().is_relative_to(resultdir.resolve()):
                    hub.upload(job.task_id, job.fence, path, name)
        out = self._finish(hub, job, data)
        log.info("task %d: %s (exit %d)%s", job.task_id, out.state, result.exit_code,
                 f": {result.error}" if result.error else "")
