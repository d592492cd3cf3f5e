"""The chunked OCI writer against umoci's single-layer write of the same tree, and what a one-package change
costs a pull.

    python bench/oci_layers.py              # a bootable-sized tree (minbase + kernel, systemd, ...), 3 rounds
    python bench/oci_layers.py --quick      # the minbase tree, 1 round (the CI smoke run)
    python bench/oci_layers.py --tree DIR   # any prepared tree (e.g. a compose's --keep-work tree)

The trees are mmdebstrap'd once with a fixed SOURCE_DATE_EPOCH and cached as tarballs under
``$DEB_TEST_CACHE`` (default ``~/.cache/deb-bootc-tests``)/compose-oci, shared with the tests. Prints one
line per measurement, then ``ratio ours/umoci = X.XX`` and ``one-package change: ... = Y.Y% of the image``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deb_bootc_compose.oci import OciResult, write_oci_image
from deb_bootc_compose.oci.dpkg_owners import find_dpkg_db

MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("DEB_TEST_CACHE", Path.home() / ".cache" / "deb-bootc-tests")) / "compose-oci"
SDE = 1735689600
FULL_INCLUDE = ["linux-image-amd64", "systemd", "systemd-sysv", "openssh-server", "hello", "ostree", "dracut"]
CHANGED_PACKAGE = "sed"  # a small package every tree has: the "upgrade" edits its binary and its status entry


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def tarball(include: list[str]) -> Path:
    name = "trixie-minbase" + ("-bootable" if include else "") + f"-{SDE}.tar"
    path = CACHE / name
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = CACHE / f".{path.stem}.tmp.tar"
        args = ["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet"]
        if include:
            args.append(f"--include={','.join(include)}")
        print(f"making {path} (mmdebstrap, once)", flush=True)
        sh([*args, "trixie", str(tmp), MIRROR], env={**os.environ, "SOURCE_DATE_EPOCH": str(SDE), "INITRD": "No"})
        os.replace(tmp, path)
    return path


def prepare(tar: Path, dest: Path) -> Path:
    """Unpack and move the dpkg database to usr/lib/sysimage/dpkg, as ostree-prepare does."""
    dest.mkdir(parents=True)
    sh(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tar), "-C", str(dest)])
    for runtime in ("dev", "proc", "sys", "run", "tmp"):
        shutil.rmtree(dest / runtime, ignore_errors=True)
        (dest / runtime).mkdir()
    (dest / "usr/lib/sysimage").mkdir(parents=True, exist_ok=True)
    os.replace(dest / "var/lib/dpkg", dest / "usr/lib/sysimage/dpkg")
    os.symlink("../../usr/lib/sysimage/dpkg", dest / "var/lib/dpkg")
    return dest


def kernel_of(tree: Path) -> str | None:
    modules = tree / "usr/lib/modules"
    kvers = sorted(p.name for p in modules.iterdir()) if modules.is_dir() else []
    return kvers[0] if kvers else None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(tree: Path, out: Path, jobs: int, plan: Path | None = None) -> tuple[float, OciResult]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.monotonic()
    result = write_oci_image(
        tree,
        out,
        ref_name="bench",
        labels={"org.opencontainers.image.title": "bench"},
        source_date_epoch=SDE,
        kernel_version=kernel_of(tree),
        ostree_commit=None,
        previous_plan=plan,
        plan_out=out / "plan.json",
        jobs=jobs,
    )
    return time.monotonic() - start, result


def umoci(tree: Path, out: Path) -> tuple[float, int, float]:
    shutil.rmtree(out, ignore_errors=True)
    cpu = children_cpu()
    start = time.monotonic()
    sh(["umoci", "init", "--layout", str(out)])
    sh(["umoci", "new", "--image", f"{out}:bench"])
    sh(["umoci", "insert", "--rootless", "--image", f"{out}:bench", str(tree), "/"])
    seconds = time.monotonic() - start
    size = sum(p.stat().st_size for p in (out / "blobs/sha256").iterdir())
    return seconds, size, children_cpu() - cpu


def upgrade_one_package(tree: Path, package: str) -> None:
    """What an upgrade of ``package`` changes: one of its files and its dpkg status entry."""
    db = tree / (find_dpkg_db(tree) or "usr/lib/sysimage/dpkg")
    listed = [line for line in (db / "info" / f"{package}.list").read_text().splitlines() if line.strip("/.")]
    victim = next(tree / p.lstrip("/") for p in listed if (tree / p.lstrip("/")).is_file() and "/bin/" in p)
    victim.write_bytes(victim.read_bytes() + b"\0upgraded")
    status = (db / "status").read_text()
    marker = f"Package: {package}\n"
    head, _, rest = status.partition(marker)
    stanza, sep, tail = rest.partition("\n\n")
    stanza = "\n".join(f"{line}+bench1" if line.startswith("Version: ") else line for line in stanza.splitlines())
    (db / "status").write_text(head + marker + stanza + sep + tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="minbase tree, one round")
    parser.add_argument("--tree", type=Path, help="a prepared tree to use instead of an mmdebstrap one")
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 3, 1 with --quick)")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    work = args.work or Path(tempfile.mkdtemp(prefix="oci-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    jobs = os.cpu_count() or 1
    try:
        include = [] if args.quick else FULL_INCLUDE
        tree = args.tree.resolve() if args.tree else prepare(tarball(include), work / "tree")
        size = int(sh(["du", "-sb", str(tree)]).stdout.split()[0])
        print(f"tree: {tree} ({size / 1e6:.0f} MB, kernel {kernel_of(tree) or 'none'})", flush=True)

        times = []
        result: OciResult | None = None
        cpu = time.process_time()
        for _ in range(rounds):
            seconds, result = ours(tree, work / "ours", jobs)
            times.append(seconds)
        assert result is not None
        ours_cpu = (time.process_time() - cpu) / rounds
        ours_s = statistics.median(times)
        print(
            f"ours ({jobs} threads): {ours_s:.2f}s (median of {rounds}), {ours_cpu:.2f}s CPU, "
            f"{len(result.layers)} layers, {result.size / 1e6:.1f} MB, {result.manifest_digest}",
            flush=True,
        )
        single = statistics.median(ours(tree, work / "ours1", 1)[0] for _ in range(rounds))
        print(f"ours (1 thread): {single:.2f}s", flush=True)
        umoci_runs = [umoci(tree, work / "umoci") for _ in range(rounds)]
        umoci_s = statistics.median(r[0] for r in umoci_runs)
        umoci_cpu = statistics.median(r[2] for r in umoci_runs)
        print(f"umoci single layer: {umoci_s:.2f}s, {umoci_cpu:.2f}s CPU, {umoci_runs[0][1] / 1e6:.1f} MB", flush=True)
        print(f"ratio ours/umoci = {ours_s / umoci_s:.2f} (CPU time: {ours_cpu / umoci_cpu:.2f})", flush=True)

        changed_tree = work / "changed-tree"
        shutil.rmtree(changed_tree, ignore_errors=True)
        sh(["cp", "-a", str(tree), str(changed_tree)])
        upgrade_one_package(changed_tree, CHANGED_PACKAGE)
        _, changed = ours(changed_tree, work / "changed", jobs, plan=work / "ours" / "plan.json")
        before = {layer.digest for layer in result.layers}
        new_layers = [layer for layer in changed.layers if layer.digest not in before]
        changed_bytes = sum(layer.size for layer in new_layers)
        names = ", ".join(f"{layer.id} ({layer.size / 1e3:.0f} kB)" for layer in new_layers)
        print(
            f"one-package change ({CHANGED_PACKAGE}): layers {names} changed: {changed_bytes} of {changed.size} bytes "
            f"= {100 * changed_bytes / changed.size:.1f}% of the image",
            flush=True,
        )
        shutil.rmtree(changed_tree)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
