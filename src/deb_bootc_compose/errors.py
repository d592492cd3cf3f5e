"""The errors a compose raises, in one place (every module imports them from here).

- :class:`ComposeError`: the compose failed for a reason the user can act on; the message says what and where.
  The command line prints it and exits 1 (or 2 when it happened before anything was created).
- :class:`PhaseSelectionError`: ``--skip-phase``/``--just-phase`` named a phase that does not exist or that
  cannot be skipped (a usage error: exit 2, nothing created).
- :class:`Interrupted`: a signal (SIGTERM, SIGINT, SIGHUP) asked the compose to stop (exit 130, DOOMED).
"""

from __future__ import annotations


class ComposeError(RuntimeError):
    """A compose failed for a reason the user can act on; the message says what and where."""


class PhaseSelectionError(ComposeError):
    """``--skip-phase``/``--just-phase`` named an unknown phase or one that cannot be skipped."""


class Interrupted(KeyboardInterrupt):
    """A signal (SIGTERM, SIGINT, SIGHUP) asked the compose to stop; ``signal`` names it."""

    def __init__(self, signal_name: str) -> None:
        self.signal = signal_name
        super().__init__(f"interrupted by {signal_name}")


class PublishError(ComposeError):
    """``publish`` cannot go on (a compose that is not FINISHED, a missing commit, an unusable key, a busy or
    foreign repository); the message says what and where. Raised before the repository is touched when it is
    about the inputs: then ``untouched`` is True."""

    untouched = False


class PruneError(ComposeError):
    """``prune`` cannot go on (a compose or publish is using the target, a bad policy, an unreadable record); the
    message says what and where. ``untouched``: raised before anything was removed (bad input, a busy target)."""

    untouched = False
