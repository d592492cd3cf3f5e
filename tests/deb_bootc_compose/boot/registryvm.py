"""The registry side of the VM update test: pushes made as a user makes them (``deb-bootc-compose push``) under
the name the guest pulls from, and a guest told where that registry is and which CA it uses.

The name (``registry.test:RPORT``) matters: a sigstore signature names the repository the image was pushed
as, and the image's policy (``signedIdentity: matchRepository``) accepts it only for that repository. So the
host pushes as ``registry.test`` too: the push runs in a private mount namespace whose ``/etc/hosts`` (a copy
of the host's plus ``127.0.0.1 registry.test``) is bind-mounted over the real one, which stays untouched;
the guest gets ``10.0.2.2 registry.test`` in its own ``/etc/hosts``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from compose_helpers import CLI, REPO
from updatesource import HOST_FROM_GUEST, REGISTRY_NAME, RegistryKey

from deb_bootc_compose.boot.vm import VirtualMachine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "registry"))
from regserver import Registry, serve_registry

# run a command with FILE bind-mounted over /etc/hosts (in the namespace unshare made): sh -c SCRIPT FILE CMD...
WITH_HOSTS = 'mount --bind "$0" /etc/hosts && exec "$@"'


def private_hosts(workdir: Path) -> Path:
    """The host's /etc/hosts plus REGISTRY_NAME on loopback, for the push's namespace."""
    hosts = workdir / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text().rstrip("\n") + f"\n127.0.0.1 {REGISTRY_NAME}\n")
    return hosts


def push(compose: Path, registry: Registry, hosts: Path, destination: str | None = None,
         key: RegistryKey | None = None) -> str:
    """``deb-bootc-compose push COMPOSE [DESTINATION] --cert-dir …`` (signed with ``key``), in a private mount
    namespace where REGISTRY_NAME is 127.0.0.1; its output."""
    unshare = ["unshare", "--mount", "--propagation", "private", *([] if os.geteuid() == 0 else ["--map-root-user"])]
    argv = [*CLI, "push", str(compose), *([destination] if destination else []), "--cert-dir", str(registry.cert_dir)]
    if key is not None:
        argv += ["--sign-key", str(key.secret), "--sign-passphrase-file", str(key.passphrase)]
    done = subprocess.run([*unshare, "--", "sh", "-c", WITH_HOSTS, str(hosts), *argv], capture_output=True,
                          text=True, timeout=1800, cwd=REPO)
    assert done.returncode == 0, f"push {compose} {destination or ''}: {done.stdout}{done.stderr[-3000:]}"
    return done.stdout


def image_layers(compose: Path, variant: str = "base", arch: str = "amd64") -> set[str]:
    """The layer digests of the compose's OCI image (what a machine switching to it fetches)."""
    layout = compose / "compose" / variant / arch / "oci" / "layout"
    index = json.loads((layout / "index.json").read_text())
    algo, hexd = index["manifests"][0]["digest"].split(":")
    manifest = json.loads((layout / "blobs" / algo / hexd).read_text())
    return {layer["digest"] for layer in manifest["layers"]}


def trust_registry(vm: VirtualMachine, host: str, ca: Path) -> None:
    """In the guest: REGISTRY_NAME is the host (10.0.2.2), and ``host``'s certificates come from the test CA
    (containers' per-registry directory /etc/containers/certs.d/HOST:PORT/)."""
    b64 = base64.b64encode(ca.read_bytes()).decode()
    vm.check(f"echo '{HOST_FROM_GUEST} {REGISTRY_NAME}' >> /etc/hosts && getent hosts {REGISTRY_NAME}")
    certs = f"/etc/containers/certs.d/{host}"
    vm.check(f"mkdir -p {certs} && echo {b64} | base64 -d > {certs}/ca.crt")


__all__ = ["Registry", "image_layers", "private_hosts", "push", "serve_registry", "trust_registry"]
