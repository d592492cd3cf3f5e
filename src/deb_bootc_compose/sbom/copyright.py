"""A package's licence from the Debian copyright file in an image tree (``/usr/share/doc/PKG/copyright``).

The tree holds what packages put there, so no link is followed: every directory on the way and the file itself
are opened with ``O_NOFOLLOW`` from the tree's root (a ``copyright`` that is a link, a FIFO or larger than
:data:`READ_LIMIT` gives no licence). The one exception is Debian policy's documentation link
(``/usr/share/doc/PKG -> OTHER``, a sibling directory): the link's text is read, never followed, and when it
names a package directory the copyright file is read from ``/usr/share/doc/OTHER`` the same way.
Only the machine-readable format (DEP-5) gives a licence; anything else is ``NOASSERTION`` with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.sbom.licenses import Expression, conjunction, from_synopsis
from debian import copyright as dep5

READ_LIMIT = 4 << 20  # the largest copyright file in trixie's main is ~2 MB
TEXT_LIMIT = 64 << 10  # the licence text kept for a LicenseRef
DOC_DIR = ("usr", "share", "doc")
PACKAGE_DIR = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


@dataclass
class PackageLicense:
    """What the copyright file says: the SPDX expression (None: NOASSERTION), why not when None, and the texts of
    the stand-alone ``License:`` paragraphs (Debian name -> text) for the LicenseRefs it uses."""

    expression: Expression | None
    note: str = ""
    texts: dict[str, str] = field(default_factory=dict)


def _open_dir(name: str, dir_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _read_no_links(dir_fd: int, name: str, limit: int) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return data


class DocDir:
    """``/usr/share/doc`` of a tree, opened without following links (a context manager)."""

    def __init__(self, tree: Path) -> None:
        fds: list[int] = []
        try:
            fds.append(os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            for part in DOC_DIR:
                fds.append(_open_dir(part, fds[-1]))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        for fd in fds[:-1]:
            os.close(fd)
        self.fd = fds[-1]

    def __enter__(self) -> DocDir:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def read_copyright(self, package: str, limit: int = READ_LIMIT) -> tuple[bytes | None, str]:
        """(the file's bytes or None, a note saying where it came from or why there is none)."""
        if not PACKAGE_DIR.match(package):  # a name from a --lockfile: never a path
            return None, f"{package!r} is not a package name"
        try:
            st = os.stat(package, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None, f"no /usr/share/doc/{package}"
        where = package
        note = ""
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(package, dir_fd=self.fd)
            if not PACKAGE_DIR.match(target) or target == package:
                return None, f"/usr/share/doc/{package} is a link to {target!r} (not followed)"
            where, note = target, f"from /usr/share/doc/{target} (/usr/share/doc/{package} links there)"
        try:
            pkg_fd = _open_dir(where, self.fd)
        except OSError as exc:
            why = "a link too" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
            return None, f"/usr/share/doc/{package} links to {where}, which is {why} (not followed)"
        try:
            return _read_no_links(pkg_fd, "copyright", limit), note
        except OSError as exc:
            return None, f"/usr/share/doc/{where}/copyright: {exc.strerror or exc} (not read)"
        finally:
            os.close(pkg_fd)


def parse(text: str) -> PackageLicense:
    """The licence a copyright file declares: every Files paragraph's licence (and the header's) joined with
    AND; NOASSERTION (expression None) with the reason when the file is not in the machine-readable format."""
    with warnings.catch_warnings(), _quiet_python_debian():
        warnings.simplefilter("ignore")
        try:
            doc = dep5.Copyright(sequence=io.StringIO(text), strict=False)
        except dep5.NotMachineReadableError:
            return PackageLicense(None, "the copyright file is not in the machine-readable format")
        except Exception as exc:  # a package's file is untrusted input: whatever python-debian makes of it
            return PackageLicense(None, f"the copyright file cannot be parsed: {type(exc).__name__}: {exc}")
        try:
            licences = [_licence(p) for p in [*doc.all_files_paragraphs(), doc.header]]
            synopses = [lic.synopsis for lic in licences if lic is not None]
            standalone = [lic for lic in map(_licence, doc.all_license_paragraphs()) if lic is not None]
            texts = {lic.synopsis.strip(): lic.text[:TEXT_LIMIT] for lic in standalone if lic.text.strip()}
            expression = conjunction([from_synopsis(s) for s in synopses if s.strip()])
        except Exception as exc:  # LicenseSyntaxError, or python-debian on a malformed field
            return PackageLicense(None, f"the copyright file's License fields cannot be read: {exc}")
    if expression is None:
        return PackageLicense(None, "the copyright file names no licence")
    return PackageLicense(expression, texts=texts)


def _licence(paragraph: object) -> dep5.License | None:
    """A paragraph's License field (python-debian's descriptor, typed loosely)."""
    value = getattr(paragraph, "license", None)
    return value if isinstance(value, dep5.License) else None


@contextlib.contextmanager
def _quiet_python_debian() -> Iterator[None]:
    """python-debian logs every odd paragraph at WARNING; hundreds of packages would fill the log."""
    logger = logging.getLogger("debian")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def package_license(docs: DocDir, package: str) -> PackageLicense:
    data, note = docs.read_copyright(package)
    if data is None:
        return PackageLicense(None, note)
    found = parse(data.decode("utf-8", "replace"))
    if note:
        found.note = f"{note}; {found.note}" if found.note else note
    return found
