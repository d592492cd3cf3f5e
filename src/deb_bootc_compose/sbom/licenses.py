"""Debian copyright-format licence names (DEP-5 short names and synopses) as SPDX licence expressions.

A synopsis such as ``GPL-2+ or Artistic`` becomes ``GPL-2.0-or-later OR Artistic-1.0-Perl``; commas group as
the copyright format says (``GPL-2+ or Artistic-2.0, and BSD-3-clause`` is ``(…) AND BSD-3-Clause``);
``GPL-2 with Linux-syscall-note exception`` is ``GPL-2.0-only WITH Linux-syscall-note``. A name SPDX does not
list (``public-domain``, ``GPL`` without a version, an exception SPDX lacks: SPDX 2.3 allows only its own)
becomes a ``LicenseRef-`` whose text the document carries (``hasExtractedLicensingInfos``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Debian's short names (lower case) -> SPDX identifiers; the GNU family is handled by GNU_NAME below
SHORT_NAMES = {
    "apache-1.0": "Apache-1.0", "apache-1.1": "Apache-1.1", "apache-2": "Apache-2.0", "apache-2.0": "Apache-2.0",
    "artistic": "Artistic-1.0-Perl", "artistic-1": "Artistic-1.0", "artistic-1.0": "Artistic-1.0",
    "artistic-2": "Artistic-2.0", "artistic-2.0": "Artistic-2.0",
    "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause", "bsd-4-clause": "BSD-4-Clause",
    "0bsd": "0BSD", "bsl-1.0": "BSL-1.0", "boost-1.0": "BSL-1.0", "bzip2-1.0.6": "bzip2-1.0.6",
    "cc0": "CC0-1.0", "cc0-1.0": "CC0-1.0", "cc-by-3.0": "CC-BY-3.0", "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0", "cc-by-sa-4.0": "CC-BY-SA-4.0", "cddl-1.0": "CDDL-1.0",
    "curl": "curl", "epl-1.0": "EPL-1.0", "epl-2.0": "EPL-2.0", "expat": "MIT", "mit": "MIT", "ftl": "FTL",
    "ijg": "IJG", "isc": "ISC", "libpng": "Libpng", "lppl-1.3c": "LPPL-1.3c", "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0", "ofl-1.1": "OFL-1.1", "openssl": "OpenSSL", "psf-2": "PSF-2.0", "psf-2.0": "PSF-2.0",
    "python-2.0": "Python-2.0", "sleepycat": "Sleepycat", "unicode-dfs-2016": "Unicode-DFS-2016",
    "unlicense": "Unlicense", "w3c": "W3C", "wtfpl": "WTFPL", "x11": "X11", "zlib": "Zlib", "zpl-2.1": "ZPL-2.1",
}
# Debian's names of licence exceptions SPDX lists (``GPL-2 with Linux-syscall-note exception``); others -> LicenseRef
EXCEPTIONS = {
    "linux-syscall-note": "Linux-syscall-note", "gcc-3.1": "GCC-exception-3.1",
    "gcc-exception-3.1": "GCC-exception-3.1",
    "autoconf": "Autoconf-exception-2.0", "autoconf-3.0": "Autoconf-exception-3.0", "bison": "Bison-exception-2.2",
    "bison-2.2": "Bison-exception-2.2", "classpath": "Classpath-exception-2.0", "font": "Font-exception-2.0",
    "libtool": "Libtool-exception",
}
GNU_NAME = re.compile(r"^(GPL|LGPL|AGPL|GFDL)-(\d)(?:\.(\d))?(\+|-only|-or-later)?$", re.IGNORECASE)
EXCEPTION = re.compile(r"^(.+?)\s+with\s+(.+?)\s+exception$", re.IGNORECASE)
OPERATOR = re.compile(r"\s+(and|or)\s+", re.IGNORECASE)
LEADING_OPERATOR = re.compile(r"^(and|or)\s+", re.IGNORECASE)
DANGLING_OPERATOR = re.compile(r"(^|\s)(and|or|with)$", re.IGNORECASE)
MAX_TERMS = 64  # a synopsis longer than this is not one a person wrote: NOASSERTION


class LicenseSyntaxError(ValueError):
    """A synopsis that is not a licence expression (empty terms, too many terms)."""


def spdx_id(name: str) -> str | None:
    """The SPDX identifier of one Debian short name (``GPL-2+`` -> ``GPL-2.0-or-later``), or None."""
    name = name.strip()
    known = SHORT_NAMES.get(name.lower())
    if known is not None:
        return known
    m = GNU_NAME.match(name)
    if m is None:
        return None
    family, major, minor, suffix = m.group(1).upper(), m.group(2), m.group(3) or "0", m.group(4) or ""
    version = f"{major}.{minor}"
    if (family, version) not in {("GPL", "1.0"), ("GPL", "2.0"), ("GPL", "3.0"), ("LGPL", "2.0"), ("LGPL", "2.1"),
                                 ("LGPL", "3.0"), ("AGPL", "1.0"), ("AGPL", "3.0"), ("GFDL", "1.1"),
                                 ("GFDL", "1.2"), ("GFDL", "1.3")}:
        return None
    return f"{family}-{version}-{'or-later' if suffix.lower() in ('+', '-or-later') else 'only'}"


def license_ref(name: str) -> str:
    """The ``LicenseRef-`` identifier of a licence SPDX does not list (``GPL-2+ with OpenSSL exception`` ->
    ``LicenseRef-GPL-2-plus-with-OpenSSL-exception``)."""
    body = re.sub(r"[^A-Za-z0-9.]+", "-", name.strip().replace("+", "-plus")).strip("-.")
    return f"LicenseRef-{body or 'unnamed'}"


@dataclass
class Expression:
    """An SPDX expression and the Debian names of the ``LicenseRef-`` identifiers it uses (id -> name)."""

    text: str
    refs: dict[str, str] = field(default_factory=dict)
    compound: bool = False  # holds AND/OR at its top level: parenthesise before combining


def _term(name: str, refs: dict[str, str]) -> str:
    name = " ".join(name.split())
    if not name:
        raise LicenseSyntaxError("an empty licence name")
    exception = EXCEPTION.match(name)
    if exception is None:
        known = spdx_id(name)
        if known is not None:
            return known
    else:
        base, spdx_exception = spdx_id(exception.group(1)), EXCEPTIONS.get(exception.group(2).lower())
        if base is not None and spdx_exception is not None:
            return f"{base} WITH {spdx_exception}"
    ref = license_ref(name)
    refs[ref] = name
    return ref


def from_synopsis(synopsis: str) -> Expression:
    """One ``License:`` synopsis (the first line of the field) as an SPDX expression."""
    refs: dict[str, str] = {}
    chunks = [c.strip() for c in synopsis.split(",")]
    if not any(chunks):
        raise LicenseSyntaxError("an empty licence synopsis")
    out: list[str] = []
    terms = 0
    for chunk in chunks:
        if not chunk:
            raise LicenseSyntaxError(f"an empty part in {synopsis!r}")
        joiner = "AND"
        lead = LEADING_OPERATOR.match(chunk)
        if lead is not None:
            joiner, chunk = lead.group(1).upper(), chunk[lead.end():]
        if DANGLING_OPERATOR.search(chunk):
            raise LicenseSyntaxError(f"{synopsis!r} ends a part with an operator")
        pieces = OPERATOR.split(chunk)  # term, op, term, ...
        terms += (len(pieces) + 1) // 2
        if terms > MAX_TERMS:
            raise LicenseSyntaxError(f"more than {MAX_TERMS} licence names in one synopsis")
        text = " ".join(p.upper() if i % 2 else _term(p, refs) for i, p in enumerate(pieces))
        if len(pieces) > 1 and len(chunks) > 1:
            text = f"({text})"
        out.extend([joiner, text] if out else [text])
    compound = len(out) > 1 or (len(chunks) == 1 and len(OPERATOR.split(chunks[0])) > 1)
    return Expression(" ".join(out), refs, compound)


def conjunction(parts: list[Expression]) -> Expression | None:
    """Every distinct expression joined with AND (a package holds files under each), in a stable order."""
    seen: dict[str, Expression] = {}
    for p in parts:
        seen.setdefault(p.text, p)
    if not seen:
        return None
    ordered = [seen[k] for k in sorted(seen)]
    if len(ordered) == 1:
        return ordered[0]
    refs: dict[str, str] = {}
    for p in ordered:
        refs.update(p.refs)
    text = " AND ".join(f"({p.text})" if p.compound else p.text for p in ordered)
    return Expression(text, refs, compound=True)
