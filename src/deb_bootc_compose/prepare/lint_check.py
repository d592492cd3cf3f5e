"""The prepared tree must pass the lint (deb_bootc_compose.lint) in container form, or the compose stops."""

from __future__ import annotations

from deb_bootc_compose import lint
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    problems = lint.check(job.tree.root, container_form=True)
    if problems:
        raise ComposeError(
            f"{job.label}: the prepared tree breaks {len(problems)} rule(s):\n  " + "\n  ".join(map(str, problems))
        )


STEP = Step("lint", run)
