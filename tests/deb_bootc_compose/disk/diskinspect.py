"""Read a disk image the way the disk tests check it, without mounting: the GPT with sfdisk, the ext4
partitions with debugfs, the ESP with mtools. One place for what test_disk_phase, test_install_to_disk and
test_install_from_compose all read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class DiskImage:
    """A raw disk image (or a block device, for the partition table) and its GPT partitions by name."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.table = json.loads(sh("sfdisk", "-J", self.path))["partitiontable"]
        assert self.table["label"] == "gpt", self.table
        self.offsets = {p["name"]: p["start"] * 512 for p in self.table["partitions"]}

    @property
    def names(self) -> list[str]:
        return list(self.offsets)

    def debugfs(self, partition: str, request: str, image: Path | str | None = None) -> str:
        """``debugfs -R REQUEST`` on an ext4 partition; ``image`` reads another file with the same table
        (the backing file of a loop device)."""
        return sh("debugfs", "-R", request, f"{image or self.path}?offset={self.offsets[partition]}")

    def esp_listing(self, directory: str) -> str:
        return sh("mdir", "-i", f"{self.path}@@{self.offsets['EFI-SYSTEM']}", "-b", f"::{directory}")
