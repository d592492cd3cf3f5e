"""The manifest's groups and users (``groupadd``/``useradd`` in the tree; homes in /var/home; SSH keys)."""

from __future__ import annotations

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.imagespec import UserSpec
from deb_bootc_compose.prepare.base import PrepareJob, Step
from debsandbox.commands import CommandError


def _run_admin(job: PrepareJob, argv: list[str], what: str) -> None:
    try:
        job.in_tree(argv, capture=True)
    except CommandError as exc:
        raise ComposeError(f"manifest {what}: {' '.join(argv[:1])} failed:\n{exc.tail}") from exc


def useradd_argv(u: UserSpec) -> list[str]:
    argv = ["useradd", "--create-home", "--home-dir", f"/var/home/{u.name}", "--shell", u.shell]
    if u.uid is not None:
        argv += ["--uid", str(u.uid)]
    if u.gid is not None:
        argv += ["--gid", str(u.gid)]
    else:
        argv += ["--user-group"]
    if u.groups:
        argv += ["--groups", ",".join(u.groups)]
    if u.gecos:
        argv += ["--comment", u.gecos]
    return [*argv, "--password", u.password_hash or "!", u.name]


def _authorized_keys(job: PrepareJob, u: UserSpec) -> None:
    t = job.tree
    home = f"var/home/{u.name}"
    ssh = f"{home}/.ssh"
    job.own_dir(ssh)
    t.chmod(ssh, 0o700)
    t.write_text(f"{ssh}/authorized_keys", "\n".join(u.ssh_authorized_keys) + "\n", 0o600)
    home_st = t.stat(home)
    if home_st is None:
        raise ComposeError(f"manifest user {u.name}: useradd made no home directory /{home}")
    for p in (ssh, f"{ssh}/authorized_keys"):
        t.chown(p, home_st.st_uid, home_st.st_gid)


def run(job: PrepareJob) -> None:
    m = job.manifest
    for g in m.groups:
        argv = ["groupadd", *(["--gid", str(g.gid)] if g.gid is not None else []), g.name]
        _run_admin(job, argv, f"group {g.name}")
    for u in m.users:
        _run_admin(job, useradd_argv(u), f"user {u.name}")
        if u.ssh_authorized_keys:
            _authorized_keys(job, u)


STEP = Step("users", run)
