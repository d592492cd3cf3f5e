"""Errors of the OCI writer: each message says what is wrong, where, and what to do."""

from __future__ import annotations


class OciError(RuntimeError):
    """The image cannot be written."""


class OciCancelled(OciError):
    """The cancellation event was set (or the writer was interrupted); nothing half-written was left."""
