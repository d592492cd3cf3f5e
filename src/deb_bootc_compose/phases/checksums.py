"""checksums: SHA256 of every deliverable, ``compose/<variant>/<arch>/CHECKSUM``, and the image records'
``checksums``/``size`` (which images.json and the FINISHED check read).

A no-op recompose hard-links the previous compose's deliverables; their SHA256, recorded when they were
written, is reused while the file is still that inode with that size (``ctx.reused_checksums``)."""

from __future__ import annotations

import os
from pathlib import Path

from deb_bootc_compose.checksums import ChecksumError, FileChecksum, checksum, write_checksum_file
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.phases.base import Phase


class ChecksumsPhase(Phase):
    name = "checksums"
    needed_because = "a compose is FINISHED only when every deliverable has its checksum"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            if not vs.images:
                continue
            base = self.ctx.paths.variant_dir(vs.variant, vs.arch)
            items = []
            known = self.ctx.reused_checksums
            for img in vs.images:
                item = self._known(img.path, base, known.get(str(img.path)))
                try:
                    item = item or checksum(img.path, base)
                except ChecksumError as exc:
                    raise ComposeError(f"{vs.variant}/{vs.arch}: {exc}") from exc
                img.checksums = {"sha256": item.sha256}
                img.size = item.size
                items.append(item)
                self.progress(f"{vs.variant}/{vs.arch}: SHA256 ({item.name}) = {item.sha256}")
            path = self.ctx.paths.checksum_file(vs.variant, vs.arch)
            write_checksum_file(path, items)
            self.progress(f"{vs.variant}/{vs.arch}: wrote {path}")

    @staticmethod
    def _known(path: Path, base: Path, known: tuple[int, int, str] | None) -> FileChecksum | None:
        """The recorded checksum of a hard-linked deliverable, when it is still the same inode and size."""
        if known is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        ino, size, sha = known
        if (st.st_ino, st.st_size) != (ino, size):
            return None
        return FileChecksum(os.path.relpath(path, base), size, sha)
