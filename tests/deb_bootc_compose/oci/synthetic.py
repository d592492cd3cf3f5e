"""Small synthetic trees with a fake dpkg database, for fast unit tests of the OCI writer."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KVER = "6.1.0-1-amd64"
SDE = 1700000000


def noise(seed: str, size: int) -> bytes:
    """Incompressible but reproducible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def add_package(tree: Path, name: str, files: dict[str, bytes], *, db: str = "usr/lib/sysimage/dpkg") -> None:
    """Create ``files`` (tree paths → content) and list them (with their directories) in ``info/NAME.list``."""
    listed: set[str] = set()
    for rel, content in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        parts = rel.split("/")
        for i in range(1, len(parts)):
            listed.add("/" + "/".join(parts[:i]))
        listed.add("/" + rel)
    info = tree / db / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / f"{name}.list").write_text("/.\n" + "".join(f"{p}\n" for p in sorted(listed)))
    (info / f"{name}.md5sums").write_text(f"fake sums of {name}\n")


def make_tree(root: Path, *, db: str = "usr/lib/sysimage/dpkg", xattrs: bool = True) -> Path:
    tree = root
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    os.symlink("usr/bin", tree / "bin")
    os.symlink("usr/lib", tree / "lib")
    os.symlink("usr/lib64", tree / "lib64")  # a dangling symlink to a directory-to-be
    (tree / "usr/lib64").mkdir()
    add_package(tree, "bash", {"usr/bin/bash": b"#!bash\n" * 5000, "usr/share/doc/bash/copyright": b"GPL\n"}, db=db)
    add_package(
        tree,
        "libc6:amd64",
        {"usr/lib/x86_64-linux-gnu/libc.so.6": noise("libc", 20000), "usr/lib64/ld-linux-x86-64.so.2": b"ld" * 100},
        db=db,
    )
    add_package(tree, "hello", {"usr/bin/hello": b"hello world\n"}, db=db)
    add_package(tree, "perl-base", {"usr/bin/perl": b"perl" * 3000}, db=db)
    os.link(tree / "usr/bin/perl", tree / "usr/bin/perl5.40.0")  # a hardlink dpkg does not list
    # merged /usr: a package listing /bin/... through the bin -> usr/bin symlink
    info = tree / db / "info"
    (tree / "usr/bin/sed").write_bytes(b"sed" * 100)
    (info / "sed.list").write_text("/.\n/bin\n/bin/sed\n")
    # the kernel: package files plus the unowned vmlinuz copy and initramfs
    add_package(
        tree,
        f"linux-image-{KVER}",
        {
            f"usr/lib/modules/{KVER}/kernel/fs/ext4.ko": b"ko" * 1000,
            f"usr/share/doc/linux-image-{KVER}/changelog.gz": b"cl",
        },
        db=db,
    )
    (tree / f"usr/lib/modules/{KVER}/vmlinuz").write_bytes(b"vmlinuz" * 1000)
    (tree / f"usr/lib/modules/{KVER}/initramfs.img").write_bytes(b"initramfs" * 1000)
    # unowned files, an empty directory, /etc at the top level
    (tree / "etc").mkdir(exist_ok=True)
    (tree / "etc/machine-id").write_bytes(b"")
    (tree / "etc/hostname").write_bytes(b"debian\n")
    os.chmod(tree / "etc/hostname", 0o600)
    (tree / "sysroot").mkdir()
    (tree / db / "status").write_text("Package: bash\nStatus: install ok installed\n")
    if db != "var/lib/dpkg":
        (tree / "var/lib").mkdir(parents=True, exist_ok=True)
        os.symlink("../../usr/lib/sysimage/dpkg", tree / "var/lib/dpkg")
    if xattrs:
        os.setxattr(tree / "usr/bin/hello", "user.test", b"\x00binary\xff")
    return tree
