"""Source packages from git: ``build.sources`` entries ``{git: URL, ref: REF}`` become a .dsc here.

Koji builds from SCM on a builder (``buildSRPMFromSCM``). Here the .dsc is made on the compose side, before
submission, for three reasons: the hub names builds by the SOURCE_VERSION of a verified .dsc, so compose can
ask "is this version built already?" exactly as for a .dsc URL before anything is submitted; the hub stores
the exact source package it built (downloadable, rebuildable without the git server); and builders stay
what they are (deb-mock and nothing else: no git, no access to the SCM host).

How: ``git clone`` (no checkout) of the URL, the ref resolved to a commit (a branch, a tag or a commit
ID), ``git archive`` of that commit into a fresh directory, and ``dpkg-source -b`` run in a bubblewrap
sandbox without network that can write only the work directory. ``3.0 (native)`` needs nothing else;
``3.0 (quilt)`` needs the upstream tarball, made with ``git archive`` from the tag ``upstream/<version>``
(git-buildpackage's convention: ``~`` becomes ``_``, ``:`` becomes ``%``). The build identity stays
``SOURCE_VERSION`` from debian/changelog; :class:`GitSource` carries the URL and the resolved commit
for the compose metadata.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.dsctree import (
    DscTreeError,
    changelog_fields,
    last_line,
    make_dsc,
    source_format,
    upstream_version,
)
from debarchive.dsc import strip_epoch
from debsandbox.commands import CommandError, CommandTimeout, output, run

SUPPORTED_FORMATS = ("3.0 (native)", "3.0 (quilt)")
# never wait for a password or a host-key question: a source that needs one fails with git's message
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
           "LC_ALL": "C"}


class GitSourceError(RuntimeError):
    """A git source cannot be turned into a source package; the message says which and what to do."""


@dataclass
class GitSource:
    url: str
    ref: str
    commit: str
    source: str
    version: str
    format: str
    dsc: Path

    @property
    def ident(self) -> str:
        return f"{self.source}_{strip_epoch(self.version)}"


def gbp_upstream_tag(upstream_version: str) -> str:
    """git-buildpackage's default upstream tag for a version: ``upstream/%(version)s`` with ~ → _, : → %."""
    return "upstream/" + upstream_version.replace("~", "_").replace(":", "%")


def _git(args: list[str], cwd: Path | None, log: Path, timeout: float = 600) -> str:
    return output(["git", *args], cwd=cwd, log=log, extra_env=GIT_ENV, timeout=timeout)


def _resolve(repo: Path, ref: str, log: Path) -> str | None:
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        try:
            return _git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], repo, log).strip()
        except CommandError:
            continue
    return None


def _archive(repo: Path, commit: str, dest: Path, log: Path) -> None:
    """Write the tree of ``commit`` into ``dest`` (``git archive``: no .git, exactly what is committed)."""
    dest.mkdir(parents=True)
    tar = dest.parent / f".{dest.name}.tar"
    run(["git", "archive", "--format=tar", f"--output={tar}", commit], cwd=repo, log=log, extra_env=GIT_ENV)
    run(["tar", "-xf", str(tar), "-C", str(dest)], log=log)
    tar.unlink()


def prepare(url: str, ref: str, work: Path, *, where: str = "build.sources") -> GitSource:
    """Clone ``url``, check out ``ref`` and make a source package in ``work``; returns what was made.

    Raises :class:`GitSourceError` with ``where`` (the manifest location) for an unreachable URL, a ref the
    repository lacks, a tree without debian/, an unsupported source format or a missing upstream tag.
    """
    what = f"{where}: git source {url} (ref {ref})"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    log = work / "git.log"
    clone = work / "clone"
    try:
        _git(["clone", "--quiet", "--no-checkout", "--", url, str(clone)], None, log)
    except CommandTimeout:
        raise GitSourceError(f"{what}: cloning timed out; check the URL and that the server answers") from None
    except CommandError as exc:
        raise GitSourceError(f"{what}: cannot clone it: {last_line(exc)}; check the URL and that the "
                             "repository is reachable from this machine") from None
    commit = _resolve(clone, ref, log)
    if commit is None:
        refs = _git(["for-each-ref", "--format=%(refname:short)", "refs/tags", "refs/remotes/origin"], clone, log)
        known = ", ".join(r.removeprefix("origin/") for r in refs.split() if r != "origin/HEAD")[:400]
        raise GitSourceError(f"{what}: the repository has no branch, tag or commit {ref!r} "
                             f"(it has: {known or 'no refs'}); fix the ref")
    tree = work / "tree"
    _archive(clone, commit, tree, log)
    if not (tree / "debian").is_dir():
        raise GitSourceError(f"{what}: commit {commit[:12]} has no debian/ directory at the top of the "
                             "repository; build.sources takes a Debian packaging repository (debian/ at its root)")
    if not (tree / "debian" / "changelog").is_file():
        raise GitSourceError(f"{what}: commit {commit[:12]} has debian/ but no debian/changelog")
    try:
        fields = changelog_fields(tree, "Source", "Version")
        source, version = fields["Source"], fields["Version"]
    except DscTreeError as exc:
        raise GitSourceError(f"{what}: at {commit[:12]}: {exc}") from None
    fmt = source_format(tree)
    if fmt not in SUPPORTED_FORMATS:
        raise GitSourceError(f"{what}: debian/source/format is {fmt!r}; git sources support "
                             f"{' and '.join(SUPPORTED_FORMATS)}")
    upstream = upstream_version(version)
    if fmt == "3.0 (quilt)":
        if "-" not in strip_epoch(version):
            raise GitSourceError(f"{what}: version {version} has no Debian revision, but 3.0 (quilt) needs one "
                                 "(e.g. 1.0-1); use 3.0 (native) or fix debian/changelog")
        tag = gbp_upstream_tag(upstream)
        upstream_commit = _resolve(clone, tag, log)
        if upstream_commit is None:
            raise GitSourceError(f"{what}: 3.0 (quilt) needs the upstream tarball of {upstream}, made from the tag "
                                 f"{tag!r} (git-buildpackage's convention), which the repository lacks; push it "
                                 f"(git tag {tag} UPSTREAM_COMMIT) or use 3.0 (native)")
        orig = work / f"{source}_{upstream}.orig.tar.gz"
        run(["git", "archive", "--format=tar.gz", f"--prefix={source}-{upstream}/", f"--output={orig}",
             upstream_commit], cwd=clone, log=log, extra_env=GIT_ENV)
    shutil.rmtree(clone)
    try:
        pkg = make_dsc(tree, work, source=source, version=version, log=log)
    except DscTreeError as exc:
        raise GitSourceError(f"{what}: at {commit[:12]}: {exc}") from None
    return GitSource(url=url, ref=ref, commit=commit, source=pkg.source, version=pkg.version, format=fmt,
                     dsc=pkg.dsc_path)

