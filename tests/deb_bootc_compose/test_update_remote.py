"""The image's update remote: the manifest's public key(s) made into a binary keyring (secret keys refused),
the remotes.d file, and the remote a commit's tree carries (what the disk's deployment follows)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.prepare import update_remote


def gpg(home: Path, *args: str) -> str:
    done = subprocess.run(["gpg", "--homedir", str(home), "--batch", *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """A GnuPG home with two signing keys (the current one and its successor during a rotation)."""
    home = tmp_path_factory.mktemp("gpg")
    home.chmod(0o700)
    try:
        for uid in ("Updates 2026 <u@example.org>", "Updates 2027 <u@example.org>"):
            gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        fprs = [line.split(":")[9] for line in gpg(home, "--with-colons", "--list-keys").splitlines()
                if line.startswith("fpr:")]
        yield home, fprs
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)


@pytest.mark.integration
def test_public_keys_become_a_binary_keyring(keys: tuple[Path, list[str]], tmp_path: Path) -> None:
    home, (old, new) = keys
    armored = gpg(home, "--armor", "--export", old).encode()
    keyring, fprs = update_remote.public_keyring(armored, "key.asc")
    assert fprs == [old] and not keyring.startswith(b"-----BEGIN")
    # two keys trusted during a rotation: two armored blocks in one file, or one binary export of both
    both = armored + gpg(home, "--armor", "--export", new).encode()
    assert sorted(update_remote.public_keyring(both, "keys.asc")[1]) == sorted([old, new])
    binary = subprocess.run(["gpg", "--homedir", str(home), "--export", old, new], capture_output=True,
                            check=True).stdout
    ring, fprs2 = update_remote.public_keyring(binary, "keys.gpg")
    assert sorted(fprs2) == sorted([old, new])
    (tmp_path / "ring.gpg").write_bytes(ring)
    shown = subprocess.run(["gpg", "--homedir", str(tmp_path), "--with-colons", "--show-keys",
                            str(tmp_path / "ring.gpg")], capture_output=True, text=True, check=True).stdout
    assert {old, new} <= {line.split(":")[9] for line in shown.splitlines() if line.startswith("fpr:")}
    assert "sec:" not in shown


@pytest.mark.integration
def test_secret_keys_and_garbage_are_refused(keys: tuple[Path, list[str]]) -> None:
    home, (old, _) = keys
    secret = gpg(home, "--armor", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys",
                 old).encode()
    with pytest.raises(ComposeError, match="SECRET key"):
        update_remote.public_keyring(secret, "update.ostree.gpg_public_key (keys/secret.asc)")
    with pytest.raises(ComposeError, match=r"not an OpenPGP public key|holds no OpenPGP public key"):
        update_remote.public_keyring(b"hello\n", "update.ostree.gpg_public_key (keys/x.asc)")


def test_remote_file_and_the_remote_a_tree_carries(tmp_path: Path) -> None:
    conf = update_remote.remote_conf("debian-bootc", "https://updates.example.org/debian-atomic")
    assert '[remote "debian-bootc"]\nurl=https://updates.example.org/debian-atomic\ngpg-verify=true\n' in conf
    assert "gpg-verify-summary=true\ngpgkeypath=/usr/share/deb-bootc/keys/ostree.gpg\n" in conf
    root = tmp_path / "tree"
    (root / "usr/etc/ostree/remotes.d").mkdir(parents=True)
    with Tree(root) as t:
        assert update_remote.remote_in_tree(t) is None
        t.write_text("usr/etc/ostree/remotes.d/debian-bootc.conf", conf)
        assert update_remote.remote_in_tree(t) == "debian-bootc"
        t.write_text("usr/etc/ostree/remotes.d/other.conf", conf.replace("debian-bootc", "other"))
        with pytest.raises(ComposeError, match="several OSTree remotes"):
            update_remote.remote_in_tree(t)
