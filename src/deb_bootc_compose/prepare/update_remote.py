"""The image's OSTree update remote (manifest ``update.ostree``): ``/etc/ostree/remotes.d/NAME.conf`` with
signature verification on (commits and summary) and ``gpgkeypath=`` naming the manifest's public key, kept
in ``/usr/share/deb-bootc/keys/ostree.gpg`` (a binary keyring: /usr travels with every update, so a rotated key
arrives with the image that announces it). NAME is the manifest's name; the disk phase and
``install-to-disk`` read it back from the commit (:func:`remote_in_tree`) for the deployment's origin.

trixie's libostree (2025.2) reads ``remotes.d`` from the booted deployment's /etc and honours a per-remote
``gpgkeypath`` (a file; several keys may sit in it during a key rotation). Without ``update.ostree`` the
image carries no remote at all."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.prepare.base import PrepareJob, Step
from debsandbox.commands import CommandError, run

REMOTES_D = "etc/ostree/remotes.d"
KEYS_DIR = "usr/share/deb-bootc/keys"  # beside the registry policy's key (prepare/registry_policy.py)
KEY_FILE = f"{KEYS_DIR}/ostree.gpg"
MAX_KEY_BYTES = 1 << 20  # a few keys are a few KiB; refuse to feed gpg anything large
REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def public_keyring(data: bytes, where: str) -> tuple[bytes, list[str]]:
    """A binary keyring of the public keys in ``data`` (armored or binary, one key or several) and their
    fingerprints; ComposeError for anything holding a secret key or no key at all."""
    if len(data) > MAX_KEY_BYTES:
        raise ComposeError(f"{where} is {len(data)} bytes: larger than any public key file ({MAX_KEY_BYTES})")
    with tempfile.TemporaryDirectory(prefix="deb-bootc-compose-gpg-") as home:
        src = Path(home) / "key"
        src.write_bytes(data)
        gpg = ["gpg", "--homedir", home, "--batch", "--no-autostart", "--quiet"]
        try:
            shown = run([*gpg, "--with-colons", "--show-keys", str(src)], capture=True).output
        except CommandError as exc:
            raise ComposeError(f"{where} is not an OpenPGP public key: {exc.tail.strip()[-300:]}") from None
        records = [line.split(":") for line in shown.splitlines()]
        if any(r[0] in ("sec", "ssb") for r in records):
            raise ComposeError(f"{where} holds a SECRET key: a manifest names public keys only (export it with "
                               "gpg --armor --export KEYID); the secret key goes to publish --gpg-key only")
        fprs = [r[9] for i, r in enumerate(records) if r[0] == "fpr" and i > 0 and records[i - 1][0] == "pub"]
        if not fprs:
            raise ComposeError(f"{where} holds no OpenPGP public key")
        run([*gpg, "--import", str(src)], capture=True)
        out = Path(home) / "keyring.gpg"
        run([*gpg, "--output", str(out), "--export", *fprs], capture=True)
        return out.read_bytes(), fprs


def remote_conf(name: str, url: str) -> str:
    return (f"# the update remote of this image (deb-bootc-compose, manifest update.ostree); see deb-bootc status\n"
            f'[remote "{name}"]\nurl={url}\ngpg-verify=true\ngpg-verify-summary=true\n'
            f"gpgkeypath=/{KEY_FILE}\n")


def run_step(job: PrepareJob) -> None:
    m = job.manifest
    if m.update is None or m.update.ostree is None:
        return
    name = m.name
    if not REMOTE_NAME.match(name):
        raise ComposeError(f"manifest name {name!r} cannot name an OSTree remote (letters, digits, . _ -)")
    where = f"update.ostree.gpg_public_key ({m.update.ostree.gpg_public_key})"
    keyring, fprs = public_keyring(job.manifest_file(m.update.ostree.gpg_public_key, "update.ostree.gpg_public_key"),
                                   where)
    t = job.tree
    job.own_dir(KEYS_DIR)
    t.write_bytes(KEY_FILE, keyring)
    job.own_dir(REMOTES_D)
    t.write_text(f"{REMOTES_D}/{name}.conf", remote_conf(name, m.update.ostree.url))
    job.write_log(f"{job.label}: update remote {name} -> {m.update.ostree.url}, keys {', '.join(fprs)}")


def remote_in_tree(tree: Tree) -> str | None:
    """The name of the update remote a commit's tree carries (``usr/etc`` or ``etc``), or None."""
    for etc in ("usr/etc", "etc"):
        d = f"{etc}/ostree/remotes.d"
        if not tree.is_dir(d):
            continue
        names = []
        for conf in sorted(n for n in tree.listdir(d) if n.endswith(".conf")):
            names += re.findall(r'^\[remote "([^"]+)"\]', tree.read_text(f"{d}/{conf}", errors="replace"), re.M)
        if len(names) > 1:
            raise ComposeError(f"the image carries several OSTree remotes ({', '.join(names)}) in /{d}: "
                               "which one the deployment follows is ambiguous")
        return names[0] if names else None
    return None


STEP = Step("update-remote", run_step)
