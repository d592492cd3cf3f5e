"""The sandbox launcher: ``python -m debsandbox.nsexec SPEC.json``.

Creates user, mount, pid, ipc, uts (and optionally network) namespaces, maps ids as
:mod:`debsandbox.idmap` says, assembles the root (an overlay of read-only layers under a writable upper
directory, or a plain directory; mounted nosuid,nodev), mounts /proc, a minimal /dev and the requested bind
mounts, then ``pivot_root``s into it and detaches the old root, so no path leads back to the host's file
system (``chroot`` alone can be undone by a root process: chroot a subdirectory, walk up, chroot there).
Host directories are reached through O_PATH descriptors that are closed before anything runs in the
sandbox; lower layers are bound read-only first (and for real root, made read-only before entering the
user namespace, so the flag is locked). The command runs as the requested user with a reduced capability
set, no_new_privs and a seccomp filter (:mod:`debsandbox.confine`). Python stays as PID 1 of the new PID
namespace to reap zombies and forward signals, non-dumpable so that nothing in the sandbox can open its
/proc entries; when it exits, the kernel kills everything left in the namespace, and every mount
disappears with the mount namespace. Nothing here runs as real root on the host.

Kept free of imports that could be needed lazily after ``pivot_root``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import sys
from typing import Any, NoReturn

from debsandbox import confine

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_RELATIME = 1 << 21
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# dlopen(NULL): ctypes.util.find_library would import shutil and subprocess and run ldconfig
_libc = ctypes.CDLL(None, use_errno=True)


class SandboxSetupError(RuntimeError):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise SandboxSetupError(f"{what}: {os.strerror(err)} (errno {errno.errorcode.get(err, err)})")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(src: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    ret = _libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                      data.encode() if data else None)
    _check(ret, f"mount {fstype or 'bind'} {src} on {target}")


def _remount(target: str, flags: int) -> None:
    """Add ``flags`` to a bind mount, keeping the flags it has (a user namespace may not drop locked ones)."""
    have = os.statvfs(target).f_flag  # ST_* values equal the MS_* ones for these
    keep = have & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME)
    _mount("none", target, None, MS_BIND | MS_REMOUNT | keep | flags)


def _pivot_root(newroot: str) -> None:
    """Make ``newroot`` the root of this mount namespace and detach the old root entirely."""
    nr = SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise SandboxSetupError(f"pivot_root: unknown syscall number on {os.uname().machine}")
    os.chdir(newroot)
    _check(_libc.syscall(nr, b".", b"."), f"pivot_root {newroot}")
    _check(_libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir("/")


def _pdeathsig() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _lo_up() -> None:
    """Bring the loopback interface of a fresh network namespace up (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"\0" * 14)
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, ifreq))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b"\0" * 14))
    finally:
        s.close()


def _write_maps(pid: int, spec: dict[str, Any]) -> None:
    uids = spec["idmap"]["uids"]
    gids = spec["idmap"]["gids"]
    if os.geteuid() == 0:
        with open(f"/proc/{pid}/uid_map", "w") as fh:
            fh.write("".join(f"{i} {o} {c}\n" for i, o, c in uids))
        with open(f"/proc/{pid}/gid_map", "w") as fh:
            fh.write("".join(f"{i} {o} {c}\n" for i, o, c in gids))
        return
    for tool, ranges in (("newuidmap", uids), ("newgidmap", gids)):
        args = [tool, str(pid)] + [str(x) for r in ranges for x in r]
        import subprocess  # here only: the host side, before anything pivots
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode != 0:
            raise SandboxSetupError(f"{' '.join(args)} failed: {res.stderr.strip()} (is the uidmap package installed?)")


def _mkdirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def _touch(path: str) -> None:
    if not os.path.exists(path):
        with open(path, "w"):
            pass


def _setup_dev(root: str) -> None:
    dev = root + "/dev"
    _mkdirs(dev)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=16m")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        _touch(f"{dev}/{name}")
        _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
        _remount(f"{dev}/{name}", MS_NOSUID | MS_NOEXEC)
    _mkdirs(dev + "/pts")
    _mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", dev + "/ptmx")
    _mkdirs(dev + "/shm")
    _mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=512m")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{dev}/{name}")


def _mount_point(root: str, dst: str, is_dir: bool) -> int:
    """An ``O_PATH`` descriptor of ``dst`` (an absolute path inside ``root``), made if missing (directories,
    and a file at the end when ``is_dir`` is false), reached without following any link: the root may hold
    what a build or a maintainer script left (``/deb-mock -> /var/tmp/x``), and a link there would lead this
    process, which still sees the host, out of the root."""
    parts = [p for p in dst.split("/") if p]
    if not parts or any(p == ".." for p in parts):
        raise SandboxSetupError(f"bind destination {dst!r}: an absolute path without '..' is needed")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            want_dir = is_dir or not last
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if want_dir:
                    os.mkdir(part, 0o755, dir_fd=fd)
                else:
                    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     0o644, dir_fd=fd))
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if not (stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)):
                kind = "directory" if want_dir else "file"
                what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else f"not a {kind}"
                shown = "/" + "/".join(parts[: i + 1])
                raise SandboxSetupError(f"bind destination {dst}: {shown} is {what} in the root; refusing to use it")
            flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if want_dir else 0)
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _bind(src: str, root: str | None, dst: str, ro: bool) -> None:
    """Bind ``src`` at ``dst`` in ``root`` (None: on the host file system, the caller's own paths)."""
    if root is None:
        if os.path.isdir(src):
            _mkdirs(dst)
        else:
            _mkdirs(os.path.dirname(dst))
            _touch(dst)
        _mount(src, dst, None, MS_BIND | MS_REC)
        _remount(dst, MS_NOSUID | MS_NODEV | (MS_RDONLY if ro else 0))
        return
    fd = _mount_point(root, dst, os.path.isdir(src))
    try:
        _mount(src, f"/proc/self/fd/{fd}", None, MS_BIND | MS_REC)  # the very inode checked, not a path again
    finally:
        os.close(fd)
    _remount(root + dst, MS_NOSUID | MS_NODEV | (MS_RDONLY if ro else 0))


MERGED = "/tmp/root"


def _stage_host_paths(spec: dict[str, Any]) -> None:
    """Run by real root before entering the user namespace: make every host path the sandbox needs
    reachable for ns-root.

    ns-root cannot traverse directories it does not own (``/root`` when the cache lives in root's home,
    pytest's 0700 temporary directories, deb-mock's 0700 cache). So each path is bind-mounted, in a private
    mount namespace, onto a fresh tmpfs at ``/tmp`` that anyone can traverse; the user namespace's mount
    namespace inherits them.
    Paths named in ``ro_paths`` (overlay lower layers, read-only binds) are made read-only here, by real
    root: the flag is then locked for every mount namespace made in the user namespace, so not even ns-root
    holding CAP_SYS_ADMIN there could remount them writable.
    """
    _unshare(CLONE_NEWNS)
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    fds = {name: os.open(path, os.O_PATH | os.O_CLOEXEC) for name, path in spec.get("paths", {}).items()}
    readonly = set(spec.get("ro_paths", []))
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for i, (name, fd) in enumerate(fds.items()):
        target = f"/tmp/{i}"
        if stat.S_ISDIR(os.stat(f"/proc/self/fd/{fd}").st_mode):
            os.mkdir(target)
        else:
            _touch(target)
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)
        if name in readonly:
            _remount(target, MS_RDONLY | MS_NOSUID | MS_NODEV)
        spec["paths"][name] = target


def _open_paths(spec: dict[str, Any], inheritable: bool) -> list[int]:
    """Open the sandbox's host paths in the current mount namespace; ``@name@`` in the spec becomes
    ``/proc/self/fd/N``, which stays valid when ``/tmp`` is covered and needs no traversal. Returns the
    descriptors: with a root of its own they must all be closed before anything runs in the sandbox."""
    links: dict[str, str] = {}
    fds = []
    for name, path in spec.get("paths", {}).items():
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        fds.append(fd)
        if inheritable:
            os.set_inheritable(fd, True)  # root=None mode: the command on the host fs uses the link
        links[f"@{name}@"] = f"/proc/self/fd/{fd}"

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            for token, link in links.items():
                value = value.replace(token, link)
            return value
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    spec.update(sub({k: v for k, v in spec.items() if k != "paths"}))
    return fds


def _assemble(spec: dict[str, Any]) -> str | None:
    """Mount the sandbox's filesystem; return the directory to pivot into (None: stay on the host fs)."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    fds = _open_paths(spec, inheritable=spec.get("root") is None)
    root = spec.get("root")  # with its @name@ tokens replaced
    if root is None:
        for b in spec.get("binds", []):
            _bind(b["src"], None, b["dst"], b.get("ro", False))
        return None
    # the new root is assembled on a private tmpfs, at a path ns-root can always reach
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    merged = MERGED
    os.mkdir(merged)
    if root.get("lower"):
        lowers = []
        for i, layer in enumerate(root["lower"]):
            # each lower layer read-only on its own mount before overlayfs takes it (defence in depth)
            lowers.append(f"/tmp/lower{i}")
            os.mkdir(lowers[-1])
            _mount(layer, lowers[-1], None, MS_BIND)
            _remount(lowers[-1], MS_RDONLY | MS_NOSUID | MS_NODEV)
        opts = f"lowerdir={':'.join(lowers)},upperdir={root['upper']},workdir={root['work']},userxattr"
        _mount("overlay", merged, "overlay", MS_NOSUID | MS_NODEV, opts)
    else:
        _mount(root["dir"], merged, None, MS_BIND | MS_REC)
        _remount(merged, MS_NOSUID | MS_NODEV)
    if spec.get("proc", True):
        _mkdirs(merged + "/proc")
        _mount("proc", merged + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if spec.get("dev", True):
        _setup_dev(merged)
    # parents before children, whatever their kind: a bind under a tmpfs (the compose directory under /tmp) must
    # land inside it, not be covered by it; at the same depth binds come first, as they always did
    mounts = [(b["dst"], 0, b) for b in spec.get("binds", [])] + [(t, 1, t) for t in spec.get("tmpfs", [])]
    sizes = spec.get("tmpfs_size", {})
    for _dst, kind, item in sorted(mounts, key=lambda m: (len([p for p in m[0].split("/") if p]), m[1])):
        if kind == 0:
            _bind(item["src"], merged, item["dst"], item.get("ro", False))
            continue
        opts = "mode=1777" + (f",size={sizes[item]}" if sizes.get(item) else "")  # checked by Sandbox.spec
        fd = _mount_point(merged, item, True)  # made without following a link the root holds, as for binds
        try:
            _mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", MS_NOSUID | MS_NODEV, opts)
        finally:
            os.close(fd)
    for fd in fds:  # every mount that needed a host path is made: no descriptor of one may survive
        os.close(fd)
    return merged


def _confine(spec: dict[str, Any], uid: int) -> None:
    """In the command's process, still ns-root (before setuid): keep only the capabilities it may have.
    ns-root keeps a root container's usual set; any other user keeps nothing, bounding set included."""
    keep = confine.cap_mask(list(confine.ROOT_CAPS) + list(spec.get("cap_add", []))) if uid == 0 else 0
    confine.drop_capabilities(keep, changing_uid=uid != 0)


def _seal(spec: dict[str, Any]) -> None:
    """Last step before exec: no_new_privs, the seccomp filter, and (with a root of its own) no descriptor
    but stdin/stdout/stderr."""
    confine.no_new_privs()
    cap_add = {c.upper().removeprefix("CAP_") for c in spec.get("cap_add", [])}
    confine.install_seccomp(deny_mount="SYS_ADMIN" not in cap_add, deny_userns=not spec.get("nested_userns", False))
    if spec.get("root") is not None:
        os.closerange(3, 1 << 16)


def _run_init(spec: dict[str, Any]) -> int:
    """PID 1: set up the filesystem, start the command as the requested user, reap until it ends."""
    # nothing in the sandbox may open this process's /proc entries (fds, root, memory), though it runs
    # as the same ns-root: a non-dumpable process needs CAP_SYS_PTRACE in the initial namespace for that
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    newroot = _assemble(spec)
    if not spec.get("network", False):
        _lo_up()
    if spec.get("hostname"):
        socket.sethostname(spec["hostname"])
    if newroot is not None:
        _pivot_root(newroot)
    os.chdir(spec.get("cwd", "/"))
    env = spec.get("env") or {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    uid, gid = int(spec.get("uid", 0)), int(spec.get("gid", 0))
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.setgroups([int(g) for g in spec.get("groups", [])])
            os.setresgid(gid, gid, gid)
            _confine(spec, uid)
            os.setresuid(uid, uid, uid)
            if spec.get("umask") is not None:
                os.umask(int(spec["umask"]))
            _seal(spec)
            os.execvpe(spec["argv"][0], spec["argv"], env)
        except OSError as exc:
            sys.stderr.write(f"deb-sandbox: cannot run {spec['argv'][0]}: {exc.strerror}\n")
            os._exit(127)
        except confine.ConfineError as exc:
            sys.stderr.write(f"deb-sandbox: cannot confine the command: {exc}\n")
            os._exit(4)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(pid, signal.SIGKILL if s == signal.SIGTERM else s))
    code = 1
    while True:
        try:
            wpid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if wpid == pid:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            break
    return code


def _in_namespaces(spec: dict[str, Any], launcher: int, ready_w: int, mapped_r: int) -> NoReturn:
    """The launcher's child: make the user namespace, wait for the launcher to map its ids, make the other
    namespaces and run the sandbox's PID 1 (:func:`_run_init`); exits with its status."""
    _pdeathsig()
    if os.geteuid() == 0:
        try:
            _stage_host_paths(spec)
        except (OSError, SandboxSetupError) as exc:
            sys.stderr.write(f"deb-sandbox: cannot prepare host paths: {exc}\n")
            os._exit(4)
    try:
        _unshare(CLONE_NEWUSER)
    except SandboxSetupError as exc:
        sys.stderr.write(f"deb-sandbox: cannot create a user namespace: {exc}\n")
        os._exit(4)
    os.write(ready_w, b"1")
    os.close(ready_w)
    if os.read(mapped_r, 1) != b"1":
        os._exit(4)
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        _pdeathsig()  # a change of credentials clears the parent-death signal: arm it again
        if os.getppid() != launcher:
            os._exit(4)  # the launcher died before that
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        if not spec.get("network", False):
            flags |= CLONE_NEWNET
        _unshare(flags)
    except (SandboxSetupError, OSError) as exc:
        sys.stderr.write(f"deb-sandbox: cannot create namespaces: {exc}\n")
        os._exit(4)
    init = os.fork()
    if init == 0:
        _pdeathsig()
        try:
            os._exit(_run_init(spec))
        except (SandboxSetupError, OSError) as exc:
            sys.stderr.write(f"deb-sandbox: {exc}\n")
            os._exit(4)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(init, signal.SIGKILL))
    signal.signal(signal.SIGINT, lambda *_: os.kill(init, signal.SIGKILL))
    _, status = os.waitpid(init, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _map_and_wait(child: int, spec: dict[str, Any], ready_r: int, mapped_w: int) -> int:
    """The launcher's side: map the child's ids once its user namespace exists, forward signals to it and
    return its exit status."""
    if os.read(ready_r, 1) != b"1":
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status) or 4
    try:
        _write_maps(child, spec)
    except (SandboxSetupError, OSError) as exc:
        sys.stderr.write(f"deb-sandbox: cannot map ids: {exc}\n")
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        return 4
    os.write(mapped_w, b"1")
    os.close(mapped_w)

    def forward(sig: int, _frame: object) -> None:
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def main() -> int:
    # the launcher dies with the process that started it (a build tool, or a daemon running one, killed -9);
    # each process below re-arms the same link to its parent, and the sandbox's PID 1 takes the build with it
    _pdeathsig()
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    r1, w1 = os.pipe()  # child -> parent: "user namespace exists"
    r2, w2 = os.pipe()  # parent -> child: "ids are mapped"
    launcher = os.getpid()
    child = os.fork()
    if child == 0:
        os.close(r1)
        os.close(w2)
        _in_namespaces(spec, launcher, w1, r2)
    os.close(w1)
    os.close(r2)
    return _map_and_wait(child, spec, r1, w2)


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: the sandbox has ended
