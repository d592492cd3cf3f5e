"""deb-mock's exit codes and result states (DESIGN.md, "Contracts"): defined once, used by the CLI, the
Python API's :class:`~deb_mock.request.BuildResult` and by callers such as the orchestrator's hub and builder.

``ExitCode`` members are ints and ``ResultState`` members are strings, so ``result.json`` and the process's
exit status hold exactly the documented numbers and strings.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    SUCCESS = 0
    BUILD_FAILED = 1
    BAD_INPUT = 2  # usage or bad input: unknown config, corrupt .dsc
    DEP_WAIT = 3  # build-dependencies unsatisfiable
    INFRA_ERROR = 4  # mirror unreachable, disk full, sandbox failure: worth a retry elsewhere
    CHAIN_PARTLY_FAILED = 5
    INTERRUPTED = 130


class ResultState(StrEnum):
    """``result.json``'s ``state``."""

    SUCCESS = "success"
    FAILED = "failed"
    DEP_WAIT = "dep-wait"
    ERROR = "error"


RETRYABLE_EXIT_CODES = (ExitCode.INFRA_ERROR, ExitCode.INTERRUPTED)  # the build may succeed elsewhere or later
