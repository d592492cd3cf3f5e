"""The manifest's ``files:`` and the variant's own (content or a source file next to the manifest), with owner,
group and mode."""

from __future__ import annotations

import os

from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.prepare.base import PrepareJob, Step


def ids_of(t: Tree, owner: str, group: str, what: str) -> tuple[int, int]:
    """The image's uid and gid of ``owner``/``group`` (names looked up in its /etc/passwd and /etc/group)."""
    def lookup(db: str, name: str) -> int:
        if name.isdigit():
            return int(name)
        for line in t.read_text(f"etc/{db}", errors="replace").splitlines():
            parts = line.split(":")
            if parts[0] == name:
                return int(parts[2])
        raise ComposeError(f"manifest {what}: no {'user' if db == 'passwd' else 'group'} {name!r} in the image")

    return lookup("passwd", owner), lookup("group", group)


def run(job: PrepareJob) -> None:
    t = job.tree
    for key, f in job.settings.files:
        dest = f.path.lstrip("/")
        t.mkdir(os.path.dirname(dest), parents=True, exist_ok=True)
        if t.is_symlink(dest) or t.is_dir(dest):
            raise ComposeError(f"manifest {key}: {f.path} exists in the tree as a directory or symlink")
        if f.source is not None:
            data = job.manifest_file(f.source, f"{key}.source")
        else:
            assert f.content is not None
            data = f.content.encode()
        uid, gid = ids_of(t, f.owner, f.group, f"{key} ({f.path})")
        t.write_bytes(dest, data, int(f.mode, 8))
        t.chown(dest, uid, gid)
        t.chmod(dest, int(f.mode, 8))  # chown clears set-id bits


STEP = Step("files", run)
