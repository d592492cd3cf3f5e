"""No SSH host keys in the image: they are made at first boot (``deb-bootc-ssh-keygen.service``, before ssh)."""

from __future__ import annotations

import fnmatch

from deb_bootc_compose.prepare.base import PrepareJob, Step

UNIT = "deb-bootc-ssh-keygen.service"
SSH_KEYGEN_UNIT = """[Unit]
Description=Generate SSH host keys at first boot (deb-bootc-compose images ship none)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def run(job: PrepareJob) -> None:
    t = job.tree
    if t.is_dir("etc/ssh"):
        for k in t.listdir("etc/ssh"):
            if fnmatch.fnmatch(k, "ssh_host_*"):
                t.rmtree(f"etc/ssh/{k}")
    if not t.exists("usr/sbin/sshd"):
        return
    t.write_text(f"usr/lib/systemd/system/{UNIT}", SSH_KEYGEN_UNIT)
    wants = "usr/lib/systemd/system/multi-user.target.wants"
    job.own_dir(wants)
    t.unlink(f"{wants}/{UNIT}", missing_ok=True)
    t.symlink(f"../{UNIT}", f"{wants}/{UNIT}")
    for svc in ("ssh.service", "sshd.service"):
        dropin = f"usr/lib/systemd/system/{svc}.d"
        job.own_dir(dropin)
        t.write_text(f"{dropin}/deb-bootc-keygen.conf", f"[Unit]\nWants={UNIT}\nAfter={UNIT}\n")


STEP = Step("ssh-host-keys", run, announce="image defaults (no SSH host keys, root locked, locale, machine-id)")
