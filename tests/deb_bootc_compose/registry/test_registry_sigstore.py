"""Sigstore keys and signatures checked by a client that has sigstore: trixie's skopeo 1.18, in a trixie chroot
(bookworm's skopeo and podman are built with it disabled: "Debian-local change: sigstore disabled"). The key
``deb-bootc-compose keygen`` makes signs with ``skopeo --sign-by-sigstore-private-key``; the attachment
``deb-bootc-compose push --sign-key`` writes verifies under the ``sigstoreSigned`` policy our module writes;
an unsigned image and one signed with another key are refused by it. The chroot (mmdebstrap, variant apt, plus
skopeo) is cached as a tarball in the test cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from regserver import Registry, layout_digest, tiny_compose

from deb_bootc_compose.cli import main
from deb_bootc_compose.registry.policy import SIGSTORE, Trust, policy_json, registries_d
from debsandbox.bwrap import bwrap_argv
from debsandbox.commands import run
from debsandbox.locks import flock

pytestmark = pytest.mark.integration
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root"}


@pytest.fixture(scope="module")
def trixie(test_cache: Path, mirror: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trixie root with skopeo (cached tarball, unpacked once for this module)."""
    tarball = test_cache / "registry-trixie-skopeo.tar"
    with flock(test_cache / ".registry-trixie-skopeo.lock", keep_file=True):
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar")
            partial.unlink(missing_ok=True)
            run(["mmdebstrap", "--variant=apt", "--mode=root", "--format=tar", "--include=skopeo,ca-certificates",
                 "trixie", str(partial), mirror], log=test_cache / "registry-trixie-skopeo.log", timeout=1200)
            os.replace(partial, tarball)
    root = tmp_path_factory.mktemp("trixie") / "root"
    root.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(root)], check=True)
    return root


@pytest.fixture
def work(trixie: Path) -> Iterator[Path]:
    d = trixie / "work"
    d.mkdir()
    yield d
    shutil.rmtree(d)


def skopeo(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """trixie's skopeo (host network: the registry is on 127.0.0.1)."""
    argv = bwrap_argv(["skopeo", *args], root=root, network=True, user_namespace=False, all_caps=True, env=ENV)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def test_sigstore_keys_and_attachments_under_trixies_skopeo(trixie: Path, work: Path, registry: Registry,
                                                            tmp_path: Path) -> None:
    assert "1.18" in skopeo(trixie, "--version").stdout
    (tmp_path / "pass").write_text("sigstore passphrase\n")
    for name in ("release", "intruder"):
        assert main(["keygen", "--output", str(tmp_path / name), "--passphrase-file", str(tmp_path / "pass")]) == 0
    for f in ("release.key", "release.pub", "intruder.pub", "pass"):
        shutil.copy(tmp_path / f, work / f)
    shutil.copytree(registry.cert_dir, work / "certs")
    repo = f"{registry.host}/sig/base"
    (work / "registries.d").mkdir()
    (work / "registries.d" / "test.yaml").write_bytes(registries_d([repo], SIGSTORE))
    (work / "policy.json").write_bytes(policy_json([Trust(repo, "/work/release.pub", SIGSTORE)], default_reject=True))
    (work / "open.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    common = ["--registries.d", "/work/registries.d"]

    # 1. trixie's skopeo signs with the key keygen made (cosign's format, read by sigstore's library)
    native = tiny_compose(tmp_path, "native")
    shutil.copytree(native / "compose/base/amd64/oci/layout", work / "native")
    signed = skopeo(trixie, "--policy", "/work/open.json", *common, "copy", "--dest-cert-dir", "/work/certs",
                    "--sign-by-sigstore-private-key", "/work/release.key", "--sign-passphrase-file", "/work/pass",
                    "oci:/work/native:1", f"docker://{repo}:native")
    assert signed.returncode == 0, signed.stderr
    assert "using a sigstore signature" in signed.stdout

    # 2. our push's attachment (made in Python), an unsigned image, one signed with another key
    ours, unsigned, foreign = (tiny_compose(tmp_path, label) for label in ("ours", "unsigned", "foreign"))
    base = ["--cert-dir", str(registry.cert_dir), "--sign-passphrase-file", str(tmp_path / "pass")]
    assert main(["push", str(ours), f"{repo}:ours", "--sign-key", str(tmp_path / "release.key"), *base]) == 0
    assert main(["push", str(unsigned), f"{repo}:unsigned", "--cert-dir", str(registry.cert_dir)]) == 0
    assert main(["push", str(foreign), f"{repo}:foreign", "--sign-key", str(tmp_path / "intruder.key"), *base]) == 0

    def pull(tag: str) -> subprocess.CompletedProcess[str]:
        out = f"/work/out-{tag}"
        shutil.rmtree(work / f"out-{tag}", ignore_errors=True)
        return skopeo(trixie, "--policy", "/work/policy.json", *common, "copy", "--src-cert-dir", "/work/certs",
                      f"docker://{repo}:{tag}", f"dir:{out}")

    for tag in ("native", "ours"):
        ok = pull(tag)
        assert ok.returncode == 0, f"{tag}: {ok.stderr}"
    assert (work / "out-ours" / "manifest.json").is_file()
    assert layout_digest(ours).split(":")[1] in skopeo(
        trixie, "--policy", "/work/open.json", "inspect", "--cert-dir", "/work/certs", f"docker://{repo}:ours").stdout
    no_sig = pull("unsigned")
    assert no_sig.returncode != 0 and "A signature was required, but no signature exists" in no_sig.stderr
    wrong = pull("foreign")
    assert wrong.returncode != 0 and "rejected" in wrong.stderr, wrong.stderr

    # a key rotation: both keys trusted (keyPaths), either signature passes; unsigned still refused
    rotation = Trust(repo, "/work/release.pub", SIGSTORE, ("/work/intruder.pub",))
    (work / "policy.json").write_bytes(policy_json([rotation], default_reject=True))
    for tag in ("ours", "foreign"):
        ok = pull(f"{tag}")
        assert ok.returncode == 0, f"{tag} under two keys: {ok.stderr}"
    assert pull("unsigned").returncode != 0
