"""Write signed apt repositories, atomically and fast enough to republish after every build.

Layout written by :func:`publish` under ``root``::

    pool/...                                  .deb and source files, put in place by the caller
                                              (see :func:`add_to_pool` and :func:`pool_path`)
    dists/<suite> -> .generations/<suite>/<id>   symlink, swapped atomically on every publish
    dists/.generations/<suite>/<id>/
        Release InRelease Release.gpg
        <component>/binary-<arch>/Packages{,.xz}
        <component>/binary-<arch>/by-hash/{MD5Sum,SHA256}/<hash>
        <component>/source/Sources{,.xz} (+ by-hash)

A reader resolves ``dists/<suite>`` once per request, so it sees one complete generation or the next,
never a mix; with ``Acquire-By-Hash: yes`` apt fetches indices by their hash, and every generation also
carries the by-hash files of the generations kept before it, so a client that read an older InRelease
still gets the matching index after a swap. A generation is deleted once ``keep`` newer ones exist and it
is older than ``keep_seconds`` (so a busy repository keeps every index a client may still be fetching).

Callers keep the :class:`PackageEntry` / :class:`SourceEntry` objects (or their ``stanza`` text, see
:meth:`PackageEntry.from_stanza`), so republishing never re-reads a .deb.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from debian.deb822 import Deb822

from debarchive.generations import (
    IndexFile,
    carry_by_hash,
    generations,
    new_generation_name,
    retained,
    stamp_after,
    suite_lock,
    swap_symlink,
    write_by_hash,
    write_index,
)
from debarchive.pool import (
    ARCH_RE,
    RepoError,
    add_to_pool,
    check_relative_path,
    check_word,
    pool_path,
)
from debarchive.signing import SigningKey
from debarchive.stanzas import PackageEntry, SourceEntry, import_deb, import_dsc, scan_deb, scan_dsc

GENERATIONS_DIR = ".generations"


@dataclass(frozen=True)
class PublishedRepo:
    """What :func:`publish` made: where it is and how clients point apt at it."""

    root: Path
    suite: str
    fingerprint: str | None
    components: tuple[str, ...] = ("main",)
    arches: tuple[str, ...] = ("amd64",)
    generation: str = ""
    packages: int = 0
    sources: int = 0
    seconds: float = 0.0
    index_files: tuple[str, ...] = field(default=(), repr=False)

    @property
    def dists(self) -> Path:
        return self.root / "dists" / self.suite

    def sources_line(self, url: str, key_path: Path | str | None = None, *, source: bool = False) -> str:
        """``deb [signed-by=KEY] URL SUITE main`` (``[trusted=yes]`` when unsigned and no key is given)."""
        opts = f"[signed-by={key_path}] " if key_path else ("" if self.fingerprint else "[trusted=yes] ")
        kind = "deb-src" if source else "deb"
        return f"{kind} {opts}{url.rstrip('/')} {self.suite} {' '.join(self.components)}"

    def deb822(self, url: str, key_path: Path | str | None = None, *, source: bool = False) -> str:
        """The same as a deb822 ``.sources`` stanza."""
        lines = [
            f"Types: deb{' deb-src' if source else ''}",
            f"URIs: {url.rstrip('/')}",
            f"Suites: {self.suite}",
            f"Components: {' '.join(self.components)}",
        ]
        if key_path:
            lines.append(f"Signed-By: {key_path}")
        elif not self.fingerprint:
            lines.append("Trusted: yes")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _ReleaseInfo:
    """What a Release file says besides the indices' checksums."""

    suite: str
    components: tuple[str, ...]
    arches: tuple[str, ...]
    origin: str
    label: str
    description: str | None
    date: datetime
    valid_for: timedelta | None


def _release_text(info: _ReleaseInfo, indices: Sequence[IndexFile]) -> str:
    fields = [
        ("Origin", info.origin),
        ("Label", info.label),
        ("Suite", info.suite),
        ("Codename", info.suite),
        ("Date", format_datetime(info.date.astimezone(UTC), usegmt=True)),
    ]
    if info.valid_for is not None:
        fields.append(("Valid-Until", format_datetime((info.date + info.valid_for).astimezone(UTC), usegmt=True)))
    fields += [
        ("Acquire-By-Hash", "yes"),
        ("Architectures", " ".join(info.arches)),
        ("Components", " ".join(info.components)),
    ]
    if info.description:
        fields.append(("Description", info.description))
    width = max(len(str(i.size)) for i in indices) if indices else 1
    md5 = "".join(f"\n {i.md5} {i.size:>{width}} {i.path}" for i in indices)
    sha = "".join(f"\n {i.sha256} {i.size:>{width}} {i.path}" for i in indices)
    for name, value in fields:
        if "\n" in value or not value.strip():
            raise RepoError(f"Release field {name} must be one non-empty line, got {value!r}")
    return "".join(f"{k}: {v}\n" for k, v in fields) + f"MD5Sum:{md5}\nSHA256:{sha}\n"


def _check_identity(release: Path, wanted: dict[str, str], where: Path) -> None:
    old = Deb822(release.read_text(encoding="utf-8"))
    changed = [f"{k} {old[k]!r} -> {v!r}" for k, v in wanted.items() if k in old and old[k] != v]
    if changed:
        raise RepoError(
            f"refusing to change {', '.join(changed)} of the repository published at {where}: "
            "apt clients would refuse to update until every user runs 'apt-get update "
            "--allow-releaseinfo-change'; keep the old values, or pass allow_identity_change=True "
            "(--allow-identity-change on the command line)"
        )


def _check_arguments(suite: str, component: str, arches: Sequence[str], date: datetime | None) -> datetime:
    """Refuse unsafe names and unusable architectures; the Release date (now, when not given)."""
    check_word(suite, "suite name")
    check_word(component, "component")
    if not arches:
        raise RepoError("publish() needs at least one architecture")
    for a in arches:
        if not ARCH_RE.match(a) or a == "all":
            raise RepoError(f"invalid architecture {a!r} for Architectures: use Debian names like amd64 (not 'all')")
    date = date or datetime.now(UTC)
    if date.tzinfo is None:
        raise RepoError("publish(date=...) needs a timezone-aware datetime")
    return date


def _package_stanzas(packages: Iterable[PackageEntry], arches: Sequence[str]) -> tuple[int, dict[str, list[str]]]:
    """(number of packages, the stanzas of each architecture's Packages), merging identical duplicates."""
    by_arch: dict[str, list[str]] = {a: [] for a in arches}
    seen: dict[tuple[str, str, str], PackageEntry] = {}
    for entry in packages:
        entry.validate()  # cheap, and a stanza with a blank line would corrupt the whole index
        ident = (entry.name, entry.version, entry.arch)
        if ident in seen:
            if seen[ident].sha256 != entry.sha256 or seen[ident].filename != entry.filename:
                raise RepoError(
                    f"{entry.name} {entry.version} {entry.arch} is listed twice with different files "
                    f"({seen[ident].filename} and {entry.filename}); keep one"
                )
            continue
        if entry.arch != "all" and entry.arch not in by_arch:
            raise RepoError(
                f"{entry.filename} is for architecture {entry.arch}, but the repository only has {', '.join(arches)}"
            )
        seen[ident] = entry
    for entry in sorted(seen.values(), key=lambda e: (e.name, e.arch, e.version, e.filename)):
        text = entry.stanza if entry.stanza.endswith("\n") else entry.stanza + "\n"
        for a in [entry.arch] if entry.arch != "all" else arches:
            by_arch[a].append(text)
    return len(seen), by_arch


def _source_stanzas(sources: Iterable[SourceEntry]) -> list[str]:
    """The stanzas of Sources, one per name and version (the first given wins)."""
    src_seen: dict[tuple[str, str], SourceEntry] = {}
    for s in sources:
        if "\n\n" in s.stanza.strip("\n") or not s.stanza.startswith("Package: "):
            raise RepoError(f"source {s.name} {s.version}: a stanza must start with 'Package:' and hold no blank line")
        src_seen.setdefault((s.name, s.version), s)
    return [s.stanza if s.stanza.endswith("\n") else s.stanza + "\n" for _, s in sorted(src_seen.items())]


def _adopt_and_list(gen_root: Path, link: Path) -> tuple[list[Path], Path | None]:
    """Clear what an interrupted publish left, adopt a plain ``dists/<suite>`` directory; returns the
    generations on disk and the current one."""
    for stale in gen_root.glob(".tmp-*"):  # an interrupted publish
        shutil.rmtree(stale, ignore_errors=True)
    if link.exists() and not link.is_symlink():
        # a plain directory from another tool: adopt it as the oldest generation
        os.replace(link, gen_root / "g00000000-adopted")
    current = link.resolve() if link.is_symlink() and link.exists() else None
    return generations(gen_root), current


def _write_generation(
    tmp: Path, info: _ReleaseInfo, by_arch: dict[str, list[str]], src_stanzas: list[str], current: Path | None,
    carried: list[Path], key: SigningKey | None,
) -> list[IndexFile]:
    """Fill the new generation ``tmp``: indices, by-hash files (also those of ``carried`` generations),
    Release and its signatures, modes and times. Returns its index files."""
    component = info.components[0]
    indices: list[IndexFile] = []
    for a in info.arches:
        write_index(tmp, f"{component}/binary-{a}/Packages", "\n".join(by_arch[a]).encode(), current, indices)
    write_index(tmp, f"{component}/source/Sources", "\n".join(src_stanzas).encode(), current, indices)
    carry_by_hash(tmp, carried)
    write_by_hash(tmp, indices)
    release = _release_text(info, indices).encode()
    (tmp / "Release").write_bytes(release)
    if key is not None:
        inline, detached = key.sign_release(release)
        (tmp / "InRelease").write_bytes(inline)
        (tmp / "Release.gpg").write_bytes(detached)
    for path in (tmp, *tmp.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    stamp_after(current, tmp, [i.path for i in indices])
    return indices


def publish(
    root: Path,
    suite: str,
    *,
    packages: Iterable[PackageEntry],
    sources: Iterable[SourceEntry] = (),
    component: str = "main",
    arches: Sequence[str] = ("amd64",),
    key: SigningKey | None = None,
    origin: str = "deb-bootc",
    label: str | None = None,
    description: str | None = None,
    date: datetime | None = None,
    valid_for: timedelta | None = None,
    keep: int = 3,
    keep_seconds: float = 600.0,
    allow_identity_change: bool = False,
) -> PublishedRepo:
    """Write a complete new index generation for ``suite`` and switch ``root/dists/<suite>`` to it atomically.

    Architecture-independent packages (``Architecture: all``) appear in every architecture's Packages.
    Packages of architectures not in ``arches`` are refused. The same name/version/arch listed twice
    with different files is refused; identical duplicates are merged. ``valid_for`` adds a
    ``Valid-Until`` (default: none, since the repository only changes when republished). The last
    ``keep`` generations (at least 2) and every generation younger than ``keep_seconds`` stay on disk,
    and their by-hash files stay reachable from the current one.

    ``origin`` and ``label`` must stay the same from one publish to the next: apt refuses to update from
    a repository whose Origin or Label changed (until each user confirms it with
    ``apt-get update --allow-releaseinfo-change``), so a change is refused unless
    ``allow_identity_change`` is set.
    """
    started = time.monotonic()
    root = Path(root).absolute()
    date = _check_arguments(suite, component, arches, date)
    keep = max(2, keep)
    count, by_arch = _package_stanzas(packages, arches)
    src_stanzas = _source_stanzas(sources)
    info = _ReleaseInfo(suite, (component,), tuple(arches), origin, label or origin, description, date, valid_for)

    dists = root / "dists"
    gen_root = dists / GENERATIONS_DIR / suite
    link = dists / suite
    with suite_lock(gen_root):
        olds, current = _adopt_and_list(gen_root, link)
        if current is not None and (current / "Release").is_file() and not allow_identity_change:
            _check_identity(current / "Release", {"Origin": origin, "Label": info.label}, link)
        name = new_generation_name(gen_root)
        tmp = gen_root / f".tmp-{name}"
        tmp.mkdir()
        try:
            indices = _write_generation(tmp, info, by_arch, src_stanzas, current,
                                        retained(olds, keep - 1, keep_seconds), key)
            os.rename(tmp, gen_root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        swap_symlink(link, f"{GENERATIONS_DIR}/{suite}/{name}")
        gens = generations(gen_root)
        survivors = set(retained(gens, keep, keep_seconds))
        for old in gens:
            if old not in survivors:
                shutil.rmtree(old, ignore_errors=True)
    return PublishedRepo(
        root=root,
        suite=suite,
        fingerprint=key.fingerprint if key else None,
        components=(component,),
        arches=tuple(arches),
        generation=name,
        packages=count,
        sources=len(src_stanzas),
        seconds=time.monotonic() - started,
        index_files=tuple(i.path for i in indices),
    )


def referenced_files(root: Path) -> set[str]:
    """Pool paths named by any generation still on disk, of any suite under ``root`` (a client may have
    read any of those indices, so their files must stay downloadable)."""
    root = Path(root)
    refs: set[str] = set()
    for gen in (root / "dists" / GENERATIONS_DIR).glob("*/*"):
        if not gen.is_dir() or gen.name.startswith("."):
            continue
        for packages in gen.glob("*/binary-*/Packages"):
            with open(packages, encoding="utf-8") as fh:
                refs.update(line[10:].strip() for line in fh if line.startswith("Filename: "))
        for sources in gen.glob("*/source/Sources"):
            directory, in_files = "", False
            with open(sources, encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("Directory: "):
                        directory = line[11:].strip()
                    elif line.startswith("Checksums-Sha256:"):
                        in_files = True
                        continue
                    elif not line.startswith(" "):
                        in_files = False
                    if in_files and directory and len(parts := line.split()) == 3:
                        refs.add(f"{directory}/{parts[2]}")
                    if not line.strip():
                        directory = ""
    return refs


def prune_pool(root: Path, *, min_age: float = 600.0) -> list[str]:
    """Delete pool files that no generation on disk names and that were put in the pool more than
    ``min_age`` seconds ago (so files added for a publish still to come survive). Returns what was deleted.

    Hold no publish of this ``root`` at the same time (each suite's publish takes its own lock)."""
    root = Path(root)
    pool = root / "pool"
    if not pool.is_dir():
        return []
    keep = referenced_files(root)
    now = time.time()
    removed: list[str] = []
    for path in sorted(pool.rglob("*"), reverse=True):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
            continue
        if rel in keep or path.name.startswith("."):
            continue
        if now - path.lstat().st_ctime < min_age:  # ctime changes when add_to_pool links the file in
            continue
        path.unlink()
        removed.append(rel)
    return sorted(removed)


def read_packages(root: Path, suite: str, component: str = "main", arch: str = "amd64") -> list[PackageEntry]:
    """The entries of a published repository's Packages index (to resume incremental publishing)."""
    path = Path(root) / "dists" / suite / component / f"binary-{arch}" / "Packages"
    if not path.is_file():
        raise RepoError(f"{path} does not exist: nothing published for {suite}/{component}/{arch} under {root}")
    text = path.read_text(encoding="utf-8")
    return [PackageEntry.from_stanza(s + "\n") for s in text.strip("\n").split("\n\n") if s.strip()]


def read_sources(root: Path, suite: str, component: str = "main") -> list[SourceEntry]:
    """The entries of a published repository's Sources index."""
    path = Path(root) / "dists" / suite / component / "source" / "Sources"
    if not path.is_file():
        raise RepoError(f"{path} does not exist: nothing published for {suite}/{component} under {root}")
    text = path.read_text(encoding="utf-8")
    return [SourceEntry.from_stanza(s + "\n") for s in text.strip("\n").split("\n\n") if s.strip()]


__all__ = [
    "PackageEntry",
    "PublishedRepo",
    "RepoError",
    "SourceEntry",
    "add_to_pool",
    "check_relative_path",
    "import_deb",
    "import_dsc",
    "pool_path",
    "prune_pool",
    "publish",
    "read_packages",
    "read_sources",
    "referenced_files",
    "scan_deb",
    "scan_dsc",
]
