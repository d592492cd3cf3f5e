"""The command line's build options (mock's names): each maps onto a field of :class:`BuildRequest`.

``--nocheck``, ``--profile NAME`` (and mock's ``--with NAME`` / ``--without NAME``: the profile ``NAME`` /
``noNAME``), ``-D KEY=VALUE``, ``--addrepo LINE``, ``--no-clean`` / ``--cleanup-after``, ``--postinstall``.
Parsing is here; what each does is in :mod:`deb_mock.profiles`, :mod:`deb_mock.aptsources`,
:func:`deb_mock.config.parse_define` and the build session.
"""

from __future__ import annotations

import argparse
from typing import Any

from deb_mock import aptsources, profiles
from deb_mock.config import ConfigError, merge_defines
from deb_mock.errors import BadInput

BUILD_ONLY = ("nocheck", "profile", "with_", "without", "addrepo", "no_clean", "cleanup_after", "postinstall",
              "enable_plugin", "disable_plugin", "plugin_option", "run_lintian", "run_autopkgtest",
              "run_piuparts")


def add_build_options(p: argparse.ArgumentParser) -> None:
    b = p.add_argument_group("build options (with --rebuild, --buildsrc, --chain)")
    b.add_argument("--nocheck", action="store_true", help="skip the package's tests (DEB_BUILD_OPTIONS=nocheck "
                   "and the nocheck build profile)")
    b.add_argument("--profile", action="append", default=[], metavar="NAME",
                   help="activate a build profile (repeatable, or NAME,NAME): DEB_BUILD_PROFILES, and the "
                   "build-dependencies apt installs")
    b.add_argument("--with", dest="with_", action="append", default=[], metavar="NAME",
                   help="mock's spelling of --profile NAME")
    b.add_argument("--without", action="append", default=[], metavar="NAME",
                   help="the profile noNAME (--without check is --nocheck, --without doc adds nodoc)")
    b.add_argument("--addrepo", action="append", default=[], metavar="LINE",
                   help='an extra apt repository for this build: "deb [signed-by=KEYFILE] URL SUITE COMPONENT..." '
                   "(repeatable; KEYFILE a local key file)")
    keep = b.add_mutually_exclusive_group()
    keep.add_argument("--no-clean", "--no-cleanup-after", dest="no_clean", action="store_true",
                      help="keep the build's root after a successful build too (--shell and --copyout use it)")
    keep.add_argument("--cleanup-after", action="store_true",
                      help="remove the build's root even after a failed build")
    b.add_argument("--postinstall", action="store_true",
                   help="install the built .debs into the build's root after the build (fails if they do not)")
    _plugin_options(p)
    p.add_argument("-D", "--define", action="append", default=[], metavar="KEY=VALUE",
                   help="set a config value for this run; VALUE is TOML (e.g. -D parallel=2, "
                   "-D 'packages=[\"ccache\"]', -D environment.FOO=bar)")


def _plugin_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("plugins (docs/plugins.md; with --rebuild, --buildsrc, --chain)")
    g.add_argument("--enable-plugin", action="append", default=[], metavar="NAME",
                   help="run this plugin in this build (repeatable)")
    g.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                   help="do not run this plugin, even if the config enables it (repeatable)")
    g.add_argument("--plugin-option", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="set a plugin's option for this build (VALUE is TOML, or text), e.g. lintian:fail-on=warning")
    lint = g.add_mutually_exclusive_group()
    lint.add_argument("--run-lintian", dest="run_lintian", action="store_const", const=True, default=None,
                      help="run lintian after a successful build (sbuild's flag: --enable-plugin lintian)")
    lint.add_argument("--no-run-lintian", dest="run_lintian", action="store_const", const=False,
                      help="do not run lintian (--disable-plugin lintian)")
    tests = g.add_mutually_exclusive_group()
    tests.add_argument("--run-autopkgtest", dest="run_autopkgtest", action="store_const", const=True, default=None,
                       help="run the package's autopkgtests after a successful build (--enable-plugin autopkgtest)")
    tests.add_argument("--no-run-autopkgtest", dest="run_autopkgtest", action="store_const", const=False,
                       help="do not run them (--disable-plugin autopkgtest)")
    piu = g.add_mutually_exclusive_group()
    piu.add_argument("--run-piuparts", dest="run_piuparts", action="store_const", const=True, default=None,
                     help="test the built packages with the target suite's piuparts (install, remove, purge) "
                     "after a successful build, without network (--enable-plugin piuparts)")
    piu.add_argument("--no-run-piuparts", dest="run_piuparts", action="store_const", const=False,
                     help="do not (--disable-plugin piuparts)")


def plugin_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`BuildRequest` plugin fields the flags set."""
    from deb_mock.plugins.loader import parse_option

    enable, disable = list(args.enable_plugin), list(args.disable_plugin)
    flags = ((args.run_lintian, "lintian"), (args.run_autopkgtest, "autopkgtest"), (args.run_piuparts, "piuparts"))
    for flag, name in flags:
        if flag is not None:
            (enable if flag else disable).append(name)
    options: dict[str, dict[str, Any]] = {}
    for text in args.plugin_option:
        name, key, value = parse_option(text)
        options.setdefault(name, {})[key] = value
    return {"enable_plugins": enable, "disable_plugins": disable, "plugin_options": options}


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``-D`` values as one table to merge over the config (:class:`BadInput` if one is wrong)."""
    try:
        return merge_defines(args.define)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


def check_applicable(args: argparse.Namespace, building: bool) -> None:
    """Build options given without a build are a usage error (they would do nothing)."""
    if building:
        return
    given = [name for name in BUILD_ONLY if getattr(args, name) not in (None, False, [])]
    if given:
        flags = ", ".join("--" + g.rstrip("_").replace("_", "-") for g in given)
        raise BadInput(f"{flags}: build options; use them with --rebuild, --buildsrc or --chain")


def request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`BuildRequest` fields the build options set."""
    try:
        names = profiles.split_profiles([*args.profile, *args.with_, *(f"no{w}" for w in args.without)])
        sources = [aptsources.parse_line(line) for line in args.addrepo]
    except ValueError as exc:  # SourceError is one
        raise BadInput(f"{exc}") from None
    nocheck = args.nocheck or "nocheck" in names
    return {
        "nocheck": nocheck,
        "profiles": [n for n in names if n != "nocheck"],
        "config_overrides": overrides(args),
        "extra_sources": sources,
        "keep_root": args.no_clean,
        "keep_failed_root": not args.cleanup_after,
        "postinstall": args.postinstall,
        **plugin_fields(args),
    }
