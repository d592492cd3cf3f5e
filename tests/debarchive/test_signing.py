from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from debarchive_helpers import gpgv, secret_key_listing, still_there_after

from debarchive.signing import SigningError, SigningKey


def agents_of_gone_homes() -> list[str]:
    """gpg-agent processes started for a debarchive short home link that no longer exists (leaked)."""
    leaked = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent"):
            homes = [a.decode() for a in argv if b"/dak-" in a]
            if any(not Path(h).exists() for h in homes):
                leaked.append(" ".join(a.decode() for a in argv))
    return leaked


def test_ensure_creates_then_loads_same_key(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    key = SigningKey.ensure(home)
    assert len(key.fingerprint) == 40
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert SigningKey.ensure(home).fingerprint == key.fingerprint
    assert SigningKey.load(home).fingerprint == key.fingerprint
    assert SigningKey.load(home, key.fingerprint.lower()).fingerprint == key.fingerprint
    text = key.public_armored()
    assert text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    listing = secret_key_listing(home)
    assert listing.count("\nsec:") + listing.startswith("sec:") == 1
    assert ":ed25519:" in listing
    assert "\nsec:u:255:22:" in "\n" + listing  # ed25519 (algo 22), no expiry field
    assert still_there_after(agents_of_gone_homes) == []


def test_clearsign_and_detached_verify_with_gpgv(signing_key: SigningKey, tmp_path: Path) -> None:
    data = b"Origin: test\nSuite: x\n"
    inrelease = tmp_path / "InRelease"
    inrelease.write_bytes(signing_key.clearsign(data))
    assert b"Hash: SHA512" in inrelease.read_bytes()
    assert gpgv(signing_key, tmp_path, inrelease).returncode == 0

    release, sig = tmp_path / "Release", tmp_path / "Release.gpg"
    release.write_bytes(data)
    sig.write_bytes(signing_key.detach_sign(data))
    assert sig.read_bytes().startswith(b"-----BEGIN PGP SIGNATURE-----")
    assert gpgv(signing_key, tmp_path, sig, release).returncode == 0

    inline, detached = signing_key.sign_release(data)
    (tmp_path / "InRelease2").write_bytes(inline)
    sig.write_bytes(detached)
    assert gpgv(signing_key, tmp_path, tmp_path / "InRelease2").returncode == 0
    assert gpgv(signing_key, tmp_path, sig, release).returncode == 0

    release.write_bytes(data + b"Tampered: yes\n")
    bad = gpgv(signing_key, tmp_path, sig, release)
    assert bad.returncode != 0 and "BAD signature" in bad.stderr
    inrelease.write_bytes(inrelease.read_bytes().replace(b"Suite: x", b"Suite: y"))
    assert gpgv(signing_key, tmp_path, inrelease).returncode != 0


def test_signature_does_not_verify_with_another_key(signing_key: SigningKey, tmp_path: Path) -> None:
    other = SigningKey.ensure(tmp_path / "other")
    assert other.fingerprint != signing_key.fingerprint
    signed = tmp_path / "InRelease"
    signed.write_bytes(signing_key.clearsign(b"x\n"))
    result = gpgv(other, tmp_path, signed)
    assert result.returncode != 0 and "No public key" in result.stderr


def test_long_home_path_works(tmp_path: Path) -> None:
    # Unix socket paths are limited to 107 bytes; gpg-agent's socket lives in the home directory.
    home = tmp_path / ("x" * 60) / ("y" * 60) / "gnupg"
    key = SigningKey.ensure(home)
    out = tmp_path / "s"
    out.write_bytes(key.clearsign(b"data\n"))
    assert gpgv(key, tmp_path, out).returncode == 0


def test_concurrent_ensure_creates_one_key(tmp_path: Path) -> None:
    home = tmp_path / "shared"
    code = "import sys; from pathlib import Path; from debarchive.signing import SigningKey; " \
           "print(SigningKey.ensure(Path(sys.argv[1])).fingerprint)"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    fprs = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(fprs) == 1 and len(next(iter(fprs))) == 40
    listing = secret_key_listing(home)
    assert sum(1 for line in listing.splitlines() if line.startswith("sec:")) == 1


def test_user_keyring_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_user_home = tmp_path / "user"
    fake_user_home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(fake_user_home))
    monkeypatch.setenv("HOME", str(tmp_path))
    SigningKey.ensure(tmp_path / "private").clearsign(b"x\n")
    assert list(fake_user_home.iterdir()) == []
    assert not (tmp_path / ".gnupg").exists()


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="invalid user ID"):
        SigningKey.ensure(tmp_path / "a", uid="two\nlines")
    with pytest.raises(SigningError, match="not a GnuPG home with keys"):
        SigningKey.load(tmp_path / "empty")
    key = SigningKey.ensure(tmp_path / "b")
    with pytest.raises(SigningError, match="no secret signing key 0123"):
        SigningKey.load(tmp_path / "b", "0123456789ABCDEF0123456789ABCDEF01234567")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SigningError, match="cannot use"):
        SigningKey.ensure(blocker / "home")
    broken = SigningKey(home=key.home, fingerprint="0123456789ABCDEF0123456789ABCDEF01234567")
    with pytest.raises(SigningError, match="signing with key 0123456789ABCDEF"):
        broken.clearsign(b"x")
    assert os.listdir(tmp_path / "b")  # the real key is still there
    assert SigningKey.load(tmp_path / "b").fingerprint == key.fingerprint


def test_unwritable_home_gives_clear_error(tmp_path: Path) -> None:
    key = SigningKey.ensure(tmp_path / "home")
    lock = tmp_path / "home" / ".debarchive.lock"
    lock.unlink()
    lock.mkdir()  # stands for any reason the home cannot be written (read-only mount, wrong owner)
    with pytest.raises(SigningError, match=r"cannot use GnuPG home .*/home: Is a directory \(it must be a writable"):
        key.clearsign(b"x")


def test_rsa_key_for_old_clients(tmp_path: Path) -> None:
    key = SigningKey.ensure(tmp_path / "rsa", algorithm="rsa3072")
    listing = secret_key_listing(key.home)
    assert "\nsec:u:3072:1:" in "\n" + listing  # RSA (algo 1), 3072 bits
    signed = tmp_path / "InRelease"
    signed.write_bytes(key.clearsign(b"data\n"))
    assert gpgv(key, tmp_path, signed).returncode == 0
    with pytest.raises(SigningError, match="unsupported key algorithm 'dsa1024'"):
        SigningKey.ensure(tmp_path / "dsa", algorithm="dsa1024")
