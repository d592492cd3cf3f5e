"""``deb-bootc-compose push``: a compose's OCI images into a registry, with their digests, signed or not.

Each variant/arch's OCI layout is copied with ``skopeo copy --preserve-digests`` to each of its tags (the
registry keeps the compose's manifest digest; a blob the registry already has is not uploaded again). The
signing key decides the signature format:

* a sigstore key (``deb-bootc-compose keygen``): the signature is made here and pushed beside the image as
  ``REPO:sha256-<hex>.sig`` (cosign's attachment; see :mod:`.sigstore_attach` for why not by skopeo);
* an OpenPGP secret key: skopeo signs ("simple signing", ``--sign-by``) into ``--lookaside-dir``, a directory
  to serve at the URL the images' ``registries.d`` names (``update.registry.lookaside``).

A variant composed for several arches: each arch image goes to ``TAG-ARCH`` and ``latest-ARCH``, then an image
index over them (:mod:`.index`) to ``TAG`` and ``latest`` (``skopeo copy --all``), signed like the images.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from deb_bootc_compose.registry import keys, sigstore_attach
from deb_bootc_compose.registry.gpgsign import gpg_signer
from deb_bootc_compose.registry.images import (
    ComposeImage,
    Destination,
    PushError,
    destinations,
    index_destinations,
    load_compose,
)
from deb_bootc_compose.registry.index import write_index_layout
from deb_bootc_compose.registry.policy import OPENPGP, SIGSTORE
from deb_bootc_compose.registry.skopeo import Skopeo, blob_counts

UNSIGNED = "unsigned"


@dataclass
class PushOptions:
    compose: Path
    destination: str | None = None  # REGISTRY/NAME[:TAG]; default: update.registry.name
    sign_key: Path | None = None
    passphrase_file: Path | None = None
    cert_dir: Path | None = None
    tls_verify: bool = True
    lookaside_dir: Path | None = None  # OpenPGP signatures are written here
    log: Path | None = None  # skopeo's output
    progress: Callable[[str], None] = field(default=lambda _msg: None)


@dataclass(frozen=True)
class Pushed:
    variant: str
    arch: str
    repository: str
    tags: tuple[str, ...]
    digest: str
    blobs_uploaded: int
    blobs_present: int
    signature: str  # sigstore, openpgp or unsigned

    def lines(self) -> list[str]:
        sig = {SIGSTORE: "signed (sigstore)", OPENPGP: "signed (OpenPGP)"}.get(self.signature, "unsigned")
        head = (f"{self.variant}/{self.arch}: {self.repository}@{self.digest} ({sig}; {self.blobs_uploaded} blobs "
                f"uploaded, {self.blobs_present} already there)")
        return [head, *(f"  {self.repository}:{tag}" for tag in self.tags)]


def key_format(path: Path) -> str:
    """``sigstore`` or ``openpgp``, from the secret key file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise PushError(f"cannot read the signing key {path}: {exc.strerror}") from None
    if b"ENCRYPTED SIGSTORE PRIVATE KEY" in head or b"ENCRYPTED COSIGN PRIVATE KEY" in head:
        return SIGSTORE
    if b"BEGIN PGP PRIVATE KEY BLOCK" in head or (head[:1] and head[0] & 0x80):
        return OPENPGP
    raise PushError(f"{path} is neither a sigstore private key (deb-bootc-compose keygen) nor an OpenPGP secret key")


def _load_sigstore(opts: PushOptions) -> ec.EllipticCurvePrivateKey:
    assert opts.sign_key is not None
    if opts.passphrase_file is None:
        raise PushError(f"{opts.sign_key} is encrypted: give its passphrase with --sign-passphrase-file FILE")
    try:
        return keys.load_private(opts.sign_key, keys.read_passphrase(opts.passphrase_file))
    except keys.WrongPassphrase:
        raise PushError(f"wrong passphrase in {opts.passphrase_file} for {opts.sign_key}") from None
    except keys.SigningKeyError as exc:
        raise PushError(str(exc)) from None


def _copy_image(sk: Skopeo, img: ComposeImage, dest: Destination, extra: list[str]) -> tuple[int, int]:
    uploaded = present = 0
    for tag in dest.tags:
        out, digest = sk.copy(f"oci:{img.layout}:{img.ref_name}", f"docker://{dest.repository}:{tag}", dest.host,
                              extra)
        if digest and digest != img.digest:
            raise PushError(f"{dest.repository}:{tag}: the registry holds {digest}, not the compose's {img.digest}")
        up, pre = blob_counts(out)
        uploaded, present = uploaded + up, present + pre
    raw = sk.inspect_raw(f"docker://{dest.repository}@{img.digest}", dest.host)
    if "sha256:" + hashlib.sha256(raw).hexdigest() != img.digest:
        raise PushError(f"{dest.repository}@{img.digest}: the registry serves another manifest for that digest")
    return uploaded, present


def _attach_sigstore(sk: Skopeo, key: ec.EllipticCurvePrivateKey, img: ComposeImage, dest: Destination) -> None:
    data = sigstore_attach.payload(f"{dest.repository}:{dest.tags[0]}", img.digest)
    with tempfile.TemporaryDirectory(dir=sk.workdir) as tmp:
        layout = Path(tmp) / "sig"
        sigstore_attach.write_layout(layout, [(data, sigstore_attach.sign(key, data))])
        sk.copy(f"oci:{layout}:sig", f"docker://{dest.repository}:{sigstore_attach.attachment_tag(img.digest)}",
                dest.host)


def _lookaside_config(sk: Skopeo, targets: dict[ComposeImage, Destination], lookaside: Path) -> None:
    lookaside.mkdir(parents=True, exist_ok=True)
    hosts = sorted({d.host for d in targets.values()})
    body = "".join(f'  "{h}":\n    lookaside-staging: "file://{lookaside.resolve()}"\n' for h in hosts)
    (sk.registries_d / "deb-bootc-compose-push.yaml").write_text(f"docker:\n{body}")


def _signing(stack: ExitStack, sk: Skopeo, opts: PushOptions, fmt: str,
             targets: dict[ComposeImage, Destination]) -> list[str]:
    """skopeo's signing arguments (OpenPGP: a temporary GnuPG home, signatures into the lookaside dir)."""
    if fmt != OPENPGP:
        return []
    assert opts.sign_key is not None and opts.lookaside_dir is not None
    signer = stack.enter_context(gpg_signer(opts.sign_key, opts.passphrase_file))
    sk.env.update(signer.env)
    _lookaside_config(sk, targets, opts.lookaside_dir)
    extra = ["--sign-by", signer.fingerprint]
    if opts.passphrase_file is not None:
        extra += ["--sign-passphrase-file", str(opts.passphrase_file)]
    return extra


def _push_index(sk: Skopeo, variant: str, dest: Destination, members: list[ComposeImage], extra: list[str],
                key: ec.EllipticCurvePrivateKey | None, fmt: str) -> Pushed:
    """The variant's image index (its arch images are in the registry already) to ``dest``'s tags."""
    layout = Path(tempfile.mkdtemp(prefix=f"index-{variant}-", dir=sk.workdir))
    digest = write_index_layout(layout / "layout", members, "index")
    arches = "+".join(m.arch for m in members)
    index = ComposeImage(variant, arches, layout / "layout", "index", digest)
    uploaded, present = _copy_image(sk, index, dest, ["--all", *extra])
    if key is not None:
        _attach_sigstore(sk, key, index, dest)
    return Pushed(variant, f"{arches} (index)", dest.repository, dest.tags, digest, uploaded, present, fmt)


def push(opts: PushOptions) -> list[Pushed]:
    """Push every OCI image of the compose (and, with several arches, each variant's image index); what was
    pushed, with digests."""
    manifest, images = load_compose(opts.compose)
    targets = destinations(manifest, images, opts.destination)
    indexes = index_destinations(manifest, images, opts.destination)
    fmt = UNSIGNED if opts.sign_key is None else key_format(opts.sign_key)
    if fmt == OPENPGP and opts.lookaside_dir is None:
        raise PushError("OpenPGP signatures are stored beside the registry: give --lookaside-dir DIR (served at "
                        "the URL of update.registry.lookaside)")
    sigstore_key = _load_sigstore(opts) if fmt == SIGSTORE else None
    results: list[Pushed] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deb-bootc-push-")))
        sk = Skopeo(workdir, log=opts.log, cert_dir=opts.cert_dir, tls_verify=opts.tls_verify)
        extra = _signing(stack, sk, opts, fmt, targets)
        for img, dest in targets.items():
            opts.progress(f"{img.variant}/{img.arch}: pushing {img.digest} to {dest.repository} "
                          f"({', '.join(dest.tags)})")
            uploaded, present = _copy_image(sk, img, dest, extra)
            if sigstore_key is not None:
                _attach_sigstore(sk, sigstore_key, img, dest)
            results.append(Pushed(img.variant, img.arch, dest.repository, dest.tags, img.digest, uploaded, present,
                                  fmt))
        for variant, (dest, members) in indexes.items():
            opts.progress(f"{variant}: pushing the image index of {', '.join(m.arch for m in members)} to "
                          f"{dest.repository} ({', '.join(dest.tags)})")
            results.append(_push_index(sk, variant, dest, members, extra, sigstore_key, fmt))
    return results


__all__ = ["PushOptions", "Pushed", "key_format", "push"]
