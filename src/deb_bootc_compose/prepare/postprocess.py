"""The manifest's postprocess scripts, then the variant's own: ``/bin/sh -e`` in the tree's user namespace, no
network; a failing script stops the compose with its output."""

from __future__ import annotations

from deb_bootc_compose import treeops
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    for key, s in job.settings.postprocess:
        name = s.name or (s.file if s.file else key)
        if s.file is not None:
            script = job.manifest_file(s.file, f"{key}.file")
        else:
            assert s.script is not None
            script = s.script.encode()
        job.progress(f"{job.label}: postprocess script {name} (sandboxed, no network)")
        job.check_cancelled()
        done = treeops.in_tree(
            job.tree.root, ["/bin/sh", "-e", "-s"], stdin=script, log=job.log_path, check=False, capture=True,
            env={"SOURCE_DATE_EPOCH": str(job.ctx.source_date_epoch)}, cancel=job.ctx.cancel, timeout=1800,
        )
        if done.returncode != 0:
            out = done.output.strip().splitlines()
            shown = "\n    ".join(out[-40:]) or "(no output)"
            raise ComposeError(
                f"{job.label}: postprocess script {name} failed with exit code {done.returncode}; its output:\n"
                f"    {shown}"
            )


STEP = Step("postprocess", run)
