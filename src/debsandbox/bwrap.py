"""Command lines for bubblewrap (``bwrap``): a host tool or a throw-away chroot isolated without the
namespace launcher (:mod:`debsandbox.nsexec`), as the calling user, with no id mapping.

Use :class:`debsandbox.sandbox.Sandbox` for untrusted code in a root that must end up owned by mapped ids;
``bwrap`` is for commands whose output the caller owns (``dpkg-source -b`` in a work directory) and for
disposable chroots whose programs switch users (apt's ``_apt``), which a one-id user namespace forbids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from debsandbox.sandbox import Bind, network_binds


def bwrap_argv(
    command: Sequence[str],
    *,
    root: Path | None = None,
    binds: Sequence[Bind] = (),
    network: bool = False,
    user_namespace: bool = True,
    all_caps: bool = False,
    env: Mapping[str, str] | None = None,
    chdir: str | None = None,
    new_session: bool = False,
) -> list[str]:
    """``command`` under bubblewrap.

    The root is ``root`` bound read-write at ``/``, or the host's ``/`` read-only when ``root`` is None;
    then a fresh ``/dev``, ``/proc`` and a sticky tmpfs ``/tmp``, then ``binds`` (in that order, so a bind
    below ``/tmp`` stays visible). Own pid, ipc and uts namespaces; the network only with ``network``
    (a chroot then gets the host's resolver files); a user namespace (mapping the caller alone) unless
    ``user_namespace`` is False. The command dies with its parent; ``all_caps`` keeps every capability
    (root in a disposable chroot); ``new_session`` detaches it from the terminal.
    """
    argv = ["bwrap", "--ro-bind", "/", "/"] if root is None else ["bwrap", "--bind", str(root), "/"]
    argv += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
    mounts = list(binds) + (network_binds() if network and root is not None else [])
    for b in mounts:
        argv += ["--ro-bind" if b.ro else "--bind", str(b.src), b.dst]
    if user_namespace:
        argv += ["--unshare-all", *(["--share-net"] if network else [])]
    else:
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", *([] if network else ["--unshare-net"])]
    argv.append("--die-with-parent")
    if new_session:
        argv.append("--new-session")
    if all_caps:
        argv += ["--cap-add", "ALL"]
    for key, value in (env or {}).items():
        argv += ["--setenv", key, value]
    if chdir is not None:
        argv += ["--chdir", chdir]
    return argv + list(command)
