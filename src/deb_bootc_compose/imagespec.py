"""The manifest's sections about the image itself: variants, users and groups, files, postprocess scripts,
the OCI image, the boot test and the disk (see :mod:`deb_bootc_compose.manifest` for the whole schema)."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from deb_bootc_compose import osrelease

# a user or group name as shadow's useradd accepts it, or a numeric ID
ACCOUNT = re.compile(r"^([a-z_][a-z0-9_-]{0,31}\$?|[0-9]+)$")
OCI_NAME = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.\-]+$")

OutputName = Literal["oci", "raw", "qcow2"]


def template_sample(template: str, known: set[str], what: str) -> str:
    """``template`` with every ``{field}`` filled with "x", for checking what it makes; ValueError naming
    unknown fields."""
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    unknown = fields - known
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)} in {what}; known: {sorted(known)}")
    return template.format(**{f: "x" for f in known})


class StrictModel(BaseModel):
    """A manifest section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=False)


def _account(v: str, what: str) -> str:
    if not ACCOUNT.match(v) or v.isdigit():
        raise ValueError(f"{v!r} is not a valid {what} name (lower case letters, digits, '_' and '-', at most 32)")
    return v


def _no_control(v: str, what: str, also: str = "") -> str:
    if CONTROL.search(v) or any(c in v for c in also):
        shown = "newlines or control characters" + (f" or any of {also!r}" if also else "")
        raise ValueError(f"{what} {v!r} must not hold {shown}")
    return v


class GroupSpec(StrictModel):
    name: str
    gid: int | None = Field(default=None, ge=0, lt=2**32 - 1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _account(v, "group")


class UserSpec(StrictModel):
    name: str
    uid: int | None = Field(default=None, ge=0, lt=2**32 - 1)
    gid: int | None = Field(default=None, ge=0, lt=2**32 - 1)
    groups: list[str] = Field(default_factory=list)
    shell: str = "/bin/bash"
    gecos: str = ""
    password_hash: str | None = None  # a crypt(3) hash; a fixed hash keeps the image reproducible
    ssh_authorized_keys: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _account(v, "user")

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        for g in v:
            _account(g, "group")
        return v

    @field_validator("shell")
    @classmethod
    def _shell(cls, v: str) -> str:
        if not v.startswith("/") or not re.match(r"^[A-Za-z0-9_./+\-]+$", v):
            raise ValueError(f"shell {v!r} must be an absolute path (letters, digits, '_', '.', '/', '+', '-')")
        return v

    @field_validator("gecos")
    @classmethod
    def _gecos(cls, v: str) -> str:
        return _no_control(v, "gecos", ":")

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for key in v:
            _no_control(key, "each SSH key (one key per entry)")
        return v

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("$") or v in ("!", "*", "!*")):
            raise ValueError("must be a crypt(3) hash (e.g. from 'openssl passwd -6'), never a clear-text password")
        if v is not None:
            _no_control(v, "password_hash", ":")
        return v


class FileSpec(StrictModel):
    path: str
    content: str | None = None
    source: str | None = None  # a file relative to the manifest
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"

    @model_validator(mode="after")
    def _check(self) -> FileSpec:
        if (self.content is None) == (self.source is None):
            raise ValueError("each file needs exactly one of 'content' or 'source'")
        if not self.path.startswith("/") or ".." in Path(self.path).parts or self.path.rstrip("/") == "":
            raise ValueError(f"path {self.path!r} must be absolute and must not contain '..'")
        _no_control(self.path, "path")
        if not self.owner.isdigit():
            _account(self.owner, "user")
        if not self.group.isdigit():
            _account(self.group, "group")
        if self.path == "/var" or self.path.startswith("/var/"):
            raise ValueError(
                f"path {self.path!r} is under /var, which an OSTree image does not ship; "
                "put the file under /usr or /etc, or create it at boot with a tmpfiles.d entry"
            )
        if not re.match(r"^0?[0-7]{3,4}$", self.mode):
            raise ValueError(f"mode {self.mode!r} must be octal, e.g. '0644'")
        return self


class ScriptSpec(StrictModel):
    name: str | None = None
    script: str | None = None
    file: str | None = None  # relative to the manifest

    @model_validator(mode="after")
    def _check(self) -> ScriptSpec:
        if (self.script is None) == (self.file is None):
            raise ValueError("each postprocess entry needs exactly one of 'script' or 'file'")
        return self


class OciSpec(StrictModel):
    name: str | None = None  # default: the manifest name
    tag: str | None = None  # default: the manifest version
    labels: dict[str, str] = Field(default_factory=dict)
    max_layers: int = Field(default=64, ge=1, le=127)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not OCI_NAME.match(v):
            raise ValueError(f"{v!r} is not an image name (lower case letters, digits, '.', '_', '-', '/')")
        return v

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        if v is not None and not OCI_TAG.match(v):
            raise ValueError(f"{v!r} is not an image tag (letters, digits, '_', '.', '-'; at most 128)")
        return v


class BootTestSpec(StrictModel):
    enabled: bool = False
    commands: list[str] = Field(default_factory=list)
    timeout: int = Field(default=900, gt=0)


def package_names(v: list[str]) -> list[str]:
    bad = [p for p in v if not PACKAGE_NAME.match(p)]
    if bad:
        raise ValueError(f"not Debian package names: {', '.join(map(repr, bad))}")
    return v


def script_entries(v: Any) -> Any:
    """``postprocess:`` before validation: a plain string is an inline script."""
    if isinstance(v, list):
        return [{"script": item} if isinstance(item, str) else item for item in v]
    return v


def outputs_with_oci(v: list[OutputName] | None) -> list[OutputName] | None:
    if v is not None and "oci" not in v:
        raise ValueError("outputs must contain 'oci' (the bootc image every other output derives from)")
    return v


def os_release_keys(v: Any) -> dict[str, str]:
    """``os_release:`` checked by :func:`osrelease.check`; the error carries the bad key so that the manifest's
    error names its line."""
    try:
        return osrelease.check(v)
    except osrelease.OsReleaseProblem as exc:
        raise PydanticCustomError("os_release", "{message}", {"message": str(exc), "key": exc.key}) from None


PackageNames = Annotated[list[str], AfterValidator(package_names)]
Scripts = Annotated[list[ScriptSpec], BeforeValidator(script_entries)]
Outputs = Annotated[list[OutputName], AfterValidator(outputs_with_oci)]
OsRelease = Annotated[dict[str, str], BeforeValidator(os_release_keys)]


class VariantSpec(StrictModel):
    """One variant's own settings: ``add``/``remove``, ``files`` and ``postprocess`` add to the manifest's;
    ``outputs`` and ``boot_test`` replace the manifest's when given; ``os_release`` is merged over the
    manifest's key by key (see :meth:`deb_bootc_compose.manifest.Manifest.for_variant`)."""

    add: PackageNames = Field(default_factory=list)
    remove: PackageNames = Field(default_factory=list)
    files: list[FileSpec] = Field(default_factory=list)
    postprocess: Scripts = Field(default_factory=list)
    outputs: Annotated[list[OutputName] | None, AfterValidator(outputs_with_oci)] = None
    boot_test: BootTestSpec | None = None
    os_release: OsRelease = Field(default_factory=dict)


class DiskSpec(StrictModel):
    free_space: str = "1GiB"  # free space left in the root filesystem
    size: str | None = None  # a fixed total size instead
