"""Two REAL composes, one VM session: the boot test of v1 (``boot-test COMPOSE_DIR --disk UPDATES``), state made on
v1, v2's commit delivered with no network (its compose's repository on a second disk, a ``file://`` remote),
``ostree admin upgrade --stage``, reboot into v2 and check it, roll back to v1 and check that too.

v1 = ``update_v1`` (hello 2.10-3 from a local signed repo, no openssh-server, qcow2 built by the compose);
v2 = ``minimal_compose`` (examples/minimal.yaml: trixie's hello 2.10-5, openssh-server ADDED).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from compose_helpers import SessionCompose

from deb_bootc_compose.boot import cli as boot_cli
from deb_bootc_compose.boot.checks import BootReport, booted_deployment
from deb_bootc_compose.boot.runner import packages_from_metadata
from deb_bootc_compose.boot.vm import VirtualMachine
from deb_bootc_compose.disk import source

# two composes (~6 min each) and three TCG boots (1-7 min each, by the machine's load) in one test
pytestmark = [pytest.mark.boot, pytest.mark.timeout(5400)]
BOOT_TIMEOUT = 1500
PASSWORD = "Secret-123"
REMOTE = "debian-bootc"  # the disk phase names the stateroot and its remote after the manifest's name


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def updates_disk(repo: Path, dest: Path) -> Path:
    """An ext4 image (label "updates") with the v2 compose's repository at /repo; built without mounting."""
    content = dest.parent / "updates-content"
    content.mkdir()
    subprocess.run(["cp", "-al", str(repo), str(content / "repo")], check=True)  # hard links: no copy
    size = sum(p.stat().st_size for p in content.rglob("*") if p.is_file())
    with open(dest, "wb") as fh:
        fh.truncate(size * 2 + (128 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-L", "updates", "-d", str(content), str(dest)], check=True)
    subprocess.run(["rm", "-rf", str(content)], check=True)
    return dest


def version(vm: VirtualMachine, package: str) -> str:
    return vm.check(f"dpkg-query -W -f '${{Version}}' {package}").strip()


def test_update_then_rollback(update_v1: SessionCompose, minimal_compose: SessionCompose, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    v1_dir, v2_dir = update_v1.topdir, minimal_compose.topdir
    v1, v2 = source.from_compose(v1_dir), source.from_compose(v2_dir)
    assert v1.ref == v2.ref and v1.commit != v2.commit
    v1_pkgs = packages_from_metadata(v1_dir, "base", "amd64") or {}
    v2_pkgs = packages_from_metadata(v2_dir, "base", "amd64") or {}
    assert (v1_pkgs["hello"], v2_pkgs["hello"]) == ("2.10-3", "2.10-5")  # upgraded
    assert "openssh-server" in v2_pkgs and "openssh-server" not in v1_pkgs  # added
    # v1 was composed with outputs [oci, qcow2]: the qcow2 alone, listed in images.json with its checksum
    images = json.loads((v1_dir / "metadata/images.json").read_text())["payload"]["images"]["base"]["amd64"]
    assert sorted(i["format"] for i in images) == ["ociarchive", "qcow2"]
    qcow2 = next(i for i in images if i["format"] == "qcow2")
    assert not list((v1_dir / "compose/base/amd64/images").glob("*.raw"))
    image = v1_dir / qcow2["path"]
    assert sha256(image) == qcow2["checksums"]["sha256"]

    updates = updates_disk(v2_dir.parent / "ostree" / "repo", tmp_path / "updates.ext4")
    steps: dict[str, float] = {}

    reports: list[BootReport] = []  # the boot test's report, handed to the continuation

    def update_and_rollback(vm: VirtualMachine, report: BootReport) -> None:
        reports.append(report)
        # --- state on v1 that the update must keep ---
        vm.check(f"useradd -m -s /bin/bash alice && echo 'alice:{PASSWORD}' | chpasswd")
        vm.check("echo 'made on v1' > /etc/deb-bootc-test.conf")
        vm.check("echo 'kept' > /var/lib/deb-bootc-test-data")
        # --- v2 without network: the compose's repository on the second disk replaces the remote's URL ---
        t = time.monotonic()
        vm.check("mkdir -p /run/updates && mount -o ro LABEL=updates /run/updates")
        vm.check(f"ostree remote delete {REMOTE} && ostree remote add --no-gpg-verify {REMOTE} "
                 f"file:///run/updates/repo {v1.ref}")
        vm.check("ostree admin upgrade --stage", timeout=900)
        staged = vm.check("ostree admin status")
        assert v2.commit in staged and "staged" in staged, staged
        vm.poweroff(timeout=600)  # ostree-finalize-staged runs during this shutdown
        steps["pull+stage+finalize"] = time.monotonic() - t
        # --- v2 ---
        steps["boot v2"] = vm.boot(BOOT_TIMEOUT)
        status = vm.check("ostree admin status")
        assert booted_deployment(status) == (REMOTE, v2.commit), status
        assert v1.commit in status and "rollback" in status, status
        assert version(vm, "hello") == "2.10-5" and vm.check("hello").strip() == "Hello, world!"
        assert version(vm, "openssh-server") == v2_pkgs["openssh-server"]
        vm.check("test -x /usr/sbin/sshd && test -f /etc/ssh/sshd_config")  # its /etc files arrived in the merge
        assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"  # /etc 3-way merge
        assert vm.check("cat /var/lib/deb-bootc-test-data").strip() == "kept"
        # alice, made on v1, logs in on v2: a PAM login session, her home through /home -> /var/home
        login = vm.check("runuser -l alice -c 'id -un; echo $HOME; pwd -P; touch ~/on-v2 && echo writable'")
        assert login.split() == ["alice", "/home/alice", "/var/home/alice", "writable"], login
        # and her password (set on v1) still verifies against the shadow entry on v2
        verify = "perl -e 'exit(crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? 0 : 1)'"
        vm.check(f"h=$(getent shadow alice | cut -d: -f2); {verify} '{PASSWORD}' \"$h\"")
        assert vm.check("systemctl is-system-running --wait", timeout=600).strip() == "running"
        # --- roll back to v1 ---
        vm.check("ostree admin set-default 1")
        vm.poweroff(timeout=600)
        steps["boot rollback"] = vm.boot(BOOT_TIMEOUT)
        status = vm.check("ostree admin status")
        assert booted_deployment(status) == (REMOTE, v1.commit), status
        assert version(vm, "hello") == "2.10-3"
        assert vm.shell("test -e /usr/sbin/sshd").returncode != 0
        assert vm.check("cat /etc/deb-bootc-test.conf").strip() == "made on v1"
        assert vm.check("id -un alice").strip() == "alice"

    # the boot-test command line on the v1 compose directory (its image, its commit, its packages, the
    # manifest's boot_test.commands), with the updates disk attached; the update goes on in the same VM session
    spec = boot_cli.spec_for(boot_cli.parser().parse_args([str(v1_dir)]))
    assert spec.image == image and spec.expected_commit == v1.commit
    assert spec.expected_packages == v1_pkgs and "hello" in spec.commands and spec.timeout == 1500
    logs = tmp_path / "logs"
    start = time.monotonic()
    rc = boot_cli.main([str(v1_dir), "--log-dir", str(logs), "--disk", str(updates)],
                       then=update_and_rollback)
    seconds = time.monotonic() - start
    out = capsys.readouterr().out
    assert rc == 0 and reports, out
    report = reports[0]
    assert report.ok, f"{report.summary()}\nserial log: {report.serial_log}"
    assert f"boot-test: booting {image}" in out and "PASS booted deployment is this compose's commit" in out
    assert f"report: {logs / 'boot-test.json'}" in out
    written = json.loads((logs / "boot-test.json").read_text())
    assert written["ok"] is True and written["booted_commit"] == v1.commit and written["image"] == str(image)
    assert report.booted_commit == v1.commit
    assert len(steps) == 3, steps
    names = {c.name for c in report.checks}
    assert {"multi-user.target reached", "systemctl is-system-running", "/usr is read-only",
            "booted deployment is this compose's commit", "dpkg -l lists the image's packages"} <= names
    serial = Path(report.serial_log).read_text(errors="replace")
    assert serial.count("Linux version") >= 3 and "multi-user.target" in serial  # all three boots are logged
    assert sha256(image) == qcow2["checksums"]["sha256"]  # the shipped image was never written
    assert not [p for p in os.listdir(tmp_path / "logs") if p.startswith(".boot-test-")]
    assert not list(v1_dir.glob("logs/boot-test*"))  # boot_test.enabled is false: the compose booted nothing
    print(f"\nFIGURE update+rollback: {seconds:.0f}s for 3 boots (v1 shell after {report.boot_seconds}s; "
          + ", ".join(f"{k} {v:.0f}s" for k, v in steps.items()) + f"); {report.userspace_seconds}")
