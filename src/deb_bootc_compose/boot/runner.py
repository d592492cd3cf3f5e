"""Boot a disk image once and run the checks: the engine behind ``boot-test`` and the boot-test phase."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deb_bootc_compose.paths import ComposePaths

from .checks import BootReport, run_checks
from .firmware import BootTestError
from .vm import VirtualMachine, VMConfig

DEFAULT_TIMEOUT = 900


@dataclass
class BootTestSpec:
    image: Path
    log_dir: Path  # gets boot-test-serial.log, boot-test.json (and the shell transcript)
    expected_commit: str | None = None
    expected_packages: dict[str, str] | None = None
    commands: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT  # for reaching the shell; each check has its own limit
    name: str = "boot-test"


@contextmanager
def session(image: Path, log_dir: Path, name: str = "boot-test", extra_disks: list[Path] | None = None,
            workdir: Path | None = None, net: bool = False, net_setup: bool = True) -> Iterator[VirtualMachine]:
    """A VM on a throw-away overlay of ``image``; the console log goes to ``log_dir/<name>-serial.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    own = workdir is None
    work = workdir or Path(tempfile.mkdtemp(prefix=f".{name}-", dir=log_dir))
    vm = VirtualMachine(VMConfig(image=image, workdir=work, serial_log=log_dir / f"{name}-serial.log",
                                 extra_disks=list(extra_disks or []), net=net, net_setup=net_setup))
    try:
        yield vm
    finally:
        vm.close()
        for keep in (vm.transcript, vm.qemu_log):
            if keep.exists():
                shutil.copyfile(keep, log_dir / f"{name}-{keep.name}")
        if own:
            shutil.rmtree(work, ignore_errors=True)


Continuation = Callable[[VirtualMachine, BootReport], None]


def boot_test(spec: BootTestSpec, then: Continuation | None = None, extra_disks: list[Path] | None = None,
              net: bool = False, net_setup: bool = True) -> BootReport:
    """Boot ``spec.image``, run every check, power off; never raises for a failing guest (see report.error).

    ``then`` (when every check passed) goes on in the same VM session before the final power-off, e.g. an
    update and a rollback with more reboots, so that they cost no extra boot; the report is written before it
    runs, and what it raises propagates (the VM is killed and the logs are kept). ``net``: QEMU user
    networking (the guest reaches the host at 10.0.2.2); ``net_setup`` False leaves its configuration to the image.
    """
    report = BootReport(image=str(spec.image), accel="", serial_log=str(spec.log_dir / f"{spec.name}-serial.log"))
    started = time.monotonic()

    def write_report() -> None:
        data = report.to_json()
        data["seconds"] = round(time.monotonic() - started, 1)
        (spec.log_dir / f"{spec.name}.json").write_text(json.dumps(data, indent=2) + "\n")

    try:
        with session(spec.image, spec.log_dir, spec.name, extra_disks, net=net, net_setup=net_setup) as vm:
            report.accel = vm.accel
            report.boot_seconds = round(vm.boot(spec.timeout), 1)
            run_checks(vm, report, spec.expected_commit, spec.expected_packages, spec.commands)
            if then is not None and report.ok:
                write_report()
                then(vm, report)
            vm.poweroff()
    except BootTestError as exc:
        report.error = str(exc)
    write_report()
    return report


def find_disk_image(images_dir: Path) -> Path:
    for pattern in ("*.qcow2", "*.raw"):
        found = sorted(images_dir.glob(pattern))
        if found:
            return found[0]
    raise BootTestError(f"no disk image (*.qcow2 or *.raw) in {images_dir}: build one with outputs: [oci, qcow2]")


def packages_from_metadata(compose: Path, variant: str, arch: str) -> dict[str, str] | None:
    """name -> version from ``metadata/packages.json`` (entries under this variant/arch when keyed so)."""
    path = ComposePaths.at(compose).packages_json
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    payload = data.get("payload", data) if isinstance(data, dict) else data
    if isinstance(payload, dict):
        for key in ("packages", "images"):
            if key in payload:
                payload = payload[key]
                break
    if isinstance(payload, dict) and variant in payload:
        payload = payload[variant]
        if isinstance(payload, dict) and arch in payload:
            payload = payload[arch]
    found: dict[str, str] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("name"), str) and isinstance(node.get("version"), str):
                found[node["name"]] = node["version"]
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(payload)
    return found or None
