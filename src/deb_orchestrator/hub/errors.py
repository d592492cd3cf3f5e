"""Errors raised by the hub's logic; the API turns them into JSON answers with the same status."""

from __future__ import annotations


class HubError(Exception):
    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class NotFound(HubError):
    status = 404


class Conflict(HubError):
    status = 409


class Stale(Conflict):
    """A builder's answer for an attempt that is no longer current (its lease expired; fencing token)."""


class PolicyRefused(Conflict):
    """A hub plugin's ``before_tag`` refused a tagging (hub/plugins)."""
