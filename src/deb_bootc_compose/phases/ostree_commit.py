"""ostree-commit: commit the prepared tree (with /etc moved to /usr/etc) into a bare repo, then pull it into
the shared archive-mode repo at ``TARGET/ostree/repo``.

The commit carries only content-derived values: the manifest's version, ``--timestamp`` from the
lockfile's SOURCE_DATE_EPOCH, no parent, no ref binding, a fixed subject. The same tree gives the same
commit checksum on any day and in any target directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from deb_bootc_compose.intree import Tree
from deb_bootc_compose.phases.base import ComposeError, Phase, VariantState
from debsandbox.commands import CommandError, run

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

    def run(self) -> None:
        target = self.ctx.target
        ensure_repo(target.ostree_repo, "archive")
        ensure_repo(target.bare_repo, "bare")
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
        self.progress(f"{vs.variant}/{vs.arch}: ostree commit {vs.ref} (bare repo)")
        argv = [
            "ostree", "commit", f"--repo={bare}", f"--branch={vs.ref}", f"--tree=dir={vs.tree}",
            "--parent=none", "--no-bindings", f"--timestamp=@{sde}", "--bootable",
            f"--subject={m.name} {m.version} ({vs.variant}/{vs.arch})",
            f"--add-metadata-string=version={m.version}",
            f"--add-metadata-string=debian.suite={m.suite}",
        ]
        try:
            with ostree_form(vs.tree):
                done = run(argv, log=self.log_path, capture=True, cancel=self.ctx.cancel, timeout=1800)
        except CommandError as exc:
            raise ComposeError(f"{vs.variant}/{vs.arch}: ostree commit failed:\n{exc.tail}") from exc
        checksum = done.output.strip().splitlines()[-1]
        if len(checksum) != 64:
            raise ComposeError(f"ostree commit printed no checksum: {done.output[-500:]}")
        self.progress(f"{vs.variant}/{vs.arch}: pull-local into the archive repo {archive}")
        try:
            run(["ostree", f"--repo={archive}", "pull-local", str(bare), checksum],
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
