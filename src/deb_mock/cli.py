"""deb-mock's command line (mock's flags, Debian's words). A thin layer over :func:`deb_mock.api.build`.

Exit codes (DESIGN.md): 0 success · 1 build failed · 2 usage or bad input · 3 dep-wait · 4 infrastructure
error · 5 ``--chain`` partly failed · 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

from deb_mock import __version__, cliopts
from deb_mock import config as configmod
from deb_mock.chroot import rootcache, working
from deb_mock.chroot.paths import CachePaths, default_cache_dir
from deb_mock.errors import BadInput, DebMockError
from deb_mock.progress import Progress
from deb_mock.request import BuildRequest, BuildResult, ExitCode
from debsandbox.commands import CommandError
from debsandbox.idmap import IdMapError
from debsandbox.sandbox import Bind

EPILOG = """exit codes: 0 success, 1 build failed (also: the build left links, FIFOs or hard links where results
are expected), 2 usage or bad input (also: a source fetched over the network could not be authenticated),
3 dep-wait (build-dependencies unsatisfiable), 4 infrastructure error (mirror unreachable, disk full,
sandbox failure), 5 --chain partly failed, 130 interrupted (SIGINT or SIGTERM)"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deb-mock",
        description="Clean, isolated, cached chroot builds of Debian source packages.",
        epilog=EPILOG,
    )
    p.add_argument(
        "-r",
        "--root",
        dest="config",
        default="debian-trixie-amd64",
        help="config name or path to a .toml file (default: %(default)s)",
    )
    p.add_argument("--resultdir", type=Path, help="where results go (default: ./deb-mock-result/CONFIG)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default: /var/cache/deb-mock as root, "
        "~/.cache/deb-mock otherwise; or $DEB_MOCK_CACHE_DIR)",
    )
    p.add_argument(
        "--configdir",
        type=Path,
        action="append",
        help="look for configs here instead of the user and system directories (repeatable)",
    )
    _modes(p)
    p.add_argument("packages", nargs="*", metavar="DSC", help="more sources for --rebuild or --chain (mock style)")
    p.add_argument("--recurse", action="store_true", help="with --chain: retry failed builds after the others")
    p.add_argument("--enable-network", action="store_true", help="allow network access during the build")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--arch-only", "-B", action="store_true", help="architecture-dependent packages only (-B)")
    what.add_argument("--indep-only", "-A", action="store_true", help="architecture-independent packages only (-A)")
    p.add_argument("--timeout", type=float, help="stop the build after this many seconds")
    p.add_argument(
        "--no-verify-source",
        action="store_true",
        help="build a .dsc fetched over http(s) even if it is in no signed index of its mirror and not signed "
        "by a key in the config's source_keyrings (logged, and recorded in result.json as source_verified: false)",
    )
    cliopts.add_build_options(p)
    p.add_argument("-v", "--verbose", action="count", default=0, help="stream the build log")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors and the result")
    p.add_argument("--version", action="version", version=f"deb-mock {__version__}")
    return p


def _modes(p: argparse.ArgumentParser) -> None:
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--rebuild", nargs="*", metavar="DSC", help="build .dsc files (paths or http(s) URLs)")
    modes.add_argument("--buildsrc", metavar="DIR", type=Path, help="build an unpacked source tree (with debian/)")
    modes.add_argument(
        "--chain", nargs="*", metavar="DSC", help="build in order; each may build-depend on the ones before"
    )
    modes.add_argument("--init", action="store_true", help="make the root cache and the working chroot")
    modes.add_argument("--update", action="store_true", help="bootstrap a fresh root cache now")
    modes.add_argument(
        "--shell",
        nargs="*",
        metavar="CMD",
        help="a shell (or CMD) in the last failed build's root, else in the working chroot",
    )
    modes.add_argument(
        "--install", nargs="+", metavar="PKG", help="install packages (names or .deb paths) into the working chroot"
    )
    modes.add_argument("--clean", action="store_true", help="remove the working chroot and kept failed root")
    modes.add_argument("--scrub", choices=working.SCRUB_CHOICES, help="remove chroots and/or caches")
    modes.add_argument("--list-configs", action="store_true", help="list the configs and where they come from")
    modes.add_argument("--list-plugins", action="store_true",
                       help="list the plugins (built-in and installed) and whether the config enables them")
    modes.add_argument("--copyin", nargs="+", metavar="PATH", help="copy host paths into the chroot --shell uses: "
                       "--copyin PATH... DEST (into DEST if it is a directory there)")
    modes.add_argument("--copyout", nargs="+", metavar="PATH", help="copy paths of the chroot --shell uses to the "
                       "host: --copyout PATH... DEST (links and special files are refused)")


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    """SIGINT or SIGTERM: stop the work (KeyboardInterrupt unwinds it: children killed and reaped, the
    throw-away root removed, result.json written with exit 130). Later signals wait for that cleanup."""
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) is _interrupt:
            signal.signal(sig, _already_stopping)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    print(f"deb-mock: {signal.Signals(signum).name} again: already stopping, cleaning up", file=sys.stderr)


def _install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    # SIGINT inherited as ignored (a background job of a non-interactive shell) stays ignored, as is the rule
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupt)


def _summary(progress: Progress, result: BuildResult) -> None:
    name = f"{result.source.get('name', '?')} {result.source.get('version', '')}".strip()
    where = f" → {result.resultdir}" if result.resultdir else ""
    if result.state == "success":
        debs = [f.name for f in result.files if f.name.endswith((".deb", ".udeb"))]
        progress.info(f"deb-mock: {name}: success ({len(debs)} packages){where}")
    else:
        progress.info(f"deb-mock: {name}: {result.state} (exit {result.exit_code}): {result.error}{where}")
        for m in result.missing:
            progress.info(f"  missing: {m.relation}")
    if result.kept_root:
        progress.info(f"deb-mock: the build's root is kept in {result.kept_root} (--shell enters it; --clean)")


def _request(args: argparse.Namespace, source: str | Path, resultdir: Path, progress: Progress) -> BuildRequest:
    return BuildRequest(
        source=source,
        resultdir=resultdir,
        config=args.config,
        build_what="arch" if args.arch_only else "indep" if args.indep_only else "binary",
        cache_dir=args.cache_dir,
        network=args.enable_network,
        on_log_line=progress.log_line,
        on_phase=progress.phase,
        config_dirs=args.configdir,
        timeout=args.timeout,
        verify_source=not args.no_verify_source,
        **args.build_fields,
    )


def _builds(args: argparse.Namespace, cfg: configmod.MockConfig, progress: Progress) -> int:
    resultdir = args.resultdir or Path("deb-mock-result") / cfg.name
    if args.chain:
        from deb_mock.chain import run_chain  # with the signing and repository code only --chain needs

        code, results = run_chain(
            _request(args, "", resultdir, progress),
            list(args.chain),
            recurse=args.recurse,
            on_result=lambda r: _summary(progress, r),
        )
        progress.info(
            f"deb-mock: chain: {sum(r.state == 'success' for r in results)}/{len(args.chain)} built "
            f"(summary: {resultdir / 'result.json'})"
        )
        return code
    sources: list[str | Path] = [args.buildsrc] if args.buildsrc else list(args.rebuild)
    worst = 0
    for src in sources:
        rd = resultdir if len(sources) == 1 else resultdir / Path(str(src)).name.removesuffix(".dsc")
        from deb_mock.api import build

        result = build(_request(args, src, rd, progress))
        _summary(progress, result)
        if result.exit_code == ExitCode.INTERRUPTED:
            return result.exit_code
        worst = worst or result.exit_code
    return worst


def _chroot_ops(args: argparse.Namespace, cfg: configmod.MockConfig, progress: Progress) -> int:
    paths = CachePaths(args.cache_dir or default_cache_dir())
    log = paths.root / "logs" / f"{cfg.name}-root.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if args.clean or args.scrub:
        removed = working.clean(cfg, paths) if args.clean else working.scrub(cfg, paths, args.scrub)
        progress.info(f"deb-mock: removed {len(removed)} item(s)" + "".join(f"\n  {p}" for p in removed))
        return 0
    cache = rootcache.ensure(cfg, paths, update=args.update, log=log, on_phase=progress.phase)
    if args.update:
        progress.info(f"deb-mock: root cache refreshed: {cache.root}")
        return 0
    with rootcache.using(cache, paths):
        if args.shell is not None or args.copyin or args.copyout:
            from deb_mock.chroot import copy

            root = working.shell_root(cfg, paths, cache)
            if args.copyin:
                copy.copy_in(root, args.copyin, log)
                dest = args.copyin[-1]
                progress.info(f"deb-mock: copied {len(args.copyin) - 1} path(s) to {dest} in the {root.label}")
                return 0
            if args.copyout:
                written = copy.copy_out(root, args.copyout, paths, log)
                progress.info(f"deb-mock: copied {len(written)} file(s) from the {root.label} to {args.copyout[-1]}")
                return 0
            progress.info(f"deb-mock: entering the {root.label}")
            argv = ["/bin/bash", "-l"] if not args.shell else ["/bin/sh", "-c", " ".join(args.shell)]
            return working.interactive(root.sandbox(network=args.enable_network), argv)
        root, made = working.init(cfg, paths, cache)
        if args.init:
            progress.info(f"deb-mock: {'made' if made else 'kept'} the {root.label}")
            return 0
        binds: list[Bind] = []
        pkgs: list[str] = []
        for i, pkg in enumerate(args.install):
            if pkg.endswith(".deb") and Path(pkg).is_file():
                binds.append(Bind(Path(pkg).resolve(), f"/deb-mock/install/{i}.deb"))
                pkgs.append(f"/deb-mock/install/{i}.deb")
            elif pkg.endswith(".deb"):
                raise BadInput(f"{pkg}: no such file")
            else:
                pkgs.append(pkg)
        install = ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]
        try:
            # apt downloads (and verifies) with network; dpkg and the packages' maintainer scripts, which are
            # untrusted code, then run in a sandbox without network (as for build-dependencies)
            root.sandbox(network=True, binds=binds).run([*install, "--download-only"], log=log,
                                                        on_line=progress.log_line)
            root.sandbox(network=False, binds=binds).run(install, log=log, on_line=progress.log_line)
        except CommandError as exc:
            progress.info(f"deb-mock: apt-get install failed (log: {log}):\n{exc.tail}")
            return int(ExitCode.BUILD_FAILED)
        progress.info(f"deb-mock: installed {len(pkgs)} package(s) into the {root.label}")
        return 0


def _list_plugins(args: argparse.Namespace) -> int:
    from deb_mock.plugins import loader

    try:
        cfg = configmod.load_config(args.config, args.configdir, cliopts.overrides(args))
    except configmod.ConfigError as exc:
        raise BadInput(str(exc)) from None
    on = {e.name for e in loader.select(cfg.plugins, [], [], {})}
    for name, target in loader.available().items():
        where = "built-in" if name in loader.BUILTIN else target
        print(f"{name:16} {'enabled' if name in on else 'disabled':9} {where}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.packages:
        if args.chain is not None:
            args.chain = [*args.chain, *args.packages]
        elif args.rebuild is not None:
            args.rebuild = [*args.rebuild, *args.packages]
        else:
            parser().error("source packages given without --rebuild or --chain")
    for flag in ("rebuild", "chain"):
        if getattr(args, flag) == []:
            parser().error(f"--{flag} needs at least one source package")
    progress = Progress(-1 if args.quiet else args.verbose)
    _install_signal_handlers()
    try:
        if args.list_configs:
            for name, path in configmod.list_configs(args.configdir).items():
                try:
                    cfg = configmod.load_config(name, args.configdir)
                    print(f"{name:32} {cfg.suite:10} {cfg.arch:8} {path}")
                except configmod.ConfigError as exc:
                    print(f"{name:32} (invalid: {exc})")
            return 0
        if args.list_plugins:
            return _list_plugins(args)
        if not any(
            [
                args.rebuild,
                args.buildsrc,
                args.chain,
                args.init,
                args.update,
                args.shell is not None,
                args.install,
                args.clean,
                args.scrub,
                args.copyin,
                args.copyout,
            ]
        ):
            parser().print_usage(sys.stderr)
            print("deb-mock: say what to do: --rebuild, --buildsrc, --chain, --init, --shell, ...", file=sys.stderr)
            return int(ExitCode.BAD_INPUT)
        building = bool(args.rebuild or args.buildsrc or args.chain)
        cliopts.check_applicable(args, building)
        args.build_fields = cliopts.request_fields(args)
        try:
            cfg = configmod.load_config(args.config, args.configdir, args.build_fields["config_overrides"])
        except configmod.ConfigError as exc:
            raise BadInput(str(exc)) from None
        with progress:
            if building:
                return _builds(args, cfg, progress)
            return _chroot_ops(args, cfg, progress)
    except DebMockError as exc:
        print(f"deb-mock: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except IdMapError as exc:
        print(f"deb-mock: error: {exc}", file=sys.stderr)
        return int(ExitCode.INFRA_ERROR)
    except KeyboardInterrupt as exc:
        print(f"deb-mock: interrupted ({exc or 'SIGINT'})", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


def run() -> NoReturn:
    """The ``deb-mock`` command: :func:`main`, then exit at once. By then everything deb-mock wrote is closed
    (logs, result.json) and its locks are released; the interpreter's own teardown of the ~300 modules a build
    imports would add about 30 ms to every run."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: what could not be printed is lost either way
        code = code or int(ExitCode.INFRA_ERROR)
    os._exit(code)


if __name__ == "__main__":
    run()
