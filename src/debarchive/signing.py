"""OpenPGP signing keys for apt repositories, kept in a private GNUPGHOME.

A :class:`SigningKey` lives in its own GnuPG home directory (mode 0700) and never touches the user's
keyring. Keys are ed25519, without passphrase or expiry: both bookworm's ``gpgv`` and trixie's ``sqv``
(Sequoia, which refuses SHA-1 and weak keys) accept them and the SHA-512 signatures made with them.

Every GnuPG call holds an exclusive lock on the home directory and stops the ``gpg-agent`` it started
before releasing it, so two processes may share a home and no agent is left running. GnuPG puts the
agent's socket inside the home directory and Unix socket paths are limited to 107 bytes; homes with long
paths are therefore reached through a short symbolic link in the temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from debsandbox.commands import CommandError, run
from debsandbox.locks import flock

ALGORITHMS = ("ed25519", "rsa3072", "rsa4096")
_LOCK_NAME = ".debarchive.lock"

DEFAULT_UID = "repository signing key <repo@localhost>"  # a library default: tools pass their own name


class SigningError(RuntimeError):
    """A key could not be created, loaded or used. The message names the home directory and the cause."""


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    with ExitStack() as stack:
        try:
            stack.enter_context(flock(home / _LOCK_NAME, keep_file=True))
        except OSError as exc:
            raise SigningError(
                f"cannot use GnuPG home {home}: {exc.strerror} (it must be a writable directory: GnuPG keeps "
                "its agent socket and random seed there)"
            ) from exc
        yield


class _Gpg:
    """Runs ``gpg`` against one home directory through a short path; stops the agent on close."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._tmp = Path(tempfile.mkdtemp(prefix="dak-", dir="/tmp" if Path("/tmp").is_dir() else None))
        self.path = self._tmp / "h"
        self.path.symlink_to(home.resolve())
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GPG")},
            "GNUPGHOME": str(self.path),
            "LC_ALL": "C.UTF-8",
        }
        self.env.pop("DISPLAY", None)
        self.started_agent = False

    def __call__(self, args: Sequence[str], *, stdin: bytes | None = None, what: str) -> str:
        argv = ["gpg", "--homedir", str(self.path), "--batch", "--no-tty", "--pinentry-mode", "loopback",
                "--passphrase", "", "--no-auto-check-trustdb", *args]
        self.started_agent = True
        try:
            return run(argv, env=self.env, stdin=stdin, capture=True, timeout=120).output
        except CommandError as exc:
            raise SigningError(f"{what} failed in GnuPG home {self.home}: {exc.tail.strip() or exc}") from exc
        except OSError as exc:  # pragma: no cover - gpg missing
            raise SigningError(f"{what} failed in GnuPG home {self.home}: {exc} (is gnupg installed?)") from exc

    def close(self) -> None:
        try:
            if self.started_agent:
                run(["gpgconf", "--homedir", str(self.path), "--kill", "all"], env=self.env, check=False, timeout=60)
        finally:
            self.path.unlink(missing_ok=True)
            self._tmp.rmdir()


@contextmanager
def _gpg(home: Path) -> Iterator[_Gpg]:
    with _locked(home):
        g = _Gpg(home)
        try:
            yield g
        finally:
            g.close()


def signing_fingerprints(colons: str) -> list[str]:
    """Fingerprints (upper case) of the signing-capable, usable primary secret keys in ``gpg --with-colons
    --list-secret-keys`` output, in keyring order (revoked, expired, disabled and invalid keys left out)."""
    result: list[str] = []
    want_fpr = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            caps = fields[11] if len(fields) > 11 else ""
            revoked_or_expired = fields[1] in ("r", "e", "d", "i")
            want_fpr = "S" in caps and not revoked_or_expired
        elif fields[0] == "fpr" and want_fpr:
            result.append(fields[9].upper())
            want_fpr = False
        elif fields[0] in ("ssb", "uid"):
            want_fpr = False
    return result


def _secret_fingerprints(gpg: _Gpg) -> list[str]:
    """Fingerprints of the signing-capable primary secret keys, in keyring order."""
    return signing_fingerprints(gpg(["--with-colons", "--list-secret-keys"], what="listing secret keys"))


def _prepare_home(home: Path) -> Path:
    try:
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
    except OSError as exc:
        raise SigningError(f"cannot use {home} as a GnuPG home: {exc}") from exc
    return home


@dataclass(frozen=True)
class SigningKey:
    """A signing key in its own GnuPG home. Create or load it with :meth:`ensure`."""

    home: Path
    fingerprint: str

    @classmethod
    def ensure(cls, home: Path, uid: str = DEFAULT_UID, algorithm: str = "ed25519") -> SigningKey:
        """Load the key in ``home``, creating one (no passphrase, no expiry) named ``uid`` if there is none.

        ``algorithm`` (for a new key): ``ed25519`` (default; small and fast), or ``rsa3072``/``rsa4096`` for
        very old clients whose gpgv predates ed25519. Safe to call from several processes at once: exactly
        one key gets created.
        """
        home = _prepare_home(Path(home).absolute())
        if not uid.strip() or "\n" in uid:
            raise SigningError(f"invalid user ID {uid!r} for a new key in {home}: give one line like 'Name <mail>'")
        if algorithm not in ALGORITHMS:
            raise SigningError(f"unsupported key algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
        with _gpg(home) as gpg:
            found = _secret_fingerprints(gpg)
            if not found:
                gpg(["--quick-gen-key", uid, algorithm, "sign", "never"], what=f"creating a key for {uid!r}")
                found = _secret_fingerprints(gpg)
            if not found:
                raise SigningError(f"GnuPG home {home} holds no usable signing key even after creating one")
        return cls(home=home, fingerprint=found[0])

    @classmethod
    def load(cls, home: Path, fingerprint: str | None = None) -> SigningKey:
        """Load an existing key (the given fingerprint, or the first signing key); never creates one."""
        home = Path(home).absolute()
        if not (home / "pubring.kbx").exists() and not (home / "pubring.gpg").exists():
            raise SigningError(f"{home} is not a GnuPG home with keys; create one with SigningKey.ensure()")
        with _gpg(home) as gpg:
            found = _secret_fingerprints(gpg)
        if fingerprint is not None:
            fingerprint = fingerprint.replace(" ", "").upper()
            if fingerprint not in found:
                have = ", ".join(found) or "none"
                raise SigningError(f"no secret signing key {fingerprint} in {home} (it has: {have})")
            return cls(home=home, fingerprint=fingerprint)
        if not found:
            raise SigningError(f"no secret signing key in {home}; create one with SigningKey.ensure()")
        return cls(home=home, fingerprint=found[0])

    def _sign(self, modes: Sequence[str], data: bytes) -> list[bytes]:
        """One signature of ``data`` per mode, all with one GnuPG agent start."""
        results = []
        with _gpg(self.home) as gpg, tempfile.TemporaryDirectory(prefix="dak-sig-") as tmp:
            for i, mode in enumerate(modes):
                out = Path(tmp) / f"out{i}"
                gpg(
                    ["--local-user", f"{self.fingerprint}!", "--digest-algo", "SHA512", "--armor", mode,
                     "--output", str(out), "-"],
                    stdin=data,
                    what=f"signing with key {self.fingerprint}",
                )
                try:
                    results.append(out.read_bytes())
                except OSError as exc:
                    raise SigningError(
                        f"gpg produced no signature with key {self.fingerprint} in {self.home}"
                    ) from exc
        return results

    def sign_release(self, release: bytes) -> tuple[bytes, bytes]:
        """``(InRelease, Release.gpg)`` for a Release file, in one go."""
        inline, detached = self._sign(("--clearsign", "--detach-sign"), release)
        return inline, detached

    def clearsign(self, data: bytes) -> bytes:
        """An inline-signed copy of ``data`` (the InRelease file for a Release file)."""
        return self._sign(("--clearsign",), data)[0]

    def detach_sign(self, data: bytes) -> bytes:
        """An armored detached signature of ``data`` (Release.gpg)."""
        return self._sign(("--detach-sign",), data)[0]

    def public_armored(self) -> str:
        """The public key, ASCII-armored (minimal: no third-party signatures)."""
        with _gpg(self.home) as gpg, tempfile.TemporaryDirectory(prefix="dak-pub-") as tmp:
            out = Path(tmp) / "key.asc"
            gpg(["--armor", "--export-options", "export-minimal", "--output", str(out), "--export", self.fingerprint],
                what=f"exporting key {self.fingerprint}")
            text = out.read_text(encoding="ascii") if out.exists() else ""
        if "BEGIN PGP PUBLIC KEY BLOCK" not in text:
            raise SigningError(f"exporting key {self.fingerprint} from {self.home} gave no public key")
        return text

    def export_public(self, path: Path) -> Path:
        """Write the armored public key to ``path`` (atomically, mode 0644), usable as apt's ``signed-by=``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.public_armored()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
