"""The compose manifest: a YAML file validated by a pydantic schema; errors name file:line:key.

The minimal manifest::

    name: debian-bootc
    version: "13"
    suite: trixie
    sources:
      - url: http://deb.debian.org/debian
        components: [main]
    packages: [systemd, systemd-sysv, linux-image-amd64, openssh-server, hello]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from deb_bootc_compose import yamlmarks
from deb_bootc_compose.derive.basecompose import BaseCompose, BaseError, load_base
from deb_bootc_compose.derive.inherit import merged
from deb_bootc_compose.derive.spec import BaseSpec
from deb_bootc_compose.hookspec import HooksSpec, PluginSettings
from deb_bootc_compose.imagesources import COMPONENT, SUITE, URL, ImageSource
from deb_bootc_compose.imagespec import (
    CONTROL,
    PACKAGE_NAME,
    BootTestSpec,
    DiskSpec,
    FileSpec,
    GroupSpec,
    OciSpec,
    OsRelease,
    OutputName,
    Outputs,
    PackageNames,
    Scripts,
    StrictModel,
    UserSpec,
    VariantSpec,
    template_sample,
)
from deb_bootc_compose.updatespec import UpdateSpec, key_files
from deb_bootc_compose.variants import VariantSettings, settings_of

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-]*$")
# OSTree's own rule for a ref (ostree_validate_structureof_rev): components of [\w\d][-._\w\d]*, ASCII only
OSTREE_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")
LOCALE = re.compile(r"^[A-Za-z0-9_.@\-]+$")  # C.UTF-8, en_US.UTF-8, de_DE@euro
KERNEL_ARG = re.compile(r"^[!#-&(-\[\]-~]+$")  # printable ASCII but space, quotes and backslash
ARCHES = ("amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x")
REF_FIELDS = {"name", "suite", "arch", "variant", "version"}
DEFAULT_ORCHESTRATOR_PRIORITY = 990
DEFAULT_MIRROR_PRIORITY = 500

__all__ = ["PACKAGE_NAME", "BaseSpec", "Manifest", "ManifestError", "OutputName", "VariantSettings", "load", "parse"]


class ManifestError(ValueError):
    """The manifest is malformed; every problem is one line ``file:line:key: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid manifest:\n  " + "\n  ".join(problems))


class OrchestratorRef(StrictModel):
    url: str
    tag: str
    key: str | None = None  # keyring file (path or URL); default: the hub's published key for the tag

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://", v) or not URL.match(v):
            raise ValueError("must be an http:// or https:// URL of the hub (no spaces, quotes or control characters)")
        return v.rstrip("/")

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r} is not a tag name (letters, digits, '.', '_', '+' and '-')")
        return v


class Source(StrictModel):
    """One apt source: a plain apt repository (``url``) or an orchestrator tag (``orchestrator``)."""

    url: str | None = None
    suite: str | None = None  # default: the manifest's suite
    components: list[str] = Field(default_factory=lambda: ["main"])
    key: str | None = None  # keyring (path relative to the manifest, or URL); default Debian's archive keyring
    trusted: bool = False  # accept an unsigned repository (local testing only)
    check_valid_until: bool = True  # false for frozen mirrors/snapshots whose Release has expired (Valid-Until)
    priority: int | None = None  # apt pin priority; orchestrator tags default to 990, others 500
    orchestrator: OrchestratorRef | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.url is None) == (self.orchestrator is None):
            raise ValueError("each source needs exactly one of 'url' or 'orchestrator: {url, tag}'")
        if self.url is not None and not re.match(r"^(https?|file)://", self.url):
            raise ValueError(f"url {self.url!r} must start with http://, https:// or file://")
        if self.url is not None and not URL.match(self.url):
            raise ValueError(f"url {self.url!r} must not hold spaces, quotes or control characters")
        if self.suite is not None and (not SUITE.match(self.suite) or ".." in self.suite):
            raise ValueError(f"suite {self.suite!r} is not a suite name (e.g. trixie-updates)")
        bad = [c for c in self.components if not COMPONENT.match(c)]
        if bad:
            raise ValueError(f"components {bad!r} are not component names (e.g. main, non-free-firmware)")
        if self.url is not None:
            self.url = self.url.rstrip("/")
        if not self.components:
            raise ValueError("components must not be empty")
        return self

    @property
    def is_orchestrator(self) -> bool:
        return self.orchestrator is not None

    def repo_url(self) -> str:
        if self.orchestrator is not None:
            return f"{self.orchestrator.url}/repos/{self.orchestrator.tag}"
        assert self.url is not None
        return self.url

    def repo_suite(self, default: str) -> str:
        if self.orchestrator is not None:
            return self.suite or self.orchestrator.tag
        return self.suite or default

    def pin_priority(self) -> int:
        if self.priority is not None:
            return self.priority
        return DEFAULT_ORCHESTRATOR_PRIORITY if self.is_orchestrator else DEFAULT_MIRROR_PRIORITY


GIT_URL = re.compile(r"^(https?|git|ssh|file)://\S+$")
GIT_REF = re.compile(r"^[A-Za-z0-9._/+%~@^-]+$")


class GitBuildSource(StrictModel):
    """``{git: URL, ref: REF}``: a Debian packaging repository (debian/ at its root) at a branch, tag or commit."""

    git: str
    ref: str

    @field_validator("git")
    @classmethod
    def _git(cls, v: str) -> str:
        if not GIT_URL.match(v):
            raise ValueError(f"{v!r} is not a git URL; use http(s)://, git://, ssh:// or file:// "
                             "(e.g. https://salsa.debian.org/debian/hello.git)")
        return v

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: Any) -> str:
        v = str(v)
        if not GIT_REF.match(v) or v.startswith("-") or ".." in v:
            raise ValueError(f"{v!r} is not a git branch, tag or commit ID")
        return v


def _build_source_kind(v: Any) -> str | None:
    if isinstance(v, str):
        return "<dsc>"
    if isinstance(v, dict | GitBuildSource):
        return "<git>"
    return None


# the tags pydantic puts into error locations for this union; _format_error drops them
UNION_TAGS = ("<dsc>", "<git>")
BuildSource = Annotated[
    Annotated[str, Tag("<dsc>")] | Annotated[GitBuildSource, Tag("<git>")],
    Discriminator(_build_source_kind, custom_error_type="build_source",
                  custom_error_message="each entry is a .dsc URL or path, or a mapping {git: URL, ref: REF}"),
]


class BuildSpec(StrictModel):
    target: str
    sources: list[BuildSource] = Field(default_factory=list)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r} is not a target name (letters, digits, '.', '_', '+' and '-')")
        return v


class Manifest(StrictModel):
    name: str
    short: str | None = None  # Pungi's release short name, for latest-<short>-<version>; default: name
    version: str
    suite: str
    sources: list[Source] = Field(min_length=1)
    packages: PackageNames = Field(default_factory=list)
    exclude: PackageNames = Field(default_factory=list)
    variants: dict[str, VariantSpec] = Field(default_factory=lambda: {"base": VariantSpec()})
    arches: list[str] = Field(default_factory=lambda: ["amd64"])
    kernel_args: list[str] = Field(default_factory=list)
    locale: str = "C.UTF-8"
    users: list[UserSpec] = Field(default_factory=list)
    groups: list[GroupSpec] = Field(default_factory=list)
    files: list[FileSpec] = Field(default_factory=list)
    postprocess: Scripts = Field(default_factory=list)
    ref: str = "{name}/{suite}/{arch}/{variant}"
    oci: OciSpec = Field(default_factory=OciSpec)
    outputs: Outputs = Field(default_factory=lambda: list[OutputName](["oci"]))
    boot_test: BootTestSpec = Field(default_factory=BootTestSpec)
    build: BuildSpec | None = None
    disk: DiskSpec = Field(default_factory=DiskSpec)
    update: UpdateSpec | None = None  # where installed machines fetch signed updates (updatespec.py)
    os_release: OsRelease = Field(default_factory=dict)  # the image's identity over Debian's (osrelease.py)
    image_sources: list[ImageSource] | None = None  # the image's apt sources; None: the reachable sources
    hooks: HooksSpec = Field(default_factory=HooksSpec)  # commands before/after phases (hookspec.py)
    plugins: PluginSettings = Field(default_factory=dict)  # plugins on or off, with options (hookspec.py)
    base: BaseSpec | None = None  # a derived manifest: the compose variant it starts from (derive/)
    _derived_from: Any = PrivateAttr(default=None)  # the loaded BaseCompose of ``base`` (set by parse)

    @property
    def derived_from(self) -> BaseCompose | None:
        """The base compose of a derived manifest (loaded and checked when the manifest was), else None."""
        return self._derived_from

    @field_validator("version")
    @classmethod
    def _version(cls, v: Any) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r} may hold only letters, digits, '.', '_', '+' and '-'")
        return str(v)

    @field_validator("name", "short")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and (not NAME.match(v) or "/" in v):
            raise ValueError(f"{v!r} may hold only letters, digits, '.', '_', '+' and '-'")
        return v

    @field_validator("suite")
    @classmethod
    def _suite(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r} is not a suite name (e.g. trixie, sid, bookworm)")
        return v

    @field_validator("kernel_args")
    @classmethod
    def _kernel_args(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not KERNEL_ARG.match(a)]
        if bad:
            raise ValueError(f"kernel arguments {bad!r} must be printable ASCII without spaces, quotes, "
                             "backslashes or newlines (one argument per entry)")
        return v

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str) -> str:
        if not LOCALE.match(v):
            raise ValueError(f"locale {v!r} must look like C.UTF-8 or en_US.UTF-8 (no spaces, quotes or newlines)")
        return v

    @field_validator("arches")
    @classmethod
    def _arches(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ARCHES]
        if bad:
            raise ValueError(f"unknown architecture(s) {', '.join(bad)}; Debian names are: {', '.join(ARCHES)}")
        if not v:
            raise ValueError("at least one architecture is needed")
        return v

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, VariantSpec]) -> dict[str, VariantSpec]:
        if not v:
            raise ValueError("at least one variant is needed (omit 'variants' for the single variant 'base')")
        for name in v:
            if not NAME.match(name):
                raise ValueError(f"variant name {name!r} may hold only letters, digits, '.', '_', '+' and '-'")
        return v

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        sample = template_sample(v, REF_FIELDS, "ref template")
        if not OSTREE_REF.match(sample):
            raise ValueError(f"ref template {v!r} does not make an OSTree ref: components of letters, digits, "
                             "'_', '.', '-' separated by '/'")
        return v

    @model_validator(mode="after")
    def _cross(self) -> Manifest:
        if len(self.variants) > 1 and "{variant}" not in self.ref:
            raise ValueError("with several variants the 'ref' template must contain {variant}")
        if len(self.arches) > 1 and "{arch}" not in self.ref:
            raise ValueError("with several arches the 'ref' template must contain {arch}")
        return self

    # ---- derived values ----
    @property
    def short_name(self) -> str:
        return self.short or self.name

    def for_variant(self, variant: str) -> VariantSettings:
        """What one variant gets: the manifest's settings with the variant's own (docs/compose.md, "Variants")."""
        return settings_of(self, variant)

    def variant_packages(self, variant: str) -> list[str]:
        """The requested package names of one variant: packages + add − remove − exclude, order kept."""
        return list(self.for_variant(variant).packages)

    def ref_for(self, variant: str, arch: str) -> str:
        return self.ref.format(name=self.name, suite=self.suite, arch=arch, variant=variant, version=self.version)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


# errors whose ctx names the mapping key at fault: the message names that entry's own line
KEYED_ERRORS = ("os_release", "hook_phase", "plugin_name")


def _format_error(doc: yamlmarks.LocatedDocument, err: dict[str, Any]) -> str:
    loc: tuple[str | int, ...] = tuple(p for p in err.get("loc", ()) if p not in UNION_TAGS and p != "[key]")
    # pydantic inserts model/union names into loc for some errors; keep the ones that are real keys
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        where = doc.where(loc[:-1])
        return f"{where.rsplit(':', 1)[0]}:{'.'.join(map(str, loc))}: required key is missing"
    if err.get("type") in KEYED_ERRORS and err.get("ctx", {}).get("key") is not None:
        loc = (*loc, err["ctx"]["key"])  # the bad entry's own line
    if err.get("type") == "extra_forbidden":
        return f"{doc.where(loc)}: unknown key (check the spelling; see docs/compose.md for the schema)"
    return f"{doc.where(loc)}: {msg}"


def resolve_manifest_file(manifest_path: Path, value: str, *, allow_host_paths: bool = False) -> Path:
    """The file a manifest value names (``files[].source``, ``postprocess[].file``), relative to the manifest.

    It must resolve, links included, to a regular file under the manifest's directory: absolute paths, '..'
    and links leading out of it are refused unless ``allow_host_paths``. Raises ValueError saying why."""
    base = manifest_path.parent
    if CONTROL.search(value):
        raise ValueError(f"{value!r} must not hold newlines or control characters")
    given = Path(value)
    if not allow_host_paths and (given.is_absolute() or ".." in given.parts):
        raise ValueError(f"{value!r} must be a path relative to the manifest's directory {base}, without "
                         "'..' (files from elsewhere on the host need --allow-host-paths)")
    path = given if given.is_absolute() else base / given
    real = Path(os.path.realpath(path))
    if not allow_host_paths and not real.is_relative_to(Path(os.path.realpath(base))):
        raise ValueError(f"{value!r} leads out of the manifest's directory {base} through a symlink (to {real}; "
                         "files from elsewhere on the host need --allow-host-paths)")
    if not real.is_file():
        raise ValueError(f"{value!r}: {path} is not a file (paths are relative to the manifest)")
    return real


def _ref_problems(m: Manifest, doc: yamlmarks.LocatedDocument, data: dict[str, Any]) -> list[str]:
    for variant in m.variants:
        for arch in m.arches:
            ref = m.ref_for(variant, arch)
            if OSTREE_REF.match(ref):
                continue
            loc: tuple[str, ...] = ("ref",)
            if "ref" not in data:
                used = [("name", m.name), ("suite", m.suite), ("version", m.version), ("variants", variant)]
                loc = next(((k, v) if k == "variants" else (k,) for k, v in used if not OSTREE_REF.match(v)), loc)
            return [f"{doc.where(loc)}: the OSTree ref {ref!r} (for {variant}/{arch}) is not valid: a ref holds "
                    "only letters, digits, '_', '.', '-' and '/' (no '+'); set 'ref:' to a template without the "
                    "offending field"]
    return []


def _file_problems(m: Manifest, doc: yamlmarks.LocatedDocument, allow_host_paths: bool) -> list[str]:
    problems = []
    named: list[tuple[tuple[str | int, ...], str | None]]
    named = [(("files", i, "source"), f.source) for i, f in enumerate(m.files)]
    named += [(("postprocess", i, "file"), s.file) for i, s in enumerate(m.postprocess)]
    for name, spec in m.variants.items():
        named += [(("variants", name, "files", i, "source"), f.source) for i, f in enumerate(spec.files)]
        named += [(("variants", name, "postprocess", i, "file"), s.file) for i, s in enumerate(spec.postprocess)]
    named += key_files(m.update)
    for loc, value in named:
        if value is None:
            continue
        try:
            resolve_manifest_file(doc.path, value, allow_host_paths=allow_host_paths)
        except ValueError as exc:
            problems.append(f"{doc.where(loc)}: {exc}")
    return problems


def _with_base(doc: yamlmarks.LocatedDocument, data: dict[str, Any]) -> tuple[dict[str, Any], BaseCompose]:
    """A derived manifest's data with its base's settings merged in (derive/inherit.py), and the base."""
    try:
        spec = BaseSpec.model_validate(data["base"])
    except ValidationError as exc:
        raise ManifestError([_format_error(doc, {**e, "loc": ("base", *e["loc"])}) for e in exc.errors()]) from None
    arches = data.get("arches") if isinstance(data.get("arches"), list) else None
    suite = data.get("suite") if isinstance(data.get("suite"), str) else None
    try:
        if spec.compose is not None:
            base = load_base(spec.compose, doc.path.parent, spec.variant or "base", arches, suite)
        else:
            from deb_bootc_compose.derive.baseimage import load_base_image  # (imports registry, which imports us)

            base = load_base_image(str(spec.image), doc.path.parent, spec.variant, arches, suite)
        return merged(data, base), base
    except BaseError as exc:
        key = "base.variant" if "has no variant" in str(exc) else "base.compose" if spec.compose else "base.image"
        raise ManifestError([f"{doc.where(tuple(key.split('.')))}: {exc}"]) from None


def parse(doc: yamlmarks.LocatedDocument, *, allow_host_paths: bool = False, check_files: bool = True) -> Manifest:
    """Validate a loaded document. ``check_files`` resolves the files the manifest copies into the image
    (relative to ``doc.path``; see :func:`resolve_manifest_file`). A derived manifest (``base:``) gets its
    base's settings (:mod:`deb_bootc_compose.derive.inherit`); the base is loaded and checked here."""
    if not isinstance(doc.data, dict):
        raise ManifestError([f"{doc.path}:1: the manifest must be a YAML mapping (name:, version:, suite:, ...)"])
    data = dict(doc.data)
    base = None
    if "base" in data:
        data, base = _with_base(doc, data)
    # YAML reads 13 as an int; versions are strings
    if isinstance(data.get("version"), int | float):
        data["version"] = str(data["version"])
    try:
        m = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError([_format_error(doc, dict(e)) for e in exc.errors()]) from None
    m._derived_from = base
    problems = _ref_problems(m, doc, data)
    if check_files:
        problems += _file_problems(m, doc, allow_host_paths)
    if problems:
        raise ManifestError(problems)
    return m


def load(path: Path, *, allow_host_paths: bool = False, check_files: bool = True) -> Manifest:
    """Load and validate a manifest file; raises :class:`ManifestError` naming file:line:key."""
    try:
        doc = yamlmarks.load(path)
    except yamlmarks.YamlLocationError as exc:
        raise ManifestError([str(exc)]) from None
    return parse(doc, allow_host_paths=allow_host_paths, check_files=check_files)
