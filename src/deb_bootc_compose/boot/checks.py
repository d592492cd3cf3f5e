"""The in-guest assertions of the boot test, each recorded with what was seen."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .vm import VirtualMachine


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class BootReport:
    image: str
    accel: str
    boot_seconds: float | None = None
    userspace_seconds: str | None = None  # systemd-analyze's summary line
    booted_commit: str | None = None
    checks: list[Check] = field(default_factory=list)
    serial_log: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def summary(self) -> str:
        lines = []
        for c in self.checks:
            first = c.detail.strip().splitlines()[0] if c.detail.strip() else ""
            lines.append(f"{'PASS' if c.ok else 'FAIL'} {c.name}: {first}")
        if self.error:
            lines.append(f"ERROR {self.error}")
        return "\n".join(lines)


BOOTED_RE = re.compile(r"^\*\s+(\S+)\s+([0-9a-f]{64})\.(\d+)", re.M)


def booted_deployment(status: str) -> tuple[str, str] | None:
    """(stateroot, commit) of the ``*`` line in ``ostree admin status``."""
    m = BOOTED_RE.search(status)
    return (m.group(1), m.group(2)) if m else None


def dpkg_installed(listing: str) -> dict[str, str]:
    """Package -> version for every ``ii`` line of ``dpkg -l``."""
    out: dict[str, str] = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "ii":
            out[parts[1].split(":")[0]] = parts[2]
    return out


def run_checks(vm: VirtualMachine, report: BootReport, expected_commit: str | None,
               expected_packages: dict[str, str] | None, commands: list[str]) -> None:
    """Append every check to ``report`` (a failing check does not stop the others)."""

    def add(name: str, ok: bool, detail: str) -> None:
        report.checks.append(Check(name, ok, detail))

    state = vm.shell("systemctl is-system-running --wait", timeout=600)
    target = vm.shell("systemctl is-active multi-user.target")
    add("multi-user.target reached", target.output.strip() == "active", target.output.strip())
    running = state.output.strip().splitlines()[-1] if state.output.strip() else ""
    if running == "running":
        add("systemctl is-system-running", True, "running")
    else:
        failed = vm.shell("systemctl --failed --no-legend --plain; systemctl list-jobs --no-legend").output
        add("systemctl is-system-running", False, f"{running}; failed units:\n{failed.strip()}")
    analyze = vm.shell("systemd-analyze time")
    if analyze.returncode == 0:
        report.userspace_seconds = analyze.output.strip().splitlines()[0]
    usr = vm.shell("touch /usr/.deb-bootc-probe")
    add("/usr is read-only", usr.returncode != 0 and "Read-only" in usr.output, usr.output.strip() or "writable!")
    for path in ("/etc", "/var"):
        w = vm.shell(f"touch {path}/.deb-bootc-probe && rm {path}/.deb-bootc-probe")
        add(f"{path} is writable", w.returncode == 0, w.output.strip() or "ok")
    status = vm.shell("ostree admin status")
    booted = booted_deployment(status.output)
    report.booted_commit = booted[1] if booted else None
    if expected_commit:
        add("booted deployment is this compose's commit", booted is not None and booted[1] == expected_commit,
            f"expected {expected_commit}\n{status.output.strip()}")
    else:
        add("booted an ostree deployment", booted is not None, status.output.strip())
    listing = vm.shell("dpkg -l")
    installed = dpkg_installed(listing.output)
    if expected_packages:
        missing = sorted(p for p in expected_packages if p not in installed)
        wrong = sorted(p for p, v in expected_packages.items() if p in installed and v and installed[p] != v)
        add("dpkg -l lists the image's packages", not missing and not wrong,
            f"{len(installed)} installed; missing: {', '.join(missing) or 'none'}; "
            f"other version: {', '.join(f'{p} {installed[p]} (want {expected_packages[p]})' for p in wrong) or 'none'}")
    else:
        add("dpkg -l lists packages", len(installed) > 0, f"{len(installed)} packages installed")
    for command in commands:
        res = vm.shell(command)
        add(f"command: {command}", res.returncode == 0, f"exit {res.returncode}\n{res.output.strip()[-1000:]}")
