"""The client's errors and its exit codes (documented in docs/client.md and ``deb-bootc --help``)."""

from __future__ import annotations

OK = 0  # done; for ``upgrade --check``: an update is available
ERROR = 1  # something failed (ostree, skopeo, network, disk); the message says what and what to do
USAGE = 2  # bad command line or a TARGET the client does not understand
REFUSED = 3  # a signature or the registry policy refused the update: nothing was staged
NOT_OSTREE = 4  # not a machine booted from an OSTree deployment (and no --sysroot given)
NO_UPDATE = 77  # ``upgrade`` / ``upgrade --check``: the machine already runs (or has staged) the newest version

EXIT_CODES = {
    OK: "success (upgrade --check: an update is available)",
    ERROR: "error",
    USAGE: "usage error",
    REFUSED: "refused: unsigned or wrongly signed update, or the registry policy refused the image",
    NOT_OSTREE: "not an OSTree-booted system",
    NO_UPDATE: "no update available",
}


class ClientError(Exception):
    """An error shown to the user as one message; ``code`` is the exit code."""

    code = ERROR


class UsageError(ClientError):
    code = USAGE


class RefusedError(ClientError):
    """A signature check or the containers policy said no: nothing was staged or deployed."""

    code = REFUSED


class NotOstreeError(ClientError):
    code = NOT_OSTREE
