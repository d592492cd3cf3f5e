"""deb-mock's Python API: one function from a :class:`BuildRequest` to a :class:`BuildResult`.

The CLI and the orchestrator's builder both call :func:`build`. It never raises for build problems;
every outcome (success, failure, dep-wait, infrastructure error, interruption) is a result with the
exit code from DESIGN.md, and ``result.json`` is written to ``request.resultdir``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deb_mock.codes import RETRYABLE_EXIT_CODES, ExitCode, ResultState
from deb_mock.request import AptSource, BuildRequest, BuildResult

__all__ = ["RETRYABLE_EXIT_CODES", "AptSource", "BuildRequest", "BuildResult", "ExitCode", "ResultState", "build",
           "check_plugin_options", "plugin_names"]


def build(request: BuildRequest) -> BuildResult:
    from deb_mock.session.run import run_build

    return run_build(request)


def check_plugin_options(name: str, options: Mapping[str, Any]) -> list[str]:
    """What is wrong with plugin ``name``'s ``options`` (``--plugin-option NAME:KEY=VALUE`` values, ``fail-on`` or
    ``fail_on``), each problem naming the plugin, the option and what it takes; empty when they are fine. deb-mock's
    own plugins are checked with their own ``Options`` models; another name is a third-party plugin and gives no
    problem (it is checked where it is installed) unless it is a near-copy of a built-in name (a typo). A missing
    required option is no problem: the building machine's config may give it. Imports no third-party code."""
    from deb_mock.plugins.loader import option_problems

    return option_problems(name, dict(options))


def plugin_names() -> list[str]:
    """The plugins deb-mock knows here: its own and the third-party ones installed (entry point group
    ``deb_mock.plugins``), without importing them."""
    from deb_mock.plugins.loader import available

    return list(available())
