"""What the policy refuses and what push reports, against a real registry with tiny composes (one small layer
each, so that these run in seconds): an unsigned image and one signed with another key are refused by the
policy that accepts the release key; an unreachable registry, an unknown CA, a wrong passphrase, a compose that
does not exist are one clear line each."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from regserver import Podman, Registry, free_port, layout_digest, make_gpg_key, tiny_compose

from deb_bootc_compose.cli import main
from deb_bootc_compose.registry.policy import OPENPGP, Trust, policy_json

pytestmark = pytest.mark.integration
PASSPHRASE = "tiny passphrase"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("keys")
    make_gpg_key(work, "release", PASSPHRASE)
    make_gpg_key(work, "intruder", PASSPHRASE)
    (work / "pass").write_text(PASSPHRASE + "\n")
    (work / "wrong").write_text("not it\n")
    return work


def _push(registry: Registry, compose: Path, dest: str, *extra: str) -> int:
    return main(["push", str(compose), f"{registry.host}/{dest}", "--cert-dir", str(registry.cert_dir), *extra])


def _signed(keys: Path, name: str, lookaside: Path) -> list[str]:
    return ["--sign-key", str(keys / f"{name}.sec.asc"), "--sign-passphrase-file", str(keys / "pass"),
            "--lookaside-dir", str(lookaside)]


def test_policy_refuses_unsigned_and_foreign_signatures(registry: Registry, keys_dir: Path, tmp_path: Path,
                                                        podman: Podman, capsys: pytest.CaptureFixture[str]) -> None:
    lookaside = tmp_path / "lookaside"
    good, unsigned, foreign = (tiny_compose(tmp_path, label) for label in ("good", "unsigned", "foreign"))
    assert _push(registry, good, "os/base:good", *_signed(keys_dir, "release", lookaside)) == 0
    assert _push(registry, unsigned, "os/base:unsigned") == 0
    assert "(unsigned;" in capsys.readouterr().out
    assert _push(registry, foreign, "os/base:foreign", *_signed(keys_dir, "intruder", lookaside)) == 0

    podman.registries_d("test.yaml", f'docker:\n  "{registry.host}":\n    lookaside: "file://{lookaside}"\n')
    policy = tmp_path / "policy.json"
    policy.write_bytes(policy_json([Trust(f"{registry.host}/os/base", str(keys_dir / "release.pub.asc"), OPENPGP)]))
    ok = podman.pull(f"{registry.host}/os/base:good", policy, registry.cert_dir)
    assert ok.returncode == 0, ok.stderr
    assert layout_digest(good) in podman.run("images", "--digests", "--format", "{{.Digest}}").stdout
    no_sig = podman.pull(f"{registry.host}/os/base:unsigned", policy, registry.cert_dir)
    assert no_sig.returncode != 0 and "A signature was required, but no signature exists" in no_sig.stderr
    wrong = podman.pull(f"{registry.host}/os/base:foreign", policy, registry.cert_dir)
    assert wrong.returncode != 0 and "rejected" in wrong.stderr, wrong.stderr
    # the same unsigned image from another repository: the policy's default (Debian's) lets it through
    assert _push(registry, unsigned, "elsewhere/tool:1") == 0
    other = podman.pull(f"{registry.host}/elsewhere/tool:1", policy, registry.cert_dir)
    assert other.returncode == 0, other.stderr


def test_push_errors_are_one_clear_line(registry: Registry, keys_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    compose = tiny_compose(tmp_path, "errors")
    lookaside = tmp_path / "lookaside"

    def err(argv: list[str]) -> str:
        assert main(argv) == 1
        return capsys.readouterr().err

    port = free_port()
    assert "unreachable" in err(["push", str(compose), f"127.0.0.1:{port}/os/base"])
    tls = err(["push", str(compose), f"{registry.host}/os/base"])  # the test CA is not given
    assert "TLS failure" in tls and "--cert-dir" in tls
    wrong = err(["push", str(compose), f"{registry.host}/os/base", "--cert-dir", str(registry.cert_dir),
                 "--sign-key", str(keys_dir / "release.sec.asc"), "--sign-passphrase-file", str(keys_dir / "wrong"),
                 "--lookaside-dir", str(lookaside)])
    assert "wrong passphrase" in wrong
    assert not list(lookaside.rglob("signature-*"))
    missing = err(["push", str(tmp_path / "no-such-compose"), f"{registry.host}/os/base"])
    assert "is not a compose directory" in missing
    assert "no update.registry.name" in err(["push", str(compose)])
    assert "--lookaside-dir" in err(["push", str(compose), f"{registry.host}/os/base", "--sign-key",
                                     str(keys_dir / "release.sec.asc")])


def test_several_arches_make_a_signed_image_index(registry: Registry, keys_dir: Path, tmp_path: Path,
                                                  podman: Podman, capsys: pytest.CaptureFixture[str]) -> None:
    lookaside = tmp_path / "lookaside"
    compose = tiny_compose(tmp_path, "multi", arches=("amd64", "arm64"))
    repo = f"{registry.host}/multi/base"
    assert _push(registry, compose, "multi/base", *_signed(keys_dir, "release", lookaside)) == 0
    out = capsys.readouterr().out
    assert f"base/amd64+arm64 (index): {repo}@sha256:" in out and f"  {repo}:1-arm64" in out, out
    raw = subprocess.run(["skopeo", "--insecure-policy", "inspect", "--raw", "--cert-dir", str(registry.cert_dir),
                          f"docker://{repo}:1"], capture_output=True, text=True, check=True).stdout
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert {(m["platform"]["architecture"], m["digest"]) for m in index["manifests"]} == {
        ("amd64", layout_digest(compose, arch="amd64")), ("arm64", layout_digest(compose, arch="arm64"))}
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() in out  # the index digest printed is the registry's

    podman.registries_d("test.yaml", f'docker:\n  "{registry.host}":\n    lookaside: "file://{lookaside}"\n')
    policy = tmp_path / "policy.json"
    policy.write_bytes(policy_json([Trust(repo, str(keys_dir / "release.pub.asc"), OPENPGP)], default_reject=True))
    pulled = podman.run("pull", "--arch", "arm64", "--signature-policy", str(policy), "--cert-dir",
                        str(registry.cert_dir), f"docker://{repo}:latest")
    assert pulled.returncode == 0, pulled.stderr
    arch = podman.run("image", "inspect", "--format", "{{.Architecture}}", f"{repo}:latest")
    assert arch.stdout.strip() == "arm64"
