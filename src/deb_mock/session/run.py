"""One build from request to result: the steps of :class:`~deb_mock.session.session.Build` in order, the
plugins' hooks between them (docs/plugins.md), and every outcome turned into a :class:`BuildResult` with the
documented exit code; ``result.json`` is always written."""

from __future__ import annotations

import contextlib
import time
import uuid

from deb_mock.chroot import depcache, rootcache
from deb_mock.chroot.paths import CachePaths, default_cache_dir
from deb_mock.errors import DebMockError, DepWait, Interrupted
from deb_mock.plugins.base import Hook
from deb_mock.plugins.runner import PluginRunner
from deb_mock.request import BuildRequest, BuildResult, ExitCode, MissingDependency
from deb_mock.session import prepare
from deb_mock.session.logs import StateLog
from deb_mock.session.session import RESULT_SUFFIXES, Build
from debsandbox.commands import CommandCancelled
from debsandbox.idmap import IdMapError
from debsandbox.locks import flock
from debsandbox.sandbox import remove_tree


def _clear(request: BuildRequest) -> StateLog:
    resultdir = request.resultdir
    resultdir.mkdir(parents=True, exist_ok=True)
    for old in resultdir.iterdir():
        if old.is_file() and (old.name.endswith(RESULT_SUFFIXES) or old.name == "result.json"):
            old.unlink()
    return StateLog(resultdir, request.on_phase)


def _steps(build: Build, result: BuildResult, stack: contextlib.ExitStack) -> None:
    """Source, root cache, build-dependencies, build, results, with the plugins' hooks in between."""
    request, config, paths, state, plugins = build.request, build.config, build.paths, build.state, build.plugins
    assert plugins is not None
    with state.phase("source"):
        try:
            build.source = build.fetch_source()
        finally:
            prepare.record_verification(build.verification, result, state)
    result.source = {"name": build.source.name, "version": build.source.version}
    state.note(f"building {build.source.name} {build.source.version} for {config.arch} in {config.name}")
    with state.phase("root-cache"):
        cache = build.cache = rootcache.ensure(config, paths, log=state.root_log, on_phase=request.on_phase)
    stack.enter_context(rootcache.using(cache, paths))
    remove_tree(paths.failed(config.name))
    plugins.attach(paths, cache, build.builddir, (build.source_bind(), build.source.sandbox_path))
    plugins.run(Hook.ROOT_READY)
    plugins.run(Hook.BEFORE_DEPS)
    with state.phase("deps"):
        deps = build.deps = build.deps_layer(cache)
    stack.enter_context(depcache.using(deps, paths))
    plugins.run(Hook.AFTER_DEPS)
    plugins.run(Hook.BEFORE_BUILD)
    build.build_collect_install(cache, deps, result)
    if plugins.uses(Hook.AFTER_BUILD):
        with state.phase("plugins"):
            plugins.run(Hook.AFTER_BUILD)


def _failure(result: BuildResult, exc: BaseException, state: StateLog) -> None:
    """``result`` for an exception that ended the build."""
    if isinstance(exc, DepWait):
        result.state, result.exit_code, result.error = "dep-wait", int(exc.exit_code), str(exc)
        result.missing = [MissingDependency(rel, pkgs) for rel, pkgs in exc.missing]
    elif isinstance(exc, DebMockError):
        result.state, result.exit_code, result.error = exc.state, int(exc.exit_code), str(exc)  # type: ignore[assignment]
    elif isinstance(exc, CommandCancelled | KeyboardInterrupt):
        why = "canceled" if isinstance(exc, CommandCancelled) else (str(exc) or "SIGINT")
        state.note(f"interrupted ({why}): stopping the build, removing its root", root_log=True)
        result.state, result.exit_code, result.error = "error", int(Interrupted.exit_code), f"interrupted ({why})"
    elif isinstance(exc, IdMapError):
        result.state, result.exit_code, result.error = "error", int(ExitCode.INFRA_ERROR), str(exc)
    elif isinstance(exc, OSError):
        msg = f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
        if exc.errno == 28:
            msg = f"disk full: {msg}"
        result.state, result.exit_code, result.error = "error", int(ExitCode.INFRA_ERROR), msg
    else:
        raise exc


def run_build(request: BuildRequest) -> BuildResult:
    resultdir = request.resultdir
    state = _clear(request)
    result = BuildResult(state="error", exit_code=int(ExitCode.INFRA_ERROR), source={}, arch=request.arch)
    build: Build | None = None
    stack = contextlib.ExitStack()
    try:
        config = prepare.resolve_config(request)
        result.arch = config.arch
        plugins = PluginRunner(request, config, result, state)  # wrong plugin names or options: exit 2, now
        paths = CachePaths(request.cache_dir or default_cache_dir())
        paths.root.mkdir(parents=True, exist_ok=True)
        builddir = paths.builds(config.name) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        builddir.mkdir(parents=True)
        stack.enter_context(flock(paths.lock(f"build-{builddir.name}")))
        prepare.remove_abandoned_builds(paths, config.name, keep=builddir)
        build = Build(request, config, paths, state, builddir, plugins=plugins)
        build.profiles = prepare.active_profiles(config, request)
        _steps(build, result, stack)
        result.state, result.exit_code = "success", int(ExitCode.SUCCESS)
        build.keep = request.keep_root
    except (DebMockError, CommandCancelled, KeyboardInterrupt, IdMapError, OSError) as exc:
        _failure(result, exc, state)
        if build is not None and build.plugins is not None and isinstance(exc, DebMockError | OSError):
            build.plugins.on_failure()
    finally:
        result.phases = dict(state.phases)
        if build is not None:
            if build.plugins is not None:
                build.plugins.finish()
            with contextlib.suppress(OSError):
                if build.keep and build.cache is not None:
                    result.kept_root = str(build.keep_root(build.cache, build.deps, result.state))
                    state.note(f"the build's root is kept in {result.kept_root} (--shell, --copyout; --clean)")
                else:
                    remove_tree(build.builddir)
        stack.close()
        result.resultdir = resultdir
        result.write(resultdir)
        state.note(f"result: {result.state} (exit {result.exit_code}){': ' + result.error if result.error else ''}")
    return result
