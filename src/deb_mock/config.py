"""Named build configurations: built-in TOML files, overridden and extended by system and user files.

Lookup for ``-r NAME``: ``$XDG_CONFIG_HOME/deb-mock/NAME.toml`` (user), ``/etc/deb-mock/NAME.toml``
(system), then the built-in configs. A config may ``include`` others (paths relative to the including file,
or names on the search path); later keys win, tables are merged, and the including file wins over what it
includes (mock's ``include()``, in TOML).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from debarchive.digest import sha256_file

BUILTIN_DIR = Path(__file__).parent / "configs"
SYSTEM_DIR = Path("/etc/deb-mock")
SANDBOX_HOSTNAME = "deb-mock"  # the host name builds and chroot shells see
ROOT_CACHE_FORMAT = 3  # bump when the way a root cache is made or protected changes (3: sandbox hardening)


class ConfigError(ValueError):
    """Unknown or invalid configuration; the message says which and lists what exists."""


class ExtraRepo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    suite: str
    components: list[str] = ["main"]
    key: str | None = None  # path to a key file, or armoured key text
    trusted: bool = False


class MockConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    suite: str
    arch: str = "amd64"
    mirror: str = "http://deb.debian.org/debian"
    components: list[str] = ["main"]
    variant: str = "buildd"
    keyring: str | None = "/usr/share/keyrings/debian-archive-keyring.gpg"
    packages: list[str] = []
    repos: list[ExtraRepo] = []
    build_user: str = "builder"
    build_uid: int = Field(default=1000, ge=1, le=60000)
    parallel: int = Field(default=0, ge=0)
    build_timeout: int = Field(default=0, ge=0)
    root_cache_max_age_days: float = 15
    apt_lists_max_age_hours: float = 6
    deps_cache_max_mb: int = Field(default=8192, ge=0)
    check_valid_until: bool = True  # false: accept a Release past its Valid-Until (frozen mirrors of sid)
    environment: dict[str, str] = {}
    # source authentication: suites whose signed Sources indices are searched after the config's own suite,
    # and keyrings that may sign a .dsc that is in no index (files that do not exist are skipped)
    source_suites: list[str] = []
    source_keyrings: list[str] = []
    source_file: str | None = None
    # [plugins.NAME] tables: enabled = true|false and the plugin's options (deb_mock.plugins.loader)
    plugins: dict[str, dict[str, Any]] = {}

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        if not v.replace("-", "").isalnum():
            raise ValueError(f"not a Debian architecture name: {v!r}")
        return v

    def root_cache_key(self) -> str:
        """What the root cache depends on; the same config always gives the same key."""
        keyring_digest = ""
        if self.keyring and Path(self.keyring).is_file():
            keyring_digest = sha256_file(Path(self.keyring))
        data = {
            "format": ROOT_CACHE_FORMAT,
            "suite": self.suite,
            "arch": self.arch,
            "mirror": self.mirror.rstrip("/"),
            "components": self.components,
            "variant": self.variant,
            "packages": sorted(self.packages),
            "keyring": keyring_digest,
            "build_user": [self.build_user, self.build_uid],
            "check_valid_until": self.check_valid_until,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def jobs(self) -> int:
        return self.parallel or (os.cpu_count() or 1)


def user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "deb-mock"


def search_path(extra: list[Path] | None = None) -> list[Path]:
    if extra is not None:
        return [*extra, BUILTIN_DIR]
    return [user_dir(), SYSTEM_DIR, BUILTIN_DIR]


def list_configs(dirs: list[Path] | None = None) -> dict[str, Path]:
    """Every config name found on the search path, mapped to the file that wins."""
    found: dict[str, Path] = {}
    for d in reversed(search_path(dirs)):
        if d.is_dir():
            for f in sorted(d.glob("*.toml")):
                found[f.stem] = f
    return dict(sorted(found.items()))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _load_file(path: Path, dirs: list[Path], seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"include loop: {chain}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    merged: dict[str, Any] = {}
    for inc in includes:
        merged = _merge(merged, _load_file(_resolve_include(inc, path, dirs), dirs, (*seen, path)))
    return _merge(merged, data)


def _resolve_include(inc: str, including: Path, dirs: list[Path]) -> Path:
    candidates = [including.parent / inc] + [d / inc for d in dirs]
    if not inc.endswith(".toml"):
        candidates += [d / f"{inc}.toml" for d in dirs]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"{including}: include {inc!r} not found (looked in {including.parent} and the config dirs)")


_DEFINE_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
NOT_DEFINABLE = ("name", "include", "source_file")


def parse_define(text: str) -> dict[str, Any]:
    """``-D KEY=VALUE``: a config value for one run, as a table to merge over the config.

    VALUE is TOML (``2``, ``true``, ``["a", "b"]``, ``"text"``, ``{ A = "b" }``); a value that is not valid
    TOML and does not start like a TOML string, array or table is taken as a string, so that
    ``-D mirror=http://host/debian`` works. KEY may be dotted (``environment.DEB_BUILD_OPTIONS``).
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _DEFINE_KEY.match(key):
        raise ConfigError(f"-D {text!r}: expected KEY=VALUE (e.g. parallel=2, environment.FOO=\"bar\")")
    if key.split(".")[0] in NOT_DEFINABLE:
        raise ConfigError(f"-D {text!r}: {key.split('.')[0]!r} is not a setting -D can change")
    data = parse_value(value.strip(), f"-D {text!r}")
    for part in reversed(key.split(".")):
        data = {part: data}
    return dict(data)


def parse_value(value: str, where: str) -> Any:
    """A value given on the command line: TOML (``2``, ``true``, ``["a"]``, ``"text"``), or the text itself if
    it is not valid TOML and does not start like a TOML string, array or table."""
    try:
        parsed = tomllib.loads(f"v = {value}")
        if set(parsed) != {"v"}:
            raise ConfigError(f"{where}: the value must be one TOML value")
        return parsed["v"]
    except tomllib.TOMLDecodeError as exc:
        if not value or value[0] in "[{\"'":
            raise ConfigError(f"{where}: not a TOML value: {exc}") from None
        return value


def merge_defines(defines: list[str]) -> dict[str, Any]:
    """Every ``-D`` of a command line as one table (later ones win)."""
    out: dict[str, Any] = {}
    for d in defines:
        out = _merge(out, parse_define(d))
    return out


def _validated(data: dict[str, Any], where: Path | str) -> MockConfig:
    try:
        return MockConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{where}: invalid config: {problems}") from None


def load_config(
    name_or_path: str, dirs: list[Path] | None = None, overrides: dict[str, Any] | None = None
) -> MockConfig:
    """Load a config by name (search path) or by path to a .toml file; ``overrides`` (``-D``) win."""
    search = search_path(dirs)
    path = Path(name_or_path)
    if not (name_or_path.endswith(".toml") and path.is_file()):
        found = list_configs(dirs)
        if name_or_path not in found:
            valid = ", ".join(found) or "(none)"
            raise ConfigError(f"unknown config {name_or_path!r}; valid configs: {valid}")
        path = found[name_or_path]
    data = _merge(_load_file(path, search, ()), overrides or {})
    data.setdefault("name", path.stem)
    data["source_file"] = str(path)
    return _validated(data, f"{path}{' with -D' if overrides else ''}")


def config_for_suite(
    suite: str, arch: str = "amd64", mirror: str | None = None, overrides: dict[str, Any] | None = None
) -> MockConfig:
    """A config built from the Debian template for an arbitrary suite (the build request's suite form)."""
    data = _load_file(BUILTIN_DIR / "templates" / "debian.toml", [BUILTIN_DIR], ())
    data.update(name=f"debian-{suite}-{arch}", suite=suite, arch=arch)
    if mirror:
        data["mirror"] = mirror
    return _validated(_merge(data, overrides or {}), f"suite {suite}{' with -D' if overrides else ''}")
