"""Attacks on debsandbox's launcher, run for real from inside an overlay root like the builds use.

A plain module (no pytest) so that the same attacks run as root (tests/debsandbox/test_nsexec_attacks.py)
and as a normal user through a copy of this file (tests/deb_mock/test_unprivileged_integration.py):
``python attacks.py WORKDIR HOSTDIR`` prints the problems found as JSON (an empty list: none).

ns-root (root inside the sandbox, as maintainer scripts run) tries the double-chroot escape, reaching the
lower layer through /proc/N/fd, mknod of a block device, planting a setuid binary, TIOCSTI and syscalls the
seccomp filter denies (also through the i386 ABI); the build user then runs the setuid binary.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from debsandbox import idmap
from debsandbox.sandbox import OverlayRoot, Sandbox

TOOLS = ("sh", "cat", "id", "ls", "touch", "cp", "chmod", "grep", "mknod", "perl", "mount")

# the classic escape: chroot into a subdirectory while keeping the cwd outside it, walk up, chroot there
ESCAPE = r"""
mkdir "escape-sub";
chroot "escape-sub" or die "chroot: $!";
chdir ".." for 1 .. 64;
chroot "." or die "chroot .: $!";
if (open(my $f, "<", "@MARKER@")) { print "ESCAPE-READ:", scalar(<$f>); } else { print "ESCAPE-NO-READ $!\n"; }
if (open(my $g, ">", "@HOSTDIR@/written-from-sandbox")) { print "ESCAPE-WROTE\n"; }
else { print "ESCAPE-NO-WRITE $!\n"; }
"""

# syscalls through perl's syscall(): errno 1 is EPERM (the filter); anything else means the kernel ran it
SYSCALLS = r"""
$r = syscall(250, 0, -3, 0);            print "KEYCTL:", ($r == -1 ? $!+0 : "ran"), "\n";
$r = syscall(272, 0x10000000);          print "UNSHARE-USER:", ($r == -1 ? $!+0 : "ran"), "\n";
my $e = ""; $r = syscall(175, 0, 0, $e);          print "INIT-MODULE:", ($r == -1 ? $!+0 : "ran"), "\n";
$r = syscall(304, 0, 0, 0);             print "OPEN-BY-HANDLE:", ($r == -1 ? $!+0 : "ran"), "\n";
my $b = "x"; $r = ioctl(STDIN, 0x5412, $b);       print "TIOCSTI:", (defined $r ? "ran" : $!+0), "\n";
$r = ioctl(STDIN, 0x541C, $b);               print "TIOCLINUX:", (defined $r ? "ran" : $!+0), "\n";
"""

PROBE = """
cd /
perl -e '{escape}'
for fd in /proc/[0-9]*/fd/*; do
  if [ -d "$fd" ]; then echo "FD-DIR $fd"; touch "$fd/poisoned-through-fd" 2>/dev/null && echo "FD-WROTE $fd"; fi
done
ls /proc/1/fd/ >/dev/null 2>&1 && echo "PID1-FDS-VISIBLE"
mknod /blockdev b 8 0 2>/dev/null && echo MKNOD-ROOT-OK
mknod /dev/blockdev b 8 0 2>/dev/null && echo MKNOD-DEV-OK
cp /bin/id /bin/suid-id && chmod 4755 /bin/suid-id
perl -e '{syscalls}'
/bin/keyctl32; echo "KEYCTL-I386:$?"
grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status
"""

AS_USER = """
echo "SUID-EUID:$(/bin/suid-id -u)"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
perl -e '{syscalls}'
"""


def i386_probe(nr: int, arg0: int, arg1: int) -> bytes:
    """A static 32-bit x86 program (the i386 ABI, ``int 0x80``): syscall ``nr``; exit 0 if it failed with
    EPERM, else 2. The seccomp filter has a table for that ABI too."""
    code = b"\xb8" + struct.pack("<I", nr) + b"\xbb" + struct.pack("<I", arg0 & 0xFFFFFFFF)
    code += b"\xb9" + struct.pack("<I", arg1 & 0xFFFFFFFF) + b"\x31\xd2\xcd\x80"  # ecx; edx = 0; int 0x80
    code += b"\x83\xf8\xff\xbb\x02\x00\x00\x00\x75\x05\xbb\x00\x00\x00\x00"  # ebx = eax == -EPERM ? 0 : 2
    code += b"\xb8\x01\x00\x00\x00\xcd\x80"  # exit(ebx)
    base, headers = 0x08048000, 52 + 32
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    elf = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, base + headers, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    size = headers + len(code)
    return elf + struct.pack("<IIIIIIII", 1, 0, base, base, size, size, 5, 0x1000) + code


def copy_tool(root: Path, name: str) -> None:
    src = shutil.which(name)
    assert src, f"{name} is needed on the host"
    shutil.copy2(src, root / "bin" / name)
    out = subprocess.run(["ldd", src], capture_output=True, text=True).stdout
    for lib in (p for line in out.splitlines() for p in line.split() if p.startswith("/")):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copy2(lib, dest)


def make_lower(root: Path) -> Path:
    """A tiny root with the host's tools; owned by ns-root, as a root cache is (only mounts protect it)."""
    for d in ("bin", "lib", "lib64", "usr/bin", "etc", "proc", "dev", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        copy_tool(root, tool)
    (root / "lower-marker").write_text("the lower layer\n")
    (root / "bin" / "keyctl32").write_bytes(i386_probe(288, 0, -3))  # keyctl(GET_KEYRING_ID, SESSION)
    (root / "bin" / "keyctl32").chmod(0o755)
    if os.geteuid() == 0:
        ids = idmap.current()
        for dirpath, _dirs, files in os.walk(root):
            for p in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                os.lchown(p, ids.root_uid, ids.root_gid)
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns)
    return out


def run_attacks(work: Path, host_dir: Path) -> tuple[list[str], str, str]:
    """Run every attack; return (problems, ns-root's output, the build user's output).

    ``host_dir`` holds ``marker`` and is writable by anyone: only the sandbox stands between it and ns-root.
    """
    lower = make_lower(work / "lower")
    before = snapshot(lower)
    up = work / "b"
    script = PROBE.format(
        escape=ESCAPE.replace("@MARKER@", str(host_dir / "marker")).replace("@HOSTDIR@", str(host_dir)),
        syscalls=SYSCALLS,
    )
    root = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), env={"LC_ALL": "C"})
    out = root.run(["sh", "-c", script], capture=True, check=False).output
    user = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), uid=1000, gid=1000, env={"LC_ALL": "C"})
    uout = user.run(["sh", "-c", AS_USER.format(syscalls=SYSCALLS)], capture=True, check=False).output
    problems = []
    # the double chroot must land in the sandbox's own root, where the host file does not exist
    if "ESCAPE-NO-READ" not in out or "HOST-SECRET" in out:
        problems.append("the double-chroot escape read a host file")
    if "ESCAPE-NO-WRITE" not in out or (host_dir / "written-from-sandbox").exists():
        problems.append("the double-chroot escape wrote a host file")
    # no descriptor of a host directory is reachable through /proc, and PID 1's are hidden
    if "FD-DIR" in out or "FD-WROTE" in out:
        problems.append("a host directory is reachable through /proc/N/fd")
    if "PID1-FDS-VISIBLE" in out:
        problems.append("/proc/1/fd is readable inside the sandbox")
    if snapshot(lower) != before:
        problems.append("the lower layer was changed from inside the sandbox")
    if "MKNOD-" in out:
        problems.append("mknod of a block device succeeded")
    # seccomp (errno 1 = EPERM) even for ns-root; TIOCSTI would otherwise fail with ENOTTY (25) here
    for name, text in (("ns-root", out), ("build user", uout)):
        for probe in ("KEYCTL", "UNSHARE-USER", "INIT-MODULE", "OPEN-BY-HANDLE", "TIOCSTI", "TIOCLINUX"):
            if f"{probe}:1\n" not in text:
                problems.append(f"{probe} was not refused by seccomp for the {name}")
        if "NoNewPrivs:\t1" not in text or "Seccomp:\t2" not in text:
            problems.append(f"no no_new_privs or no seccomp filter for the {name}")
    if "KEYCTL-I386:0" not in out:  # exit 2: the kernel ran it
        problems.append("keyctl through the i386 ABI was not refused")
    bnd = [int(x.split()[1], 16) for x in out.splitlines() if x.startswith("CapBnd:")]
    if not bnd or bnd[0] & (1 << 21):
        problems.append("ns-root keeps CAP_SYS_ADMIN")  # no mounts, no remounts
    if not bnd or not bnd[0] & (1 << 18):
        problems.append("ns-root lost CAP_SYS_CHROOT (the escape must fail for a better reason)")
    # the build user: a setuid-root binary gains nothing, and no capability is left anywhere
    if "SUID-EUID:1000" not in uout:
        problems.append("a setuid-root binary gave the build user euid 0")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if f"{cap}:\t0000000000000000" not in uout:
            problems.append(f"the build user has capabilities in {cap}")
    return problems, out, uout


if __name__ == "__main__":
    found, root_out, user_out = run_attacks(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"problems": found, "root": root_out, "user": user_out}))
