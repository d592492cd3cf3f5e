"""Where the update test's images follow their updates (the published OSTree repository, and the registry
repository), and the keys it signs with (plain module: the boot conftest and the update test import it)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

HOST_FROM_GUEST = "10.0.2.2"  # QEMU user networking (boot-test --net)
PUBLISHED_PATH = "debian-atomic"
# the registry's name on both sides: 127.0.0.1 for the host's push (a private /etc/hosts), 10.0.2.2 in the guest;
# a sigstore signature names the repository it was pushed as, so both must say the same (.test: RFC 2606)
REGISTRY_NAME = "registry.test"
REGISTRY_PATH = "debian-bootc/{variant}"


@dataclass(frozen=True)
class OpenPGPKey:
    home: Path  # a GnuPG home holding the secret key (for signing summaries in tests)
    fingerprint: str
    secret: Path  # the secret key exported to a file: what ``publish --gpg-key`` takes
    public: Path  # armored public key: what a manifest names


def make_openpgp_key(where: Path, name: str) -> OpenPGPKey:
    """An ed25519 signing key without passphrase, in a GnuPG home of its own, exported to files."""
    home = where / f"{name}-gnupg"
    home.mkdir(mode=0o700, parents=True)
    gpg = ["gpg", "--homedir", str(home), "--batch"]

    def run(*args: str) -> str:
        return subprocess.run([*gpg, *args], check=True, capture_output=True, text=True).stdout

    run("--passphrase", "", "--quick-gen-key", f"{name} <{name}@example.org>", "ed25519", "sign", "never")
    fpr = next(line.split(":")[9] for line in run("--with-colons", "--list-secret-keys").splitlines()
               if line.startswith("fpr:"))
    secret, public = where / f"{name}.sec.asc", where / f"{name}.pub.asc"
    secret.write_text(run("--armor", "--export-secret-keys", fpr))
    secret.chmod(0o600)
    public.write_text(run("--armor", "--export", fpr))
    key = OpenPGPKey(home, fpr, secret, public)
    stop_gpg_agent(key)  # at once: other tests of this worker check that no agent under its basetemp runs on
    return key


def stop_gpg_agent(key: OpenPGPKey) -> None:
    subprocess.run(["gpgconf", "--homedir", str(key.home), "--kill", "all"], capture_output=True, check=False)


@dataclass(frozen=True)
class RegistryKey:
    """A sigstore key pair made by ``deb-bootc-compose keygen``, and the file holding its passphrase."""

    secret: Path  # PREFIX.key: what ``push --sign-key`` takes
    public: Path  # PREFIX.pub: what a manifest names
    passphrase: Path


@dataclass(frozen=True)
class UpdateSource:
    port: int  # nginx listens on 127.0.0.1:port; the VM reaches it as 10.0.2.2:port
    key: OpenPGPKey  # the publisher's
    registry_port: int  # docker-registry listens on 127.0.0.1:registry_port, known as REGISTRY_NAME on both sides
    registry_key: RegistryKey

    @property
    def url(self) -> str:
        return f"http://{HOST_FROM_GUEST}:{self.port}/{PUBLISHED_PATH}"

    @property
    def registry_host(self) -> str:
        return f"{REGISTRY_NAME}:{self.registry_port}"

    @property
    def registry_name(self) -> str:
        """``update.registry.name``: the repository template of the manifest."""
        return f"{self.registry_host}/{REGISTRY_PATH}"
