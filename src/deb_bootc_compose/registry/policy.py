"""The containers policy (``policy.json``) and ``registries.d`` entry an image trusts its registry with.

One generator for the image (the ``registry_policy`` prepare step) and for the tests that pull under it:

* the repository the manifest names (``update.registry.name``, one per variant) requires a signature by the
  registry key: ``sigstoreSigned`` for a sigstore public key (PEM ``PUBLIC KEY``, ``deb-bootc-compose
  keygen``), ``signedBy`` (``GPGKeys``) for an OpenPGP public key; the signed identity must be that
  repository (``matchRepository``: any tag of it, so ``latest`` and the version both verify, and an
  image signed for another repository does not);
* every other image stays as Debian ships it (``insecureAcceptAnything``), so ``podman pull debian`` keeps
  working on the machine: the policy guards what the machine updates from, not every container it runs.
  ``default_reject=True`` makes it ``reject`` for everything else: the tests use it, so that an image passes
  only through the repository's own requirement, never through the default.
* ``registries.d``: ``use-sigstore-attachments: true`` for the registry host (sigstore signatures live in
  the registry beside the image), or ``lookaside: URL`` for OpenPGP signatures (served beside the registry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SIGSTORE, OPENPGP = "sigstore", "openpgp"


class PolicyError(ValueError):
    """A key that is neither kind, or a repository that is not HOST[:PORT]/PATH."""


def key_kind(public_key: bytes) -> str:
    """``sigstore`` (PEM ``PUBLIC KEY``) or ``openpgp`` (armored or binary OpenPGP public key)."""
    head = public_key.lstrip()[:64]
    if head.startswith(b"-----BEGIN PUBLIC KEY-----"):
        return SIGSTORE
    if head.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
        return OPENPGP
    if head[:1] and head[0] & 0x80:  # a binary OpenPGP packet (tag byte with the high bit set)
        return OPENPGP
    raise PolicyError("the registry public key is neither a sigstore public key (PEM 'PUBLIC KEY', from "
                      "`deb-bootc-compose keygen`) nor an OpenPGP public key")


def registry_host(repository: str) -> str:
    host, sep, _ = repository.partition("/")
    if not sep or not host:
        raise PolicyError(f"{repository!r} is not a registry repository HOST[:PORT]/PATH")
    return host


@dataclass(frozen=True)
class Trust:
    """One repository that requires signatures by one key (the key file as the machine sees it)."""

    repository: str  # HOST[:PORT]/PATH, no tag
    key_path: str  # absolute path of the public key where the policy is used
    kind: str  # SIGSTORE or OPENPGP
    more_keys: tuple[str, ...] = ()  # sigstore: further keys, any of which may sign (a key rotation)

    def requirement(self) -> dict[str, Any]:
        identity = {"type": "matchRepository"}
        if self.kind == SIGSTORE:
            if self.more_keys:  # containers/image >= 5.30 (trixie has 5.34)
                return {"type": "sigstoreSigned", "keyPaths": [self.key_path, *self.more_keys],
                        "signedIdentity": identity}
            return {"type": "sigstoreSigned", "keyPath": self.key_path, "signedIdentity": identity}
        if self.more_keys:
            raise PolicyError("OpenPGP: put every trusted key in the one key file (a keyring), not in more_keys")
        return {"type": "signedBy", "keyType": "GPGKeys", "keyPath": self.key_path, "signedIdentity": identity}


def policy(trusts: list[Trust], *, default_reject: bool = False) -> dict[str, Any]:
    """The policy.json document: each repository needs its key; everything else as ``default_reject`` says."""
    default = [{"type": "reject"}] if default_reject else [{"type": "insecureAcceptAnything"}]
    docker: dict[str, list[dict[str, Any]]] = {}
    for t in trusts:
        registry_host(t.repository)
        docker.setdefault(t.repository, []).append(t.requirement())
    return {"default": default, "transports": {"docker": docker}}


def merged(existing: dict[str, Any] | None, trusts: list[Trust]) -> dict[str, Any]:
    """``existing`` (the image's policy.json, e.g. Debian's containers-common one) with the repositories'
    requirements set: its default and other entries stay; our repositories' entries are replaced."""
    if existing is None:
        return policy(trusts)
    if not isinstance(existing.get("default"), list) or not isinstance(existing.get("transports", {}), dict):
        raise PolicyError("the image's /etc/containers/policy.json has no 'default' list (not a containers policy)")
    out = dict(existing)
    transports = dict(out.get("transports") or {})
    docker = dict(transports.get("docker") or {})
    docker.update(policy(trusts)["transports"]["docker"])
    transports["docker"] = docker
    out["transports"] = transports
    return out


def dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def policy_json(trusts: list[Trust], *, default_reject: bool = False) -> bytes:
    return dumps(policy(trusts, default_reject=default_reject))


def registries_d(repositories: list[str], kind: str, lookaside: str | None = None) -> bytes:
    """A ``registries.d`` YAML file: where the repositories' signatures are read from."""
    if kind == SIGSTORE:
        entry = "    use-sigstore-attachments: true\n"
    else:
        if not lookaside:
            raise PolicyError("OpenPGP signatures need a lookaside URL (where the signatures are served): set "
                              "update.registry.lookaside")
        entry = f"    lookaside: {json.dumps(lookaside)}\n"
    return ("docker:\n" + "".join(f"  {json.dumps(r)}:\n{entry}" for r in repositories)).encode()


__all__ = ["OPENPGP", "SIGSTORE", "PolicyError", "Trust", "dumps", "key_kind", "merged", "policy", "policy_json",
           "registries_d", "registry_host"]
