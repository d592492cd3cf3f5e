"""The image's identity: the manifest's and the variant's ``os_release`` keys over Debian's
``/usr/lib/os-release`` (:mod:`deb_bootc_compose.osrelease`), ``/etc/os-release`` Debian's link to it.

Without ``os_release`` the step does nothing: the image keeps base-files' file byte for byte. It runs before
the initramfs is built (dracut copies the file into it as ``/usr/lib/initrd-release``) and before the
postprocess scripts (which see the identity the image will have).
"""

from __future__ import annotations

import stat

from deb_bootc_compose import osrelease
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step

FILE = "usr/lib/os-release"
LINK = "etc/os-release"
LINK_TARGET = "../usr/lib/os-release"  # what base-files ships


def run(job: PrepareJob) -> None:
    keys = job.settings.os_release
    if not keys:
        return
    t = job.tree
    st = t.lstat(FILE)
    if st is None or not stat.S_ISREG(st.st_mode):
        what = "missing" if st is None else "not a regular file (a package replaced it with a link or a directory)"
        raise ComposeError(f"{job.label}: /{FILE} is {what}; the manifest's os_release is written over the one "
                           "Debian's base-files ships, which the image must hold")
    # a regular file, read as it is (no link followed); replaced, keeping its owner and mode
    text = t.read_text(FILE, errors="replace", limit=64 << 10)
    t.write_text(FILE, osrelease.render(text, keys))
    if not (t.is_symlink(LINK) and t.readlink(LINK) == LINK_TARGET):
        if t.is_real_dir(LINK):
            t.rmtree(LINK)
        else:
            t.unlink(LINK, missing_ok=True)
        t.symlink(LINK_TARGET, LINK)
    job.progress(f"{job.label}: os-release {', '.join(f'{k}={v}' for k, v in keys.items())}")


STEP = Step("os-release", run)
