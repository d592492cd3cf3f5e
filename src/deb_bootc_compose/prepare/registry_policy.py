"""With ``update.registry``: the image trusts its registry repository only with the registry key.

* the public key at ``/usr/share/deb-bootc/keys/registry.pub`` (sigstore; a file with several keys, during a
  rotation, becomes ``registry-1.pub``… trusted through ``keyPaths``) or ``registry.asc`` (OpenPGP, a keyring as
  given): under ``/usr``, so it is part of the image and changes only with an update (docs/registry.md);
* ``/etc/containers/policy.json``: the repositories of the manifest's variants (``update.registry.name``)
  require a signature by that key; everything else keeps the image's policy (Debian's containers-common:
  ``insecureAcceptAnything``), so only what the machine updates from is locked down
  (:mod:`deb_bootc_compose.registry.policy`);
* ``/etc/containers/registries.d/deb-bootc.yaml``: where the signatures are (``use-sigstore-attachments``, or
  the ``lookaside`` URL for OpenPGP).
"""

from __future__ import annotations

import json
from typing import Any

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.manifest import Manifest
from deb_bootc_compose.prepare.base import PrepareJob, Step
from deb_bootc_compose.registry import keys
from deb_bootc_compose.registry.policy import SIGSTORE, PolicyError, Trust, dumps, key_kind, merged, registries_d

KEY_DIR = "usr/share/deb-bootc/keys"
POLICY = "etc/containers/policy.json"
REGISTRIES_D = "etc/containers/registries.d"
REGISTRIES_FILE = f"{REGISTRIES_D}/deb-bootc.yaml"


def key_files(kind: str, key: bytes, where: str) -> dict[str, bytes]:
    """Where the key goes in the image: one sigstore key per file (``registry.pub``, or ``registry-N.pub`` for
    each key of a file that holds several: a rotation); an OpenPGP key file as given (a keyring)."""
    if kind != SIGSTORE:
        return {f"{KEY_DIR}/registry.asc": key}
    pems = keys.public_pems(key, where)
    if len(pems) == 1:
        return {f"{KEY_DIR}/registry.pub": pems[0]}
    return {f"{KEY_DIR}/registry-{i}.pub": pem for i, pem in enumerate(pems, 1)}


def repositories(manifest: Manifest, arch: str) -> list[str]:
    """Every variant's repository: a machine may switch between the variants of its manifest."""
    assert manifest.update is not None and manifest.update.registry is not None
    reg = manifest.update.registry
    return sorted({reg.repository(name=manifest.name, variant=v, arch=arch) for v in manifest.variants})


def files(manifest: Manifest, arch: str, key: bytes, existing_policy: dict[str, Any] | None) -> dict[str, bytes]:
    """What the step writes (path in the tree → content); ComposeError for a bad key or policy."""
    assert manifest.update is not None and manifest.update.registry is not None
    reg = manifest.update.registry
    try:
        kind = key_kind(key)
        installed = key_files(kind, key, f"update.registry.public_key ({reg.public_key})")
        paths = ["/" + rel for rel in installed]
        repos = repositories(manifest, arch)
        trusts = [Trust(r, paths[0], kind, tuple(paths[1:])) for r in repos]
        out = {**installed, POLICY: dumps(merged(existing_policy, trusts))}
        out[REGISTRIES_FILE] = registries_d(repos, kind, reg.lookaside)
    except (PolicyError, keys.SigningKeyError) as exc:
        raise ComposeError(f"manifest update.registry: {exc}") from None
    return out


def run(job: PrepareJob) -> None:
    m = job.manifest
    if m.update is None or m.update.registry is None:
        return
    t = job.tree
    key = job.manifest_file(m.update.registry.public_key, "update.registry.public_key")
    existing = None
    if t.is_file(POLICY):
        try:
            existing = json.loads(t.read_text(POLICY))
        except ValueError as exc:
            raise ComposeError(f"{job.label}: the image's /{POLICY} is not JSON ({exc})") from None
        if not isinstance(existing, dict):
            raise ComposeError(f"{job.label}: the image's /{POLICY} is not a JSON object")
    for rel, data in files(m, job.vs.arch, key, existing).items():
        parent = rel.rsplit("/", 1)[0]
        job.own_dir(parent)
        if t.is_symlink(rel) or t.is_dir(rel):
            t.rmtree(rel)
        t.write_bytes(rel, data, 0o644)
        t.chmod(rel, 0o644)


STEP = Step("registry-policy", run)
