"""Every image carries what it was composed from: ``/usr/lib/deb-bootc/manifest.yaml`` (the manifest as the compose
used it, a derived manifest with its base merged in) and ``/usr/lib/deb-bootc/lockfile.yaml`` (the compose's
lockfile: exact package versions and, for a derived image, its base's variant, commits and image digests).
Content only (no compose ID, no date, no download URL: ``Lockfile.image_text``), so the same inputs still give
the same commit and image. ``deb-bootc-compose diff`` and a derived manifest read
them; so can anyone holding only the image."""

from __future__ import annotations

from deb_bootc_compose.derive.inherit import effective_yaml
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step

DIR = "usr/lib/deb-bootc"
MANIFEST = f"{DIR}/manifest.yaml"
LOCKFILE = f"{DIR}/lockfile.yaml"


def run(job: PrepareJob) -> None:
    lock = job.ctx.lockfile
    if lock is None:
        raise ComposeError(f"{job.label}: no lockfile to record in the image (gather runs first)")
    job.own_dir(DIR)
    job.tree.write_text(MANIFEST, effective_yaml(job.manifest, job.manifest.derived_from), mode=0o644)
    job.tree.write_text(LOCKFILE, lock.image_text(), mode=0o644)


STEP = Step("compose-record", run)
