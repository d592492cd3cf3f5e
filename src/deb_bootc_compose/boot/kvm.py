"""Decide between KVM and TCG by trying, not by looking at ``/dev/kvm``.

On nested "PVM" hosts ``/dev/kvm`` exists but OVMF dies under KVM (``KVM internal error. Suberror: 1``)
and QEMU then sits paused forever. The probe boots OVMF with no disk for a few seconds and accepts KVM
only if the firmware got as far as printing its boot manager on the serial port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

from .firmware import Firmware, find_firmware

ACCEL_ENV = "DEB_BOOTC_ACCEL"  # "kvm" or "tcg" forces the choice
KVM_ERROR = "KVM internal error"


def _probe(fw: Firmware, seconds: float = 20.0) -> tuple[bool, str]:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible"
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as tmp:
        vars_copy = Path(tmp) / "vars.fd"
        shutil.copyfile(fw.vars, vars_copy)
        serial = Path(tmp) / "serial.log"
        argv = [
            "qemu-system-x86_64", "-machine", "q35,accel=kvm", "-cpu", "host", "-m", "256", "-nodefaults",
            "-display", "none", "-no-user-config", "-nic", "none", "-no-reboot",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={fw.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
            "-serial", f"file:{serial}",
        ]
        output = Path(tmp) / "qemu.out"
        with open(output, "wb") as out_fh:
            proc = subprocess.Popen(argv, stdout=out_fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + seconds
        ok = failed = False
        try:
            # QEMU says "KVM internal error" at once and then sits paused: stop there, not at the deadline
            while time.monotonic() < deadline and proc.poll() is None:
                text = serial.read_text(errors="replace") if serial.exists() else ""
                if "BdsDxe" in text or "Shell>" in text or "Boot" in text:
                    ok = True
                    break
                if KVM_ERROR in output.read_text(errors="replace"):
                    failed = True
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
            proc.wait()
            out = output.read_text(errors="replace")
        if failed or KVM_ERROR in out:
            return False, "KVM internal error when running OVMF (nested/PVM KVM)"
        if not ok:
            return False, f"OVMF under KVM printed nothing in {seconds:.0f}s: {out.strip()[-200:]}"
        return True, "OVMF reached its boot manager under KVM"


@cache
def choose_accel() -> tuple[str, str]:
    """("kvm"|"tcg", why). Cached per process; ``DEB_BOOTC_ACCEL`` overrides the probe."""
    forced = os.environ.get(ACCEL_ENV)
    if forced in ("kvm", "tcg"):
        return forced, f"forced by {ACCEL_ENV}"
    ok, why = _probe(find_firmware())
    return ("kvm", why) if ok else ("tcg", why)
