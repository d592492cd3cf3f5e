"""A source package (.dsc) from an unpacked tree with ``debian/``, made on the compose side.

Shared by :mod:`deb_bootc_compose.gitsource` (a git commit's tree) and :mod:`deb_bootc_compose.clientsource`
(the ``deb-bootc`` client's tree, its version carrying its source hash). ``dpkg-source -b`` runs in a
bubblewrap sandbox without network that can write only the work directory: the tree's own files (a
debian/source/options, a hook) get no more than that directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from debian.deb822 import Deb822

from debarchive.dsc import SourcePackage, SourcePackageError, parse_dsc, strip_epoch
from debsandbox.bwrap import bwrap_argv
from debsandbox.commands import CommandError, run
from debsandbox.sandbox import Bind


class DscTreeError(RuntimeError):
    """The tree cannot be made into a source package; the message says why."""


def changelog_fields(tree: Path, *names: str) -> dict[str, str]:
    """Fields of debian/changelog's top entry, from one ``dpkg-parsechangelog`` run (its stdout only: it warns
    on stderr); DscTreeError when it fails or one of ``names`` is missing or empty."""
    res = subprocess.run(["dpkg-parsechangelog", "-l", str(tree / "debian" / "changelog")],
                         capture_output=True, text=True, timeout=60)
    fields = dict(Deb822(res.stdout)) if res.returncode == 0 else {}
    missing = [n for n in names if not str(fields.get(n, "")).strip()]
    if res.returncode != 0 or missing:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()] or [f"no {', '.join(missing)} field"]
        raise DscTreeError(f"debian/changelog is unreadable: {lines[-1].strip()}")
    return {n: str(fields[n]).strip() for n in names}


def source_format(tree: Path) -> str:
    """debian/source/format, or ``1.0`` when the file is absent (dpkg-source's default)."""
    fmt_file = tree / "debian" / "source" / "format"
    return fmt_file.read_text().strip() if fmt_file.is_file() else "1.0"


def upstream_version(version: str) -> str:
    """``1:2.10-3`` → ``2.10``."""
    return strip_epoch(version).rsplit("-", 1)[0]


def sandboxed(argv: list[str], writable: Path) -> list[str]:
    """``argv`` in bubblewrap: the host read-only, ``writable`` writable, no network, nothing shared."""
    return bwrap_argv(argv, binds=[Bind(writable, str(writable), ro=False)], chdir=str(writable), new_session=True)


def make_dsc(tree: Path, work: Path, *, source: str, version: str, log: Path) -> SourcePackage:
    """``dpkg-source -b`` of ``tree`` (moved to ``work/SOURCE-UPSTREAM`` first, removed after) in ``work``,
    where the .dsc and its files are left (with an upstream tarball put there before, for 3.0 (quilt));
    returns the parsed .dsc.

    Raises :class:`DscTreeError` with the last useful line of dpkg-source's output when it fails, and when
    the .dsc it made is not what ``source`` and ``version`` say."""
    package_dir = work / f"{source}-{upstream_version(version)}"
    if tree != package_dir:
        tree.rename(package_dir)
    try:
        run(sandboxed(["dpkg-source", "-b", package_dir.name], work), log=log, timeout=600)
    except CommandError as exc:
        raise DscTreeError(f"dpkg-source -b failed: {last_line(exc)} (full output: {log})") from None
    dsc = work / f"{source}_{strip_epoch(version)}.dsc"
    try:
        pkg = parse_dsc(dsc)
    except SourcePackageError as exc:
        raise DscTreeError(f"dpkg-source made no usable {dsc.name}: {exc}") from None
    if (pkg.source, pkg.version) != (source, version):
        raise DscTreeError(f"dpkg-source made {pkg.source} {pkg.version}, not {source} {version}")
    shutil.rmtree(package_dir)
    return pkg


def last_line(exc: CommandError) -> str:
    """The line of a failed command's output that says what went wrong (an error, else the last one)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if re.search(r"fatal|error|not found|could not|unable", ln, re.I)]
    return (useful or lines or ["(no output)"])[-1]
