"""End to end: a compose whose manifest has ``update.registry`` (a sigstore key from ``keygen``, the registry on
loopback) is pushed with ``push`` to the manifest's own destination, and the image's own skopeo (trixie's, which
the compose installs with the client), under the image's own ``/etc/containers/policy.json`` and
``registries.d``, accepts it and refuses an unsigned and a foreign-signed image in the same repository, while an
image from another repository passes (Debian's default stays)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES, harvest_target, run_cli, seed_target
from regserver import Registry, tiny_compose

from deb_bootc_compose.cli import main
from debsandbox.bwrap import bwrap_argv
from debsandbox.sandbox import Bind

pytestmark = pytest.mark.integration
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/tmp"}


def in_image(tree: Path, work: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command of the image, in its tree, with the host network and ``work`` at /work."""
    cmd = bwrap_argv(list(argv), root=tree, binds=[Bind(work, "/work", ro=False)], network=True,
                     user_namespace=False, all_caps=True, env=ENV)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_the_images_policy_verifies_what_push_signed(registry: Registry, compose_cache: Path, test_cache: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "manifest" / "keys"
    keys.mkdir(parents=True)
    (tmp_path / "pass").write_text("image policy test\n")
    for name in ("registry", "intruder"):
        assert main(["keygen", "-o", str(keys / name), "--passphrase-file", str(tmp_path / "pass")]) == 0
    manifest = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    manifest["update"] = {"registry": {"name": f"{registry.host}/debian-bootc/{{variant}}",
                                       "public_key": "keys/registry.pub"}}
    manifest["outputs"] = ["oci"]
    path = tmp_path / "manifest" / "registry.yaml"
    path.write_text(yaml.safe_dump(manifest))
    target = tmp_path / "target"
    seed_target(compose_cache, target)
    monkeypatch.setenv("DEB_MOCK_CACHE_DIR", str(test_cache / "deb-mock"))
    run = run_cli(["--config", str(path), "--target-dir", str(target), "--compose-type", "test", "--keep-work"])
    harvest_target(compose_cache, target)
    assert run.returncode == 0, run.stderr[-4000:]
    compose = Path(run.last_line)
    tree = compose / "work" / "base" / "amd64" / "tree"
    policy = json.loads((tree / "etc/containers/policy.json").read_text())
    repo = f"{registry.host}/debian-bootc/base"
    assert policy["transports"]["docker"][repo] == [{"type": "sigstoreSigned", "signedIdentity": {
        "type": "matchRepository"}, "keyPath": "/usr/share/deb-bootc/keys/registry.pub"}]
    assert (tree / "usr/share/deb-bootc/keys/registry.pub").read_bytes() == (keys / "registry.pub").read_bytes()

    # push to the manifest's destination (no REGISTRY/NAME given), signed with the key the image trusts
    base = ["--cert-dir", str(registry.cert_dir), "--sign-passphrase-file", str(tmp_path / "pass")]
    assert main(["push", str(compose), "--sign-key", str(keys / "registry.key"), *base]) == 0

    work = tmp_path / "work"
    shutil.copytree(registry.cert_dir, work / "certs")

    def pull(ref: str) -> subprocess.CompletedProcess[str]:
        out = f"out-{ref.rsplit('/', 1)[1].replace(':', '-')}"
        return in_image(tree, work, "skopeo", "--tmpdir", "/work", "copy", "--src-cert-dir", "/work/certs",
                        f"docker://{ref}", f"dir:/work/{out}")

    assert "1.18" in in_image(tree, work, "skopeo", "--version").stdout  # trixie's, installed by the compose
    for ref in (f"{repo}:13", f"{repo}:latest"):
        ok = pull(ref)
        assert ok.returncode == 0, f"{ref}: {ok.stderr}"

    # then (each push also moves latest) an unsigned image, a foreign-signed one, and another repository's
    assert main(["push", str(tiny_compose(tmp_path, "evil")), f"{repo}:evil", "--cert-dir",
                 str(registry.cert_dir)]) == 0
    assert main(["push", str(tiny_compose(tmp_path, "foreign")), f"{repo}:foreign", "--sign-key",
                 str(keys / "intruder.key"), *base]) == 0
    assert main(["push", str(tiny_compose(tmp_path, "other")), f"{registry.host}/other/tool:1", "--cert-dir",
                 str(registry.cert_dir)]) == 0
    other = pull(f"{registry.host}/other/tool:1")
    assert other.returncode == 0, other.stderr
    unsigned = pull(f"{repo}:evil")
    assert unsigned.returncode != 0 and "A signature was required, but no signature exists" in unsigned.stderr
    foreign = pull(f"{repo}:foreign")
    assert foreign.returncode != 0 and "rejected" in foreign.stderr, foreign.stderr
