"""OpenPGP "simple signing" for skopeo: the secret key file imported into a private, temporary GnuPG home
(publish's ``private_home``: a short path for the agent's socket, locked while in use so that no publish sweeps
it, the agent stopped and the home removed afterwards), the passphrase checked before skopeo runs. skopeo
(gpgme) signs with ``--sign-by FINGERPRINT``; the signatures go to the ``lookaside-staging`` directory of the
push's private ``registries.d``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.publish.keys import private_home
from deb_bootc_compose.registry.images import PushError
from debarchive.signing import signing_fingerprints
from debsandbox.commands import run


@dataclass(frozen=True)
class GpgSigner:
    fingerprint: str
    env: dict[str, str]  # GNUPGHOME for skopeo


def _gpg(home: Path, args: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GPG")}, "GNUPGHOME": str(home),
           "LC_ALL": "C.UTF-8"}
    done = run(["gpg", "--batch", "--no-tty", *args], env=env, stdin=stdin, capture=True, check=False)
    return done.returncode, done.output


def _secret_fingerprints(home: Path) -> list[str]:
    _rc, out = _gpg(home, ["--with-colons", "--list-secret-keys"])
    return signing_fingerprints(out)


@contextmanager
def gpg_signer(key_file: Path, passphrase_file: Path | None) -> Iterator[GpgSigner]:
    """Import ``key_file`` (an OpenPGP secret key) into a temporary home; yield what skopeo needs."""
    with private_home() as home:  # publish's: locked while in use, its agent stopped, removed after
        rc, out = _gpg(home, ["--import", str(key_file)])
        fprs = _secret_fingerprints(home)
        if rc != 0 or not fprs:
            raise PushError(f"{key_file}: not an OpenPGP secret key gpg can import ({out.strip().splitlines()[-1:]})")
        if len(fprs) > 1:
            raise PushError(f"{key_file} holds {len(fprs)} secret keys; give a file with exactly one")
        passargs = ["--pinentry-mode", "loopback", "--passphrase-file", str(passphrase_file)] if (
            passphrase_file is not None) else ["--pinentry-mode", "error"]
        rc, out = _gpg(home, [*passargs, "--local-user", fprs[0], "--detach-sign", "--output", "-"], stdin=b"check")
        if rc != 0:
            if passphrase_file is None:
                raise PushError(f"{key_file}: the key needs a passphrase: give --sign-passphrase-file")
            raise PushError(f"{key_file}: wrong passphrase in {passphrase_file} (gpg cannot sign with the key)")
        yield GpgSigner(fprs[0], {"GNUPGHOME": str(home)})


__all__ = ["GpgSigner", "gpg_signer"]
