"""The manifest's ``hooks:`` commands: ``/bin/sh -e -c COMMAND`` in the sandbox postprocess scripts run in
(debsandbox's launcher: a user namespace whose root is a subordinate id with no capability on the host, own
mount, pid, ipc, uts and network namespaces, seccomp, no network), with a throwaway root of its own: the host's
``/usr`` read-only (the tools), the compose directory and the target's OSTree repository READ-ONLY at their
own paths (locked read-only by real root, so not even ns-root can remount them), tmpfs ``/tmp`` and ``/run``.
The command learns where things are from its environment (:func:`hook_env`). A command that fails stops the
compose (DOOMED) with its output in the message; all of it goes to ``logs/hooks.log``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from deb_bootc_compose import treeops
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phases.base import ComposeContext
from debsandbox.sandbox import Bind, DirRoot, Sandbox, owned_dir, remove_tree

TIMEOUT = 1800
# the host directories a shell and its tools need besides /usr (read-only; merged-/usr links are made instead)
HOST_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_ETC = ("etc/alternatives", "etc/ld.so.cache", "etc/nsswitch.conf")
ENV_PREFIX = "DEB_BOOTC_COMPOSE_"


def hook_env(ctx: ComposeContext, when: str, phase: str) -> dict[str, str]:
    """What a hook command is told (docs/plugins.md): the compose's IDs and paths, the phase and moment."""
    p = ctx.paths
    env = {
        "ID": ctx.compose_id, "TYPE": ctx.compose_type, "DIR": str(p.topdir), "METADATA": str(p.metadata),
        "LOGS": str(p.logs), "WORK": str(p.work), "DELIVERABLES": str(p.deliverables),
        "OSTREE_REPO": str(ctx.target.ostree_repo), "PHASE": phase, "HOOK": when,
        "NAME": ctx.manifest.name, "VERSION": ctx.manifest.version, "SUITE": ctx.manifest.suite,
        "VARIANTS": " ".join(f"{v.variant}/{v.arch}" for v in ctx.variants),
    }
    if p.lockfile.is_file():
        env["LOCKFILE"] = str(p.lockfile)
    out = {f"{ENV_PREFIX}{k}": v for k, v in env.items()}
    for v in ctx.variants:
        if v.commit:
            out[f"{ENV_PREFIX}COMMIT_{_env_name(v.variant)}_{v.arch.upper()}"] = v.commit
    if ctx.source_date_epoch is not None:
        out["SOURCE_DATE_EPOCH"] = str(ctx.source_date_epoch)
    out.update({"HOME": "/tmp", "TMPDIR": "/tmp"})
    return out


def _env_name(variant: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in variant).upper()


def _make_root(ctx: ComposeContext) -> Path:
    """A fresh, empty root outside the compose directory (the command may write there; it is thrown away)."""
    parent = ctx.target.hook_roots
    parent.mkdir(parents=True, exist_ok=True)
    root = owned_dir(Path(tempfile.mkdtemp(prefix="hook-", dir=parent)))
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for name in HOST_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
    treeops.adopt_host_writes(root)  # ns-root makes the mount points in it
    return root


def _binds(ctx: ComposeContext) -> list[Bind]:
    binds = [Bind(Path("/usr"), "/usr")]
    binds += [Bind(Path(f"/{d}"), f"/{d}") for d in HOST_DIRS
              if Path(f"/{d}").is_dir() and not Path(f"/{d}").is_symlink()]
    binds += [Bind(Path("/") / e, f"/{e}") for e in HOST_ETC if Path(f"/{e}").exists()]
    binds.append(Bind(ctx.paths.topdir, str(ctx.paths.topdir)))
    if ctx.target.ostree_repo.is_dir():
        binds.append(Bind(ctx.target.ostree_repo, str(ctx.target.ostree_repo)))
    return binds  # every one read-only (Bind's default)


def run_command(ctx: ComposeContext, when: str, phase: str, index: int, command: str) -> None:
    """Run one hook command; ComposeError (with its output) when it fails."""
    label = f"hooks.{when}.{phase}[{index}]"
    log = ctx.paths.hooks_log
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"== {label}: {command}\n")
    root = _make_root(ctx)
    try:
        sandbox = Sandbox(root=DirRoot(root), binds=_binds(ctx), tmpfs=["/tmp", "/run"], network=False,
                          env=hook_env(ctx, when, phase), cwd=str(ctx.paths.topdir))
        done = sandbox.run(["/bin/sh", "-e", "-c", command], ids=treeops.tree_ids(), log=log, check=False,
                           capture=True, cancel=ctx.cancel, timeout=TIMEOUT)
    finally:
        remove_tree(root)
    if done.returncode != 0:
        out = done.output.strip().splitlines()
        shown = "\n    ".join(out[-40:]) or "(no output)"
        raise ComposeError(f"{label} failed with exit code {done.returncode} ({command!r}); its output:\n    {shown}")
