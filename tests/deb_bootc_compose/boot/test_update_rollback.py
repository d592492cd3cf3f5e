"""v1 → v2 → v1 in one VM session: boot test on v1, state made on v1, v2 delivered on a second disk as a
file:// remote, staged with ``ostree admin upgrade --stage``, rebooted, checked, rolled back, checked."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import imagefixtures
import pytest

from deb_bootc_compose.boot.checks import BootReport, booted_deployment, run_checks
from deb_bootc_compose.boot.runner import session

pytestmark = pytest.mark.boot
BOOT_TIMEOUT = 1500
PASSWORD = "Secret-123"


def updates_disk(commit: imagefixtures.FixtureCommit, dest: Path) -> Path:
    """An ext4 image (label "updates") holding v2's archive repository at /repo; built without mounting."""
    content = dest.parent / "updates-content"
    shutil.copytree(commit.repo, content / "repo", copy_function=shutil.copy2)
    size = sum(p.stat().st_size for p in content.rglob("*") if p.is_file())
    with open(dest, "wb") as fh:
        fh.truncate(size * 2 + (64 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-L", "updates", "-d", str(content), str(dest)], check=True)
    shutil.rmtree(content)
    return dest


def test_update_then_rollback(boot_compose_v1: imagefixtures.FixtureCompose,
                              boot_commit_v2: imagefixtures.FixtureCommit, tmp_path: Path) -> None:
    v1, v2 = boot_compose_v1.commit, boot_commit_v2
    assert v1.packages["hello"] != v2.packages["hello"] and "tree" in v2.packages and "tree" not in v1.packages
    image = next((boot_compose_v1.topdir / "compose/base/amd64/images").glob("*.qcow2"))
    updates = updates_disk(v2, tmp_path / "updates.ext4")
    logs = tmp_path / "logs"
    start = time.monotonic()
    boots: list[float] = []
    with session(image, logs, "update", extra_disks=[updates]) as vm:
        # --- v1: the boot test, then state the update must keep ---
        boots.append(vm.boot(BOOT_TIMEOUT))
        report = BootReport(image=str(image), accel=vm.accel)
        run_checks(vm, report, v1.commit, v1.packages, ["hello"])
        assert report.ok, report.summary()
        vm.check(f"useradd -m -s /bin/bash alice && echo 'alice:{PASSWORD}' | chpasswd")
        vm.check("echo 'made on v1' > /etc/deb-bootc-test.conf")
        vm.check("echo 'kept' > /var/lib/deb-bootc-test-data")

        # --- deliver v2 without network: its repository on the second disk, as the remote's URL ---
        vm.check("mkdir -p /run/updates && mount -o ro LABEL=updates /run/updates")
        vm.check(f"ostree remote delete --if-exists debian && ostree remote add --no-gpg-verify debian "
                 f"file:///run/updates/repo {v1.ref}")
        vm.check("ostree admin upgrade --stage", timeout=900)
        staged = vm.check("ostree admin status")
        assert v2.commit in staged and "staged" in staged, staged
        vm.poweroff(timeout=600)  # ostree-finalize-staged runs during this shutdown

        # --- v2 ---
        boots.append(vm.boot(BOOT_TIMEOUT))
        status = vm.check("ostree admin status")
        assert booted_deployment(status) == ("debian", v2.commit), status
        assert v1.commit in status and "rollback" in status, status
        assert vm.check("dpkg-query -W -f '${Version}' hello").strip() == v2.packages["hello"]
        assert "tree v" in vm.check("tree --version")
        assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"  # /etc 3-way merge
        assert vm.check("cat /var/lib/deb-bootc-test-data").strip() == "kept"
        # a login shell of alice (PAM session, her home through the /home -> /var/home symlink)
        login = vm.check("runuser -l alice -c 'id -un; echo $HOME; pwd -P; touch ~/on-v2 && echo writable'")
        assert login.split() == ["alice", "/home/alice", "/var/home/alice", "writable"], login
        # alice's password still authenticates against the shadow entry made on v1
        verify = "perl -e 'exit(crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? 0 : 1)'"
        vm.check(f"h=$(getent shadow alice | cut -d: -f2); {verify} '{PASSWORD}' \"$h\"")
        assert vm.check("systemctl is-system-running --wait").strip() == "running"

        # --- roll back to v1 ---
        vm.check("ostree admin set-default 1")
        vm.poweroff(timeout=600)
        boots.append(vm.boot(BOOT_TIMEOUT))
        status = vm.check("ostree admin status")
        assert booted_deployment(status) == ("debian", v1.commit), status
        assert vm.check("dpkg-query -W -f '${Version}' hello").strip() == v1.packages["hello"]
        assert vm.shell("command -v tree").returncode != 0
        assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"
        assert vm.check("id -un alice").strip() == "alice"
        vm.poweroff(timeout=600)
    seconds = time.monotonic() - start
    print(f"\nFIGURE update+rollback: {seconds:.0f}s for 3 boots (shell after {', '.join(f'{b:.0f}s' for b in boots)})")
