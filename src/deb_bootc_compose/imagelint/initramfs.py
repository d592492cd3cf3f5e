"""The names in an initramfs (dracut's: an optional uncompressed early cpio, then the main cpio compressed with
gzip, xz or zstd, or not at all), read without unpacking anything and bounded, for two questions: which kernel
versions it holds modules of, and whether it carries ostree's ``ostree-prepare-root``."""

from __future__ import annotations

import lzma
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from isal import isal_zlib

GZIP_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]

CPIO_MAGIC = (b"070701", b"070702")
TRAILER = "TRAILER!!!"
MODULES = re.compile(r"^(?:usr/)?lib/modules/([^/]+)/")
MAX_NAMES = 200_000
MAX_BYTES = 2 << 30  # decompressed


class InitramfsError(ValueError):
    """Not an initramfs this reader understands (the message says what was found)."""


@dataclass
class Listing:
    names: list[str] = field(default_factory=list)

    @property
    def kernel_versions(self) -> set[str]:
        return {m.group(1) for n in self.names if (m := MODULES.match(n))}

    @property
    def has_ostree(self) -> bool:
        return any(n.rsplit("/", 1)[-1] in ("ostree-prepare-root", "ostree-prepare-root.service")
                   for n in self.names)


class _Reader:
    """Exact reads over a chunk source (an empty chunk ends it), counting the bytes against MAX_BYTES."""

    def __init__(self, chunks: Callable[[], bytes]) -> None:
        self.chunks, self.buf, self.pos, self.total, self.done = chunks, b"", 0, 0, False

    def _more(self) -> bool:
        if self.done:
            return False
        chunk = self.chunks()
        if not chunk:
            self.done = True
            return False
        self.total += len(chunk)
        if self.total > MAX_BYTES:
            raise InitramfsError(f"unpacks to more than {MAX_BYTES} bytes")
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n and self._more():
            pass
        return self.buf[self.pos:self.pos + n]

    def read(self, n: int) -> bytes:
        if len(self.buf) - self.pos >= n:  # the common case: no copy of the buffer
            self.pos += n
            return self.buf[self.pos - n:self.pos]
        data = self.peek(n)
        self.pos += len(data)
        return data

    def skip_zeros(self) -> bytes:
        """Skip the padding between archives; the next 6 bytes (empty at the end)."""
        while self.pos < len(self.buf) or self._more():
            rest = self.buf[self.pos:]
            self.pos += len(rest) - len(rest.lstrip(b"\0"))
            if self.pos < len(self.buf):
                return self.peek(6)
        return b""


def _cpio(r: _Reader, out: Listing) -> None:
    """One cpio archive (newc), up to its trailer."""
    while True:
        hdr = r.read(110)
        if len(hdr) < 110 or hdr[:6] not in CPIO_MAGIC:
            raise InitramfsError("a damaged cpio header")
        fields = [int(hdr[6 + 8 * i: 14 + 8 * i], 16) for i in range(13)]
        filesize, namesize = fields[6], fields[11]
        name = r.read(namesize).rstrip(b"\0").decode("utf-8", "replace")
        r.read((4 - (110 + namesize) % 4) % 4)
        if name == TRAILER:
            return
        r.read(filesize + (4 - filesize % 4) % 4)
        out.names.append(name.removeprefix("./"))
        if len(out.names) > MAX_NAMES:
            raise InitramfsError(f"more than {MAX_NAMES} files")


def _decompressed(fh: object, head: bytes, path: Path, procs: list[subprocess.Popen[bytes]]
                  ) -> Callable[[], bytes]:
    read = fh.read  # type: ignore[attr-defined]
    if head.startswith(b"\x1f\x8b"):
        state = {"d": isal_zlib.decompressobj(31)}

        def gz() -> bytes:
            while raw := read(1 << 20):
                out = b""
                while raw and raw.strip(b"\0"):  # zeros after the last member are padding
                    d = state["d"]
                    out += d.decompress(raw)
                    raw = d.unused_data if d.eof else b""
                    if raw:
                        state["d"] = isal_zlib.decompressobj(31)
                if out:
                    return out
            return b""

        return gz
    if head.startswith(b"\xfd7zXZ"):
        dx = lzma.LZMADecompressor()

        def xz() -> bytes:
            while not dx.eof and (raw := read(1 << 20)):
                if out := dx.decompress(raw):
                    return out
            return b""

        return xz
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        # no zstd module here: the host's zstd filters the rest of the file (stdin at this offset)
        proc = subprocess.Popen(["zstd", "-dcq"], stdin=fh, stdout=subprocess.PIPE,  # type: ignore[call-overload]
                                stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        stdout = proc.stdout

        def zst() -> bytes:
            data: bytes = stdout.read(1 << 20)
            if not data:
                proc.wait()
            return data

        procs.append(proc)
        return zst
    raise InitramfsError(f"{path}: unknown compression (starts with {head[:6].hex()})")



def list_names(path: Path) -> Listing:
    """Every name in the initramfs ``path``; InitramfsError when it is not one."""
    out = Listing()
    procs: list[subprocess.Popen[bytes]] = []
    with open(path, "rb", buffering=0) as fh:
        raw = _Reader(lambda: fh.read(1 << 16))
        try:
            while True:
                head = raw.skip_zeros()
                if not head:
                    break
                if head[:6] in CPIO_MAGIC:
                    _cpio(raw, out)
                    continue
                # the rest of the file is compressed: hand the file from this offset to the decompressor
                fh.seek(fh.tell() - (len(raw.buf) - raw.pos))
                inner = _Reader(_decompressed(fh, head, path, procs))
                while inner.skip_zeros()[:6] in CPIO_MAGIC:
                    _cpio(inner, out)
                break
        except (OSError, lzma.LZMAError, GZIP_ERROR) as exc:
            raise InitramfsError(f"{path}: {exc}") from None
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    if not out.names:
        raise InitramfsError(f"{path} holds no files")
    return out
