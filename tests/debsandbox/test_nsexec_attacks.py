"""Attacks on the launcher, performed for real from inside an overlay root like the builds use.

ns-root (root inside the sandbox, as maintainer scripts run) tries the double-chroot escape, reaching the
lower layers through /proc/N/fd, mknod of a block device, a setuid binary, TIOCSTI and the syscalls the
seccomp filter denies. Every attempt must land inside the sandbox or fail.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from debsandbox import idmap
from debsandbox.sandbox import OverlayRoot, Sandbox

TOOLS = ("sh", "cat", "id", "ls", "touch", "cp", "chmod", "grep", "mknod", "perl")

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


def _copy_tool(root: Path, name: str) -> None:
    src = shutil.which(name)
    assert src, f"{name} is needed on the host"
    shutil.copy2(src, root / "bin" / name)
    out = subprocess.run(["ldd", src], capture_output=True, text=True).stdout
    for lib in (p for line in out.splitlines() for p in line.split() if p.startswith("/")):
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copy2(lib, dest)


@pytest.fixture()
def lower(tmp_path: Path) -> Path:
    root = tmp_path / "lower"
    for d in ("bin", "lib", "lib64", "usr/bin", "etc", "proc", "dev", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        _copy_tool(root, tool)
    (root / "lower-marker").write_text("the lower layer\n")
    (root / "bin" / "keyctl32").write_bytes(i386_probe(288, 0, -3))  # keyctl(GET_KEYRING_ID, SESSION)
    (root / "bin" / "keyctl32").chmod(0o755)
    if os.geteuid() == 0:  # owned by ns-root, as a root cache is: only the sandbox's mounts protect it
        ids = idmap.current()
        for dirpath, _dirs, files in os.walk(root):
            for p in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                os.lchown(p, ids.root_uid, ids.root_gid)
    return root


@pytest.fixture()
def host_dir() -> Iterator[Path]:
    """A host directory anyone may read and write: an escaped ns-root could use it (a test dir is 0700)."""
    d = Path("/var/tmp") / f"debsandbox-escape-{uuid.uuid4().hex[:8]}"
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    (d / "marker").write_text("HOST-SECRET\n")
    (d / "marker").chmod(0o644)
    yield d
    shutil.rmtree(d)


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns)
    return out


def test_ns_root_cannot_leave_the_overlay_root(tmp_path: Path, lower: Path, host_dir: Path) -> None:
    before = _snapshot(lower)
    up = tmp_path / "b"
    script = PROBE.format(
        escape=ESCAPE.replace("@MARKER@", str(host_dir / "marker")).replace("@HOSTDIR@", str(host_dir)),
        syscalls=SYSCALLS,
    )
    root = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), env={"LC_ALL": "C"})
    out = root.run(["sh", "-c", script], capture=True, check=False).output
    # the double chroot lands in the sandbox's own root: the host file does not exist there
    assert "ESCAPE-NO-READ" in out and "HOST-SECRET" not in out, out
    assert "ESCAPE-NO-WRITE" in out, out
    assert not (host_dir / "written-from-sandbox").exists()
    # no descriptor of a host directory is reachable through /proc, and PID 1's are hidden
    assert "FD-DIR" not in out and "FD-WROTE" not in out, out
    assert "PID1-FDS-VISIBLE" not in out, out
    assert _snapshot(lower) == before, "the lower layer was changed from inside the sandbox"
    assert "MKNOD-" not in out, out
    # seccomp (errno 1 = EPERM) even for ns-root; TIOCSTI would otherwise fail with ENOTTY (25) here
    for probe in ("KEYCTL", "UNSHARE-USER", "INIT-MODULE", "OPEN-BY-HANDLE", "TIOCSTI", "TIOCLINUX"):
        assert f"{probe}:1\n" in out, (probe, out)
    assert "KEYCTL-I386:0" in out, out  # the i386 ABI is filtered too (exit 2: the kernel ran it)
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out, out
    cap_bnd = int(next(x for x in out.splitlines() if x.startswith("CapBnd:")).split()[1], 16)
    assert cap_bnd & (1 << 21) == 0, "ns-root keeps CAP_SYS_ADMIN"  # no mounts, no remounts
    assert cap_bnd & (1 << 18), "ns-root lost CAP_SYS_CHROOT (the escape above must fail for a better reason)"

    # the build user: a setuid-root binary gains nothing, and no capability is left anywhere
    user = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), uid=1000, gid=1000)
    uout = user.run(["sh", "-c", AS_USER.format(syscalls=SYSCALLS)], capture=True, check=False).output
    assert "SUID-EUID:1000" in uout, uout
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert f"{cap}:\t0000000000000000" in uout, (cap, uout)
    assert "NoNewPrivs:\t1" in uout and "TIOCSTI:1\n" in uout, uout


def test_nested_user_namespaces_can_be_allowed(tmp_path: Path, lower: Path) -> None:
    up = tmp_path / "b"
    sb = Sandbox(root=OverlayRoot((lower,), up / "upper", up / "work"), nested_userns=True)
    out = sb.run(["perl", "-e", SYSCALLS], capture=True).output
    assert "UNSHARE-USER:ran" in out and "KEYCTL:1\n" in out, out
