"""One build, start to finish: source → root cache → build-dependencies (cached) → build → results.

Every outcome becomes a :class:`BuildResult` with the documented exit code; ``result.json`` is always
written. The throw-away root is removed after a successful build and kept (for ``--shell``) after a
failed one, until the next build of the config or ``--clean``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from deb_mock import aptsources
from deb_mock import config as configmod
from deb_mock import profiles as buildprofiles
from deb_mock.chroot import aptlists, depcache, rootcache
from deb_mock.chroot.paths import CachePaths
from deb_mock.errors import BadInput, BuildFailed, DepWait, InfraError
from deb_mock.plugins.runner import PluginRunner
from deb_mock.request import BuildRequest, BuildResult, BuildrootPackage, ResultFile
from deb_mock.session import buildscript, postinstall, relations
from deb_mock.session.logs import StateLog
from deb_mock.session.sandboxes import EXTRA_LIST, ExtraSources, apt_script, build_sandbox, root_sandbox
from deb_mock.session.source import BuildSource, from_dsc, from_tree
from debarchive import safeio
from debarchive.sourceauth import SourceTrust, Verification, authenticate_dsc, check_sha256
from debsandbox.commands import CommandError, CommandTimeout
from debsandbox.locks import flock
from debsandbox.sandbox import Bind, remove_tree

RESULT_SUFFIXES = (".deb", ".udeb", ".ddeb", ".changes", ".buildinfo")
BUILDROOT_LIST = "/var/lib/deb-mock/buildroot.tsv"
DEBIAN_ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_RESULT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_-]*$")
# what apt-get update says of a repository its key does not verify (not worth a retry elsewhere)
UNVERIFIED_REPO = ("NO_PUBKEY", "is not signed", "couldn't be verified", "were invalid", "BADSIG")
_FLAGS = {"binary": ("-b", ""), "arch": ("-B", "--arch-only"), "indep": ("-A", "--indep-only")}


@dataclass
class Build:
    request: BuildRequest
    config: configmod.MockConfig
    paths: CachePaths
    state: StateLog
    builddir: Path
    source: BuildSource | None = None
    verification: Verification | None = None
    profiles: list[str] = field(default_factory=list)  # the active build profiles (deb_mock.profiles)
    extra: ExtraSources | None = None  # the extra apt sources, once prepared
    keep: bool = False  # keep the root when the build ends (see keep_root)
    plugins: PluginRunner | None = None  # the enabled plugins (deb_mock.plugins)
    cache: rootcache.RootCache | None = None  # once the root-cache phase has it
    deps: depcache.DepsEntry | None = None  # once the deps phase has it
    lists: aptlists.ListsSnapshot | None = None  # fresh apt lists in the deps phase, when the root cache's are stale

    # -- steps ---------------------------------------------------------------------------------------

    def fetch_source(self) -> BuildSource:
        src = self.request.source
        srcdir = self.builddir / "src"
        if not isinstance(src, Path) and not str(src).startswith(("http://", "https://")):
            src = Path(src)
        if isinstance(src, Path):
            why = self.request.trusted_source or f"the caller's own {'tree' if src.is_dir() else 'file'} {src}"
            self.verification = Verification(True, "caller", why)
        if isinstance(src, Path) and src.is_dir():
            return from_tree(src)
        srcdir.mkdir(parents=True, exist_ok=True)
        pkg = from_dsc(src, srcdir, authenticate=self.authenticate)
        for p in [srcdir, *srcdir.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        return pkg

    def source_trust(self) -> SourceTrust:
        cfg = self.config
        archive = [Path(k) for k in (cfg.keyring, DEBIAN_ARCHIVE_KEYRING) if k]
        return SourceTrust(
            mirrors=[cfg.mirror],
            suites=[cfg.suite, *cfg.source_suites],
            components=list(cfg.components),
            archive_keyrings=list(dict.fromkeys(archive)),
            source_keyrings=[Path(k) for k in cfg.source_keyrings],
            cache_dir=self.paths.root,
            check_valid_until=cfg.check_valid_until,
        )

    def authenticate(self, dsc: Path, url: str) -> None:
        """Decide whether the .dsc downloaded from ``url`` may be built (before any of its files is fetched)."""
        req = self.request
        if req.expected_dsc_sha256:
            v = check_sha256(dsc, req.expected_dsc_sha256, url)
        elif req.trusted_source:
            v = Verification(True, "caller", req.trusted_source)
        elif not req.verify_source:
            v = Verification(False, "none", f"not verified: --no-verify-source was given for {url}")
        else:
            v = authenticate_dsc(url, dsc, self.source_trust(), log=lambda m: self.state.note(m, root_log=True))
        self.verification = v

    def source_bind(self) -> Bind:
        assert self.source is not None
        return Bind(self.source.path if self.source.is_tree else self.source.path.parent, "/deb-mock/src", ro=True)

    def plugin_packages(self) -> list[str]:
        """Packages the plugins install with the build-dependencies (the ccache plugin's ccache), checked."""
        names = sorted(set(self.plugins.build_packages)) if self.plugins is not None else []
        bad = [n for n in names if not _PACKAGE.match(n)]
        if bad:
            raise BadInput(f"plugins asked to install what are not Debian package names: {', '.join(bad)}")
        return names

    def apt_options(self) -> str:
        return f"{_FLAGS[self.request.build_what][1]} {buildprofiles.apt_option(self.profiles)}".strip()

    def apt_binds(self, extra: ExtraSources) -> list[Bind]:
        binds = [self.source_bind(), *extra.binds]
        if extra.present:
            binds.append(Bind(extra.dir, "/deb-mock/extra", ro=True))
        if self.lists is not None:
            binds.append(Bind(self.lists.path, aptlists.LISTS, ro=True))
        return binds

    def lists_stale(self, cache: rootcache.RootCache) -> bool:
        # the lists were fetched when the root cache was made (their mtimes are the server's, not ours)
        return time.time() - cache.created > self.config.apt_lists_max_age_hours * 3600

    def _memo_path(self, cache: rootcache.RootCache) -> Path:
        assert self.source is not None
        s = self.source
        fields = [
            cache.ident,
            self.request.build_what,
            self.config.arch,
            s.build_depends,
            s.build_depends_arch,
            s.build_depends_indep,
            ",".join(self.profiles),
            ",".join(self.plugin_packages()),
        ]
        if self.lists is not None:
            fields.append(f"lists {self.lists.name}")
        digest = hashlib.sha256("\0".join(fields).encode()).hexdigest()[:24]
        return self.paths.deps_cache / ".resolved" / f"{digest}.json"

    def resolve(self, cache: rootcache.RootCache, extra: ExtraSources) -> tuple[list[str], bool]:
        """Simulate the build-dependency install; return (resolved set, whether lists were refreshed)."""
        assert self.source is not None
        full_update = self.lists is None and self.lists_stale(cache)
        # Without extra sources and with the root cache's own lists (or a lists snapshot), the resolution is a
        # pure function of the root cache, the lists and the build-dependency fields: remember it (saves an apt
        # run per warm build).
        memo = None if (extra.present or full_update) else self._memo_path(cache)
        if memo is not None and memo.is_file():
            with contextlib.suppress(OSError, ValueError):
                return list(json.loads(memo.read_text())), False
        opt = self.apt_options()
        body = f"echo '@@@ simulate'\napt-get build-dep -s {opt} {shlex.quote(self.source.sandbox_path)}"
        extras = self.plugin_packages()
        if extras:  # simulated on their own: a failure here is the plugin's, never a dep-wait of the source
            body += (f"\necho '@@@ plugins'\napt-get install -s --no-install-recommends {shlex.join(extras)} "
                     "|| exit 43")
        sb = root_sandbox((cache.root,), self.builddir, "deps", self.apt_binds(extra), network=True)
        res = sb.run(
            ["sh", "-c", apt_script(full_update=full_update, extra=extra.present, body=body)],
            log=self.state.root_log,
            capture=True,
            check=False,
            cancel=self.request.cancel,
        )
        if res.returncode == 42:
            self.update_failed(res.output)
        if res.returncode == 43:
            raise InfraError(f"apt cannot install the packages plugins asked for ({', '.join(extras)}) in "
                             f"{self.config.name}: {' '.join(res.tail_lines[-3:])[:400]}")
        if res.returncode != 0:
            self.explain_dep_wait(cache, extra, "\n".join(res.tail_lines))
        simulated = res.output.split("@@@ simulate", 1)[-1].replace("@@@ plugins", "")
        resolved = sorted(set(relations.parse_simulation(simulated)))
        if memo is not None:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(resolved))
            tmp.replace(memo)
        return resolved, full_update

    def update_failed(self, output: str) -> None:
        if any(sign in output for sign in UNVERIFIED_REPO):
            raise BadInput(f"an apt repository could not be verified with its key (see {self.state.root_log})")
        raise InfraError(f"apt-get update failed (mirror or extra repository unreachable?); see {self.state.root_log}")

    def refresh_lists(self, cache: rootcache.RootCache, into: Path) -> None:
        """Fresh apt lists for the root cache in ``into`` (ns-root's, empty): a copy of its own, updated."""
        self.state.note(f"apt lists older than {self.config.apt_lists_max_age_hours:g} h: refreshing them for "
                        "this and later builds", root_log=True)
        body = (f"cp -a {aptlists.LISTS}/. /deb-mock/lists/\napt-get update --error-on=any "
                "-o Dir::State::Lists=/deb-mock/lists/ || { echo 'deb-mock: apt-get update failed' >&2; exit 42; }")
        sb = root_sandbox((cache.root,), self.builddir, "lists", [Bind(into, "/deb-mock/lists", ro=False)],
                          network=True)
        res = sb.run(["sh", "-c", apt_script(full_update=False, extra=False, body=body)], log=self.state.root_log,
                     capture=True, check=False, cancel=self.request.cancel)
        if res.returncode == 42:
            self.update_failed(res.output)
        if res.returncode != 0:
            raise InfraError(f"refreshing the apt lists failed (see root.log): {' '.join(res.tail_lines[-3:])[:400]}")

    def applicable_relations(self) -> list[relations.Relation]:
        assert self.source is not None
        fields = [self.source.build_depends]
        if self.request.build_what in ("binary", "arch"):
            fields.append(self.source.build_depends_arch)
        if self.request.build_what in ("binary", "indep"):
            fields.append(self.source.build_depends_indep)
        profiles = frozenset(self.profiles)
        return [r for f in fields if f for r in relations.applicable(f, self.config.arch, profiles)]

    def explain_dep_wait(self, cache: rootcache.RootCache, extra: ExtraSources, apt_tail: str) -> None:
        """Find which relations cannot be satisfied (each checked on its own) and raise DepWait."""
        rels = self.applicable_relations()
        checks = "\n".join(
            f"apt-get satisfy -s {shlex.quote(r.text)} >/dev/null 2>&1 || echo '@@@ missing {i}'"
            for i, r in enumerate(rels)
        )
        sb = root_sandbox((cache.root,), self.builddir, "deps", self.apt_binds(extra), network=True)
        res = sb.run(
            ["sh", "-c", apt_script(full_update=False, extra=False, body=checks or "true")],
            log=self.state.root_log,
            capture=True,
            check=False,
            cancel=self.request.cancel,
        )
        missing = [rels[int(line.split()[-1])] for line in res.output.splitlines() if line.startswith("@@@ missing ")]
        if missing:
            names = "; ".join(r.text for r in missing)
            raise DepWait(f"unsatisfiable build-dependencies: {names}", [(r.text, list(r.packages)) for r in missing])
        raise DepWait(
            f"build-dependencies cannot be installed together (each one alone can): {apt_tail[-400:]}",
            [],
        )

    def install_deps(self, cache: rootcache.RootCache, extra: ExtraSources, full_update: bool) -> None:
        assert self.source is not None
        opt = self.apt_options()
        dsc = shlex.quote(self.source.sandbox_path)
        build_dep = f"apt-get build-dep -y -o APT::Install-Recommends=false {opt} {dsc}"
        extras = self.plugin_packages()
        plugin_install = f"apt-get install -y --no-install-recommends {shlex.join(extras)}" if extras else "true"
        install = "\n".join(
            [
                "set -e",
                build_dep,
                plugin_install,
                "apt-get clean",
                f"rm -f /etc/apt/sources.list.d/{EXTRA_LIST} /etc/apt/keyrings/deb-mock-*",
                "rm -rf /var/lib/apt/lists/*" if full_update else "true",
                f"mkdir -p {os.path.dirname(BUILDROOT_LIST)}",
                "dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n' > " + BUILDROOT_LIST,
            ]
        )
        # apt downloads (and verifies) with network; dpkg and the build-dependencies' maintainer scripts,
        # which are untrusted code, then run in a sandbox without network
        download = f"{build_dep} --download-only\n{plugin_install} --download-only" if extras else (
            f"{build_dep} --download-only")
        steps = [(apt_script(full_update=False, extra=extra.present, body=download), True)]
        steps.append((install, False))
        try:
            for script, network in steps:
                sb = root_sandbox((cache.root,), self.builddir, "deps", self.apt_binds(extra), network=network)
                sb.run(["sh", "-c", script], log=self.state.root_log, cancel=self.request.cancel)
        except CommandError as exc:
            if "No space left on device" in exc.tail:
                raise InfraError(f"disk full while installing build-dependencies in {self.builddir}") from None
            raise InfraError(f"installing build-dependencies failed (see root.log): {exc.tail[-400:]}") from None

    def deps_layer(self, cache: rootcache.RootCache) -> depcache.DepsEntry:
        sources = [*aptsources.config_sources(self.config), *self.request.extra_sources]
        extra = self.extra = ExtraSources.prepare(sources, self.builddir)
        with contextlib.ExitStack() as stack:
            if not extra.present and self.lists_stale(cache):  # (with extra sources: one full update per build)
                self.lists = stack.enter_context(aptlists.fresh(
                    cache, self.paths, self.config.apt_lists_max_age_hours * 3600,
                    lambda into: self.refresh_lists(cache, into)))
                self.state.note(f"apt lists: snapshot {self.lists.name} (the root cache's are stale)", root_log=True)
            try:
                return self._deps_layer(cache, extra)
            finally:
                self.lists = None

    def _deps_layer(self, cache: rootcache.RootCache, extra: ExtraSources) -> depcache.DepsEntry:
        resolved, full_update = self.resolve(cache, extra)
        key = depcache.key_for(cache.ident + self.request.build_what, resolved)
        self.state.note(f"build-dependency set: {len(resolved)} packages to install, key {key}", root_log=True)
        with open(self.state.root_log, "a") as fh:
            fh.writelines(f"  {r}\n" for r in resolved)
        hit = depcache.lookup(self.paths, key)
        if hit:
            self.state.note("build-dependency cache: hit", root_log=True)
            return hit
        with flock(self.paths.lock(f"deps-{key}")):
            hit = depcache.lookup(self.paths, key)  # made by a concurrent build while we waited
            if hit:
                self.state.note("build-dependency cache: hit (made by a concurrent build)", root_log=True)
                return hit
            self.state.note("build-dependency cache: miss, installing", root_log=True)
            self.install_deps(cache, extra, full_update)
            entry = depcache.store(self.paths, key, self.builddir / "deps", resolved, cache.ident)
        remove_tree(self.builddir / "deps.work")
        evicted = depcache.evict(self.paths, self.config.deps_cache_max_mb * 1024 * 1024, keep=key)
        if evicted:
            self.state.note(f"build-dependency cache: evicted {', '.join(evicted)}")
        return entry

    def run_build(self, cache: rootcache.RootCache, deps: depcache.DepsEntry) -> None:
        assert self.source is not None
        flag = _FLAGS[self.request.build_what][0]
        workdir = f"{buildscript.BUILD_TREE}/{self.source.upstream_dir}"
        if self.source.is_tree:
            unpack = f"cp -a /deb-mock/src/. {shlex.quote(workdir)}/"
        else:
            unpack = (
                f"dpkg-source --no-check --no-copy -x {shlex.quote(self.source.sandbox_path)} {shlex.quote(workdir)}"
            )
        tmpfs = self.tmpfs()
        script = buildscript.script(workdir, unpack, self.source.is_tree, flag, tmpfs)
        timeout = self.request.timeout or self.config.build_timeout or None
        lower = (deps.layer, cache.root)
        binds = [self.source_bind(), *(self.plugins.build_binds if self.plugins is not None else [])]
        sb = build_sandbox(self.config, lower, self.builddir, binds, self.request.network, self.profiles, tmpfs,
                           self.plugins.build_env if self.plugins is not None else None)
        try:
            sb.run(
                ["sh", "-c", script],
                log=self.state.build_log,
                on_line=self.request.on_log_line,
                cancel=self.request.cancel,
                timeout=timeout,
            )
        except CommandTimeout:
            raise BuildFailed(f"the build ran longer than {timeout:.0f}s and was stopped; see build.log") from None
        except CommandError as exc:
            full = buildscript.full_tmpfs(exc.tail, tmpfs)
            if full:
                raise BuildFailed(full) from None
            last = next((t for t in reversed(exc.tail.splitlines()) if t.strip() and not t.startswith("@@@")), "")
            raise BuildFailed(f"dpkg-buildpackage failed: {last[:300]} (see build.log)") from None

    def tmpfs(self) -> dict[str, str | None]:
        """The build sandbox's tmpfs mounts: the plugins' choice (the tmpfs plugin: /tmp by default)."""
        return dict(self.plugins.build_tmpfs) if self.plugins is not None else {}

    def collect(self, result: BuildResult, deps: depcache.DepsEntry) -> None:
        """Copy the results out of the build's upper layer without ever following what the build left.

        Everything below ``upper`` was written by the build: each result must be a regular file with one
        link, reached without following a symbolic link (see :mod:`debarchive.safeio`). Offenders fail the
        build, by name, before anything is copied.
        """
        offenders: list[str] = []
        output = buildscript.output_dir(self.tmpfs())
        try:
            out = safeio.open_dir(self.builddir / "upper", output, label="")
        except FileNotFoundError:
            out = None
        except safeio.UnsafeEntry as exc:
            raise BuildFailed(f"refusing the build's results: {exc}") from None
        names: list[str] = []
        try:
            if out is not None:
                for name, mode in safeio.entries(out):
                    if not name.endswith(RESULT_SUFFIXES):
                        continue
                    shown = f"/{output}/{name}"
                    if not _RESULT_NAME.match(name):
                        offenders.append(f"{shown!r}: not a plain file name")
                    elif not stat.S_ISREG(mode):
                        offenders.append(f"{shown}: is {safeio.describe(mode)}")
                    elif os.stat(name, dir_fd=out, follow_symlinks=False).st_nlink != 1:
                        offenders.append(f"{shown}: is a hard link")
                    else:
                        names.append(name)
            buildroot = self._buildroot_list(deps, offenders)
            if offenders:
                raise BuildFailed(
                    "the build left entries that are not regular files where results are expected "
                    f"(nothing was copied): {'; '.join(offenders)}"
                )
            if not any(n.endswith((".deb", ".udeb")) for n in names):
                raise BuildFailed("the build succeeded but produced no .deb (nothing to build for this architecture?)")
            assert out is not None
            copied: list[str] = []
            try:
                for name in names:
                    digest, size = safeio.copy_out(out, name, self.request.resultdir, label=f"/{output}/{name}")
                    copied.append(name)
                    result.files.append(ResultFile(name, digest, size))
            except safeio.UnsafeEntry as exc:
                for name in copied:
                    (self.request.resultdir / name).unlink(missing_ok=True)
                result.files.clear()
                raise BuildFailed(f"refusing the build's results (nothing was kept): {exc}") from None
            result.buildroot.extend(buildroot)
        finally:
            if out is not None:
                os.close(out)

    def _buildroot_list(self, deps: depcache.DepsEntry, offenders: list[str]) -> list[BuildrootPackage]:
        """The package list written in the dependency layer (which build-dependencies' scripts could touch)."""
        try:
            data = safeio.read_below(deps.layer, BUILDROOT_LIST.lstrip("/"), limit=16 << 20)
        except FileNotFoundError:
            return []
        except safeio.UnsafeEntry as exc:
            offenders.append(f"the build-dependency root's {BUILDROOT_LIST}: {exc.what}")
            return []
        packages = []
        for line in data.decode("utf-8", "replace").splitlines():
            name, version, arch = [*line.split("\t"), "", "", ""][:3]
            packages.append(BuildrootPackage(name, version, arch))
        return packages

    def build_collect_install(self, cache: rootcache.RootCache, deps: depcache.DepsEntry, result: BuildResult) -> None:
        """The build, its results, and with ``--postinstall`` their installation. The root is kept (for
        ``--shell``) when the build fails or its packages do not install."""
        assert self.source is not None
        with self.state.phase("build", f"{self.source.name} {self.source.version}"):
            try:
                self.run_build(cache, deps)
            except BuildFailed:
                self.keep = self.request.keep_failed_root
                raise
        with self.state.phase("results"):
            self.collect(result, deps)
        if self.request.postinstall:
            with self.state.phase("postinstall"):
                try:
                    postinstall.install(self, cache, deps, result)
                except BuildFailed:
                    self.keep = self.request.keep_failed_root
                    raise

    def keep_root(self, cache: rootcache.RootCache, deps: depcache.DepsEntry | None, state: str) -> Path:
        """Keep the build's root for ``--shell``/``--copyout`` (one per config: the last failed build's, or
        the last one built with ``--no-clean``) until the next build of the config or ``--clean``."""
        kept = self.paths.failed(self.config.name)
        remove_tree(kept)
        kept.parent.mkdir(parents=True, exist_ok=True)
        lower = [str(p) for p in ((deps.layer,) if deps else ()) + (cache.root,)]
        upper = "upper" if (self.builddir / "upper").is_dir() else "deps"
        meta = {"lower": lower, "upper": upper, "time": time.time(), "state": state}
        (self.builddir / "meta.json").write_text(json.dumps(meta))
        self.builddir.rename(kept)
        return kept
