"""publish refuses to sign with keys the machines would not trust (publish/trust.py): real commits whose trees
carry ``/usr/share/deb-bootc/keys/ostree.gpg`` as compose's update-remote step writes it, real OpenPGP keys, a
real ostree client that verifies; the refusals leave DIR as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from pubhelpers import KeyFiles, client, make_key, pull, snapshot, tiny_compose

from deb_bootc_compose.cli import main
from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.prepare.update_remote import KEY_FILE, public_keyring
from deb_bootc_compose.publish import KeySpec, publish
from httpserve import serve_directory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyFiles]:
    where = tmp_path_factory.mktemp("trust-keys")
    return {name: make_key(where, name) for name in ("old", "new", "stranger")}


def keyring(*trusted: KeyFiles) -> bytes:
    """What the update-remote step puts in the image for a manifest key file holding these public keys."""
    data = b"".join(k.public.read_bytes() for k in trusted)
    return public_keyring(data, "test keys")[0]


def image(target: Path, n: int, *trusted: KeyFiles) -> Path:
    files = {"usr/etc/os-release": f"VERSION_ID={n}\n".encode()}
    if trusted:
        files[KEY_FILE] = keyring(*trusted)
    return tiny_compose(target, n, files)


def sign_with(*keys: KeyFiles) -> KeySpec:
    return KeySpec(files=tuple(k.secret for k in keys))


def test_a_key_the_image_does_not_trust_is_refused(keys: dict[str, KeyFiles], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    compose = image(tmp_path / "target", 1, keys["old"])
    dest = tmp_path / "pub"
    rc = main(["publish", str(compose), "--to", str(dest), "--gpg-key", str(keys["stranger"].secret)])
    err = capsys.readouterr().err
    assert rc == 2, err  # bad input: nothing touched
    assert "machines installed from or updated to this compose" in err and keys["old"].fingerprint in err, err
    assert keys["stranger"].fingerprint in err and "nothing was published" in err, err
    assert not dest.exists()
    # the key the manifest names: published, and a client trusting it verifies
    result = publish(compose, dest, sign_with(keys["old"]))
    assert result.changed and result.refs[0].signed


def test_rotation_needs_both_keys_while_machines_trust_only_the_old(keys: dict[str, KeyFiles], tmp_path: Path
                                                                   ) -> None:
    target, dest = tmp_path / "target", tmp_path / "pub"
    v1 = image(target, 1, keys["old"])
    v2 = image(target, 2, keys["old"], keys["new"])  # step 1 of the rotation: the image trusts both
    v3 = image(target, 3, keys["new"])  # step 3: only the new key
    publish(v1, dest, sign_with(keys["old"]))
    before = snapshot(dest)
    # v2 signed with the new key alone: machines on v1 (old key only) would refuse it
    with pytest.raises(PublishError, match="machines running the previously published commit") as info:
        publish(v2, dest, sign_with(keys["new"]))
    assert info.value.untouched and snapshot(dest) == before
    publish(v2, dest, sign_with(keys["old"], keys["new"]))
    # v3 trusts only the new key; machines on v2 trust both: the new key alone is right now
    with pytest.raises(PublishError, match="machines installed from or updated to this compose"):
        publish(v3, dest, sign_with(keys["old"]))
    result = publish(v3, dest, sign_with(keys["new"]))
    assert result.refs[0].new
    # and a machine that trusts only the new key pulls v3 with its signature verified
    with serve_directory(dest) as url:
        repo = client(tmp_path / "machine", url, keys["new"].public)
        done = pull(repo)
        assert done.returncode == 0, done.stderr


def test_a_compose_without_keyring_constrains_nothing(keys: dict[str, KeyFiles], tmp_path: Path) -> None:
    compose = image(tmp_path / "target", 1)
    assert publish(compose, tmp_path / "pub", sign_with(keys["stranger"])).refs[0].signed
