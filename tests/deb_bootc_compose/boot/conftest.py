"""Session fixtures for the boot tests.

* ``boot_commit_v1``: the disk tests' cached fixture commit, for the fault tests that need a compose
  context but never a bootable image.
* ``update_source``: where the update test's images follow their updates: a port picked now (nginx serves the
  published repository there later, as ``http://10.0.2.2:PORT/debian-atomic`` seen from the VM) and the
  publisher's OpenPGP key pair, made for the session (its GnuPG home kept for the test, its agent stopped at the
  end); a second port for the registry (``registry.test:RPORT``, docker-registry on loopback later) and its
  sigstore key pair, made by ``deb-bootc-compose keygen``.
* ``update_v1``: a REAL compose (the CLI, from the mirror) of the update test's v1 — the minimal manifest
  without openssh-server, with bookworm's ``hello 2.10-3`` from a local signed apt repository (made with
  debarchive, served over HTTP, pinned at 990 like an orchestrator tag), ``outputs: [oci, qcow2]`` and an
  ``update`` section: ``ostree`` naming that URL and public key, ``registry`` naming
  ``registry.test:RPORT/debian-bootc/{variant}`` and the sigstore public key (so the image carries the deb-bootc
  client, the signed remote, skopeo and a ``policy.json`` requiring that key for that repository);
  ``disk.free_space`` leaves room for a ``deb-bootc switch docker://…`` (the image's layers and one unpacked
  tree in ``/var``).
* ``update_v2``: v2, a second compose in v1's target (warm pool): examples/minimal.yaml's packages (trixie's
  ``hello 2.10-5``, ``openssh-server`` added) with the same ``update`` section; no disk image.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from compose_helpers import SessionCompose, harvest_target, run_cli, seed_target
from updatesource import RegistryKey, UpdateSource, make_openpgp_key, stop_gpg_agent

from deb_bootc_compose.cli import main as compose_main
from debarchive import aptrepo
from debarchive.signing import SigningKey
from debarchive.stanzas import import_deb
from httpserve import free_port, serve_directory
from testcache import partial_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "disk"))
import imagefixtures

OLD_HELLO = "pool/main/h/hello/hello_2.10-3_amd64.deb"  # bookworm's build; trixie has 2.10-5
LOCAL_SUITE = "local"
V1_PACKAGES = ["systemd", "systemd-sysv", "linux-image-amd64", "hello"]  # examples/minimal.yaml minus sshd, arping
V2_PACKAGES = ["systemd", "systemd-sysv", "linux-image-amd64", "openssh-server", "iputils-arping", "hello"]
@pytest.fixture(scope="session")
def update_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpdateSource]:
    where = tmp_path_factory.mktemp("update-key")
    key = make_openpgp_key(where, "updates")
    passphrase = where / "registry.pass"
    passphrase.write_text("registry key of the update test\n")
    assert compose_main(["keygen", "--output", str(where / "registry"), "--passphrase-file", str(passphrase)]) == 0
    registry_key = RegistryKey(where / "registry.key", where / "registry.pub", passphrase)
    try:
        yield UpdateSource(free_port(), key, free_port(), registry_key)
    finally:
        stop_gpg_agent(key)


@pytest.fixture(scope="session")
def boot_commit_v1(test_cache: Path, mirror: str) -> imagefixtures.FixtureCommit:
    return imagefixtures.build_commit(test_cache, mirror)




def local_repo(root: Path, compose_cache: Path, mirror: str) -> Path:
    """A signed apt repository (suite ``local``) holding bookworm's hello 2.10-3; returns its public key."""
    deb = compose_cache / "hello_2.10-3_amd64.deb"
    if not deb.exists():
        resp = httpx.get(f"{mirror}/{OLD_HELLO}", timeout=60, follow_redirects=True)
        resp.raise_for_status()
        tmp = partial_name(deb)
        tmp.write_bytes(resp.content)
        tmp.rename(deb)
    repo = root / "repo"
    key = SigningKey.ensure(root / "gnupg")
    aptrepo.publish(repo, LOCAL_SUITE, packages=[import_deb(repo, deb)], key=key, origin="local", label="local")
    return key.export_public(root / "local.asc")


def update_manifest(work: Path, name: str, source: UpdateSource, body: dict[str, object]) -> Path:
    """``body`` plus the update section, written beside copies of the public keys it names."""
    keys = work / "keys"
    keys.mkdir(exist_ok=True)
    shutil.copyfile(source.key.public, keys / "ostree.asc")
    shutil.copyfile(source.registry_key.public, keys / "registry.pub")
    update = {"ostree": {"url": source.url, "gpg_public_key": "keys/ostree.asc"},
              "registry": {"name": source.registry_name, "public_key": "keys/registry.pub"}}
    manifest = work / name
    manifest.write_text(yaml.safe_dump({**body, "update": update}, sort_keys=False))
    return manifest


def compose(manifest: Path, target: Path, test_cache: Path, what: str) -> SessionCompose:
    """The compose CLI; the client .deb is built through deb-mock with the tests' root cache (once: the pool
    keeps it by its source hash)."""
    env = {"DEB_MOCK_CACHE_DIR": str(test_cache / "deb-mock")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, os.environ.get(k, v))
        run = run_cli(["--config", str(manifest), "--target-dir", str(target), "--compose-type", "test"])
    if run.returncode != 0:
        pytest.fail(f"the update test's {what} compose failed ({run.returncode}):\n{run.stderr[-4000:]}")
    return SessionCompose(target=target, topdir=Path(run.last_line), run=run, manifest=manifest)


@pytest.fixture(scope="session")
def update_v1(compose_cache: Path, test_cache: Path, mirror: str, update_source: UpdateSource,
              tmp_path_factory: pytest.TempPathFactory) -> SessionCompose:
    work = tmp_path_factory.mktemp("update-v1")
    key = local_repo(work / "local", compose_cache, mirror)
    target = work / "target"
    seed_target(compose_cache, target)
    try:
        with serve_directory(work / "local") as url:
            manifest = update_manifest(work, "v1.yaml", update_source, {
                "name": "debian-bootc", "version": "13", "suite": "trixie",
                "sources": [{"url": mirror, "components": ["main"]},
                            {"url": f"{url}/repo", "suite": LOCAL_SUITE, "key": str(key.relative_to(work)),
                             "priority": 990}],
                "packages": V1_PACKAGES,
                "outputs": ["oci", "qcow2"],
                # deb-bootc switch docker://… keeps the image's layers (~260 MB) and unpacks one tree (~550 MB)
                # under /var before committing it: 512 MiB was enough for the OSTree update, not for that
                "disk": {"free_space": "1536MiB"},
                "boot_test": {"enabled": False, "commands": ["hello", 'test "$(hello)" = "Hello, world!"'],
                              "timeout": 1500},
            })
            return compose(manifest, target, test_cache, "v1")
    finally:
        harvest_target(compose_cache, target)


@pytest.fixture(scope="session")
def update_v2(update_v1: SessionCompose, compose_cache: Path, test_cache: Path, mirror: str,
              update_source: UpdateSource) -> SessionCompose:
    work = update_v1.manifest.parent
    manifest = update_manifest(work, "v2.yaml", update_source, {
        "name": "debian-bootc", "version": "13.1", "suite": "trixie",
        "sources": [{"url": mirror, "components": ["main"]}],
        "packages": V2_PACKAGES,
        "outputs": ["oci"],
    })
    try:
        return compose(manifest, update_v1.target, test_cache, "v2")
    finally:
        harvest_target(compose_cache, update_v1.target)
