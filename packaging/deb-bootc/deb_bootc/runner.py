"""Running ostree and skopeo: one place that builds their command lines and turns failures into messages."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ClientError


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str


def run(argv: Sequence[str], *, check: bool = True, quiet: bool = True, env: dict[str, str] | None = None) -> Result:
    """Run ``argv``; with ``quiet`` its output is captured, otherwise it goes to the terminal (progress)."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise ClientError(f"{argv[0]} is not installed (apt install {argv[0]})")
    full_env = None if env is None else {**os.environ, **env}
    try:
        if quiet:
            done = subprocess.run(list(argv), capture_output=True, text=True, errors="replace", env=full_env,
                                  check=False)
            res = Result(list(argv), done.returncode, done.stdout, done.stderr)
        else:
            done = subprocess.run(list(argv), stdout=None, stderr=subprocess.PIPE, text=True, errors="replace",
                                  env=full_env, check=False)
            res = Result(list(argv), done.returncode, "", done.stderr)
    except OSError as exc:
        raise ClientError(f"cannot run {argv[0]}: {exc}") from None
    if check and res.rc != 0:
        raise ClientError(f"{' '.join(argv[:3])} failed: {last_line(res.err) or f'exit code {res.rc}'}")
    return res


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""
