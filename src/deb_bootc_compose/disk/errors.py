"""Errors of the disk builder: each message says what went wrong, where, and what to do."""

from __future__ import annotations


class DiskError(RuntimeError):
    """A disk image could not be built; the message is meant for the user."""


class NotEnoughSpace(DiskError):
    """The output (or scratch) filesystem cannot hold the image; raised before any work starts."""


class SourceError(DiskError):
    """The install source (compose, repo+ref, OCI image) is missing or not usable."""


class UsageError(DiskError):
    """The command line asks for something unsafe or malformed (unconfirmed device wipe, bad size...)."""
