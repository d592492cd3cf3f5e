"""The manifest's locale in /etc/locale.conf and /etc/default/locale."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t, m = job.tree, job.manifest
    t.write_text("etc/locale.conf", f"LANG={m.locale}\n")
    job.own_dir("etc/default")
    t.write_text("etc/default/locale", f"LANG={m.locale}\n")


STEP = Step("locale", run)
