#!/usr/bin/env python3
"""deb-mock against sbuild (unshare mode) and against the floor, on the same machine, in one interleaved run.

For each package (default: hello 2.10-3 and grim 1.4.0+ds-2, both built for bookworm) and each repetition,
in this order:

(a) ``sbuild``  — ``sbuild --chroot-mode=unshare -d bookworm --no-run-lintian --no-run-piuparts
    --no-run-autopkgtest`` run as an unprivileged user (sbuild's unshare backend refuses root) from an
    ``mmdebstrap --variant=buildd`` tarball; sbuild caches nothing between runs.
(b) ``cold``    — ``deb-mock --rebuild`` with the root cache present and the build-dependency cache empty
    (``CACHE/deps-cache`` removed just before the run).
(c) ``warm``    — the same build again: a build-dependency cache hit (checked in state.log).
(d) ``floor``   — bare ``dpkg-buildpackage -b -us -uc`` (after ``dpkg-source -x``) as an unprivileged user
    in a root that already holds the build-dependencies: sbuild's tarball extracted once, the
    build-dependencies installed once, then each run in bubblewrap (no network, fresh /build).

``--tmpfs`` (tmpfs mode): the build-dependency layer is made once (not measured), then each repetition runs
(a) ``sbuild``, (c) ``warm``, (e) ``tmpfs`` — the warm build with the tmpfs plugin holding the whole build tree
in RAM (``--plugin-option tmpfs:build_tree=true``) — and (d) ``floor``; the ratios are tmpfs/floor (target
<= 1.0), tmpfs/sbuild (target <= 0.5) and warm/floor.

All builds use ``DEB_BUILD_OPTIONS=parallel=<cpus>`` (deb-mock's default). Times are wall-clock seconds of the
whole command. The table shows medians (min–max) and the ratios warm/sbuild (target <= 0.5), warm/floor
(target <= 1.2) and cold/sbuild (target <= 0.8). ``--quick``: one repetition of hello only (CI).

deb-mock runs byte-compiled, as an installed package does (pip and dpkg compile a package's modules when they
install it): before the runs, the script compiles the modules of deb-mock and the libraries it imports from this
tree. Without that, an editable install run with ``PYTHONDONTWRITEBYTECODE=1`` (as here) compiles about 60
modules from source on every start, about 0.1 s of every build, which no installed deb-mock pays.

Must run as root; sbuild runs as ``--user`` (default debmock-test, created with /etc/subuid and /etc/subgid
ranges if missing). The sbuild tarball and the staged sources live in ``--sbuild-dir`` (readable by that
user; kept between runs); deb-mock's cache, the floor's roots and the results live in ``--work``.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import json
import os
import platform
import pwd
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import deb_mock
import debarchive
import debsandbox
from debarchive.dsc import SourcePackage, fetch
from debsandbox.bwrap import bwrap_argv
from debsandbox.commands import CommandError, run
from debsandbox.locks import flock
from debsandbox.sandbox import Bind

MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
PACKAGES = {
    "hello": f"{MIRROR}/pool/main/h/hello/hello_2.10-3.dsc",
    "grim": f"{MIRROR}/pool/main/g/grim/grim_1.4.0+ds-2.dsc",
}
SUITE = "bookworm"
CONFIG = "debian-bookworm-amd64"
DEFAULT_USER = "debmock-test"
SUBID_RANGE = "300000:65536"
DEFAULT_WORK = Path(os.environ.get("DEB_MOCK_BENCH_DIR", "/var/cache/deb-mock-bench"))
DEFAULT_SBUILD_DIR = Path(os.environ.get("DEB_TEST_SBUILD_DIR", "/var/cache/deb-bootc-tests/sbuild"))
DEB_MOCK = str(Path(sys.executable).parent / "deb-mock")
FLOOR_UID = 1000
TIMEOUT = 3 * 3600
VARIANTS = ("sbuild", "cold", "warm", "floor")
TARGETS = {"warm/sbuild": 0.5, "warm/floor": 1.2, "cold/sbuild": 0.8}
TMPFS_VARIANTS = ("sbuild", "warm", "tmpfs", "floor")
TMPFS_TARGETS = {"tmpfs/floor": 1.0, "tmpfs/sbuild": 0.5, "warm/floor": 1.2}
# the deb-mock variants and their extra arguments (tmpfs: the whole build tree in RAM)
MOCK_ARGS = {"cold": (), "warm": (), "tmpfs": ("--plugin-option", "tmpfs:build_tree=true")}


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and where its log is."""


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with flock(path, keep_file=True):
        yield


def _has_subids(user: str, path: Path) -> bool:
    try:
        return any(line.split(":", 1)[0] == user for line in path.read_text().splitlines())
    except FileNotFoundError:
        return False


def ensure_user(name: str = DEFAULT_USER) -> pwd.struct_passwd:
    """The unprivileged user sbuild runs as, with subordinate uid/gid ranges (made if missing; needs root)."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/bash", name])
        pw = pwd.getpwnam(name)
    for f in (Path("/etc/subuid"), Path("/etc/subgid")):
        if not _has_subids(name, f):
            with open(f, "a") as fh:
                fh.write(f"{name}:{SUBID_RANGE}\n")
    return pw


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fresh_dir(path: Path, owner: pwd.struct_passwd | None = None, uid: int | None = None) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    elif uid is not None:
        os.chown(path, uid, uid)
    return path


@dataclass
class Sbuild:
    """sbuild in unshare mode, driven as an unprivileged user, with a cached buildd tarball."""

    dir: Path = DEFAULT_SBUILD_DIR
    user: str = DEFAULT_USER
    suite: str = SUITE
    mirror: str = MIRROR

    @property
    def tarball(self) -> Path:
        return self.dir / f"{self.suite}-amd64.tar"

    def prepare(self) -> pwd.struct_passwd:
        """Make the user, the directory (readable by the user) and the tarball if they are missing."""
        if os.geteuid() != 0:
            raise BenchError("this must run as root (it drives sbuild as an unprivileged user)")
        pw = ensure_user(self.user)
        self.dir.mkdir(parents=True, exist_ok=True)
        for p in [self.dir, *self.dir.parents]:
            if not os.stat(p).st_mode & 0o001:
                raise BenchError(
                    f"{p} is not searchable by other users, so {self.user} cannot reach {self.dir}; "
                    "choose a --sbuild-dir (or $DEB_TEST_SBUILD_DIR) under /var/cache or /var/tmp"
                )
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        with locked(self.dir / ".tarball.lock"):
            if not self.tarball.is_file():
                tmp = self.dir / f".{self.tarball.name}.tmp{os.getpid()}"
                try:
                    run(
                        ["mmdebstrap", "--variant=buildd", "--format=tar", self.suite, str(tmp), self.mirror],
                        log=self.dir / "mmdebstrap.log",
                        timeout=3600,
                    )
                    os.chmod(tmp, 0o644)
                    os.chown(tmp, pw.pw_uid, pw.pw_gid)
                    tmp.rename(self.tarball)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
        return pw

    def stage(self, ref: str | Path) -> SourcePackage:
        """Fetch a .dsc (URL or path) and its files into DIR/src/NAME, verified and readable by the user."""
        name = Path(urlparse(str(ref)).path).name.removesuffix(".dsc")
        dest = self.dir / "src" / name
        with locked(self.dir / "src" / f".{name}.lock"):
            pkg = fetch(ref, dest)
            for p in [self.dir / "src", dest, *dest.iterdir()]:
                p.chmod(0o755 if p.is_dir() else 0o644)
        return pkg

    def build(self, pkg: SourcePackage, outdir: Path, jobs: int) -> float:
        """Build ``pkg`` in ``outdir`` (made afresh, owned by the user); return the wall-clock seconds."""
        pw = pwd.getpwnam(self.user)
        fresh_dir(outdir, owner=pw)
        argv = [
            "runuser", "-u", self.user, "--",
            "sbuild", "--chroot-mode=unshare", "-d", self.suite, f"--chroot={self.tarball}",
            "--no-run-lintian", "--no-run-piuparts", "--no-run-autopkgtest", "--nolog",
            str(pkg.dsc_path),
        ]  # fmt: skip
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": pw.pw_dir,
            "DEB_BUILD_OPTIONS": f"parallel={jobs}",
        }
        log = outdir / "sbuild.log"
        start = time.monotonic()
        try:
            run(argv, env=env, cwd=outdir, log=log, timeout=TIMEOUT)
        except CommandError as exc:
            raise BenchError(f"sbuild failed on {pkg.ident} (exit {exc.returncode}); see {log}") from None
        took = time.monotonic() - start
        if not list(outdir.glob("*.deb")):
            raise BenchError(f"sbuild produced no .deb for {pkg.ident}; see {log}")
        return took


@dataclass
class DebMock:
    """The deb-mock CLI with its own cache directory."""

    cache: Path
    config: str = CONFIG
    exe: str = DEB_MOCK

    def argv(self, *args: str) -> list[str]:
        return [self.exe, "-r", self.config, "--cache-dir", str(self.cache), *args]

    def prepare(self, log: Path) -> None:
        """Byte-compile deb-mock as an installed package is, and make the root cache (if missing), so that no
        measured run includes a bootstrap."""
        for package in (deb_mock, debarchive, debsandbox):
            for where in package.__path__:
                if not compileall.compile_dir(where, quiet=1):
                    raise BenchError(f"cannot byte-compile {where}")
        self.cache.mkdir(parents=True, exist_ok=True)
        try:
            run(self.argv("--init", "-q"), log=log, timeout=TIMEOUT)
        except CommandError as exc:
            raise BenchError(f"deb-mock --init failed (exit {exc.returncode}); see {log}") from None

    def generations(self) -> set[tuple[str, str]]:
        """Every root cache and its current generation (a change means a run bootstrapped one)."""
        base = self.cache / "root-cache"
        out = set()
        if base.is_dir():
            for d in base.iterdir():
                cur = d / "current"
                out.add((d.name, os.readlink(cur) if cur.is_symlink() else ""))
        return out

    def build(
        self, pkg: SourcePackage, resultdir: Path, *, cold: bool, args: tuple[str, ...] = ()
    ) -> tuple[float, dict[str, float]]:
        """One measured build; measured again if it had to bootstrap a root cache (not what is measured)."""
        kind = "cold" if cold else "warm"
        before = self.generations()
        took, phases, hit = self._build(pkg, resultdir, cold=cold, args=args)
        if self.generations() != before:
            print(
                f"note: the {kind} run of {pkg.ident} bootstrapped a root cache (root-cache phase "
                f"{phases.get('root-cache', 0):.1f}s; the config or deb-mock changed?): measuring it again",
                flush=True,
            )
            took, phases, hit = self._build(pkg, resultdir, cold=cold, args=args)
        if hit == cold:
            raise BenchError(
                f"deb-mock's {kind} run of {pkg.ident} was a build-dependency cache {'hit' if hit else 'miss'}; "
                f"see {resultdir}/state.log"
            )
        return took, phases

    def _build(
        self, pkg: SourcePackage, resultdir: Path, *, cold: bool, args: tuple[str, ...] = ()
    ) -> tuple[float, dict[str, float], bool]:
        fresh_dir(resultdir)
        if cold:
            deps = self.cache / "deps-cache"
            if deps.exists():
                shutil.rmtree(deps)
        start = time.monotonic()
        proc = run(
            self.argv("--resultdir", str(resultdir), *args, "--rebuild", str(pkg.dsc_path), "-q"),
            log=resultdir / "deb-mock.out",
            timeout=TIMEOUT,
            check=False,
        )
        took = time.monotonic() - start
        try:
            result = json.loads((resultdir / "result.json").read_text())
        except (OSError, ValueError):
            result = {}
        if proc.returncode != 0 or result.get("state") != "success":
            raise BenchError(
                f"deb-mock failed on {pkg.ident} (exit {proc.returncode}: {result.get('error', '?')}); "
                f"see {resultdir}/build.log and root.log"
            )
        hit = "build-dependency cache: hit" in (resultdir / "state.log").read_text()
        return took, {k: float(v) for k, v in result.get("phases", {}).items()}, hit


@dataclass
class Floor:
    """Bare dpkg-buildpackage in a root that already has the build-dependencies (bubblewrap, no network)."""

    dir: Path
    tarball: Path

    def root(self, pkg: SourcePackage) -> Path:
        return self.dir / pkg.ident / "root"

    def _bwrap(
        self, command: list[str], root: Path, srcdir: Path, *, network: bool,
        binds: tuple[Bind, ...] = (), chdir: str | None = None, env: dict[str, str] | None = None,
    ) -> list[str]:
        """``command`` as root in the floor's root (no user namespace: apt and runuser switch users)."""
        return bwrap_argv(command, root=root, binds=[Bind(srcdir, "/src"), *binds], network=network,
                          user_namespace=False, chdir=chdir, env=env)

    def prepare(self, pkg: SourcePackage) -> None:
        """Extract the tarball and install the build-dependencies once per package (kept between runs)."""
        root = self.root(pkg)
        stamp = root.parent / "ready"
        with locked(root.parent / ".lock"):
            if stamp.is_file() and stamp.read_text() == str(self.tarball.stat().st_mtime):
                return
            stamp.unlink(missing_ok=True)
            fresh_dir(root)
            log = root.parent / "prepare.log"
            run(["tar", "-xf", str(self.tarball), "-C", str(root), "--numeric-owner"], log=log)
            script = (
                "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update; "
                f"apt-get build-dep -y -o APT::Install-Recommends=false /src/{pkg.dsc_path.name}; apt-get clean; "
                f"useradd --uid {FLOOR_UID} --user-group --home-dir /build builder"
            )
            try:
                run(self._bwrap(["sh", "-c", script], root, pkg.directory, network=True), log=log, timeout=TIMEOUT)
            except CommandError as exc:
                raise BenchError(f"preparing the floor root for {pkg.ident} failed: {exc.tail[-300:]}") from None
            stamp.write_text(str(self.tarball.stat().st_mtime))

    def build(self, pkg: SourcePackage, outdir: Path, jobs: int) -> float:
        build = fresh_dir(self.dir / pkg.ident / "build", uid=FLOOR_UID)
        script = (
            f"set -e; cd /build; dpkg-source --no-check -x /src/{pkg.dsc_path.name} pkg; cd pkg; "
            "dpkg-buildpackage -b -us -uc"
        )
        argv = self._bwrap(
            ["runuser", "-u", "builder", "--", "sh", "-c", script], self.root(pkg), pkg.directory, network=False,
            binds=(Bind(build, "/build", ro=False),), chdir="/build",
            env={"HOME": "/build", "DEB_BUILD_OPTIONS": f"parallel={jobs}", "LANG": "C.UTF-8"},
        )
        fresh_dir(outdir)
        log = outdir / "build.log"
        start = time.monotonic()
        try:
            run(argv, log=log, timeout=TIMEOUT)
        except CommandError as exc:
            raise BenchError(f"the floor build of {pkg.ident} failed (exit {exc.returncode}); see {log}") from None
        took = time.monotonic() - start
        for deb in build.glob("*.deb"):
            shutil.copyfile(deb, outdir / deb.name)
        shutil.rmtree(build)
        return took


@dataclass
class Results:
    variants: tuple[str, ...] = VARIANTS
    targets: dict[str, float] = field(default_factory=lambda: dict(TARGETS))
    times: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    phases: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    debs: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def add(self, pkg: str, variant: str, seconds: float) -> None:
        self.times.setdefault(pkg, {}).setdefault(variant, []).append(round(seconds, 2))

    def median(self, pkg: str, variant: str) -> float:
        return statistics.median(self.times[pkg][variant])

    def ratios(self, pkg: str) -> dict[str, float]:
        m = {v: self.median(pkg, v) for v in self.variants}
        out = {}
        for k in self.targets:
            a, b = k.split("/")
            out[k] = m[a] / m[b]
        return out


def debs_of(outdir: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(outdir.glob("*.deb")) if "-dbgsym_" not in p.name}


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(res: Results, packages: dict[str, SourcePackage], out: list[str]) -> None:
    label = {"sbuild": "sbuild (unshare)", "cold": "deb-mock cold", "warm": "deb-mock warm", "floor": "floor",
             "tmpfs": "deb-mock tmpfs"}
    out.append(f"{'package':24} {'variant':18} {'median s':>9} {'min–max s':>15} {'runs':>5}")
    for name, pkg in packages.items():
        for v in res.variants:
            t = res.times[name][v]
            out.append(
                f"{pkg.ident:24} {label[v]:18} {statistics.median(t):9.1f} "
                f"{f'{min(t):.1f}–{max(t):.1f}':>15} {len(t):5d}"
            )
    out.append("")
    out.append("deb-mock phases (medians, s):")
    for name, pkg in packages.items():
        for v in (v for v in res.variants if v in MOCK_ARGS):
            runs = res.phases[name][v]
            keys = list(runs[0])
            phases = ", ".join(f"{k} {statistics.median(r.get(k, 0.0) for r in runs):.1f}" for k in keys)
            out.append(f"  {pkg.ident} {v}: {phases}")
    out.append("")
    out.append("ratios (medians):")
    for name, pkg in packages.items():
        parts = []
        for k, r in res.ratios(name).items():
            verdict = "met" if r <= res.targets[k] else "MISSED"
            parts.append(f"{k} = {r:.2f} (target <= {res.targets[k]}: {verdict})")
        out.append(f"  {pkg.ident}: " + "; ".join(parts))
    out.append("")
    for name in packages:
        by_tool = res.debs.get(name, {})
        names = sorted(set().union(*(set(d) for d in by_tool.values()))) if by_tool else []
        for deb in names:
            sums = {tool: d.get(deb, "missing") for tool, d in by_tool.items()}
            same = len(set(sums.values())) == 1
            verdict = "identical" if same else "DIFFERENT: " + ", ".join(f"{t} {s[:12]}" for t, s in sums.items())
            out.append(f"{deb}: {verdict} across {', '.join(sums)}")


def write_json(
    path: Path, res: Results, packages: dict[str, SourcePackage], load_before: str, *, complete: bool
) -> None:
    """Every measurement so far (written after each round, so an interrupted run keeps its data)."""
    data = {
        "complete": complete,
        "packages": {n: p.ident for n, p in packages.items()},
        "times": res.times,
        "phases": res.phases,
        "ratios": {n: res.ratios(n) for n in packages if len(res.times.get(n, {})) == len(res.variants)},
        "debs": res.debs,
        "load_before": load_before,
        "load_after": loadavg(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per package and variant (default 3)")
    ap.add_argument("--quick", action="store_true", help="one repetition of hello only (CI)")
    ap.add_argument("--tmpfs", action="store_true",
                    help="tmpfs mode: warm builds with the whole build tree in RAM against sbuild and the floor")
    ap.add_argument(
        "--package",
        action="append",
        dest="packages",
        help=f"a package to build: one of {', '.join(PACKAGES)} or a .dsc URL/path (repeatable; default: all)",
    )
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="deb-mock cache, floor roots, results")
    ap.add_argument("--sbuild-dir", type=Path, default=DEFAULT_SBUILD_DIR, help="sbuild tarball and sources")
    ap.add_argument("--user", default=DEFAULT_USER, help="the unprivileged user that runs sbuild")
    ap.add_argument("--config", default=CONFIG, help="deb-mock config (its suite must be --suite)")
    ap.add_argument("--suite", default=SUITE)
    ap.add_argument("--mirror", default=MIRROR)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel= for every build")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    reps = 1 if args.quick else args.reps
    refs = ["hello"] if args.quick else (args.packages or list(PACKAGES))

    sbuild = Sbuild(args.sbuild_dir, args.user, args.suite, args.mirror)
    try:
        sbuild.prepare()
        work = args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        mock = DebMock(work / "deb-mock", args.config)
        floor = Floor(work / "floor", sbuild.tarball)
        packages: dict[str, SourcePackage] = {}
        for ref in refs:
            pkg = sbuild.stage(PACKAGES.get(ref, ref))
            packages[pkg.source] = pkg
        print(f"preparing: deb-mock root cache ({args.config}), floor roots, sbuild tarball {sbuild.tarball}")
        mock.prepare(work / "deb-mock-init.log")
        for pkg in packages.values():
            floor.prepare(pkg)
        res = Results(TMPFS_VARIANTS, dict(TMPFS_TARGETS)) if args.tmpfs else Results()
        if args.tmpfs:  # the build-dependency layers, made once (not measured)
            for name, pkg in packages.items():
                mock._build(pkg, work / "runs" / name / "prep", cold=False)
        load_before = loadavg()
        print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {load_before}; {reps} repetition(s)")
        started = time.monotonic()
        for rep in range(1, reps + 1):
            for name, pkg in packages.items():
                runs = work / "runs" / name
                sb_out = sbuild.dir / "runs" / f"{name}-{os.getpid()}"
                t = sbuild.build(pkg, sb_out, args.jobs)
                res.add(name, "sbuild", t)
                res.debs.setdefault(name, {})["sbuild"] = debs_of(sb_out)
                shutil.rmtree(sb_out)
                for v in (v for v in res.variants if v in MOCK_ARGS):
                    t, ph = mock.build(pkg, runs / v, cold=v == "cold", args=MOCK_ARGS[v])
                    res.add(name, v, t)
                    res.phases.setdefault(name, {}).setdefault(v, []).append(ph)
                res.debs[name]["deb-mock"] = debs_of(runs / "warm")
                t = floor.build(pkg, runs / "floor", args.jobs)
                res.add(name, "floor", t)
                res.debs[name]["floor"] = debs_of(runs / "floor")
                times = ", ".join(f"{v} {res.times[name][v][-1]:.1f}s" for v in res.variants)
                print(f"round {rep} {pkg.ident}: {times} (load {loadavg()})", flush=True)
                if args.json:
                    write_json(args.json, res, packages, load_before, complete=False)
    except BenchError as exc:
        print(f"deb_mock_vs_sbuild: {exc}", file=sys.stderr)
        return 1
    out = ["", f"load average before {load_before}, after {loadavg()}; {time.monotonic() - started:.0f}s of runs", ""]
    report(res, packages, out)
    print("\n".join(out))
    if args.json:
        write_json(args.json, res, packages, load_before, complete=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
