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

import hashlib
import lzma
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from debian.deb822 import Deb822

from debarchive.digest import hashes_file, sha256_file
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
from debsandbox.locks import flock

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


@dataclass
class _Index:
    path: str  # relative to dists/<suite>, e.g. main/binary-amd64/Packages.xz
    size: int
    md5: str
    sha256: str


@contextmanager
def _suite_lock(gen_root: Path) -> Iterator[None]:
    gen_root.mkdir(parents=True, exist_ok=True)
    with flock(gen_root / ".lock", keep_file=True):
        yield


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=1)


def _write_index(
    gen: Path, rel: str, data: bytes, previous: Path | None, indices: list[_Index]
) -> None:
    """Write ``rel`` (uncompressed) and ``rel.xz`` into generation ``gen``; reuse the previous
    generation's .xz when the content is unchanged (compression is the slow part)."""
    target = gen / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    raw_sha = hashlib.sha256(data).hexdigest()
    indices.append(_Index(rel, len(data), hashlib.md5(data).hexdigest(), raw_sha))
    xz_target = gen / f"{rel}.xz"
    reused = False
    if previous is not None:
        old_raw, old_xz = previous / rel, previous / f"{rel}.xz"
        if old_raw.is_file() and old_xz.is_file() and old_raw.stat().st_size == len(data) \
                and sha256_file(old_raw) == raw_sha:
            os.link(old_xz, xz_target)
            reused = True
    if not reused:
        xz_target.write_bytes(_xz(data))
    size, md5, sha = hashes_file(xz_target)
    indices.append(_Index(f"{rel}.xz", size, md5, sha))


def _release_text(
    suite: str, components: Sequence[str], arches: Sequence[str], indices: Sequence[_Index], *, origin: str,
    label: str, description: str | None, date: datetime, valid_for: timedelta | None,
) -> str:
    fields = [
        ("Origin", origin),
        ("Label", label),
        ("Suite", suite),
        ("Codename", suite),
        ("Date", format_datetime(date.astimezone(UTC), usegmt=True)),
    ]
    if valid_for is not None:
        fields.append(("Valid-Until", format_datetime((date + valid_for).astimezone(UTC), usegmt=True)))
    fields += [
        ("Acquire-By-Hash", "yes"),
        ("Architectures", " ".join(arches)),
        ("Components", " ".join(components)),
    ]
    if description:
        fields.append(("Description", description))
    width = max(len(str(i.size)) for i in indices) if indices else 1
    md5 = "".join(f"\n {i.md5} {i.size:>{width}} {i.path}" for i in indices)
    sha = "".join(f"\n {i.sha256} {i.size:>{width}} {i.path}" for i in indices)
    for name, value in fields:
        if "\n" in value or not value.strip():
            raise RepoError(f"Release field {name} must be one non-empty line, got {value!r}")
    return "".join(f"{k}: {v}\n" for k, v in fields) + f"MD5Sum:{md5}\nSHA256:{sha}\n"


def _parse_release_hashes(release: Path) -> dict[str, tuple[str, str]]:
    """path -> (md5, sha256) from an existing Release file."""
    result: dict[str, list[str]] = {}
    section = None
    for line in release.read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            section = line.split(":", 1)[0]
            continue
        parts = line.split()
        if len(parts) == 3 and section in ("MD5Sum", "SHA256"):
            result.setdefault(parts[2], ["", ""])[0 if section == "MD5Sum" else 1] = parts[0]
    return {k: (v[0], v[1]) for k, v in result.items()}


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


def _carry_by_hash(gen: Path, retained: Iterable[Path]) -> None:
    """Hard-link into ``gen`` the by-hash files named by the Release of each retained older generation,
    so a client that read that InRelease still gets its indices after ``dists/<suite>`` moves on."""
    for old in retained:
        release = old / "Release"
        if not release.is_file():
            continue
        for rel, digests in _parse_release_hashes(release).items():
            for algo, digest in zip(("MD5Sum", "SHA256"), digests, strict=True):
                if not digest:
                    continue
                by_hash = Path(rel).parent / "by-hash" / algo / digest
                src, dest = old / by_hash, gen / by_hash
                if dest.exists() or not src.is_file():
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, dest)


def _write_by_hash(gen: Path, indices: Sequence[_Index]) -> None:
    for idx in indices:
        src = gen / idx.path
        base = src.parent / "by-hash"
        for algo, digest in (("MD5Sum", idx.md5), ("SHA256", idx.sha256)):
            dest = base / algo / digest
            if dest.exists():  # carried over from an older generation: same hash, same content
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dest)


def _generations(gen_root: Path) -> list[Path]:
    """Complete generations, oldest first (names sort by creation time)."""
    return sorted(p for p in gen_root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _stamp_after(previous: Path | None, gen: Path, index_paths: Sequence[str]) -> None:
    """Give the new generation's files a modification time in a later whole second than the previous
    generation's. HTTP's Last-Modified/If-Modified-Since have one-second resolution: a republish within the
    same second would otherwise be answered "304 Not Modified" and clients would keep the old InRelease."""
    stamp = int(time.time())
    if previous is not None:
        for name in ("InRelease", "Release"):
            try:
                stamp = max(stamp, int((previous / name).stat().st_mtime) + 1)
            except FileNotFoundError:
                continue
    for name in ("Release", "InRelease", "Release.gpg", *index_paths):
        path = gen / name
        if path.exists():
            os.utime(path, (stamp, stamp))


def _retained(generations: Sequence[Path], keep: int, keep_seconds: float) -> list[Path]:
    """The last ``keep`` generations plus those published less than ``keep_seconds`` ago."""
    now = time.time()
    result = []
    for i, gen in enumerate(generations):
        try:  # the directory's own time: file times may be a little ahead (see _stamp_after)
            age = now - gen.stat().st_mtime
        except FileNotFoundError:
            age = float("inf")
        if i >= len(generations) - keep or age < keep_seconds:
            result.append(gen)
    return result


def _new_generation_name(gen_root: Path) -> str:
    """``g<serial>-<UTC time>``: names sort in creation order, whatever the clock does."""
    serials = [int(m.group(1)) for p in gen_root.iterdir() if (m := re.match(r"^(?:\.tmp-)?g(\d+)-", p.name))]
    return f"g{max(serials, default=0) + 1:08d}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def _swap_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (rename of a new symlink over the old one)."""
    tmp = link.with_name(f".{link.name}.swap-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


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
    check_word(suite, "suite name")
    check_word(component, "component")
    if not arches:
        raise RepoError("publish() needs at least one architecture")
    for a in arches:
        if not ARCH_RE.match(a) or a == "all":
            raise RepoError(f"invalid architecture {a!r} for Architectures: use Debian names like amd64 (not 'all')")
    keep = max(2, keep)
    date = date or datetime.now(UTC)
    if date.tzinfo is None:
        raise RepoError("publish(date=...) needs a timezone-aware datetime")

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
    ordered = sorted(seen.values(), key=lambda e: (e.name, e.arch, e.version, e.filename))
    for entry in ordered:
        text = entry.stanza if entry.stanza.endswith("\n") else entry.stanza + "\n"
        for a in [entry.arch] if entry.arch != "all" else arches:
            by_arch[a].append(text)
    src_seen: dict[tuple[str, str], SourceEntry] = {}
    for s in sources:
        if "\n\n" in s.stanza.strip("\n") or not s.stanza.startswith("Package: "):
            raise RepoError(f"source {s.name} {s.version}: a stanza must start with 'Package:' and hold no blank line")
        src_seen.setdefault((s.name, s.version), s)
    src_stanzas = [s.stanza if s.stanza.endswith("\n") else s.stanza + "\n"
                   for _, s in sorted(src_seen.items())]

    dists = root / "dists"
    gen_root = dists / GENERATIONS_DIR / suite
    link = dists / suite
    with _suite_lock(gen_root):
        for stale in gen_root.glob(".tmp-*"):  # an interrupted publish
            shutil.rmtree(stale, ignore_errors=True)
        if link.exists() and not link.is_symlink():
            # a plain directory from another tool: adopt it as the oldest generation
            os.replace(link, gen_root / "g00000000-adopted")
        olds = _generations(gen_root)
        current = link.resolve() if link.is_symlink() and link.exists() else None
        label = label or origin
        if current is not None and (current / "Release").is_file() and not allow_identity_change:
            _check_identity(current / "Release", {"Origin": origin, "Label": label}, link)
        name = _new_generation_name(gen_root)
        tmp = gen_root / f".tmp-{name}"
        tmp.mkdir()
        try:
            indices: list[_Index] = []
            for a in arches:
                _write_index(tmp, f"{component}/binary-{a}/Packages", "\n".join(by_arch[a]).encode(), current,
                             indices)
            _write_index(tmp, f"{component}/source/Sources", "\n".join(src_stanzas).encode(), current, indices)
            _carry_by_hash(tmp, _retained(olds, keep - 1, keep_seconds))
            _write_by_hash(tmp, indices)
            release = _release_text(
                suite, [component], arches, indices, origin=origin, label=label,
                description=description, date=date, valid_for=valid_for,
            ).encode()
            (tmp / "Release").write_bytes(release)
            if key is not None:
                inline, detached = key.sign_release(release)
                (tmp / "InRelease").write_bytes(inline)
                (tmp / "Release.gpg").write_bytes(detached)
            for path in (tmp, *tmp.rglob("*")):
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            _stamp_after(current, tmp, [i.path for i in indices])
            final = gen_root / name
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _swap_symlink(link, f"{GENERATIONS_DIR}/{suite}/{name}")
        gens = _generations(gen_root)
        survivors = set(_retained(gens, keep, keep_seconds))
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
        packages=len(ordered),
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
