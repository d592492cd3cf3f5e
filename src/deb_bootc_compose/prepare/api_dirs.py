"""/dev, /proc, /sys, /run and /tmp empty directories (mmdebstrap's root mode leaves device nodes); /tmp 1777."""

from __future__ import annotations

from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t = job.tree
    for name in ("dev", "proc", "sys", "run", "tmp"):
        if t.is_real_dir(name):
            for child in t.listdir(name):
                t.rmtree(f"{name}/{child}")
        else:
            t.rmtree(name, missing_ok=True)
            t.mkdir(name)
    t.chmod("tmp", 0o1777)


STEP = Step("api-dirs", run)
