"""Session fixtures for the boot tests.

* ``boot_commit_v1``: the disk tests' cached fixture commit, for the fault tests that need a compose
  context but never a bootable image.
* ``update_v1``: a REAL compose (the CLI, from the mirror) of the update test's v1 — the minimal manifest
  without openssh-server, with bookworm's ``hello 2.10-3`` from a local signed apt repository (made with
  debarchive, served over HTTP, pinned at 990 like an orchestrator tag) and ``outputs: [oci, qcow2]``.
  Its v2 is the session's ``minimal_compose`` (trixie's ``hello 2.10-5``, ``openssh-server`` added), so the
  update test costs one compose more than the session already makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
import yaml
from compose_helpers import SessionCompose, harvest_target, run_cli, seed_target

from debarchive import aptrepo
from debarchive.signing import SigningKey
from debarchive.stanzas import import_deb
from httpserve import serve_directory
from testcache import partial_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "disk"))
import imagefixtures

OLD_HELLO = "pool/main/h/hello/hello_2.10-3_amd64.deb"  # bookworm's build; trixie has 2.10-5
LOCAL_SUITE = "local"
V1_PACKAGES = ["systemd", "systemd-sysv", "linux-image-amd64", "hello"]  # examples/minimal.yaml minus sshd, arping


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


@pytest.fixture(scope="session")
def update_v1(compose_cache: Path, mirror: str, tmp_path_factory: pytest.TempPathFactory) -> SessionCompose:
    work = tmp_path_factory.mktemp("update-v1")
    key = local_repo(work / "local", compose_cache, mirror)
    target = work / "target"
    seed_target(compose_cache, target)
    with serve_directory(work / "local") as url:
        manifest = work / "v1.yaml"
        manifest.write_text(yaml.safe_dump({
            "name": "debian-bootc", "version": "13", "suite": "trixie",
            "sources": [{"url": mirror, "components": ["main"]},
                        {"url": f"{url}/repo", "suite": LOCAL_SUITE, "key": str(key.relative_to(work)),
                         "priority": 990}],
            "packages": V1_PACKAGES,
            "outputs": ["oci", "qcow2"],
            "disk": {"free_space": "512MiB"},
            "boot_test": {"enabled": False, "commands": ["hello", 'test "$(hello)" = "Hello, world!"'],
                          "timeout": 1500},
        }, sort_keys=False))
        run = run_cli(["--config", str(manifest), "--target-dir", str(target), "--compose-type", "test"])
    harvest_target(compose_cache, target)
    if run.returncode != 0:
        pytest.fail(f"the update test's v1 compose failed ({run.returncode}):\n{run.stderr[-4000:]}")
    return SessionCompose(target=target, topdir=Path(run.last_line), run=run, manifest=manifest)
