"""Sigstore signing keys in cosign's format, made without cosign (not in bookworm) for skopeo to sign with.

The format (sigstore/cosign ``pkg/cosign/keys.go``, sigstore/sigstore ``pkg/cryptoutils/privatekey.go``, and
the ``encrypted`` package of secure-systems-lab/go-securesystemslib they use):

* private key: an ECDSA P-256 key as PKCS#8 DER, encrypted into a JSON document
  ``{"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": B64}, "cipher": {"name":
  "nacl/secretbox", "nonce": B64}, "ciphertext": B64}`` (scrypt derives the 32-byte secretbox key from the
  passphrase and a 32-byte salt; the nonce is 24 random bytes; base64 as Go's encoding/json writes []byte),
  in a PEM block ``ENCRYPTED SIGSTORE PRIVATE KEY`` (cosign's older ``ENCRYPTED COSIGN PRIVATE KEY`` is read
  too). N=32768 is the "legacy" strength: the go-securesystemslib that skopeo 1.9 carries accepts only it.
* public key: PKIX (SubjectPublicKeyInfo) DER in a PEM block ``PUBLIC KEY``: what a ``sigstoreSigned``
  policy's ``keyPath`` names.

Passphrases are read from a file the way containers/image reads ``--sign-passphrase-file``: its first line,
without the newline; an empty one is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from debarchive.safeio import UnsafeEntry, read_named_file

SIGSTORE_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PEM = "ENCRYPTED COSIGN PRIVATE KEY"
PUBLIC_PEM = "PUBLIC KEY"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
SALT_SIZE, NONCE_SIZE, KEY_SIZE = 32, 24, 32
MAX_KEY_FILE = 64 * 1024  # a key file is a few hundred bytes; refuse to read anything large
MAX_PASSPHRASE_FILE = 64 * 1024


class SigningKeyError(ValueError):
    """A key or passphrase file is missing, unreadable, malformed, or the passphrase is wrong."""


class WrongPassphrase(SigningKeyError):
    """The passphrase does not decrypt the private key."""


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes  # encrypted
    public_pem: bytes


def read_passphrase(path: Path) -> bytes:
    """The first line of ``path`` (as containers/image reads ``--sign-passphrase-file``), never empty."""
    data = _read_small(path, "passphrase file", MAX_PASSPHRASE_FILE)
    line = data.split(b"\n", 1)[0]
    if not line:
        raise SigningKeyError(f"the passphrase file {path} is empty (its first line is the passphrase)")
    return line


def _kdf(passphrase: bytes, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bytes:
    return Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encrypt(plaintext: bytes, passphrase: bytes) -> bytes:
    """go-securesystemslib's ``encrypted.Encrypt``: the JSON document (scrypt + nacl/secretbox)."""
    salt = secrets.token_bytes(SALT_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    box = nacl.secret.SecretBox(_kdf(passphrase, salt))
    sealed = box.encrypt(plaintext, nonce).ciphertext  # Poly1305 tag + ciphertext, as Go's secretbox.Seal
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}, "salt": _b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(sealed),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decrypt(document: bytes, passphrase: bytes) -> bytes:
    """go-securesystemslib's ``encrypted.Decrypt``; only the parameters skopeo accepts are accepted."""
    try:
        doc = json.loads(document)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = kdf["params"]
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(doc["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SigningKeyError(f"not an encrypted sigstore key document ({exc!r})") from None
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise SigningKeyError(f"unknown key encryption {kdf.get('name')!r}/{cipher.get('name')!r} "
                        "(expected scrypt/nacl/secretbox)")
    if (params.get("N"), params.get("r"), params.get("p")) != (SCRYPT_N, SCRYPT_R, SCRYPT_P):
        raise SigningKeyError(f"unexpected scrypt parameters {params!r} (skopeo accepts N={SCRYPT_N}, r={SCRYPT_R}, "
                        f"p={SCRYPT_P} only)")
    if len(nonce) != NONCE_SIZE:
        raise SigningKeyError(f"the nonce has {len(nonce)} bytes, not {NONCE_SIZE}")
    try:
        return nacl.secret.SecretBox(_kdf(passphrase, salt)).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase("wrong passphrase: it does not decrypt the private key") from None


def _pem(kind: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def _unpem(data: bytes, kinds: tuple[str, ...], where: str) -> bytes:
    text = data.decode("ascii", errors="replace")
    for kind in kinds:
        begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
        start = text.find(begin)
        if start < 0:
            continue
        stop = text.find(end, start)
        if stop < 0:
            raise SigningKeyError(f"{where}: the PEM block {kind!r} has no END line")
        try:
            return base64.b64decode("".join(text[start + len(begin):stop].split()), validate=True)
        except binascii.Error:
            raise SigningKeyError(f"{where}: the PEM block {kind!r} is not base64") from None
    raise SigningKeyError(f"{where}: no PEM block {' or '.join(repr(k) for k in kinds)} (is it a sigstore key made by "
                    "`deb-bootc-compose keygen` or `cosign generate-key-pair`?)")


def generate(passphrase: bytes) -> KeyPair:
    """A new ECDSA P-256 key pair: the private key encrypted with ``passphrase``, both PEM-encoded."""
    if not passphrase:
        raise SigningKeyError("refusing an empty passphrase for the private key")
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(_pem(SIGSTORE_PEM, encrypt(der, passphrase)), public)


def _read_small(path: Path, what: str, limit: int = MAX_KEY_FILE) -> bytes:
    try:
        return read_named_file(path, limit)
    except UnsafeEntry as exc:
        raise SigningKeyError(f"{path} {exc.what}: not a {what}") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read the {what} {path}: {exc.strerror}") from None


def load_private(path: Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Decrypt a private key file (checks the passphrase before skopeo is run with it)."""
    der = decrypt(_unpem(_read_small(path, "private key"), (SIGSTORE_PEM, COSIGN_PEM), str(path)), passphrase)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as exc:
        raise SigningKeyError(f"{path}: the decrypted key is not PKCS#8 ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningKeyError(f"{path}: not an ECDSA key ({type(key).__name__})")
    return key


def parse_public(data: bytes, where: str) -> ec.EllipticCurvePublicKey:
    """A public key (PEM ``PUBLIC KEY``, ECDSA): what the image's policy trusts."""
    der = _unpem(data, (PUBLIC_PEM,), where)
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise SigningKeyError(f"{where}: not a PKIX public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningKeyError(f"{where}: not an ECDSA public key ({type(key).__name__}); sigstore keys from "
                              "`deb-bootc-compose keygen` are ECDSA P-256")
    return key


def public_pems(data: bytes, where: str) -> list[bytes]:
    """Every PEM ``PUBLIC KEY`` block of ``data`` (a file trusting several keys, during a rotation), each
    checked and re-encoded; at least one."""
    text = data.decode("ascii", errors="replace")
    begin = f"-----BEGIN {PUBLIC_PEM}-----"
    chunks = [begin + part for part in text.split(begin)[1:]]
    if not chunks:
        raise SigningKeyError(f"{where}: no PEM block 'PUBLIC KEY' (a sigstore public key from "
                              "`deb-bootc-compose keygen`)")
    return [public_pem(chunk.encode(), f"{where} (key {i + 1})") for i, chunk in enumerate(chunks)]


def load_public(path: Path) -> ec.EllipticCurvePublicKey:
    return parse_public(_read_small(path, "public key"), str(path))


def public_pem(data: bytes, where: str) -> bytes:
    """The public key in ``data``, checked and re-encoded (nothing but the PEM block)."""
    return parse_public(data, where).public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


def write_pair(prefix: Path, pair: KeyPair) -> tuple[Path, Path]:
    """``PREFIX.key`` (mode 0600) and ``PREFIX.pub``; never overwrites either (nothing written if one exists)."""
    private, public = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise SigningKeyError(f"{path} exists; refusing to overwrite a key (move it away or choose --output)")
    if not prefix.parent.is_dir():
        raise SigningKeyError(f"{prefix.parent} is not a directory")
    written: list[Path] = []
    try:
        for path, data, mode in ((private, pair.private_pem, 0o600), (public, pair.public_pem, 0o644)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            written.append(path)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)  # whatever the umask
                f.write(data)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise SigningKeyError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return private, public


__all__ = [
    "KeyPair",
    "SigningKeyError",
    "WrongPassphrase",
    "decrypt",
    "encrypt",
    "generate",
    "load_private",
    "load_public",
    "parse_public",
    "public_pem",
    "public_pems",
    "read_passphrase",
    "write_pair",
]
