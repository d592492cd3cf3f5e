"""checksums: SHA256 of every deliverable, ``compose/<variant>/<arch>/CHECKSUM``, and the image records'
``checksums``/``size`` (which images.json and the FINISHED check read)."""

from __future__ import annotations

from deb_bootc_compose.checksums import ChecksumError, checksum, write_checksum_file
from deb_bootc_compose.phases.base import ComposeError, Phase


class ChecksumsPhase(Phase):
    name = "checksums"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            if not vs.images:
                continue
            base = self.ctx.paths.variant_dir(vs.variant, vs.arch)
            items = []
            for img in vs.images:
                try:
                    item = checksum(img.path, base)
                except ChecksumError as exc:
                    raise ComposeError(f"{vs.variant}/{vs.arch}: {exc}") from exc
                img.checksums = {"sha256": item.sha256}
                img.size = item.size
                items.append(item)
                self.progress(f"{vs.variant}/{vs.arch}: SHA256 ({item.name}) = {item.sha256}")
            path = self.ctx.paths.checksum_file(vs.variant, vs.arch)
            write_checksum_file(path, items)
            self.progress(f"{vs.variant}/{vs.arch}: wrote {path}")
