"""What the boot test notices without waiting for its timeout: the KVM probe's answer (QEMU reports a KVM
internal error at once and then sits paused: the probe took its whole 20 s on such hosts) and a guest kernel
panic on the console (the VM never reaches a shell: the boot used to fail only at its timeout, 25 min in the
update test), and the one panic that is QEMU's (TCG's text-patching race), booted once more. Real QEMU
processes on a blank disk, the panic written into their console log, a few seconds each."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from deb_bootc_compose.boot import kvm
from deb_bootc_compose.boot.firmware import find_firmware
from deb_bootc_compose.boot.vm import PANIC, KernelPanic, VirtualMachine, VMConfig

pytestmark = pytest.mark.boot


def test_the_kvm_probe_answers_in_seconds() -> None:
    # whichever this host is (no /dev/kvm, KVM that OVMF dies under, working KVM), the answer comes quickly
    start = time.monotonic()
    _ok, why = kvm._probe(find_firmware())
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"the KVM probe took {elapsed:.1f}s ({why})"
    assert why


class PanickingGuest:
    """Appends a panic to the console log each time a boot starts (what a panicking guest kernel prints last)."""

    def __init__(self, log: Path, oops: bytes) -> None:
        self.log, self.oops, self.stop = log, oops, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        seen = 0
        while not self.stop.wait(0.2):
            boots = self.log.read_bytes().count(b"===== deb-bootc: boot ") if self.log.exists() else 0
            if boots > seen:
                seen = boots
                time.sleep(0.5)
                with open(self.log, "ab") as fh:
                    fh.write(self.oops + b"[    3.150393] " + PANIC + b": Fatal exception in interrupt\n")

    def __enter__(self) -> PanickingGuest:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def blank_vm(tmp_path: Path) -> VirtualMachine:
    blank = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(blank), "64M"], check=True)
    return VirtualMachine(VMConfig(image=blank, workdir=tmp_path / "vm", serial_log=tmp_path / "serial.log",
                                   accel="tcg"))


def test_a_kernel_panic_on_the_console_fails_the_boot_at_once(tmp_path: Path) -> None:
    vm = blank_vm(tmp_path)
    try:
        start = time.monotonic()
        with PanickingGuest(tmp_path / "serial.log", b""), \
                pytest.raises(KernelPanic, match="kernel panicked during boot 1") as err:
            vm.boot(600)
        assert time.monotonic() - start < 30
        assert "Fatal exception in interrupt" in str(err.value)  # the console's tail is in the message
        assert vm.boots == 1 and not vm.running  # a panic of the image's own is not retried
    finally:
        vm.close()


def test_a_panic_on_tcgs_text_patching_race_is_booted_once_more(tmp_path: Path) -> None:
    vm = blank_vm(tmp_path)
    try:
        with PanickingGuest(tmp_path / "serial.log", b"[    3.147952] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n"), \
                pytest.raises(KernelPanic, match="kernel panicked during boot 2"):
            vm.boot(600)
        assert vm.boots == 2 and not vm.running  # once more, not forever: the second panic fails the boot
        assert b"booting again" in (tmp_path / "serial.log").read_bytes()
    finally:
        vm.close()
