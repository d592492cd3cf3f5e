"""OVMF firmware files (Debian's ``ovmf`` package)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose.disk.errors import DiskError

CANDIDATES = [
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
]


class BootTestError(DiskError):
    """The boot test could not run or its VM did not behave; the message says what and where the logs are."""


@dataclass(frozen=True)
class Firmware:
    code: Path
    vars: Path  # template; every run copies it


def find_firmware() -> Firmware:
    for code, vars_ in CANDIDATES:
        if Path(code).is_file() and Path(vars_).is_file():
            return Firmware(Path(code), Path(vars_))
    raise BootTestError("no OVMF firmware found (looked for /usr/share/OVMF/OVMF_CODE_4M.fd): apt-get install ovmf")
