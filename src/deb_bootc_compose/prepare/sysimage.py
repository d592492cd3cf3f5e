"""The dpkg and debconf databases move to /usr/lib/sysimage (content of the image, not state); their old
places become links; dpkg's lock and backup files go."""

from __future__ import annotations

import os

from deb_bootc_compose.prepare.base import PrepareJob, Step

SYSIMAGE_DPKG = "usr/lib/sysimage/dpkg"
SYSIMAGE_DEBCONF = "usr/lib/sysimage/debconf"


def run(job: PrepareJob) -> None:
    t = job.tree
    for var_rel, usr_rel in (("var/lib/dpkg", SYSIMAGE_DPKG), ("var/cache/debconf", SYSIMAGE_DEBCONF)):
        if not t.is_real_dir(var_rel):
            continue
        t.mkdir(os.path.dirname(usr_rel), parents=True, exist_ok=True)
        t.rmtree(usr_rel, missing_ok=True)
        t.rename(var_rel, usr_rel)
        t.symlink(os.path.relpath(usr_rel, os.path.dirname(var_rel)), var_rel)
    # dpkg's lock and backup files are state, not content
    for junk in ("lock", "lock-frontend", "triggers/Lock", "status-old", "diversions-old", "statoverride-old"):
        t.unlink(f"{SYSIMAGE_DPKG}/{junk}", missing_ok=True)
    for junk in ("config.dat-old", "templates.dat-old", "passwords.dat"):
        t.unlink(f"{SYSIMAGE_DEBCONF}/{junk}", missing_ok=True)


STEP = Step("sysimage", run, announce=f"dpkg database to /{SYSIMAGE_DPKG}, /var to tmpfiles.d")
