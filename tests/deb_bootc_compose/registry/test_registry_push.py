"""The session compose pushed to a real registry (Debian's docker-registry over TLS, a test CA), signed with an
OpenPGP key, and pulled by podman under the policy :mod:`deb_bootc_compose.registry.policy` writes; a second push
uploads no blob; ``lint`` and ``install-to-disk`` read the pushed image by ``docker://``. (Bookworm's podman
verifies OpenPGP signatures only: its sigstore support is disabled; sigstore signatures are checked with trixie's
skopeo in test_registry_sigstore.py.)"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from compose_helpers import SessionCompose
from regserver import Podman, Registry, layout_digest, make_gpg_key

from deb_bootc_compose.cli import main
from deb_bootc_compose.registry.policy import OPENPGP, Trust, policy_json

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("minimal-compose")]
PASSPHRASE = "registry test passphrase"


@pytest.fixture(scope="module")
def signed_push(registry: Registry, minimal_compose: SessionCompose, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, object]:
    """The session compose pushed once, signed (the CLI, as a user runs it)."""
    work = tmp_path_factory.mktemp("push")
    secret, public = make_gpg_key(work, "release", PASSPHRASE)
    (work / "pass").write_text(PASSPHRASE + "\n")
    lookaside = work / "lookaside"
    log = work / "skopeo.log"
    argv = ["push", str(minimal_compose.topdir), f"{registry.host}/debian-bootc/{{variant}}",
            "--sign-key", str(secret), "--sign-passphrase-file", str(work / "pass"), "--lookaside-dir",
            str(lookaside), "--cert-dir", str(registry.cert_dir), "--log", str(log)]
    offset = registry.log_offset()
    started = time.monotonic()
    rc = main(argv)
    seconds = time.monotonic() - started
    assert rc == 0, log.read_text()[-3000:] if log.exists() else "no skopeo log"
    return {"argv": argv, "public": public, "lookaside": lookaside, "log": log, "work": work,
            "uploads": registry.blob_uploads_since(offset), "seconds": seconds}


def _policy(path: Path, repo: str, key: Path) -> Path:
    path.write_bytes(policy_json([Trust(repo, str(key), OPENPGP)], default_reject=True))
    return path


def test_signed_push_pulls_under_the_policy(signed_push: dict[str, object], registry: Registry,
                                            minimal_compose: SessionCompose, tmp_path: Path, podman: Podman) -> None:
    uploads = signed_push["uploads"]
    assert isinstance(uploads, list) and uploads, "the first push uploaded no blob"
    print(f"first push: {len(uploads)} blob uploads in {signed_push['seconds']:.1f} s")
    digest = layout_digest(minimal_compose.topdir)
    repo = f"{registry.host}/debian-bootc/base"
    lookaside = signed_push["lookaside"]
    assert isinstance(lookaside, Path)
    sigs = list(lookaside.glob(f"debian-bootc/base@sha256={digest.split(':')[1]}/signature-*"))
    assert sigs, "no signature in the lookaside directory"

    podman.registries_d("test.yaml", f'docker:\n  "{registry.host}":\n    lookaside: "file://{lookaside}"\n')
    public = signed_push["public"]
    assert isinstance(public, Path)
    policy = _policy(tmp_path / "policy.json", repo, public)
    pulled = podman.pull(f"{repo}:13", policy, registry.cert_dir)
    assert pulled.returncode == 0, pulled.stderr
    images = podman.run("images", "--digests", "--format", "{{.Digest}}")
    assert digest in images.stdout  # the compose's manifest digest, kept by the registry
    latest = podman.pull(f"{repo}:latest", policy, registry.cert_dir)
    assert latest.returncode == 0, latest.stderr


def test_second_push_uploads_no_blob(signed_push: dict[str, object], registry: Registry,
                                     minimal_compose: SessionCompose, capsys: pytest.CaptureFixture[str]) -> None:
    argv = signed_push["argv"]
    assert isinstance(argv, list)
    offset = registry.log_offset()
    assert main(argv) == 0
    out = capsys.readouterr().out
    digest = layout_digest(minimal_compose.topdir)
    repo = f"{registry.host}/debian-bootc/base"
    assert f"base/amd64: {repo}@{digest} (signed (OpenPGP); 0 blobs uploaded" in out, out
    assert f"  {repo}:13" in out and f"  {repo}:latest" in out
    assert registry.blob_uploads_since(offset) == []
    log = signed_push["log"]
    assert isinstance(log, Path)
    assert "(already present)" in log.read_text()  # skopeo --debug: "Skipping blob sha256:… (already present)"


def test_lint_and_install_to_disk_from_the_registry(signed_push: dict[str, object], registry: Registry,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``docker://``: the pushed image is linted and installed from the registry (TLS with the test CA), after the
    refusals a user meets first: a tag the registry does not have, a registry whose CA is not given."""
    ref = f"docker://{registry.host}/debian-bootc/base:13"
    tls = ["--cert-dir", str(registry.cert_dir)]
    assert main(["lint", ref, *tls, "--scratch", str(tmp_path / "lint")]) == 0
    assert f"{ref}: 0 error(s), 0 warning(s)" in capsys.readouterr().out
    disk = tmp_path / "out" / "base.raw"
    disk.parent.mkdir()
    assert main(["install-to-disk", ref.replace(":13", ":nosuchtag"), str(disk), *tls]) == 2
    err = capsys.readouterr().err
    assert f"reading {ref.replace(':13', ':nosuchtag')}: no such image (" in err, err
    assert main(["install-to-disk", ref, str(disk)]) == 2
    err = capsys.readouterr().err
    assert f"TLS failure talking to {registry.host}" in err and "--cert-dir" in err, err
    assert main(["install-to-disk", ref, str(disk), *tls, "--free-space", "128MiB"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(disk)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert [p["name"] for p in table["partitions"]] == ["EFI-SYSTEM", "boot", "root"]
    assert sorted(p.name for p in disk.parent.iterdir()) == ["base.raw", "base.raw.install.log"]  # no leftovers
    assert f"--subject=imported from {ref}" in (disk.parent / "base.raw.install.log").read_text()
