"""Build profiles and build options: ``--nocheck``, ``--profile NAME``, ``--with``/``--without``.

dpkg reads the active profiles from ``DEB_BUILD_PROFILES`` and the build options from ``DEB_BUILD_OPTIONS``;
apt must resolve the build-dependencies with the same profiles (``apt-get build-dep -P``), or a
``<!nocheck>`` dependency is installed for nothing and a ``<pkg.foo.stage1>`` one is missing. The profiles a
build uses are the config's ``environment.DEB_BUILD_PROFILES``, then the request's, then ``nocheck`` for
``--nocheck``. The ``nocheck`` and ``nodoc`` profiles come with the build option of the same name, as
Debian's policy asks (and the option alone is what debhelper's ``dh_auto_test`` looks at).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from deb_mock.config import MockConfig

_PROFILE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
OPTION_FOR_PROFILE = {"nocheck": "nocheck", "nodoc": "nodoc"}


def check_profile(name: str) -> str:
    """``name`` if it is a build profile name (lower-case letters, digits, ``.+-``), else ValueError."""
    if not _PROFILE.match(name):
        raise ValueError(
            f"{name!r} is not a build profile name (lower-case letters, digits and .+-, e.g. nocheck, "
            "pkg.SOURCE.stage1)"
        )
    return name


def split_profiles(values: Iterable[str]) -> list[str]:
    """Profiles given as ``a,b`` or ``a b`` or repeated, checked, duplicates dropped, in order."""
    out: list[str] = []
    for value in values:
        for name in value.replace(",", " ").split():
            if check_profile(name) not in out:
                out.append(name)
    return out


def active_profiles(config: MockConfig, profiles: Iterable[str], nocheck: bool) -> list[str]:
    """The profiles of a build: the config's, the request's, and ``nocheck`` for ``--nocheck``."""
    configured = config.environment.get("DEB_BUILD_PROFILES", "")
    return split_profiles([configured, *profiles, "nocheck" if nocheck else ""])


def build_env(config: MockConfig, profiles: list[str]) -> dict[str, str]:
    """``DEB_BUILD_OPTIONS`` (``parallel=N``, or the config's, plus ``nocheck``/``nodoc`` for those
    profiles) and ``DEB_BUILD_PROFILES``, over the config's environment."""
    env = {"DEB_BUILD_OPTIONS": f"parallel={config.jobs}", **config.environment}
    options = env["DEB_BUILD_OPTIONS"].split()
    for p in profiles:
        tag = OPTION_FOR_PROFILE.get(p)
        if tag and tag not in options:
            options.append(tag)
    env["DEB_BUILD_OPTIONS"] = " ".join(options)
    if profiles:
        env["DEB_BUILD_PROFILES"] = " ".join(profiles)
    else:
        env.pop("DEB_BUILD_PROFILES", None)
    return env


def apt_option(profiles: list[str]) -> str:
    """apt-get's option for these profiles (``-P a,b``), or nothing."""
    return f"-P {','.join(profiles)}" if profiles else ""
