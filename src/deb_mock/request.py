"""The build request and build result: deb-mock's Python API contract (see DESIGN.md, "Contracts").

The orchestrator's builder constructs a :class:`BuildRequest` and calls :func:`deb_mock.api.build`;
the CLI does the same. :class:`BuildResult` serialises to ``result.json`` exactly as documented.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from deb_mock.codes import ExitCode as ExitCode  # re-exported: deb_mock.request.ExitCode stays importable

State = Literal["success", "failed", "dep-wait", "error"]

STATE_FOR_CODE: dict[int, State] = {
    ExitCode.SUCCESS: "success",
    ExitCode.BUILD_FAILED: "failed",
    ExitCode.DEP_WAIT: "dep-wait",
}


@dataclass(frozen=True)
class AptSource:
    """An extra apt repository: a deb822/one-line source plus the OpenPGP key that signs it."""

    url: str
    suite: str
    components: tuple[str, ...] = ("main",)
    key: str | None = None  # ASCII-armoured or binary key *contents*, or a path to a key file
    trusted: bool = False  # [trusted=yes] for unsigned local repositories (tests only)

    def one_line(self, key_path: str | None) -> str:
        opts = []
        if key_path:
            opts.append(f"signed-by={key_path}")
        if self.trusted:
            opts.append("trusted=yes")
        opt = f"[{' '.join(opts)}] " if opts else ""
        return f"deb {opt}{self.url} {self.suite} {' '.join(self.components)}".strip()


BuildWhat = Literal["binary", "arch", "indep"]  # dpkg-buildpackage -b / -B / -A


@dataclass
class BuildRequest:
    """What to build, where, and how. Either ``config`` or ``suite`` (+ ``arch`` + ``mirror``) is set."""

    source: str | Path  # a .dsc path or http(s) URL, or an unpacked source tree (with debian/)
    resultdir: Path
    config: str | None = None
    suite: str | None = None
    arch: str = "amd64"
    mirror: str | None = None
    extra_sources: list[AptSource] = field(default_factory=list)
    build_what: BuildWhat = "binary"
    cache_dir: Path | None = None
    network: bool = False
    on_log_line: Callable[[str], None] | None = None
    on_phase: Callable[[str], None] | None = None
    cancel: threading.Event | None = None
    extra_packages: list[str] = field(default_factory=list)
    config_dirs: list[Path] | None = None  # None: the system and user config directories
    timeout: float | None = None
    keep_failed_root: bool = True
    # Source authentication (docs/deb-mock.md, "Source authentication"). A .dsc fetched over http(s) must be
    # in a signed index of its mirror or signed by a key in the config's source_keyrings, unless:
    verify_source: bool = True  # False: build it unchecked (--no-verify-source; recorded in result.json)
    expected_dsc_sha256: str | None = None  # the caller knows the .dsc's sha256 (e.g. the hub's record)
    trusted_source: str | None = None  # the caller vouches for the source itself; says why (recorded)
    # build options (docs/deb-mock.md, "Build options"); the CLI maps its flags onto these
    nocheck: bool = False  # --nocheck: DEB_BUILD_OPTIONS nocheck and the nocheck profile
    profiles: list[str] = field(default_factory=list)  # --profile: DEB_BUILD_PROFILES, and apt-get build-dep -P
    config_overrides: dict[str, Any] = field(default_factory=dict)  # -D KEY=VALUE, merged over the config
    keep_root: bool = False  # --no-clean: keep the build's root after a successful build too
    postinstall: bool = False  # --postinstall: install the built .debs into the build's root afterwards
    # plugins (docs/plugins.md): --enable-plugin, --disable-plugin, --plugin-option NAME:KEY=VALUE
    enable_plugins: list[str] = field(default_factory=list)
    disable_plugins: list[str] = field(default_factory=list)
    plugin_options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class MissingDependency:
    relation: str
    packages: list[str]


@dataclass
class ResultFile:
    name: str
    sha256: str
    size: int


@dataclass
class BuildrootPackage:
    package: str
    version: str
    arch: str


@dataclass
class BuildResult:
    state: State
    exit_code: int
    source: dict[str, str]
    arch: str
    files: list[ResultFile] = field(default_factory=list)
    missing: list[MissingDependency] = field(default_factory=list)
    buildroot: list[BuildrootPackage] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(
        default_factory=lambda: {"build": "build.log", "root": "root.log", "state": "state.log"}
    )
    error: str | None = None
    resultdir: Path | None = None
    # how the source was authenticated (None until the source phase has decided)
    source_verified: bool | None = None
    source_trust: str | None = None  # archive | signature | checksum | caller | none
    source_verification: str | None = None  # one line for people
    kept_root: str | None = None  # where the build's root was kept (a failed build, or --no-clean)
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)  # each enabled plugin's results

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("resultdir")
        for key in ("error", "source_verified", "source_trust", "source_verification", "kept_root"):
            if data[key] is None:
                data.pop(key)
        return data

    def write(self, resultdir: Path) -> Path:
        path = resultdir / "result.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], resultdir: Path | None = None) -> BuildResult:
        return cls(
            state=data["state"],
            exit_code=int(data["exit_code"]),
            source=dict(data.get("source", {})),
            arch=data.get("arch", "amd64"),
            files=[ResultFile(**f) for f in data.get("files", [])],
            missing=[MissingDependency(**m) for m in data.get("missing", [])],
            buildroot=[BuildrootPackage(**b) for b in data.get("buildroot", [])],
            phases=dict(data.get("phases", {})),
            logs=dict(data.get("logs", {})),
            error=data.get("error"),
            resultdir=resultdir,
            source_verified=data.get("source_verified"),
            source_trust=data.get("source_trust"),
            source_verification=data.get("source_verification"),
            kept_root=data.get("kept_root"),
            plugins=dict(data.get("plugins", {})),
        )

    @classmethod
    def load(cls, resultdir: Path) -> BuildResult:
        return cls.from_json(json.loads((resultdir / "result.json").read_text()), resultdir)
