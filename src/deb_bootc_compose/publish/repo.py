"""The OSTree operations on the published repository (archive mode), each one safe to repeat.

Every write goes through ``ostree`` itself, which writes objects, detached metadata, deltas and refs to a
temporary name and renames them into place; ``summary`` and ``summary.sig`` are made together in a staging
repository and renamed into place one right after the other (see docs/publishing.md for the window between them).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from deb_bootc_compose.errors import PublishError
from debsandbox.commands import CommandError, run

from .history import REF
from .keys import Signer

SIGNATURE_KEY = re.compile(r"^\s*Signature made .* key ID ([0-9A-Fa-f]{16})\s*$", re.M)
SUMMARY_FILES = ("summary", "summary.sig")
SUMMARY_STAGE = ".deb-bootc-summary-stage"  # where update_summary makes the pair before renaming it into place


class PublishedRepo:
    """``DIR``: an archive-mode OSTree repository any web server serves as static files."""

    def __init__(self, root: Path, log: Path | None = None) -> None:
        self.root = root
        self.log = log

    def ostree(self, *args: str, capture: bool = False, timeout: float = 3600) -> str:
        try:
            return run(["ostree", f"--repo={self.root}", *args], log=None if capture else self.log, capture=capture,
                       timeout=timeout).output
        except CommandError as exc:
            raise PublishError(f"ostree {args[0]} failed in {self.root}:\n{exc.tail.strip()[-2000:]}") from None

    # -- state --------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / "config").is_file() and (self.root / "objects").is_dir()

    def mode(self) -> str:
        for line in (self.root / "config").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "mode":
                return value.strip()
        return "bare"

    def init(self) -> None:
        run(["ostree", "init", f"--repo={self.root}", "--mode=archive"], log=self.log)

    def has_commit(self, commit: str) -> bool:
        return (self.root / "objects" / commit[:2] / f"{commit[2:]}.commit").is_file()

    def commits(self) -> list[str]:
        """Every commit object in the repository."""
        objects = self.root / "objects"
        return sorted(p.parent.name + p.name[:-len(".commit")] for p in objects.glob("??/*.commit"))

    def heads(self) -> dict[str, str]:
        """Every ref of the repository and the commit it points at."""
        return {ref: self.ostree("rev-parse", ref, capture=True).strip()
                for ref in self.ostree("refs", capture=True).split()}

    def rev_parse(self, ref: str) -> str | None:
        done = run(["ostree", f"--repo={self.root}", "rev-parse", ref], check=False, capture=True)
        return done.output.strip() if done.returncode == 0 else None

    def signature_key_ids(self, commit: str) -> set[str]:
        """Key ids of the OpenPGP signatures in the commit's detached metadata (verified or not)."""
        if not (self.root / "objects" / commit[:2] / f"{commit[2:]}.commitmeta").is_file():
            return set()
        return {k.upper() for k in SIGNATURE_KEY.findall(self.ostree("show", commit, capture=True))}

    def deltas(self) -> set[tuple[str, str]]:
        """(from, to) of every static delta (a delta from nothing has from "")."""
        result: set[tuple[str, str]] = set()
        for line in self.ostree("static-delta", "list", capture=True).splitlines():
            name = line.strip()
            if re.fullmatch(r"([0-9a-f]{64}-)?[0-9a-f]{64}", name):
                frm, _, to = name.rpartition("-")
                result.add((frm, to))
        return result

    def file_sha256(self, name: str) -> str | None:
        path = self.root / name
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    # -- writes ---------------------------------------------------------------------------------------------
    def pull_local(self, source: Path, commit: str) -> None:
        """Import the commit (every object checksummed on the way in: the source is another repository)."""
        self.ostree("pull-local", "--untrusted", str(source), commit)

    def sign(self, commit: str, signer: Signer) -> bool:
        """Add a detached signature by each key that has not signed yet; whether anything was added."""
        have = self.signature_key_ids(commit)
        missing = [f for f in signer.fingerprints if f[-16:].upper() not in have]
        if missing:
            self.ostree("gpg-sign", f"--gpg-homedir={signer.homedir}", commit, *missing)
        return bool(missing)

    def generate_delta(self, frm: str, to: str) -> None:
        self.ostree("static-delta", "generate", f"--from={frm}", f"--to={to}")

    def delete_delta(self, frm: str, to: str) -> None:
        self.ostree("static-delta", "delete", f"{frm}-{to}" if frm else to)

    def set_ref(self, ref: str, commit: str) -> None:
        if not REF.match(ref):
            raise PublishError(f"{ref!r} is not a valid OSTree ref")
        self.ostree("refs", "--force", f"--create={ref}", commit)
        if self.rev_parse(ref) != commit:
            raise PublishError(f"{self.root}: ref {ref} does not point at {commit} after the update")

    def update_summary(self, signer: Signer, metadata: dict[str, str]) -> None:
        """Regenerate ``summary`` (refs, deltas, ``metadata`` in GVariant text) and sign it.

        ``ostree summary --update`` removes ``summary.sig`` before it writes the new summary and signs it: for as
        long as ``gpg`` takes, the repository would have no signature at all. So the summary is made in a staging
        repository beside the real one (its own ``config``, links to the real ``objects``, ``refs`` and
        ``deltas``) and the two files are renamed into place one right after the other.

        Web servers answer conditional requests (``If-Modified-Since``, which libostree sends for the summary)
        from the mtime in whole seconds: a summary rewritten within the second of the last one would be "not
        modified" for a client that fetched the old one in that second. So each file's mtime moves on by at
        least one whole second."""
        stage = self.root / SUMMARY_STAGE
        shutil.rmtree(stage, ignore_errors=True)  # left by a killed publish
        stage.mkdir()
        try:
            shutil.copyfile(self.root / "config", stage / "config")
            for name in ("objects", "refs", "deltas"):
                (self.root / name).mkdir(exist_ok=True)
                (stage / name).symlink_to(Path("..") / name)
            args = ["summary", "--update", f"--gpg-homedir={signer.homedir}"]
            args += [f"--gpg-sign={f}" for f in signer.fingerprints]
            args += [f"--add-metadata={k}={v}" for k, v in sorted(metadata.items())]
            PublishedRepo(stage, self.log).ostree(*args)
            for name in SUMMARY_FILES:
                old = self._mtime(name)
                new = int(os.stat(stage / name).st_mtime)
                if old is not None and new <= old:
                    os.utime(stage / name, (old + 1, old + 1))
            for name in reversed(SUMMARY_FILES):  # the signature first: a microsecond's mismatch, never none
                os.replace(stage / name, self.root / name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _mtime(self, name: str) -> int | None:
        try:
            return int(os.stat(self.root / name).st_mtime)
        except FileNotFoundError:
            return None

    def delete_commit(self, commit: str) -> None:
        """Delete a commit and every object no remaining commit reaches (reachability from all commits, not
        only refs: the kept older commits have no ref)."""
        self.ostree("prune", f"--delete-commit={commit}")
