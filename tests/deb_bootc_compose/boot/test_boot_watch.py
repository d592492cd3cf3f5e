"""What the boot test notices without waiting for its timeout: the KVM probe's answer (QEMU reports a KVM
internal error at once and then sits paused: the probe took its whole 20 s on such hosts) and a guest kernel
panic on the console (the VM never reaches a shell: the boot used to fail only at its timeout, 25 min in the
update test). Real QEMU processes, a few seconds each."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from deb_bootc_compose.boot import kvm
from deb_bootc_compose.boot.firmware import BootTestError, find_firmware
from deb_bootc_compose.boot.vm import PANIC, VirtualMachine, VMConfig

pytestmark = pytest.mark.boot


def test_the_kvm_probe_answers_in_seconds() -> None:
    # whichever this host is (no /dev/kvm, KVM that OVMF dies under, working KVM), the answer comes quickly
    start = time.monotonic()
    _ok, why = kvm._probe(find_firmware())
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"the KVM probe took {elapsed:.1f}s ({why})"
    assert why


def test_a_kernel_panic_on_the_console_fails_the_boot_at_once(tmp_path: Path) -> None:
    blank = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "64M"], check=True)
    vm = VirtualMachine(VMConfig(image=blank, workdir=tmp_path / "vm", serial_log=tmp_path / "serial.log"))
    try:
        vm.start()
        time.sleep(1)
        with open(tmp_path / "serial.log", "ab") as fh:  # what a panicking guest kernel prints last
            fh.write(b"[    3.150393] " + PANIC + b": Fatal exception in interrupt\n")
        start = time.monotonic()
        with pytest.raises(BootTestError, match="kernel panicked during boot 1") as err:
            vm.wait_for_shell(600)
        assert time.monotonic() - start < 30
        assert "Fatal exception in interrupt" in str(err.value)  # the console's tail is in the message
    finally:
        vm.close()
