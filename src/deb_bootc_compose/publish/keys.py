"""The OpenPGP keys ``publish`` signs with, and the GnuPG home ``ostree`` reaches them through.

Two ways to name them (never in a manifest):

* ``--gpg-key FILE`` (repeatable; or ``DEB_BOOTC_GPG_KEY``): an exported secret key, armored or binary. It is
  imported into a private temporary GnuPG home (mode 0700, a short path under /tmp: GnuPG's agent socket lives
  there), and that home -- with the ``gpg-agent`` GPGME started in it -- is removed afterwards. A publish that
  was killed cannot clean up: the next one removes homes whose lock nobody holds (and stops their agents).
* ``--gpg-homedir DIR --key-id ID`` (or ``DEB_BOOTC_GPG_HOMEDIR`` / ``DEB_BOOTC_GPG_KEY_ID``, comma-separated):
  an existing GnuPG home. Its agent is stopped afterwards only if publish started it.

Every key is tried once (a signature over a few bytes, no passphrase prompt) before the repository is touched:
a public-only key, a passphrase-protected key or an unknown key id is an error then, not half way through.
Secret key material never reaches a command line or a log.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.errors import PublishError
from debarchive.safeio import UnsafeEntry, read_named_file
from debarchive.signing import signing_fingerprints
from debsandbox.commands import CommandError, run
from debsandbox.locks import LockBusy, flock

ENV_KEY = "DEB_BOOTC_GPG_KEY"
ENV_HOMEDIR = "DEB_BOOTC_GPG_HOMEDIR"
ENV_KEY_ID = "DEB_BOOTC_GPG_KEY_ID"
MAX_KEY_FILE = 1 << 20  # an exported secret key is a few KiB


@dataclass(frozen=True)
class KeySpec:
    """Which keys to sign with: secret key files, or key ids in a GnuPG home."""

    files: tuple[Path, ...] = ()
    homedir: Path | None = None
    key_ids: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, files: list[Path] | None, homedir: Path | None, key_ids: list[str] | None,
                     env: Mapping[str, str] | None = None) -> KeySpec:
        """The command line's keys, else the environment's; a clear error when none or both kinds are given."""
        env = os.environ if env is None else env
        files = list(files or [])
        key_ids = list(key_ids or [])
        if not files and homedir is None and not key_ids and env.get(ENV_KEY):
            files = [Path(env[ENV_KEY])]
        if not files:  # each half of --gpg-homedir/--key-id may come from the environment
            if homedir is None and env.get(ENV_HOMEDIR):
                homedir = Path(env[ENV_HOMEDIR])
            if not key_ids and env.get(ENV_KEY_ID):
                key_ids = [k.strip() for k in env[ENV_KEY_ID].split(",") if k.strip()]
        if files and (homedir is not None or key_ids):
            raise PublishError("give the signing key either as --gpg-key FILE or as --gpg-homedir DIR --key-id ID, "
                               "not both")
        if files:
            return cls(files=tuple(files))
        if homedir is None and not key_ids:
            raise PublishError(f"no signing key: give --gpg-key FILE (an exported OpenPGP secret key) or "
                               f"--gpg-homedir DIR --key-id ID (or set {ENV_KEY}, or {ENV_HOMEDIR} and {ENV_KEY_ID}); "
                               "clients refuse unsigned commits")
        if homedir is None or not key_ids:
            raise PublishError("--gpg-homedir and --key-id go together (the GnuPG home and the key(s) in it to sign "
                               "with)")
        return cls(homedir=homedir, key_ids=tuple(key_ids))


@dataclass(frozen=True)
class Signer:
    """A GnuPG home and the fingerprints of the keys to sign with (valid inside :func:`signer`)."""

    homedir: Path
    fingerprints: tuple[str, ...]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The 16-hex-digit key ids ``ostree show`` prints for signatures of these keys."""
        return tuple(f[-16:].upper() for f in self.fingerprints)

    def export_public(self, dest: Path) -> Path:
        """The public keys, armored (what clients import)."""
        dest.write_text(_gpg(self.homedir, ["--armor", "--export", *self.fingerprints], "exporting the public key"))
        return dest


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPG", "GNUPG"))}
    env.pop("DISPLAY", None)
    return {**env, "GNUPGHOME": str(home), "LC_ALL": "C.UTF-8"}


def _gpg(home: Path, args: list[str], what: str, stdin: bytes | None = None) -> str:
    argv = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "error",
            "--no-auto-check-trustdb", *args]
    try:
        return run(argv, env=_env(home), stdin=stdin, capture=True, timeout=120).output
    except CommandError as exc:
        raise PublishError(f"{what} failed (GnuPG home {home}): {exc.tail.strip()[-800:]}") from None
    except OSError as exc:  # pragma: no cover - gpg missing
        raise PublishError(f"{what}: cannot run gpg ({exc}); install gnupg") from None


def secret_fingerprints(home: Path, selector: str | None = None) -> list[str]:
    """Fingerprints of signing-capable, usable primary secret keys (all, or those ``selector`` names)."""
    try:
        out = _gpg(home, ["--with-colons", "--list-secret-keys", *([selector] if selector else [])],
                   f"looking up secret key {selector or ''}".strip())
    except PublishError:
        if selector:  # gpg fails when nothing matches
            return []
        raise
    return signing_fingerprints(out)


def _try_sign(home: Path, fingerprint: str, where: str) -> None:
    """One signature over a few bytes: fails at once for a passphrase-protected or unusable key."""
    try:
        _gpg(home, ["--local-user", fingerprint, "--detach-sign", "--output", "-"], "test signature",
             stdin=b"deb-bootc-compose publish: key check\n")
    except PublishError as exc:
        raise PublishError(f"{where}: key {fingerprint} cannot sign without a prompt (passphrase-protected or "
                           f"unusable: publish needs a key without passphrase, or a GnuPG home whose agent has the "
                           f"passphrase preset): {exc}") from None


def _agent_running(home: Path) -> bool:
    done = run(["gpg-connect-agent", "--homedir", str(home), "--no-autostart", "/bye"], env=_env(home),
               check=False, capture=True, timeout=30)
    return done.returncode == 0 and "no gpg-agent running" not in done.output


def _stop_agent(home: Path) -> None:
    run(["gpgconf", "--homedir", str(home), "--kill", "all"], env=_env(home), check=False, timeout=60)


def _read_key_file(path: Path) -> bytes:
    try:
        return read_named_file(path, MAX_KEY_FILE)
    except FileNotFoundError:
        raise PublishError(f"--gpg-key {path}: no such file (an exported OpenPGP secret key: "
                           "gpg --export-secret-keys --armor KEYID > FILE)") from None
    except UnsafeEntry as exc:
        raise PublishError(f"--gpg-key {path}: {exc.what}; not an OpenPGP key file") from None
    except OSError as exc:
        raise PublishError(f"--gpg-key {path}: cannot read it ({exc.strerror})") from None


def _import_files(home: Path, files: tuple[Path, ...]) -> list[str]:
    fingerprints: list[str] = []
    for path in files:
        data = _read_key_file(path)
        before = set(secret_fingerprints(home))
        _gpg(home, ["--import"], f"--gpg-key {path}: importing the key", stdin=data)
        new = [f for f in secret_fingerprints(home) if f not in before]
        if not new:
            raise PublishError(f"--gpg-key {path} holds no OpenPGP secret signing key (a public key? export the "
                               "secret one with gpg --export-secret-keys)")
        if len(new) > 1:
            raise PublishError(f"--gpg-key {path} holds {len(new)} secret keys ({', '.join(new)}); give one key per "
                               "--gpg-key")
        _try_sign(home, new[0], f"--gpg-key {path}")
        fingerprints.append(new[0])
    return fingerprints


def _lookup_ids(home: Path, key_ids: tuple[str, ...]) -> list[str]:
    fingerprints: list[str] = []
    for key_id in key_ids:
        found = secret_fingerprints(home, key_id)
        if len(found) != 1:
            have = ", ".join(secret_fingerprints(home)) or "none"
            what = "no usable secret signing key" if not found else f"{len(found)} secret keys"
            raise PublishError(f"--key-id {key_id}: {what} in GnuPG home {home} (its secret keys: {have}); "
                               "give a fingerprint")
        _try_sign(home, found[0], f"--key-id {key_id}")
        fingerprints.append(found[0])
    return fingerprints


def _check_homedir(home: Path) -> None:
    if not home.is_dir():
        raise PublishError(f"--gpg-homedir {home}: not a directory")


HOME_PREFIX = "dbc-gpg-"
HOME_LOCK = ".publish.lock"


def _tmp_dir() -> Path:
    return Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())


def sweep_stale_homes() -> list[Path]:
    """Remove the private GnuPG homes (and stop the agents) of publishes that were killed: a home whose lock
    nobody holds any more. Returns what was removed."""
    removed = []
    for home in sorted(_tmp_dir().glob(f"{HOME_PREFIX}*")):
        if home.is_symlink() or not home.is_dir() or home.stat().st_uid != os.getuid():
            continue
        if not (home / HOME_LOCK).exists():  # being made right now (mkdtemp, then the lock): not stale
            continue
        try:
            with flock(home / HOME_LOCK, blocking=False, keep_file=True):
                _stop_agent(home)
                shutil.rmtree(home, ignore_errors=True)
                removed.append(home)
        except (LockBusy, OSError):
            continue
    return removed


@contextmanager
def private_home() -> Iterator[Path]:
    """A new GnuPG home (mode 0700, a short path: the agent's socket lives in it), locked while in use."""
    sweep_stale_homes()
    home = Path(tempfile.mkdtemp(prefix=HOME_PREFIX, dir=_tmp_dir()))
    try:
        with flock(home / HOME_LOCK, keep_file=True):
            try:
                yield home
            finally:
                _stop_agent(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def signer(spec: KeySpec) -> Iterator[Signer]:
    """The keys of ``spec``, checked and ready for ``ostree --gpg-homedir``; cleaned up afterwards."""
    if spec.files:
        with private_home() as home:
            yield Signer(home, tuple(_import_files(home, spec.files)))
        return
    assert spec.homedir is not None
    home = spec.homedir.resolve()
    _check_homedir(home)
    had_agent = _agent_running(home)
    try:
        yield Signer(home, tuple(_lookup_ids(home, spec.key_ids)))
    finally:
        if not had_agent:
            _stop_agent(home)
