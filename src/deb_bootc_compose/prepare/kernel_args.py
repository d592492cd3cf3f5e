"""The manifest's kernel arguments, in bootc's kargs.d format (the disk installer also reads the manifest)."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    args = job.manifest.kernel_args
    if not args:
        return
    kargs = "usr/lib/bootc/kargs.d"
    job.own_dir(kargs)
    job.tree.write_text(f"{kargs}/00-compose.toml", "kargs = [" + ", ".join(f'"{a}"' for a in args) + "]\n")


STEP = Step("kernel-args", run)
