"""ostree-commit: commit the prepared tree (with /etc moved to /usr/etc) into a bare-user repo, then pull it
into the shared archive-mode repo at ``TARGET/ostree/repo``.

The tree was made in a user namespace and belongs to subordinate ids on disk (see
:mod:`deb_bootc_compose.treeops`). ``ostree commit`` therefore runs in the same namespace (the debsandbox
launcher with the host's file system, no capability on the host, the tree and the repo passed in as open
paths): it sees the owners, modes, set-id bits and file capabilities the packages gave (``security.capability``
in the form a root-owned file carries), and records exactly those. The repo it writes is ``bare-user``
(ownership and xattrs kept in ``user.ostreemeta``, files owned by ns-root), so the host's ``pull-local`` into
the archive repo reads the recorded metadata, not the subordinate ids of the files. That pull is
``--untrusted`` (every object checksummed on import): the bare-user repo belongs to ns-root, so an object a
hostile maintainer script might plant there cannot reach the archive repo.

The commit carries only content-derived values: the manifest's version, ``--timestamp`` from the
lockfile's SOURCE_DATE_EPOCH, no parent, no ref binding, a fixed subject, and the image's package list
(``deb-bootc.packages``, :mod:`deb_bootc_compose.commitmeta`). The same tree gives the same commit checksum on
any day and in any target directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from deb_bootc_compose import treeops
from deb_bootc_compose.commitmeta import PACKAGES_KEY, metadata_argument
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.phases.base import Phase, VariantState
from debsandbox import idmap
from debsandbox.commands import CommandError, run
from debsandbox.sandbox import Sandbox, owned_dir

NS_REPO_MODE = "bare-user"

# gzip level of archive-mode objects: 1 halves the CPU time of filling the archive repo (77 -> 35 s for a
# 400 MB tree here) for 3% more bytes (287 vs 279 MB); checksums are over uncompressed content, unchanged
ARCHIVE_ZLIB_LEVEL = 1


def ensure_repo(repo: Path, mode: str) -> None:
    """Create the repo if needed (a new archive repo gets ``archive.zlib-level``; an existing one is left alone)."""
    if (repo / "config").is_file():
        return
    repo.mkdir(parents=True, exist_ok=True)
    run(["ostree", "init", f"--repo={repo}", f"--mode={mode}"])
    if mode == "archive":
        run(["ostree", f"--repo={repo}", "config", "set", "archive.zlib-level", str(ARCHIVE_ZLIB_LEVEL)])


def repo_mode(repo: Path) -> str | None:
    """``[core] mode`` of the repo's config (None: no repo there)."""
    config = repo / "config"
    if not config.is_file():
        return None
    for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "mode":
            return value.strip()
    return "bare"


def ensure_ns_repo(repo: Path, ids: idmap.IdMap, log: Path | None = None) -> None:
    """The bare-user repo the namespace commits into, owned by ns-root. A repo left by an older version (a
    ``bare`` repo written by the host's root) is replaced: its objects carry host ids."""
    if repo_mode(repo) == NS_REPO_MODE and repo.stat().st_uid == ids.root_uid:
        return
    treeops.remove_tree(repo)
    owned_dir(repo, ids)
    try:
        Sandbox(root=None).run(["ostree", "init", "--repo=@repo@", f"--mode={NS_REPO_MODE}"], ids=ids,
                               paths={"repo": repo}, log=log)
    except CommandError as exc:
        raise ComposeError(f"cannot create the {NS_REPO_MODE} repo {repo} in the user namespace:\n{exc.tail}"
                           ) from exc


@contextlib.contextmanager
def ostree_form(tree: Path) -> Iterator[Path]:
    """Temporarily move ``etc`` to ``usr/etc`` (the form OSTree commits), and back afterwards."""
    with Tree(tree) as t:  # usr resolved inside the tree: a planted link cannot move etc out of it
        if t.lexists("usr/etc"):
            raise ComposeError(f"{tree}: usr/etc already exists; the tree is not in container form")
        t.rename("etc", "usr/etc")
        try:
            yield tree
        finally:
            t.rename("usr/etc", "etc")


def rev_parse(repo: Path, ref: str) -> str | None:
    done = run(["ostree", f"--repo={repo}", "rev-parse", ref], check=False, capture=True)
    return done.output.strip() if done.returncode == 0 else None


class OstreeCommitPhase(Phase):
    name = "ostree-commit"
    needed_because = "the OSTree commit is the compose's main deliverable (disk images install it)"

    def run(self) -> None:
        target = self.ctx.target
        ensure_repo(target.ostree_repo, "archive")
        ensure_ns_repo(target.bare_repo, treeops.tree_ids(), self.log_path)
        for vs in self.ctx.variants:
            self.check_cancelled()
            self.commit(vs)

    def commit(self, vs: VariantState) -> None:
        if vs.tree is None or vs.ref is None:
            raise ComposeError(f"{vs.variant}/{vs.arch}: nothing to commit (no prepared tree)")
        m = self.ctx.manifest
        bare, archive = self.ctx.target.bare_repo, self.ctx.target.ostree_repo
        sde = self.ctx.source_date_epoch
        if sde is None:
            raise ComposeError("no SOURCE_DATE_EPOCH: gather must run before ostree-commit")
        self.progress(f"{vs.variant}/{vs.arch}: ostree commit {vs.ref} (user namespace, {NS_REPO_MODE} repo)")
        # "@tree@/.": ostree opens the tree with O_NOFOLLOW, and @tree@ itself is a /proc/self/fd link
        argv = [
            "ostree", "commit", "--repo=@repo@", f"--branch={vs.ref}", "--tree=dir=@tree@/.",
            "--parent=none", "--no-bindings", f"--timestamp=@{sde}", "--bootable",
            f"--subject={m.name} {m.version} ({vs.variant}/{vs.arch})",
            f"--add-metadata-string=version={m.version}",
            f"--add-metadata-string=debian.suite={m.suite}",
        ]
        if vs.lock is not None:
            packages = metadata_argument(((p.name, p.version, p.arch) for p in vs.lock.packages), vs.arch)
            if packages is None:
                self.progress(f"{vs.variant}/{vs.arch}: {len(vs.lock.packages)} packages are too many for one "
                              f"command-line argument: the commit carries no {PACKAGES_KEY} list")
            else:
                argv.append(packages)
        ids = treeops.tree_ids()
        treeops.adopt_host_writes(vs.tree, ids)
        try:
            with ostree_form(vs.tree):
                done = Sandbox(root=None).run(
                    argv, ids=ids, paths={"repo": bare, "tree": vs.tree}, log=self.log_path, capture=True,
                    cancel=self.ctx.cancel, timeout=1800,
                )
        except CommandError as exc:
            raise ComposeError(f"{vs.variant}/{vs.arch}: ostree commit failed:\n{exc.tail}") from exc
        checksum = done.output.strip().splitlines()[-1]
        if len(checksum) != 64:
            raise ComposeError(f"ostree commit printed no checksum: {done.output[-500:]}")
        self.progress(f"{vs.variant}/{vs.arch}: pull-local into the archive repo {archive}")
        try:
            # --untrusted: every object is checksummed as it is imported. ns-root owns the bare-user repo, so
            # an object planted there by package code of another compose must not reach the archive repo
            run(["ostree", f"--repo={archive}", "pull-local", "--untrusted", str(bare), checksum],
                log=self.log_path, cancel=self.ctx.cancel, timeout=1800)
        except CommandError as exc:
            raise ComposeError(
                f"{vs.variant}/{vs.arch}: pulling the commit into {archive} failed:\n{exc.tail}"
            ) from exc
        self._set_ref(archive, vs.ref, checksum)
        vs.commit = checksum
        self.progress(f"{vs.variant}/{vs.arch}: {vs.ref} = {checksum}")

    def _set_ref(self, repo: Path, ref: str, checksum: str) -> None:
        """Point ``ref`` at ``checksum`` atomically (whatever it pointed at before: commits have no parent)."""
        run(["ostree", f"--repo={repo}", "refs", "--force", f"--create={ref}", checksum], log=self.log_path)
        if rev_parse(repo, ref) != checksum:
            raise ComposeError(f"{repo}: ref {ref} does not point at {checksum} after the update")
