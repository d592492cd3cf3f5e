"""What the sandboxed command runs under: a capability set, no_new_privs and a seccomp filter.

Called by :mod:`debsandbox.nsexec` in the child that becomes the command, after its mounts are final and
just before ``execve``. Everything goes straight to the kernel through ctypes (no libseccomp, no libcap).

- **Capabilities.** ns-root keeps the set container runtimes give a root container by default (Docker's,
  which crun and podman follow): enough for dpkg and apt (chown, setuid to ``_apt``, file capabilities,
  chroot for maintainer scripts) and nothing that mounts, loads modules, traces or reads by inode handle.
  Any other user (the build user) has no capability at all: bounding, inheritable and ambient sets are
  cleared, and the permitted and effective sets go with the change of uid.
- **no_new_privs**: setuid binaries and file capabilities grant nothing.
- **seccomp**: the syscalls crun's and Docker's default profiles refuse to a container without
  ``CAP_SYS_ADMIN`` fail with EPERM (module loading, kexec, keyrings, bpf, perf, userfaultfd,
  open_by_handle_at, mount and the new mount API, swap, reboot, clocks, ...); ``ioctl`` TIOCSTI and TIOCLINUX
  (pushing input into a terminal, what bubblewrap's filter refuses); new user namespaces (``unshare``/``clone``
  with CLONE_NEWUSER; ``clone3``, whose flags a filter cannot read, answers ENOSYS so libc falls back to
  ``clone``) unless asked for; the x32 ABI and any foreign ABI the filter has no table for.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

_libc = ctypes.CDLL(None, use_errno=True)  # the C library through the process's own symbols

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522

CAPS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11,
    "NET_ADMIN": 12,
    "NET_RAW": 13,
    "IPC_LOCK": 14,
    "IPC_OWNER": 15,
    "SYS_MODULE": 16,
    "SYS_RAWIO": 17,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_PACCT": 20,
    "SYS_ADMIN": 21,
    "SYS_BOOT": 22,
    "SYS_NICE": 23,
    "SYS_RESOURCE": 24,
    "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26,
    "MKNOD": 27,
    "LEASE": 28,
    "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30,
    "SETFCAP": 31,
}

# Docker's (and crun's/podman's) default for a root container
ROOT_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "SETFCAP",
)


class ConfineError(RuntimeError):
    pass


def _prctl(option: int, arg2: int | ctypes.c_void_p = 0, arg3: int = 0) -> None:
    a2 = arg2 if isinstance(arg2, ctypes.c_void_p) else ctypes.c_ulong(arg2)
    if _libc.prctl(ctypes.c_int(option), a2, ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise ConfineError(f"prctl({option}): {os.strerror(err)}")


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 40


def cap_mask(names: tuple[str, ...] | list[str]) -> int:
    mask = 0
    for name in names:
        key = name.upper().removeprefix("CAP_")
        if key not in CAPS:
            raise ConfineError(f"unknown capability {name!r}")
        mask |= 1 << CAPS[key]
    return mask


def drop_capabilities(keep: int, *, changing_uid: bool) -> None:
    """Limit the bounding set to ``keep``; inheritable and ambient to nothing; permitted = effective =
    ``keep``, unless ``changing_uid``: then they stay until the setuid to a non-zero uid that follows clears
    them (it needs CAP_SETUID). Must run as ns-root, holding CAP_SETPCAP."""
    last = _last_cap()
    for cap in range(last + 1):
        if not keep & (1 << cap):
            _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if changing_uid:
        keep = (1 << (last + 1)) - 1
    header = struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("6I", keep & 0xFFFFFFFF, keep & 0xFFFFFFFF, 0, keep >> 32, keep >> 32, 0)
    hbuf = ctypes.create_string_buffer(header)
    dbuf = ctypes.create_string_buffer(data)
    if _libc.capset(hbuf, dbuf) != 0:
        err = ctypes.get_errno()
        raise ConfineError(f"capset: {os.strerror(err)}")


# -- seccomp --------------------------------------------------------------------------------------------

AUDIT_ARCH = {"x86_64": 0xC000003E, "i386": 0x40000003, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# numbers from the kernel's unistd tables (asm/unistd_64.h, asm/unistd_32.h, asm-generic/unistd.h)
_NR: dict[str, dict[str, int]] = {
    #                   x86_64  i386  aarch64
    "kexec_load": {"x86_64": 246, "i386": 283, "aarch64": 104},
    "kexec_file_load": {"x86_64": 320, "aarch64": 294},
    "init_module": {"x86_64": 175, "i386": 128, "aarch64": 105},
    "finit_module": {"x86_64": 313, "i386": 350, "aarch64": 273},
    "delete_module": {"x86_64": 176, "i386": 129, "aarch64": 106},
    "create_module": {"x86_64": 174, "i386": 127},
    "get_kernel_syms": {"x86_64": 177, "i386": 130},
    "query_module": {"x86_64": 178, "i386": 167},
    "open_by_handle_at": {"x86_64": 304, "i386": 342, "aarch64": 265},
    "keyctl": {"x86_64": 250, "i386": 288, "aarch64": 219},
    "add_key": {"x86_64": 248, "i386": 286, "aarch64": 217},
    "request_key": {"x86_64": 249, "i386": 287, "aarch64": 218},
    "perf_event_open": {"x86_64": 298, "i386": 336, "aarch64": 241},
    "bpf": {"x86_64": 321, "i386": 357, "aarch64": 280},
    "userfaultfd": {"x86_64": 323, "i386": 374, "aarch64": 282},
    "iopl": {"x86_64": 172, "i386": 110},
    "ioperm": {"x86_64": 173, "i386": 101},
    "swapon": {"x86_64": 167, "i386": 87, "aarch64": 224},
    "swapoff": {"x86_64": 168, "i386": 115, "aarch64": 225},
    "reboot": {"x86_64": 169, "i386": 88, "aarch64": 142},
    "acct": {"x86_64": 163, "i386": 51, "aarch64": 89},
    "settimeofday": {"x86_64": 164, "i386": 79, "aarch64": 170},
    "stime": {"i386": 25},
    "clock_settime": {"x86_64": 227, "i386": 264, "aarch64": 112},
    "clock_adjtime": {"x86_64": 305, "i386": 343, "aarch64": 266},
    "adjtimex": {"x86_64": 159, "i386": 124, "aarch64": 171},
    "lookup_dcookie": {"x86_64": 212, "i386": 253, "aarch64": 18},
    "quotactl": {"x86_64": 179, "i386": 131, "aarch64": 60},
    "nfsservctl": {"x86_64": 180, "i386": 169, "aarch64": 42},
    "syslog": {"x86_64": 103, "i386": 103, "aarch64": 116},
    "vhangup": {"x86_64": 153, "i386": 111, "aarch64": 58},
    "uselib": {"x86_64": 134, "i386": 86},
    "ustat": {"x86_64": 136, "i386": 62},
    "sysfs": {"x86_64": 139, "i386": 135},
    "_sysctl": {"x86_64": 156, "i386": 149},
}
# refused unless the sandbox keeps CAP_SYS_ADMIN (as Docker's profile does)
_NR_MOUNT: dict[str, dict[str, int]] = {
    "mount": {"x86_64": 165, "i386": 21, "aarch64": 40},
    "umount": {"i386": 22},
    "umount2": {"x86_64": 166, "i386": 52, "aarch64": 39},
    "pivot_root": {"x86_64": 155, "i386": 217, "aarch64": 41},
    "setns": {"x86_64": 308, "i386": 346, "aarch64": 268},
    "open_tree": {"x86_64": 428, "i386": 428, "aarch64": 428},
    "move_mount": {"x86_64": 429, "i386": 429, "aarch64": 429},
    "fsopen": {"x86_64": 430, "i386": 430, "aarch64": 430},
    "fsconfig": {"x86_64": 431, "i386": 431, "aarch64": 431},
    "fsmount": {"x86_64": 432, "i386": 432, "aarch64": 432},
    "fspick": {"x86_64": 433, "i386": 433, "aarch64": 433},
    "mount_setattr": {"x86_64": 442, "i386": 442, "aarch64": 442},
}
_NR_SPECIAL = {
    "ioctl": {"x86_64": 16, "i386": 54, "aarch64": 29},
    "unshare": {"x86_64": 272, "i386": 310, "aarch64": 97},
    "clone": {"x86_64": 56, "i386": 120, "aarch64": 220},
    "clone3": {"x86_64": 435, "i386": 435, "aarch64": 435},
}
_ABIS = {"x86_64": ("x86_64", "i386"), "aarch64": ("aarch64",)}

LD_W_ABS = 0x20
JEQ = 0x15
JGE = 0x35
JSET = 0x45
RET = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
OFF_NR, OFF_ARCH, OFF_ARG0, OFF_ARG1 = 0, 4, 16, 24  # struct seccomp_data (args are u64, little-endian)

Insn = tuple[int, "str | int", "str | int", int]  # code, jt, jf (labels or 0), k


def _program(abis: tuple[str, ...], deny_mount: bool, deny_userns: bool) -> list[tuple[int, int, int, int]]:
    prog: list[Insn | str] = [(LD_W_ABS, 0, 0, OFF_ARCH)]
    for abi in abis:
        prog.append((JEQ, f"abi-{abi}", 0, AUDIT_ARCH[abi]))
    prog.append((RET, 0, 0, RET_ERRNO | errno.ENOSYS))  # an ABI without a table here
    for abi in abis:
        prog += [f"abi-{abi}", (LD_W_ABS, 0, 0, OFF_NR)]
        if abi == "x86_64":
            prog.append((JGE, f"enosys-{abi}", 0, X32_SYSCALL_BIT))
        tables = [_NR, _NR_MOUNT] if deny_mount else [_NR]
        for nr in sorted({t[name][abi] for t in tables for name in t if abi in t[name]}):
            prog.append((JEQ, f"eperm-{abi}", 0, nr))
        prog.append((JEQ, f"ioctl-{abi}", 0, _NR_SPECIAL["ioctl"][abi]))
        if deny_userns:
            prog.append((JEQ, f"nsflags-{abi}", 0, _NR_SPECIAL["unshare"][abi]))
            prog.append((JEQ, f"nsflags-{abi}", 0, _NR_SPECIAL["clone"][abi]))
            prog.append((JEQ, f"enosys-{abi}", 0, _NR_SPECIAL["clone3"][abi]))
        prog.append((RET, 0, 0, RET_ALLOW))
        prog += [
            f"ioctl-{abi}",
            (LD_W_ABS, 0, 0, OFF_ARG1),  # the request is an unsigned int: the low word is all of it
            (JEQ, f"eperm-{abi}", 0, TIOCSTI),
            (JEQ, f"eperm-{abi}", 0, TIOCLINUX),
            (RET, 0, 0, RET_ALLOW),
            f"nsflags-{abi}",
            (LD_W_ABS, 0, 0, OFF_ARG0),
            (JSET, f"eperm-{abi}", 0, CLONE_NEWUSER),
            (RET, 0, 0, RET_ALLOW),
            f"eperm-{abi}",
            (RET, 0, 0, RET_ERRNO | errno.EPERM),
            f"enosys-{abi}",
            (RET, 0, 0, RET_ERRNO | errno.ENOSYS),
        ]
    labels: dict[str, int] = {}
    insns: list[Insn] = []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)
    out = []
    for i, (code, jt, jf, k) in enumerate(insns):
        offsets = []
        for j in (jt, jf):
            off = labels[j] - i - 1 if isinstance(j, str) else j
            if not 0 <= off <= 255:
                raise ConfineError(f"seccomp program: jump {off} out of range")
            offsets.append(off)
        out.append((code, offsets[0], offsets[1], k))
    return out


def seccomp_program(deny_mount: bool = True, deny_userns: bool = True) -> bytes:
    machine = platform.machine()
    if machine not in _ABIS:
        raise ConfineError(f"no seccomp syscall table for {machine}")
    return b"".join(struct.pack("HBBI", *insn) for insn in _program(_ABIS[machine], deny_mount, deny_userns))


def no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def install_seccomp(deny_mount: bool = True, deny_userns: bool = True) -> None:
    """Install the filter (needs no_new_privs first); it holds for this process and all it executes."""
    code = seccomp_program(deny_mount, deny_userns)
    buf = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))
