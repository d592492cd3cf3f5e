"""systemd's own tmpfiles for /home and /srv warn about OSTree's symlinks there (cosmetic): override them."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    job.own_dir("etc/tmpfiles.d")
    job.tree.write_text("etc/tmpfiles.d/home.conf", "# /home and /srv are symlinks into /var (OSTree)\n")


STEP = Step("tmpfiles-overrides", run)
