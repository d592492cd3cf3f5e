"""What a build starts from: its config (with the request's ``-D`` values), its build profiles, the record
of how its source was authenticated, and no roots left by builds that died."""

from __future__ import annotations

from pathlib import Path

from deb_mock import config as configmod
from deb_mock import profiles as buildprofiles
from deb_mock.chroot.paths import CachePaths
from deb_mock.errors import BadInput
from deb_mock.request import BuildRequest, BuildResult
from deb_mock.session.logs import StateLog
from debarchive.sourceauth import Verification
from debsandbox.locks import remove_unless_locked


def record_verification(v: Verification | None, result: BuildResult, state: StateLog) -> None:
    if v is None:
        return
    result.source_verified, result.source_trust, result.source_verification = v.verified, v.trust, v.how
    if v.verified:
        state.note(f"source: trusted ({v.trust}): {v.how}", root_log=True)
    else:
        state.note(f"source: NOT VERIFIED: {v.how}", root_log=True)


def remove_abandoned_builds(paths: CachePaths, config: str, keep: Path) -> None:
    """Remove throw-away roots of builds whose process died (kill -9, power loss): nobody holds their lock."""
    for d in paths.builds(config).iterdir():
        if d == keep or not d.is_dir():
            continue
        remove_unless_locked(d, paths.lock(f"build-{d.name}"))


def resolve_config(request: BuildRequest) -> configmod.MockConfig:
    over = request.config_overrides
    try:
        if request.config:
            cfg = configmod.load_config(request.config, request.config_dirs, over)
        elif request.suite:
            cfg = configmod.config_for_suite(request.suite, request.arch, request.mirror, over)
        else:
            raise BadInput("the build request names neither a config nor a suite")
    except configmod.ConfigError as exc:
        raise BadInput(str(exc)) from None
    if request.mirror and request.config:
        cfg = cfg.model_copy(update={"mirror": request.mirror})
    if request.extra_packages:
        cfg = cfg.model_copy(update={"packages": sorted({*cfg.packages, *request.extra_packages})})
    return cfg


def active_profiles(config: configmod.MockConfig, request: BuildRequest) -> list[str]:
    try:
        return buildprofiles.active_profiles(config, request.profiles, request.nocheck)
    except ValueError as exc:
        raise BadInput(f"build profiles: {exc}") from None
