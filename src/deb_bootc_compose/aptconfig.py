"""A private apt configuration: its own sources.list, keyrings, pins, lists and an empty dpkg status.

Never the host's: ``APT_CONFIG`` points at our own apt.conf, which also redirects ``Dir::Etc::Parts`` and
``Dir::Etc::Main`` so nothing from /etc/apt is read. Used by gather to resolve and download packages.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import httpx

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.manifest import Manifest, Source
from debsandbox.commands import CommandCancelled, CommandError, run

DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
ORCHESTRATOR_KEY_PATHS = ("{repo}/key.asc", "{hub}/key.asc")


@dataclass
class ResolvedPackage:
    name: str
    version: str
    arch: str
    sha256: str
    size: int
    url: str
    source: str = ""  # source package name
    source_version: str = ""
    repo: str = ""  # the sources.list URL it came from


@dataclass
class PackageIndex:
    """What the downloaded Packages lists say: names, provides, essential/required sets, sources."""

    names: set[str] = field(default_factory=set)
    provides: set[str] = field(default_factory=set)
    essential: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)
    source_of: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    newest_release_date: int | None = None


def fetch_key(spec: str, manifest_dir: Path, dest: Path, what: str) -> None:
    """Copy or download a keyring (binary or armored) to ``dest`` as a binary keyring."""
    if re.match(r"^https?://", spec):
        try:
            resp = httpx.get(spec, timeout=30, follow_redirects=True)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise ComposeError(f"{what}: cannot download key {spec}: {exc}") from exc
        data = resp.content
    else:
        path = Path(spec) if Path(spec).is_absolute() else manifest_dir / spec
        if not path.is_file():
            raise ComposeError(f"{what}: key file {path} does not exist (the manifest's 'key:' is relative to it)")
        data = path.read_bytes()
    _write_keyring(data, dest, f"{what}: key {spec}")


def _write_keyring(data: bytes, dest: Path, what: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if b"-----BEGIN PGP PUBLIC KEY BLOCK-----" in data:
        tmp = dest.with_suffix(".asc")
        tmp.write_bytes(data)
        try:
            run(["gpg", "--batch", "--yes", "--dearmor", "-o", dest, tmp], capture=True)
        except CommandError as exc:
            raise ComposeError(f"{what} is not a valid OpenPGP key: {exc.tail}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    else:
        dest.write_bytes(data)


def _orchestrator_key(source: Source, dest: Path) -> None:
    assert source.orchestrator is not None
    hub = source.orchestrator.url
    repo = source.repo_url()
    tried = []
    for tmpl in ORCHESTRATOR_KEY_PATHS:
        url = tmpl.format(hub=hub, repo=repo)
        tried.append(url)
        try:
            resp = httpx.get(url, timeout=15, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ComposeError(
                f"orchestrator source {hub} (tag {source.orchestrator.tag}) is unreachable: {exc}; "
                "is the hub running? (deb-orchestrator hub --data DIR)"
            ) from exc
        if resp.status_code == 200 and b"BEGIN PGP PUBLIC KEY BLOCK" in resp.content:
            _write_keyring(resp.content, dest, f"orchestrator key {url}")
            return
    raise ComposeError(
        f"orchestrator source {hub} tag {source.orchestrator.tag}: no signing key found at {', '.join(tried)}; "
        "give it in the manifest (orchestrator: {url, tag, key: FILE-OR-URL})"
    )


class PrivateApt:
    """One private apt root for one (source set, arch)."""

    def __init__(self, root: Path, manifest: Manifest, arch: str, manifest_dir: Path) -> None:
        self.root = root
        self.manifest = manifest
        self.arch = arch
        self.manifest_dir = manifest_dir
        self.conf = root / "apt.conf"

    @staticmethod
    def key_for(manifest: Manifest, arch: str) -> str:
        desc = repr([s.model_dump(mode="json") for s in manifest.sources]) + manifest.suite + arch
        return f"{manifest.suite}-{arch}-{hashlib.sha256(desc.encode()).hexdigest()[:12]}"

    @staticmethod
    def keyring(root: Path, index: int) -> Path:
        """The keyring of ``sources[index]`` in the apt root ``root`` (also copied into the image)."""
        return root / "keys" / f"source{index}.gpg"

    @staticmethod
    def lists_dir(root: Path) -> Path:
        """apt's downloaded lists (Packages, Release) in the apt root ``root``."""
        return root / "state" / "lists"

    # ---- set-up ----
    def setup(self) -> None:
        etc = self.root / "etc"
        for d in (etc / "apt.conf.d", etc / "sources.list.d", etc / "preferences.d", etc / "trusted.gpg.d",
                  self.root / "keys", self.lists_dir(self.root) / "partial",
                  self.root / "cache" / "archives" / "partial", self.root / "log"):
            d.mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        lines: list[str] = []
        prefs: list[str] = []
        for i, src in enumerate(self.manifest.sources):
            what = f"sources[{i}] ({src.repo_url()})"
            opts = [f"arch={self.arch}"]
            if not src.check_valid_until:
                opts.append("check-valid-until=no")
            if src.trusted:
                opts.append("trusted=yes")
            else:
                keyring = self.keyring(self.root, i)
                if src.key:
                    fetch_key(src.key, self.manifest_dir, keyring, what)
                elif src.orchestrator is not None:
                    if src.orchestrator.key:
                        fetch_key(src.orchestrator.key, self.manifest_dir, keyring, what)
                    else:
                        _orchestrator_key(src, keyring)
                else:
                    if not DEBIAN_KEYRING.is_file():
                        raise ComposeError(
                            f"{what}: no 'key:' given and {DEBIAN_KEYRING} is missing "
                            "(apt-get install debian-archive-keyring)"
                        )
                    shutil.copyfile(DEBIAN_KEYRING, keyring)
                opts.append(f"signed-by={keyring}")
            suite = src.repo_suite(self.manifest.suite)
            lines.append(f"deb [{' '.join(opts)}] {src.repo_url()} {suite} {' '.join(src.components)}")
            if src.priority is not None or src.is_orchestrator:
                # pin by the Release file's suite (a=) and codename (n=): a tag repo uses the tag for both
                for field_ in ("a", "n"):
                    prefs.append(
                        f"# {what}\nPackage: *\nPin: release {field_}={suite}\nPin-Priority: {src.pin_priority()}\n"
                    )
        (etc / "sources.list").write_text("\n".join(lines) + "\n")
        (etc / "preferences").write_text("\n".join(prefs))
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    f'Dir "{r}/";',
                    f'Dir::Etc "{r}/etc/";',
                    f'Dir::Etc::Main "{r}/etc/apt.conf";',
                    f'Dir::Etc::Parts "{r}/etc/apt.conf.d/";',
                    f'Dir::Etc::SourceList "{r}/etc/sources.list";',
                    f'Dir::Etc::SourceParts "{r}/etc/sources.list.d/";',
                    f'Dir::Etc::Preferences "{r}/etc/preferences";',
                    f'Dir::Etc::PreferencesParts "{r}/etc/preferences.d/";',
                    f'Dir::Etc::Trusted "{r}/etc/trusted.gpg";',
                    f'Dir::Etc::TrustedParts "{r}/etc/trusted.gpg.d/";',
                    f'Dir::State "{r}/state/";',
                    f'Dir::State::Status "{r}/state/status";',
                    f'Dir::Cache "{r}/cache/";',
                    f'Dir::Log "{r}/log/";',
                    f'APT::Architecture "{self.arch}";',
                    f'APT::Architectures {{ "{self.arch}"; }};',
                    'APT::Install-Recommends "false";',
                    'APT::Install-Suggests "false";',
                    'Acquire::Languages "none";',
                    'Acquire::Retries "2";',
                    'Debug::NoLocking "true";',
                    "",
                ]
            )
        )

    @property
    def env(self) -> dict[str, str]:
        return {"APT_CONFIG": str(self.conf), "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}

    # ---- update ----
    def update(self, log: Path, cancel: threading.Event | None = None) -> None:
        try:
            run(["apt-get", "update", "--error-on=any"], log=log, extra_env=self.env, cancel=cancel, timeout=600)
        except CommandCancelled:
            raise
        except CommandError as exc:
            raise ComposeError(self._explain_update_failure(exc.tail)) from exc

    def _explain_update_failure(self, tail: str) -> str:
        failing = []
        for src in self.manifest.sources:
            url = src.repo_url()
            host = re.sub(r"^[a-z]+://", "", url).split("/")[0]
            if url in tail or host in tail:
                failing.append(f"{url} ({src.repo_suite(self.manifest.suite)})")
        lines = [ln for ln in tail.splitlines() if ln.startswith(("E:", "W:", "Err:"))]
        what = ", ".join(failing) if failing else "one of the sources"
        if "is expired" in tail or "is not valid yet" in tail:
            return (
                f"the Release file of {what} is outside its validity period (a frozen mirror, or a wrong clock); "
                "set 'check_valid_until: false' on that source to accept it\n" + "\n".join(lines[-8:])
            )
        return (
            f"apt could not read the package lists of {what}: is the URL right and reachable, "
            f"and does the suite exist there?\n" + "\n".join(lines[-8:])
        )

    # ---- index ----
    def list_files(self) -> list[Path]:
        return sorted(p for p in self.lists_dir(self.root).glob("*_Packages") if p.is_file())

    def release_files(self) -> list[Path]:
        lists = self.lists_dir(self.root)
        return sorted([*lists.glob("*_InRelease"), *lists.glob("*_Release")])

    def index(self) -> PackageIndex:
        idx = PackageIndex()
        for path in self.list_files():
            _scan_packages(path, idx)
        return idx

    # ---- resolution ----
    def resolve(self, install: list[str], exclude: list[str], log: Path,
                cancel: threading.Event | None = None) -> list[ResolvedPackage]:
        """The full package set apt installs into an empty system for ``install`` (hard dependencies only)."""
        empty = self.root / "cache" / "empty-archives"
        shutil.rmtree(empty, ignore_errors=True)
        (empty / "partial").mkdir(parents=True)
        argv = ["apt-get", "install", "--print-uris", "-q", "-y", "-o", f"Dir::Cache::Archives={empty}/",
                "-o", "Acquire::ForceHash=SHA256",
                *install, *(f"{p}-" for p in exclude)]
        try:
            done = run(argv, log=log, extra_env=self.env, capture=True, cancel=cancel, timeout=600, tail=60)
        except CommandError as exc:
            raise ComposeError(self._explain_resolve_failure(exc.tail)) from exc
        out: list[ResolvedPackage] = []
        for line in done.output.splitlines():
            m = re.match(r"^'([^']+)' (\S+) (\d+) SHA256:([0-9a-f]{64})$", line.strip())
            if not m:
                continue
            url, filename, size, sha = m.groups()
            fm = re.match(r"^([^_]+)_([^_]+)_([^_]+)\.deb$", unquote(filename))
            if not fm:
                raise ComposeError(f"apt printed an unexpected file name {filename!r} for {url}")
            name, version, arch = fm.groups()
            repo = next((s.repo_url() for s in self.manifest.sources if url.startswith(s.repo_url() + "/")), "")
            out.append(ResolvedPackage(name, version, arch, sha, int(size), url, repo=repo))
        if not out:
            raise ComposeError(f"apt resolved no packages to download (see {log})")
        return sorted(out, key=lambda p: p.name)

    def _explain_resolve_failure(self, tail: str) -> str:
        suites = ", ".join(f"{s.repo_url()} {s.repo_suite(self.manifest.suite)}" for s in self.manifest.sources)
        missing = re.findall(r"Unable to locate package (\S+)", tail)
        missing += re.findall(r"Package '?([^' ]+)'? has no installation candidate", tail)
        if missing:
            return (
                f"package(s) {', '.join(sorted(set(missing)))} not found in suite {self.manifest.suite} "
                f"for {self.arch} (sources: {suites}); check the spelling or add the source that has them"
            )
        lines = [ln for ln in tail.splitlines() if ln.strip()]
        return (
            f"apt cannot resolve the package set for {self.manifest.suite}/{self.arch} (sources: {suites}):\n"
            + "\n".join(lines[-20:])
        )


def _scan_packages(path: Path, idx: PackageIndex) -> None:
    """A fast line scanner over one Packages file (python-debian is far slower on 60,000 stanzas)."""
    name = version = arch = source = ""
    essential = required = False
    provides = ""

    def flush() -> None:
        if not name:
            return
        idx.names.add(name)
        if essential:
            idx.essential.add(name)
        if required:
            idx.required.add(name)
        for prov in provides.split(","):
            p = prov.strip().split(" ")[0]
            if p:
                idx.provides.add(p)
        src, srcver = name, version
        if source:
            parts = source.split()
            src = parts[0]
            if len(parts) > 1:
                srcver = parts[1].strip("()")
        idx.source_of[(name, version, arch)] = (src, srcver)

    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line == "\n":
                flush()
                name = version = arch = source = provides = ""
                essential = required = False
                continue
            c = line[0]
            if c == " ":
                continue
            if c == "P":
                if line.startswith("Package: "):
                    name = line[9:].strip()
                elif line.startswith("Priority: "):
                    required = line[10:].strip() == "required"
                elif line.startswith("Provides: "):
                    provides = line[10:].strip()
            elif c == "V" and line.startswith("Version: "):
                version = line[9:].strip()
            elif c == "A" and line.startswith("Architecture: "):
                arch = line[14:].strip()
            elif c == "E" and line.startswith("Essential: "):
                essential = line[11:].strip() == "yes"
            elif c == "S" and line.startswith("Source: "):
                source = line[8:].strip()
        flush()
