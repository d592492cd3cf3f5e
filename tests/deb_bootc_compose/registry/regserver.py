"""Test helpers for the registry tests: a test CA and server certificate, Debian's ``docker-registry`` served
over TLS on a free loopback port, an OpenPGP key with a passphrase, podman with private storage and
configuration, a tiny compose directory around a one-layer image."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deb_bootc_compose.oci.layout import oci_arch
from httpserve import free_port

REGISTRY = "/usr/bin/docker-registry"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(out: Path, names: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1, localhost and the host ``names``: (ca.crt, server.crt,
    server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("deb-bootc test CA")).issuer_name(_name("deb-bootc test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        *(x509.DNSName(n) for n in ("localhost", *names))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "ca.crt", out / "server.crt", out / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    cert_dir: Path  # holds ca.crt only (what clients are given)
    log: Path
    storage: Path

    def log_offset(self) -> int:
        return self.log.stat().st_size

    def blob_uploads_since(self, offset: int) -> list[str]:
        """Blob upload requests (POST …/blobs/uploads/) the registry logged after ``offset``."""
        with open(self.log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return [ln for ln in text.splitlines() if "blobs/uploads" in ln and 'http.request.method=POST' in ln
                and "response completed" in ln]

    def blob_fetches_since(self, offset: int) -> list[str]:
        """The digests of the blobs fetched (GET …/blobs/sha256:HEX answered) after ``offset``, in order."""
        with open(self.log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return [m.group(1) for ln in text.splitlines() if "http.request.method=GET" in ln and "response completed" in ln
                for m in [re.search(r'http\.request\.uri="/v2/[^"]*/blobs/(sha256:[0-9a-f]{64})"', ln)] if m]


@contextmanager
def serve_registry(workdir: Path, port: int | None = None, names: tuple[str, ...] = ()) -> Iterator[Registry]:
    """Debian's docker-registry over TLS on loopback (``port``, or a free one) with its own storage; its
    certificate also names the host ``names`` (a name the client resolves to this address); stopped at the end."""
    ca, cert, key = make_tls(workdir / "tls", names)
    cert_dir = workdir / "certs"
    cert_dir.mkdir()
    shutil.copy(ca, cert_dir / "ca.crt")
    port = port or free_port()
    storage, log = workdir / "storage", workdir / "registry.log"
    config = workdir / "config.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}},
        "http": {"addr": f"127.0.0.1:{port}", "tls": {"certificate": str(cert), "key": str(key)}},
    }))
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", cert_dir, log, storage)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_gpg_key(workdir: Path, name: str, passphrase: str) -> tuple[Path, Path]:
    """An ed25519 OpenPGP signing key protected by ``passphrase``: (secret key file, public key file)."""
    home = Path(os.path.realpath(workdir)) / f"gnupg-{name}"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase]
    try:
        subprocess.run([*gpg, "--quick-gen-key", f"{name} <{name}@registry.test>", "ed25519", "sign", "never"],
                       env=env, check=True, capture_output=True)
        secret, public = workdir / f"{name}.sec.asc", workdir / f"{name}.pub.asc"
        secret.write_bytes(subprocess.run([*gpg, "--armor", "--export-secret-keys"], env=env, check=True,
                                          capture_output=True).stdout)
        public.write_bytes(subprocess.run(["gpg", "--batch", "--armor", "--export"], env=env, check=True,
                                          capture_output=True).stdout)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)
    return secret, public


@dataclass
class Podman:
    """podman with private storage (overlay: vfs keeps a full copy of the tree per layer, minutes for a bootc
    image), run root and registries.d (through HOME): nothing under /etc touched."""

    root: Path  # storage and HOME (registries.d) live here
    runroot: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp")))  # <= 50 chars

    def __post_init__(self) -> None:
        (self.home / ".config" / "containers" / "registries.d").mkdir(parents=True, exist_ok=True)

    @property
    def home(self) -> Path:
        return self.root / "home"

    def registries_d(self, name: str, text: str) -> None:
        (self.home / ".config" / "containers" / "registries.d" / name).write_text(text)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = ["podman", "--root", str(self.root / "storage"), "--runroot", str(self.runroot),
                "--storage-driver", "overlay", "--cgroup-manager=cgroupfs", "--events-backend=file", *args]
        env = {**os.environ, "HOME": str(self.home)}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)

    def pull(self, ref: str, policy: Path, cert_dir: Path) -> subprocess.CompletedProcess[str]:
        return self.run("pull", "--signature-policy", str(policy), "--cert-dir", str(cert_dir), f"docker://{ref}")

    def close(self) -> None:
        self.run("rmi", "--all", "--force")
        shutil.rmtree(self.root / "storage", ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


def _tar_layer(files: dict[str, bytes]) -> bytes:
    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, BytesIO(data))
    return buf.getvalue()


def _tiny_layout(layout: Path, content: bytes, arch: str, version: str) -> None:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict[str, object]:
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return {"digest": f"sha256:{h}", "size": len(data)}

    layer = _tar_layer({"etc/label": content})
    goarch, variant = oci_arch(arch)
    config = {"architecture": goarch, "os": "linux", "config": {}, **({"variant": variant} if variant else {}),
              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **blob(json.dumps(config).encode())},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}]}
    entry = blob(json.dumps(manifest).encode())
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **entry,
         "annotations": {"org.opencontainers.image.ref.name": version}}]}))


def tiny_compose(target: Path, label: str, version: str = "1", arches: tuple[str, ...] = ("amd64",)) -> Path:
    """A FINISHED compose directory whose images (base/ARCH) are one-file layers: ``label`` makes the digests
    differ. Shaped like a real compose's (ComposePaths), for the push tests that need no real OS."""
    top = target / f"tiny-{label}-{version}-20260101.t.0"
    for arch in arches:
        _tiny_layout(top / "compose" / "base" / arch / "oci" / "layout", f"{label} {arch}".encode(), arch, version)
    (top / "metadata").mkdir()
    (top / "metadata" / "manifest.yaml").write_text(
        f"name: tiny\nversion: '{version}'\nsuite: trixie\nsources: [{{url: http://deb.debian.org/debian}}]\n"
        f"arches: [{', '.join(arches)}]\n")
    (top / "STATUS").write_text("FINISHED\n")
    return top


def layout_digest(topdir: Path, variant: str = "base", arch: str = "amd64") -> str:
    index = json.loads((topdir / "compose" / variant / arch / "oci" / "layout" / "index.json").read_text())
    return str(index["manifests"][0]["digest"])
