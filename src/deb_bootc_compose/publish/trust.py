"""Whether the machines that will see a commit can verify it: checked before publish touches DIR.

An image made with ``update.ostree`` carries the keys its machines trust in
``/usr/share/deb-bootc/keys/ostree.gpg`` (:mod:`deb_bootc_compose.prepare.update_remote`). Two kinds of machine
verify a published commit with such a keyring:

* those running the **previously published** commit of the ref (they upgrade to this one): they verify with
  the previous commit's keyring;
* those installed from **this** compose's images (and those that updated to it): they verify the next updates,
  and this commit when it is pulled again, with its own keyring.

So at least one signing key must be in each of these keyrings, else publish refuses: signing with a key the
manifest does not name (a mix-up of keys), or dropping the old key too early during a rotation
(docs/publishing.md, "Key rotation"), would leave machines with updates they refuse. A commit without the
keyring (a compose without ``update.ostree``) constrains nothing: no machine follows a remote from it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.errors import ComposeError, PublishError
from deb_bootc_compose.prepare.update_remote import KEY_FILE, MAX_KEY_BYTES, public_keyring
from debsandbox.commands import run

KEYRING = f"/{KEY_FILE}"


@dataclass(frozen=True)
class Trusted:
    """The primary-key fingerprints a commit's image trusts for its updates (None: it carries no keyring)."""

    commit: str
    fingerprints: tuple[str, ...] | None


def trusted_keys(repo: Path, commit: str) -> Trusted:
    """The keys in ``commit``'s ``/usr/share/deb-bootc/keys/ostree.gpg`` (read from ``repo``, size-bounded)."""
    listed = run(["ostree", f"--repo={repo}", "ls", "-C", commit, KEYRING], check=False, capture=True)
    if listed.returncode != 0:
        if "No such file or directory" in listed.output:
            return Trusted(commit, None)
        raise PublishError(f"cannot read {KEYRING} of commit {commit} in {repo}: {listed.output.strip()[-500:]}")
    fields = listed.output.split()
    if not fields or not fields[0].startswith("-") or len(fields) < 4 or not fields[3].isdigit():
        raise PublishError(f"commit {commit}: {KEYRING} is not a regular file ({listed.output.strip()[:200]})")
    if int(fields[3]) > MAX_KEY_BYTES:
        raise PublishError(f"commit {commit}: {KEYRING} is {fields[3]} bytes, larger than any keyring "
                           f"({MAX_KEY_BYTES})")
    done = subprocess.run(["ostree", f"--repo={repo}", "cat", commit, KEYRING], capture_output=True, timeout=120)
    if done.returncode != 0:
        raise PublishError(f"cannot read {KEYRING} of commit {commit} in {repo}: "
                           f"{done.stderr.decode(errors='replace').strip()[-500:]}")
    data = done.stdout[:MAX_KEY_BYTES + 1]
    try:
        _, fprs = public_keyring(data, f"{KEYRING} of commit {commit}")
    except ComposeError as exc:
        raise PublishError(str(exc)) from None
    return Trusted(commit, tuple(f.upper() for f in fprs))


def check_trusted(trusted: Trusted, signing: tuple[str, ...], label: str, whose: str) -> None:
    """PublishError unless one of the ``signing`` fingerprints is in ``trusted`` (when it has a keyring)."""
    if trusted.fingerprints is None or set(signing) & set(trusted.fingerprints):
        return
    raise PublishError(
        f"{label}: {whose} (commit {trusted.commit[:12]}) trust only key(s) {', '.join(trusted.fingerprints)} "
        f"({KEYRING}, from the manifest's update.ostree.gpg_public_key), but publish signs with "
        f"{', '.join(signing)}: they would refuse this update. Sign with a key they trust (during a key rotation, "
        "with the old and the new key together: docs/publishing.md, 'Key rotation'); nothing was published")
