"""A QEMU virtual machine for tests: q35 + OVMF, no network unless asked for, serial console to a log file, and a root
shell on a virtio-serial port that needs no password and leaves the shipped image untouched.

The shell's channel is a virtio-serial port, not a second UART: OVMF and GRUB treat every UART as a console
(their menus and keystroke reads reach it), and a second UART that the firmware had used once left the guest's
bash unanswering on the next boot after an upgrade (seen twice under load). Nothing but the guest's bash ever
opens the virtio port, and QEMU holds what the host sends until bash has opened it.

How the shell gets in: QEMU hands systemd two credentials through SMBIOS type 11 —
``systemd.extra-unit.deb-bootc-test-shell.service`` (a unit running bash on the port) and
``systemd.unit-dropin.multi-user.target`` (``Wants=`` it). systemd-debug-generator (systemd >= 256)
turns them into a transient unit and drop-in under ``/run``. Nothing is written to the disk image: the
VM runs on a throw-away qcow2 overlay and a per-VM copy of the OVMF variables, so several boots of one
session share state (an update, a reboot, a rollback) while the shipped image never changes.

The console log is a QEMU ``file`` chardev (append mode), so the guest never blocks on a full console,
even during shutdown while ostree finalizes a staged deployment.
"""

from __future__ import annotations

import base64
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from debsandbox.commands import run

from .firmware import BootTestError, find_firmware
from .kvm import choose_accel

SHELL_UNIT = "deb-bootc-test-shell.service"
# the virtio-serial port's name: /dev/virtio-ports/<name> in the guest; a port opens once (EBUSY after), so
# bash gets it read-write on one descriptor
SHELL_PORT = "org.debian.bootc.test-shell"
# systemd's device unit for the port's udev link: "-" in a path is escaped as \x2d
_PORT_DEVICE = "dev-virtio\\x2dports-" + SHELL_PORT.replace("-", "\\x2d") + ".device"
SHELL_SERVICE = f"""\
[Unit]
Description=Root shell on a virtio-serial port for the deb-bootc boot test (handed in as a credential)
ConditionPathExists=!/etc/initrd-release
After={_PORT_DEVICE}
BindsTo={_PORT_DEVICE}

[Service]
Type=simple
Environment=HOME=/root TERM=dumb
ExecStart=/bin/sh -c 'exec /bin/bash --norc --noprofile <>/dev/virtio-ports/{SHELL_PORT} >&0 2>/dev/null'
Restart=always
RestartSec=1
"""
SHELL_DROPIN = f"[Unit]\nWants={SHELL_UNIT}\n"
NET_USER = "user,model=virtio-net-pci"  # --net: the host is 10.0.2.2 from the guest
HOST_FROM_GUEST = "10.0.2.2"
# a panicked kernel never reaches the shell: the boot fails when the console says so, not at its timeout
PANIC = b"Kernel panic - not syncing"
# ... except one kind, under TCG only: with a host thread per vCPU (MTTCG) a vCPU has run an int3 that another had
# just patched out of the kernel's text ("Oops: int3" at boot, then the panic): QEMU's race, not the image's. Such
# a boot is started once more; an image whose kernel panics again fails
TCG_TEXT_PATCH_OOPS = b"Oops: int3"


class KernelPanic(BootTestError):
    """The guest's kernel panicked during boot (the console said so)."""

    def __init__(self, message: str, tcg_race: bool) -> None:
        super().__init__(message)
        self.tcg_race = tcg_race
# slirp's fixed addresses, configured by systemd-networkd (in trixie's systemd package) from a runtime file:
# images carry no network configuration, and nothing is written to the image
GUEST_NETWORK = """\
[Match]
Type=ether
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
"""
GUEST_NETWORK_FILE = "/run/systemd/network/50-deb-bootc-test.network"


def smbios_credentials(creds: dict[str, str]) -> list[str]:
    args: list[str] = []
    for name, value in creds.items():
        b64 = base64.b64encode(value.encode()).decode()
        args += ["-smbios", f"type=11,value=io.systemd.credential.binary:{name}={b64}"]
    return args


def shell_credentials() -> dict[str, str]:
    return {
        f"systemd.extra-unit.{SHELL_UNIT}": SHELL_SERVICE,
        "systemd.unit-dropin.multi-user.target": SHELL_DROPIN,
    }


@dataclass
class CommandResult:
    command: str
    returncode: int
    output: str


@dataclass
class VMConfig:
    image: Path  # raw or qcow2; opened read-only through the overlay
    workdir: Path  # overlay, firmware variables, sockets (kept for the whole session)
    serial_log: Path  # the full console log of every boot, appended
    memory_mb: int = 2048
    cpus: int = 2
    extra_disks: list[Path] = field(default_factory=list)  # attached read-only, as /dev/vdb, /dev/vdc...
    accel: str | None = None  # None: probe
    # QEMU user networking (slirp): the guest gets 10.0.2.15 by DHCP and reaches the host's loopback services
    # at 10.0.2.2; nothing is forwarded into the guest
    net: bool = False
    # with ``net``: False leaves configuring the interface to the image (its own DHCP), nothing written in the guest
    net_setup: bool = True


def image_format(path: Path) -> str:
    with open(path, "rb") as fh:
        return "qcow2" if fh.read(4) == b"QFI\xfb" else "raw"


class VirtualMachine:
    """One VM session: :meth:`boot` / :meth:`shell` / :meth:`poweroff`, repeatable on the same overlay."""

    def __init__(self, cfg: VMConfig) -> None:
        self.cfg = cfg
        self.fw = find_firmware()
        self.accel, self.accel_reason = (cfg.accel, "requested") if cfg.accel else choose_accel()
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        self.overlay = cfg.workdir / "overlay.qcow2"
        self.vars = cfg.workdir / "OVMF_VARS.fd"
        # a UNIX socket path must stay under 108 bytes: keep it in a short directory of its own
        self._sockdir = Path(tempfile.mkdtemp(prefix="dbc-vm-"))
        self.sock_path = self._sockdir / "shell.sock"
        self.qemu_log = cfg.workdir / "qemu.log"
        self.transcript = cfg.workdir / "shell-transcript.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self._buf = b""
        self._seq = 0
        self._console_offset = 0
        self.boots = 0
        self.boot_seconds: list[float] = []
        if not cfg.image.is_file():
            raise BootTestError(f"disk image {cfg.image} does not exist")
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", image_format(cfg.image), "-b",
             str(cfg.image.resolve()), str(self.overlay)])
        shutil.copyfile(self.fw.vars, self.vars)

    # ---- process ----
    def argv(self) -> list[str]:
        cpu = "host" if self.accel == "kvm" else "max"
        argv = [
            "qemu-system-x86_64", "-machine", f"q35,accel={self.accel}", "-cpu", cpu,
            "-m", str(self.cfg.memory_mb), "-smp", str(self.cfg.cpus), "-nodefaults", "-no-user-config",
            "-display", "none", "-nic", NET_USER if self.cfg.net else "none", "-no-reboot",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={self.fw.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={self.vars}",
            "-drive", f"if=virtio,format=qcow2,file={self.overlay},cache=unsafe",
            "-device", "virtio-rng-pci",
            "-chardev", f"file,id=console,path={self.cfg.serial_log},append=on",
            "-serial", "chardev:console",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=shell,path={self.sock_path},server=on,wait=off",
            "-device", f"virtserialport,chardev=shell,name={SHELL_PORT}",
        ]
        for disk in self.cfg.extra_disks:
            argv += ["-drive", f"if=virtio,format={image_format(disk)},file={disk},readonly=on"]
        return argv + smbios_credentials(shell_credentials())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise BootTestError("the VM is already running")
        self.sock_path.unlink(missing_ok=True)
        self.cfg.serial_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.serial_log, "a") as fh:
            fh.write(f"\n===== deb-bootc: boot {self.boots + 1} ({self.accel}: {self.accel_reason}) =====\n")
        self._console_offset = self.cfg.serial_log.stat().st_size
        with open(self.qemu_log, "ab") as qlog:
            qlog.write(f"+ {' '.join(self.argv())}\n".encode())
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                                         start_new_session=True)
        self.boots += 1
        self._started = time.monotonic()
        deadline = time.monotonic() + 30
        while not self.sock_path.exists():
            if not self.running or time.monotonic() > deadline:
                raise BootTestError(f"QEMU did not start; see {self.qemu_log}: {self._qemu_tail()}")
            time.sleep(0.1)
        self.sock = self._connect(deadline)
        self._buf = b""

    def _connect(self, deadline: float) -> socket.socket:
        """Connect to QEMU's shell socket: its path appears at bind(), a moment before QEMU listens."""
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.sock_path))
                return sock
            except ConnectionRefusedError:
                sock.close()
                if not self.running or time.monotonic() > deadline:
                    raise BootTestError(f"QEMU did not accept the shell connection; see {self.qemu_log}: "
                                        f"{self._qemu_tail()}") from None
                time.sleep(0.1)

    def _qemu_tail(self) -> str:
        try:
            return self.qemu_log.read_text(errors="replace")[-600:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self._sockdir, ignore_errors=True)

    # ---- shell channel ----
    def _read(self, timeout: float) -> bytes:
        assert self.sock is not None
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return b""
        data = self.sock.recv(65536)
        if not data:
            raise BootTestError("the shell connection closed (the VM stopped)")
        with open(self.transcript, "ab") as fh:
            fh.write(data)
        return data

    def _send(self, text: str) -> None:
        assert self.sock is not None
        self.sock.sendall(text.encode())

    def wait_for_shell(self, timeout: float) -> float:
        """Wait until the guest's shell answers; returns seconds since QEMU started."""
        deadline = self._started + timeout
        self._seq += 1
        token = f"__DBC_READY_{self._seq}__"
        next_ping = 0.0
        while True:
            now = time.monotonic()
            if now > deadline:
                raise BootTestError(
                    f"the VM did not reach a shell within {timeout:.0f}s (boot {self.boots}); "
                    f"serial log: {self.cfg.serial_log}; the guest's shell channel gave {len(self._buf)} bytes "
                    f"but no answer ({self._buf[-200:]!r}); the console's last lines:\n{self._console_tail()}"
                )
            if not self.running:
                raise BootTestError(f"QEMU exited during boot {self.boots}; serial log: {self.cfg.serial_log}; "
                                    f"QEMU said: {self._qemu_tail()}")
            console = self._console()
            if PANIC in console:
                raise KernelPanic(
                    f"the guest's kernel panicked during boot {self.boots} (seen on the console after "
                    f"{now - self._started:.0f}s); serial log: {self.cfg.serial_log}; the console's last lines:\n"
                    f"{self._console_tail()}", self.accel == "tcg" and TCG_TEXT_PATCH_OOPS in console)
            # QEMU holds what we send until the guest's bash opens the port, so pings pile up there: ping
            # only once the kernel runs (a few, not one per 5 s of firmware and GRUB)
            if now >= next_ping and b"Linux version" in console:
                self._send(f"\necho {token[:8]}''{token[8:]}\n")
                next_ping = now + 5
            self._buf += self._read(1.0)
            if token.encode() in self._buf:
                self._sync(deadline)
                seconds = time.monotonic() - self._started
                self.boot_seconds.append(seconds)
                return seconds

    def _sync(self, deadline: float) -> None:
        """Wait until the answers to every ping sent so far have arrived (bash answers in order), so that no
        late ping answer lands in the next command's output."""
        self._seq += 1
        token = f"__DBC_SYNC_{self._seq}__".encode()
        self._send(f"echo {token[:8].decode()}''{token[8:].decode()}\n")
        while token not in self._buf:
            if time.monotonic() > deadline:
                raise BootTestError(f"the guest's shell stopped answering right after it started (boot {self.boots})")
            self._buf += self._read(1.0)
        self._buf = self._buf.split(token, 1)[1]

    def _console_tail(self, lines: int = 25) -> str:
        """The end of this boot's console output (for errors: the log file may not outlive a CI run)."""
        try:
            with open(self.cfg.serial_log, "rb") as fh:
                fh.seek(self._console_offset)
                text = fh.read().decode(errors="replace")
        except OSError:
            return "(unreadable)"
        return "\n".join(text.replace("\r", "").splitlines()[-lines:])

    def _console(self) -> bytes:
        """This boot's console output so far."""
        try:
            with open(self.cfg.serial_log, "rb") as fh:
                fh.seek(self._console_offset)
                return fh.read()
        except OSError:
            return b""

    def shell(self, command: str, timeout: float = 300) -> CommandResult:
        """Run ``command`` with bash in the guest; stdout and stderr merged."""
        if self.sock is None:
            raise BootTestError("no shell: the VM is not booted")
        self._seq += 1
        tag = f"__DBC_RC_{self._seq}"
        self._buf = b""
        self._send(f"{{ {command}\n}} </dev/null 2>&1; echo \"{tag[:6]}\"'{tag[6:]}':$?:\n")
        pattern = re.compile(re.escape(tag.encode()) + rb":(\d+):")
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self._buf)
            if m:
                out = self._buf[: m.start()].decode(errors="replace").replace("\r\n", "\n")
                self._buf = self._buf[m.end():]
                return CommandResult(command, int(m.group(1)), out)
            if time.monotonic() > deadline:
                raise BootTestError(f"command {command!r} did not finish within {timeout:.0f}s in the VM")
            if not self.running:
                raise BootTestError(f"the VM stopped while running {command!r}; serial log: {self.cfg.serial_log}")
            self._buf += self._read(1.0)

    def check(self, command: str, timeout: float = 300) -> str:
        res = self.shell(command, timeout)
        if res.returncode != 0:
            raise BootTestError(f"in the VM, {command!r} exited {res.returncode}:\n{res.output.strip()[-2000:]}")
        return res.output

    def boot(self, timeout: float) -> float:
        """Start the VM and wait for its shell; a boot lost to TCG's text-patching race is started once more."""
        for attempt in (1, 2):
            self.start()
            try:
                seconds = self.wait_for_shell(timeout)
                if self.cfg.net and self.cfg.net_setup:
                    self.network_up()
                return seconds
            except KernelPanic as exc:
                self.kill()
                if attempt == 2 or not exc.tcg_race:
                    raise
                with open(self.cfg.serial_log, "a") as fh:
                    fh.write("\n===== deb-bootc: the kernel panicked on an int3 under TCG (QEMU's text-patching "
                             "race): booting again =====\n")
            except BaseException:
                self.kill()
                raise
        raise AssertionError("unreachable")

    def network_up(self, timeout: float = 120) -> None:
        """Give the guest slirp's address (10.0.2.15, gateway and host 10.0.2.2) with systemd-networkd."""
        b64 = base64.b64encode(GUEST_NETWORK.encode()).decode()
        self.check(f"mkdir -p /run/systemd/network && echo {b64} | base64 -d > {GUEST_NETWORK_FILE} && "
                   "systemctl start systemd-networkd.service && "
                   f"/usr/lib/systemd/systemd-networkd-wait-online --any --ipv4 --timeout={int(timeout)}",
                   timeout=timeout + 30)

    def poweroff(self, timeout: float = 300) -> None:
        """Clean shutdown (staged deployments are finalized here); keeps reading so nothing blocks."""
        if not self.running:
            return
        assert self.sock is not None
        self._send("systemctl poweroff\n")
        deadline = time.monotonic() + timeout
        try:
            while self.running and time.monotonic() < deadline:
                try:
                    self._read(0.5)
                except BootTestError:
                    time.sleep(0.5)
        finally:
            stopped = not self.running
            self.kill()
        if not stopped:
            raise BootTestError(f"the VM did not power off within {timeout:.0f}s; serial log: {self.cfg.serial_log}")
