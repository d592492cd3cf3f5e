"""deb-mock's Python API: one function from a :class:`BuildRequest` to a :class:`BuildResult`.

The CLI and the orchestrator's builder both call :func:`build`. It never raises for build problems;
every outcome (success, failure, dep-wait, infrastructure error, interruption) is a result with the
exit code from DESIGN.md, and ``result.json`` is written to ``request.resultdir``.
"""

from __future__ import annotations

from deb_mock.codes import RETRYABLE_EXIT_CODES, ExitCode, ResultState
from deb_mock.request import AptSource, BuildRequest, BuildResult

__all__ = ["RETRYABLE_EXIT_CODES", "AptSource", "BuildRequest", "BuildResult", "ExitCode", "ResultState", "build"]


def build(request: BuildRequest) -> BuildResult:
    from deb_mock.session.run import run_build

    return run_build(request)
