"""What piuparts' log says: its version, its ``PASS:``/``FAIL:`` lines, the command that failed, and the files a
purge left behind (the ``piuparts`` plugin's result, see :mod:`deb_mock.plugins.piuparts`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# piuparts' log lines: "0m12.3s INFO: PASS: Installation and purging test." (the time since it started)
_LINE = re.compile(r"^\d+m[\d.]+s (DEBUG|DUMP|INFO|ERROR|WARNING|CRITICAL): (.*)$")
_VERDICT = re.compile(r"^(PASS|FAIL|SKIP): (.*?)(:)?$")
_COMMAND = re.compile(r"^Command failed \(status=(\d+)\): (.*)$")
_VERSION = re.compile(r"^piuparts version (\S+) starting up\.$")
LEFTOVERS = "Package purging left files on system"
SHOWN = 100


@dataclass
class Findings:
    version: str | None = None
    passed: list[str] = field(default_factory=list)  # "Installation and purging test", "All tests"
    failed: list[str] = field(default_factory=list)  # piuparts' FAIL: findings, first line of each
    details: dict[str, list[str]] = field(default_factory=dict)  # a finding -> its indented lines
    failed_command: str | None = None  # the first command piuparts saw fail, with its status
    command_output: list[str] = field(default_factory=list)  # the last lines of its output
    ended: bool = False  # "piuparts run ends." was logged

    @property
    def leftovers(self) -> list[str]:
        """The paths of "Package purging left files on system" (without piuparts' "owned by" notes)."""
        return [line.split("\t")[0].strip() for line in self.details.get(LEFTOVERS, []) if line.strip()]


def parse(log: str) -> Findings:
    """Read piuparts' log (its standard output at ``--log-level info`` or more)."""
    found = Findings()
    current: list[str] | None = None
    for raw in log.splitlines():
        m = _LINE.match(raw)
        if m is None:
            if current is not None and raw.startswith(" "):
                current.append(raw.rstrip())
            continue
        current = None
        message = m.group(2).strip()
        if v := _VERSION.match(message):
            found.version = v.group(1)
        elif message == "piuparts run ends.":
            found.ended = True
        elif c := _COMMAND.match(message):
            if found.failed_command is None:
                found.failed_command = f"{c.group(2)} (status {c.group(1)})"
                current = found.command_output
        elif d := _VERDICT.match(message):
            what = d.group(2).rstrip(".")
            if d.group(1) == "PASS":
                found.passed.append(what)
            elif d.group(1) == "FAIL":
                if what not in found.failed:
                    found.failed.append(what)
                current = found.details.setdefault(what, [])
    found.command_output = found.command_output[-20:]
    return found


def summary(found: Findings) -> str:
    """One line saying why piuparts failed: its findings, with the first leftovers or the failing command."""
    parts = []
    for what in found.failed:
        if what == LEFTOVERS:
            left = found.leftovers
            parts.append(f"{what}: {', '.join(left[:5])}{', …' if len(left) > 5 else ''}")
        else:
            parts.append(what)
    if found.failed_command and not any(p.startswith(LEFTOVERS) for p in parts):
        parts.append(f"command failed: {found.failed_command[:200]}")
    return "; ".join(parts) or "piuparts failed without saying why (see piuparts.log)"
