"""OSTree's toplevel layout: /home, /root, /opt, /srv, /mnt and /usr/local become links into /var (their
content moved there), /media a link into /run, /ostree a link into the empty /sysroot."""

from __future__ import annotations

import stat

from deb_bootc_compose.intree import Tree
from deb_bootc_compose.prepare.base import PrepareJob, Step

TOPLEVEL = {
    "home": "var/home",
    "root": "var/roothome",
    "opt": "var/opt",
    "srv": "var/srv",
    "mnt": "var/mnt",
}


def move_to_symlink(t: Tree, src: str, dest: str, target: str) -> None:
    """``src`` (a directory: its mode, owner and content) moves to ``dest``; ``src`` becomes a link to ``target``."""
    if t.is_symlink(src):
        return
    t.mkdir(dest, parents=True, exist_ok=True)
    st = t.lstat(src)
    if st is not None and stat.S_ISDIR(st.st_mode):
        t.chmod(dest, stat.S_IMODE(st.st_mode))
        t.chown(dest, st.st_uid, st.st_gid)
        for child in t.listdir(src):
            t.rename(f"{src}/{child}", f"{dest}/{child}")
        t.rmdir(src)
    elif st is not None:
        t.unlink(src)
    t.symlink(target, src)


def run(job: PrepareJob) -> None:
    t = job.tree
    t.mkdir("var", exist_ok=True)
    for name, dest in TOPLEVEL.items():
        move_to_symlink(t, name, dest, f"{dest}")
    move_to_symlink(t, "usr/local", "var/usrlocal", "../var/usrlocal")
    t.rmtree("media", missing_ok=True)
    t.symlink("run/media", "media")
    t.mkdir("sysroot", exist_ok=True)
    if not t.is_symlink("ostree"):
        t.rmtree("ostree", missing_ok=True)
        t.symlink("sysroot/ostree", "ostree")


STEP = Step("toplevel", run)
