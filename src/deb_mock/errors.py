"""Errors that map to deb-mock's documented exit codes (DESIGN.md, "Contracts")."""

from __future__ import annotations

from deb_mock.request import ExitCode


class DebMockError(RuntimeError):
    exit_code: ExitCode = ExitCode.INFRA_ERROR
    state = "error"


class BadInput(DebMockError):
    """Usage error or bad input: unknown config, corrupt .dsc, missing file (exit 2)."""

    exit_code = ExitCode.BAD_INPUT


class InfraError(DebMockError):
    """Mirror unreachable, disk full, sandbox failure: worth a retry elsewhere (exit 4)."""

    exit_code = ExitCode.INFRA_ERROR


class BuildFailed(DebMockError):
    exit_code = ExitCode.BUILD_FAILED
    state = "failed"


class Refused(DebMockError):
    """Something a build (or a chroot's contents) left is refused: a link, a FIFO, a device... (exit 1)."""

    exit_code = ExitCode.BUILD_FAILED
    state = "failed"


class DepWait(DebMockError):
    """Build-dependencies cannot be satisfied (exit 3); ``missing`` lists the relations."""

    exit_code = ExitCode.DEP_WAIT
    state = "dep-wait"

    def __init__(self, message: str, missing: list[tuple[str, list[str]]]) -> None:
        super().__init__(message)
        self.missing = missing


class Interrupted(DebMockError):
    exit_code = ExitCode.INTERRUPTED
