"""A compose whose manifest has an ``update:`` section (examples/minimal.yaml plus update.ostree, outputs oci
and raw): the deb-bootc client is built through deb-mock and installed without being asked for, the image
carries the signed update remote with the manifest's public key, and the disk's deployment follows that
remote (no remote in the disk's repository config, no build-host file:// URL anywhere)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES, harvest_target, run_cli, seed_target
from diskinspect import DiskImage

from deb_bootc_compose.lockfile import load as load_lockfile

pytestmark = pytest.mark.integration
URL = "https://updates.example.org/debian-atomic"


@pytest.fixture()
def public_key(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    home = tmp_path / "gpg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    try:
        subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "Updates <u@example.org>", "ed25519", "sign",
                        "never"], check=True, capture_output=True)
        fpr = next(line.split(":")[9] for line in subprocess.run(
            [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True).stdout.splitlines()
            if line.startswith("fpr:"))
        key = tmp_path / "manifest" / "keys" / "ostree.asc"
        key.parent.mkdir(parents=True)
        key.write_bytes(subprocess.run([*gpg, "--armor", "--export", fpr], check=True, capture_output=True).stdout)
        yield key, fpr
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)


def ostree(repo: Path, *args: str) -> str:
    done = subprocess.run(["ostree", f"--repo={repo}", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ostree {args}: {done.stderr}"
    return done.stdout


def test_a_compose_with_update_installs_the_client_and_the_signed_remote(
        public_key: tuple[Path, str], compose_cache: Path, test_cache: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    key, fpr = public_key
    manifest = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    manifest["update"] = {"ostree": {"url": URL, "gpg_public_key": "keys/ostree.asc"}}
    manifest["outputs"] = ["oci", "raw"]
    path = key.parent.parent / "update.yaml"
    path.write_text(yaml.safe_dump(manifest))
    target = tmp_path / "target"
    seed_target(compose_cache, target)
    monkeypatch.setenv("DEB_MOCK_CACHE_DIR", str(test_cache / "deb-mock"))
    run = run_cli(["--config", str(path), "--target-dir", str(target), "--compose-type", "test",
                   "--skip-phase", "oci"])
    harvest_target(compose_cache, target)  # the client .deb too: the next run finds it by its source hash
    assert run.returncode == 0, run.stderr[-4000:]
    compose = Path(run.last_line)
    assert "deb-bootc" in (compose / "logs/build.log").read_text()

    lock = load_lockfile(compose / "metadata/lockfile.yaml").variant("base", "amd64")
    pkgs = {p.name: p for p in lock.packages}
    assert pkgs["deb-bootc"].repo == "deb-bootc-compose:packaging/deb-bootc" and "python3" in pkgs
    assert "deb-bootc" in {a.name for a in lock.added} and "deb-bootc" not in lock.requested
    assert list((target / "pool/by-source/deb-bootc").glob("*/deb-bootc_*_all.deb"))

    repo = target / "ostree/repo"
    ref = "debian-bootc/trixie/amd64/base"
    commit = ostree(repo, "rev-parse", ref).strip()
    conf = ostree(repo, "cat", commit, "/usr/etc/ostree/remotes.d/debian-bootc.conf")
    assert f'[remote "debian-bootc"]\nurl={URL}\ngpg-verify=true\ngpg-verify-summary=true\n' in conf
    assert "gpgkeypath=/usr/share/deb-bootc/keys/ostree.gpg" in conf
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(subprocess.run(["ostree", f"--repo={repo}", "cat", commit,
                                        "/usr/share/deb-bootc/keys/ostree.gpg"], capture_output=True,
                                       check=True).stdout)
    shown = subprocess.run(["gpg", "--homedir", str(tmp_path), "--with-colons", "--show-keys", str(keyring)],
                           capture_output=True, text=True, check=True).stdout
    assert f"fpr:::::::::{fpr}:" in shown and "sec:" not in shown
    assert "deb-bootc" in ostree(repo, "ls", commit, "/usr/bin/deb-bootc")
    status = ostree(repo, "cat", commit, "/usr/lib/sysimage/dpkg/status")
    sizes = {}
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if "Package" in fields:
            sizes[fields["Package"]] = int(fields.get("Installed-Size", "0"))
    print(f"\nFIGURE deb-bootc installed: {sizes['deb-bootc']} KiB; python3 and its dependencies "
          f"{sum(v for k, v in sizes.items() if k.startswith(('python3', 'libpython3')))} KiB")

    raw = next((compose / "compose/base/amd64/images").glob("*.raw"))
    disk = DiskImage(raw)
    assert "[remote" not in disk.debugfs("root", "cat /ostree/repo/config")  # the image's remotes.d only
    deploy = f"/ostree/deploy/debian-bootc/deploy/{commit}.0"
    assert f"refspec=debian-bootc:{ref}" in disk.debugfs("root", f"cat {deploy}.origin")
    assert disk.debugfs("root", f"cat /ostree/repo/refs/remotes/debian-bootc/{ref}").strip() == commit
    assert f"url={URL}" in disk.debugfs("root", f"cat {deploy}/etc/ostree/remotes.d/debian-bootc.conf")
    assert "file://" not in disk.debugfs("root", "cat /ostree/repo/config")
