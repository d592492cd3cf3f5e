"""Pure logic of the registry side: the cosign key format, the policy documents, destinations and tags, the
prepare step's files, skopeo's failures in one line. (Real skopeo, podman and a registry:
test_registry_push.py and test_registry_sigstore.py.)"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deb_bootc_compose.cli import main
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.prepare import registry_policy
from deb_bootc_compose.prepare.base import PrepareJob
from deb_bootc_compose.registry import keys, sigstore_attach
from deb_bootc_compose.registry.images import ComposeImage, PushError, destinations, index_destinations
from deb_bootc_compose.registry.policy import (
    OPENPGP,
    SIGSTORE,
    PolicyError,
    Trust,
    key_kind,
    merged,
    policy,
    registries_d,
)
from deb_bootc_compose.registry.push import key_format
from deb_bootc_compose.registry.skopeo import blob_counts, explain

PASS = b"correct horse"


@pytest.fixture(scope="module")
def pair() -> keys.KeyPair:
    return keys.generate(PASS)


def _pem_body(pem: bytes, kind: str) -> bytes:
    text = pem.decode()
    assert text.startswith(f"-----BEGIN {kind}-----\n") and text.endswith(f"-----END {kind}-----\n")
    lines = text.strip().splitlines()[1:-1]
    assert all(len(line) <= 64 for line in lines)
    return base64.b64decode("".join(lines))


def test_private_key_is_cosigns_encrypted_document(pair: keys.KeyPair) -> None:
    doc = json.loads(_pem_body(pair.private_pem, keys.SIGSTORE_PEM))
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 32
    assert doc["cipher"]["name"] == "nacl/secretbox" and len(base64.b64decode(doc["cipher"]["nonce"])) == 24
    der = keys.decrypt(json.dumps(doc).encode(), PASS)
    key = serialization.load_der_private_key(der, password=None)  # PKCS#8
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert len(base64.b64decode(doc["ciphertext"])) == len(der) + 16  # the Poly1305 tag, as Go's secretbox.Seal
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public == pair.public_pem


def test_key_files_mode_and_no_overwrite(tmp_path: Path, pair: keys.KeyPair) -> None:
    old = os.umask(0)
    try:
        private, public = keys.write_pair(tmp_path / "reg", pair)
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and stat.S_IMODE(public.stat().st_mode) == 0o644
    before = private.read_bytes()
    with pytest.raises(keys.SigningKeyError, match="refusing to overwrite"):
        keys.write_pair(tmp_path / "reg", keys.generate(PASS))
    assert private.read_bytes() == before
    (tmp_path / "other.pub").write_text("x")  # one of the two exists: nothing is written
    with pytest.raises(keys.SigningKeyError, match="exists"):
        keys.write_pair(tmp_path / "other", pair)
    assert not (tmp_path / "other.key").exists()


def test_load_sign_verify_and_wrong_passphrase(tmp_path: Path, pair: keys.KeyPair) -> None:
    private, public = keys.write_pair(tmp_path / "k", pair)
    key = keys.load_private(private, PASS)
    data = sigstore_attach.payload("registry.example.org/os/base:13", "sha256:" + "a" * 64, timestamp=1)
    sig = base64.b64decode(sigstore_attach.sign(key, data))
    keys.load_public(public).verify(sig, data, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(keys.WrongPassphrase):
        keys.load_private(private, b"wrong")
    with pytest.raises(keys.SigningKeyError, match="no PEM block"):
        keys.load_private(public, PASS)
    with pytest.raises(keys.SigningKeyError, match="empty passphrase"):
        keys.generate(b"")


def test_tampered_scrypt_parameters_are_refused(pair: keys.KeyPair) -> None:
    doc = json.loads(_pem_body(pair.private_pem, keys.SIGSTORE_PEM))
    doc["kdf"]["params"]["N"] = 1 << 30  # a DoS through the key file
    with pytest.raises(keys.SigningKeyError, match="scrypt parameters"):
        keys.decrypt(json.dumps(doc).encode(), PASS)


def test_passphrase_file_is_its_first_line(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"two words\nignored\n")
    assert keys.read_passphrase(f) == b"two words"
    f.write_bytes(b"\n")
    with pytest.raises(keys.SigningKeyError, match="empty"):
        keys.read_passphrase(f)
    with pytest.raises(keys.SigningKeyError, match="cannot read"):
        keys.read_passphrase(tmp_path / "missing")
    os.mkfifo(tmp_path / "fifo")  # a FIFO given as the passphrase file is refused, never waited on
    with pytest.raises(keys.SigningKeyError, match="is not a regular file: not a passphrase file"):
        keys.read_passphrase(tmp_path / "fifo")
    f.write_bytes(b"x" * (keys.MAX_PASSPHRASE_FILE + 1))
    with pytest.raises(keys.SigningKeyError, match="is larger than"):
        keys.read_passphrase(f)


def test_keygen_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pass").write_text("s3cret\n")
    argv = ["keygen", "--output", str(tmp_path / "reg"), "--passphrase-file", str(tmp_path / "pass")]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "reg.pub")
    keys.load_private(tmp_path / "reg.key", b"s3cret")
    assert main(argv) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_signature_layout_is_a_cosign_attachment(tmp_path: Path) -> None:
    digest = "sha256:" + "b" * 64
    assert sigstore_attach.attachment_tag(digest) == "sha256-" + "b" * 64 + ".sig"
    data = sigstore_attach.payload("r.example/x/y:1", digest, timestamp=5)
    assert json.loads(data)["critical"] == {"identity": {"docker-reference": "r.example/x/y:1"},
                                            "image": {"docker-manifest-digest": digest},
                                            "type": "cosign container image signature"}
    mdigest = sigstore_attach.write_layout(tmp_path, [(data, "c2ln")])
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["manifests"][0]["digest"] == mdigest
    manifest = json.loads((tmp_path / "blobs" / "sha256" / mdigest.split(":")[1]).read_text())
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert layer["annotations"] == {"dev.cosignproject.cosign/signature": "c2ln"}
    assert (tmp_path / "blobs" / "sha256" / layer["digest"].split(":")[1]).read_bytes() == data


def test_policy_requires_the_key_for_the_repository_only() -> None:
    doc = policy([Trust("r.example:5000/os/base", "/usr/share/deb-bootc/keys/registry.pub", SIGSTORE)])
    assert doc["default"] == [{"type": "insecureAcceptAnything"}]
    assert doc["transports"]["docker"] == {"r.example:5000/os/base": [
        {"type": "sigstoreSigned", "keyPath": "/usr/share/deb-bootc/keys/registry.pub",
         "signedIdentity": {"type": "matchRepository"}}]}
    gpg = policy([Trust("r.example/os/base", "/k.asc", OPENPGP)], default_reject=True)
    assert gpg["default"] == [{"type": "reject"}]
    # a maintainer's locked-down default (their own policy.json through files:) is kept by the merge
    assert merged({"default": [{"type": "reject"}]}, [Trust("r.example/os/base", "/k.asc", OPENPGP)])[
        "default"] == [{"type": "reject"}]
    assert gpg["transports"]["docker"]["r.example/os/base"][0]["type"] == "signedBy"
    assert gpg["transports"]["docker"]["r.example/os/base"][0]["keyType"] == "GPGKeys"


def test_policy_merges_into_the_images_own() -> None:
    debian = {"default": [{"type": "insecureAcceptAnything"}],
              "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
                             "docker": {"r.example/os/base": [{"type": "insecureAcceptAnything"}],
                                        "quay.io/other": [{"type": "reject"}]}}}
    out = merged(debian, [Trust("r.example/os/base", "/k.pub", SIGSTORE)])
    assert out["transports"]["docker-daemon"] == debian["transports"]["docker-daemon"]
    assert out["transports"]["docker"]["quay.io/other"] == [{"type": "reject"}]
    assert out["transports"]["docker"]["r.example/os/base"][0]["type"] == "sigstoreSigned"
    with pytest.raises(PolicyError, match="default"):
        merged({"transports": {}}, [])


def test_registries_d_and_key_kinds() -> None:
    assert registries_d(["r.example/a", "r.example/b"], SIGSTORE) == (
        b'docker:\n  "r.example/a":\n    use-sigstore-attachments: true\n'
        b'  "r.example/b":\n    use-sigstore-attachments: true\n')
    assert b'lookaside: "https://sigs.example/x"' in registries_d(["r.example/a"], OPENPGP, "https://sigs.example/x")
    with pytest.raises(PolicyError, match="lookaside"):
        registries_d(["r.example/a"], OPENPGP)
    assert key_kind(b"-----BEGIN PUBLIC KEY-----\n") == SIGSTORE
    assert key_kind(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n") == OPENPGP
    assert key_kind(bytes([0x99, 0x00])) == OPENPGP
    with pytest.raises(PolicyError):
        key_kind(b"ssh-ed25519 AAAA")


def _manifest(**update: Any) -> Manifest:
    data: dict[str, Any] = {"name": "debian-bootc", "version": "13", "suite": "trixie",
                            "sources": [{"url": "http://deb.debian.org/debian"}],
                            "variants": {"base": {}, "desktop": {}}}
    if update:
        data["update"] = update
    return Manifest.model_validate(data)


def _img(variant: str, arch: str = "amd64") -> ComposeImage:
    return ComposeImage(variant, arch, Path("/x"), "13", "sha256:" + "c" * 64)


def test_destinations_and_tags() -> None:
    m = _manifest(registry={"name": "r.example/os/{variant}", "public_key": "k.pub"})
    out = destinations(m, [_img("base"), _img("desktop")], None)
    assert [(d.repository, d.tags) for d in out.values()] == [("r.example/os/base", ("13", "latest")),
                                                              ("r.example/os/desktop", ("13", "latest"))]
    given = destinations(m, [_img("base")], "localhost:5000/{name}-{variant}:rc1")
    assert [(d.repository, d.tags, d.host) for d in given.values()] == [
        ("localhost:5000/debian-bootc-base", ("rc1", "latest"), "localhost:5000")]
    arches = destinations(m, [_img("base"), _img("base", "arm64")], "r.example/os/base")
    assert sorted(d.tags for d in arches.values()) == [("13-amd64", "latest-amd64"), ("13-arm64", "latest-arm64")]
    idx = index_destinations(m, [_img("base"), _img("base", "arm64")], "r.example/os/base")
    assert [(v, d.repository, d.tags, [i.arch for i in members]) for v, (d, members) in idx.items()] == [
        ("base", "r.example/os/base", ("13", "latest"), ["amd64", "arm64"])]
    assert index_destinations(m, [_img("base")], "r.example/os/base") == {}
    with pytest.raises(PushError, match=r"leave \{arch\} out"):
        destinations(m, [_img("base"), _img("base", "arm64")], "r.example/os/base-{arch}")
    with pytest.raises(PushError, match="several variants"):
        destinations(m, [_img("base"), _img("desktop")], "r.example/os/one")
    with pytest.raises(PushError, match=r"update\.registry\.name"):
        destinations(_manifest(), [_img("base")], None)
    with pytest.raises(PushError, match="digest"):
        destinations(m, [_img("base")], "r.example/os@sha256:" + "d" * 64)
    with pytest.raises(PushError, match="unknown field"):
        destinations(m, [_img("base")], "r.example/{release}")
    with pytest.raises(PushError, match="not a registry repository"):
        destinations(m, [_img("base")], "https://R.example/os")


def test_prepare_step_files(pair: keys.KeyPair) -> None:
    m = _manifest(registry={"name": "r.example/os/{variant}", "public_key": "k.pub"})
    files = registry_policy.files(m, "amd64", b"\n" + pair.public_pem, None)
    assert files["usr/share/deb-bootc/keys/registry.pub"] == pair.public_pem  # re-encoded: only the key
    doc = json.loads(files["etc/containers/policy.json"])
    assert sorted(doc["transports"]["docker"]) == ["r.example/os/base", "r.example/os/desktop"]
    assert doc["transports"]["docker"]["r.example/os/base"][0]["keyPath"] == "/usr/share/deb-bootc/keys/registry.pub"
    assert files["etc/containers/registries.d/deb-bootc.yaml"].count(b"use-sigstore-attachments: true") == 2
    gpg = _manifest(registry={"name": "r.example/os/{variant}", "public_key": "k.asc",
                              "lookaside": "https://sigs.example/os"})
    files = registry_policy.files(gpg, "amd64", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n...", None)
    assert "usr/share/deb-bootc/keys/registry.asc" in files
    assert b"https://sigs.example/os" in files["etc/containers/registries.d/deb-bootc.yaml"]
    two = registry_policy.files(m, "amd64", pair.public_pem + keys.generate(PASS).public_pem, None)
    assert sorted(k for k in two if k.endswith(".pub")) == ["usr/share/deb-bootc/keys/registry-1.pub",
                                                            "usr/share/deb-bootc/keys/registry-2.pub"]
    rule = json.loads(two["etc/containers/policy.json"])["transports"]["docker"]["r.example/os/base"][0]
    assert rule["keyPaths"] == ["/usr/share/deb-bootc/keys/registry-1.pub", "/usr/share/deb-bootc/keys/registry-2.pub"]
    assert "keyPath" not in rule
    no_lookaside = _manifest(registry={"name": "r.example/os/{variant}", "public_key": "k.asc"})
    with pytest.raises(ComposeError, match=r"update.registry: .*lookaside"):
        registry_policy.files(no_lookaside, "amd64", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", None)
    with pytest.raises(ComposeError, match=r"update\.registry"):
        registry_policy.files(m, "amd64", b"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n", None)


def test_signing_key_format(tmp_path: Path, pair: keys.KeyPair) -> None:
    (tmp_path / "s.key").write_bytes(pair.private_pem)
    (tmp_path / "g.key").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n")
    (tmp_path / "x.key").write_text("hello")
    assert key_format(tmp_path / "s.key") == SIGSTORE
    assert key_format(tmp_path / "g.key") == OPENPGP
    with pytest.raises(PushError, match="neither"):
        key_format(tmp_path / "x.key")
    with pytest.raises(PushError, match="cannot read"):
        key_format(tmp_path / "missing.key")


def test_skopeo_failures_in_one_line() -> None:
    refused = ('time="2026-01-01T00:00:00Z" level=fatal msg="writing blob: pinging container registry 127.0.0.1:9: '
               'Get \\"https://127.0.0.1:9/v2/\\": dial tcp 127.0.0.1:9: connect: connection refused"')
    assert "unreachable" in explain(refused, "pushing", "127.0.0.1:9")
    tls = 'level=fatal msg="… x509: certificate signed by unknown authority"'
    assert "--cert-dir" in explain(tls, "pushing", "h:1")
    assert "skopeo login h:1" in explain("unauthorized: authentication required", "pushing", "h:1")
    debug = 'time="2026-01-01T00:00:00Z" level=debug msg="Looking for TLS certificates in /etc/docker/certs.d"\n'
    assert explain(debug + "Error: disk quota exceeded", "pushing", "h:1") == (
        "pushing: skopeo failed: Error: disk quota exceeded")  # the last line that is not a debug line
    assert explain(debug + "Error: manifest unknown", "reading", "h:1").startswith(
        "reading: no such image (Error: manifest unknown); check its name and tag")
    out = ("Copying blob sha256:aaa\nCopying blob sha256:bbb\n"
           'time="2026-01-01T00:00:00Z" level=debug msg="Skipping blob sha256:bbb (already present):"\n'
           "Copying blob sha256:ccc\n"
           'time="2026-01-01T00:00:00Z" level=debug msg="Skipping blob sha256:ccc (already present):"\n'
           "Copying config sha256:ddd\n")
    assert blob_counts(out) == (1, 2)


def test_prepare_step_writes_into_the_tree(tmp_path: Path, pair: keys.KeyPair) -> None:
    root = tmp_path / "tree"
    (root / "etc" / "containers").mkdir(parents=True)
    debian = {"default": [{"type": "insecureAcceptAnything"}],
              "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}}
    (root / "etc" / "containers" / "policy.json").write_text(json.dumps(debian))
    (root / "etc" / "containers" / "registries.d").symlink_to("/tmp")  # planted: replaced, never followed
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "registry.pub").write_bytes(pair.public_pem)
    manifest = _manifest(registry={"name": "r.example/os/{variant}", "public_key": "keys/registry.pub"})
    ctx = SimpleNamespace(manifest=manifest, manifest_path=tmp_path / "manifest.yaml", allow_host_paths=False)
    with Tree(root) as tree:
        job = PrepareJob(ctx=cast(Any, ctx), vs=cast(Any, SimpleNamespace(variant="base", arch="amd64")), tree=tree,
                         log_path=tmp_path / "log", progress=print, write_log=print)
        registry_policy.run(job)
    doc = json.loads((root / "etc" / "containers" / "policy.json").read_text())
    assert doc["transports"]["docker-daemon"] == debian["transports"]["docker-daemon"]
    assert doc["transports"]["docker"]["r.example/os/base"][0]["type"] == "sigstoreSigned"
    assert (root / "usr" / "share" / "deb-bootc" / "keys" / "registry.pub").read_bytes() == pair.public_pem
    regd = root / "etc" / "containers" / "registries.d"
    assert regd.is_dir() and not regd.is_symlink()
    assert b"use-sigstore-attachments: true" in (regd / "deb-bootc.yaml").read_bytes()
    assert not Path("/tmp/deb-bootc.yaml").exists()
    ctx.manifest = _manifest()  # no update.registry: nothing written
    (root / "etc" / "containers" / "policy.json").write_text(json.dumps(debian))
    with Tree(root) as tree:
        registry_policy.run(PrepareJob(ctx=cast(Any, ctx), vs=cast(Any, SimpleNamespace(variant="base", arch="amd64")),
                                       tree=tree, log_path=tmp_path / "log", progress=print, write_log=print))
    assert json.loads((root / "etc" / "containers" / "policy.json").read_text()) == debian
