"""Cold compose of examples/minimal.yaml against the floor done by hand in the same run.

The floor is the least work that gives the same kind of result: the same mmdebstrap (minbase plus the
same packages, SOURCE_DATE_EPOCH set), the dracut rebuild, a bare-repo ``ostree commit`` and one
single-layer OCI write with umoci. The compose does all that plus resolution, the lockfile, the pool, the
OSTree-ready layout, the lint, the archive repo, the chunked OCI image and metadata.

    python bench/compose_cold.py            # 2 rounds each, medians, plus a no-op recompose
    python bench/compose_cold.py --quick    # 1 round each (the CI smoke run)

Prints one line per measurement and a final ``ratio compose/floor = X.XX`` line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "examples" / "minimal.yaml"
CLI = str(Path(sys.executable).parent / "deb-bootc-compose")
MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
ADDED = ["ostree", "ostree-boot", "dracut", "grub2-common", "grub-efi-amd64-bin"]


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:8])} ... failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return done


def floor(work: Path, sde: int) -> dict[str, float]:
    """The hand-made floor; returns seconds per step."""
    packages = yaml.safe_load(MANIFEST.read_text())["packages"] + ADDED
    tree = work / "floor-tree"
    work.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(sde), "INITRD": "No"}
    s = time.monotonic()
    sh(["unshare", "--mount", "--propagation", "private", "--", "mmdebstrap", "--mode=root", "--variant=minbase",
        "--quiet", f"--include={','.join(packages)}", "trixie", str(tree), MIRROR], env=env)
    t["mmdebstrap"] = time.monotonic() - s
    kver = next((tree / "usr/lib/modules").iterdir()).name
    s = time.monotonic()
    sh(["bwrap", "--bind", str(tree), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-net",
        "dracut", "--no-hostonly", "--reproducible", "--add", "ostree", "--force", "--kver", kver,
        f"/usr/lib/modules/{kver}/initramfs.img"], env=env)
    t["dracut"] = time.monotonic() - s
    for d in ("dev", "proc", "sys", "run", "tmp"):
        shutil.rmtree(tree / d, ignore_errors=True)
        (tree / d).mkdir()
    (tree / "etc").rename(tree / "usr/etc")
    repo = work / "floor-repo"
    sh(["ostree", "init", f"--repo={repo}", "--mode=bare"])
    s = time.monotonic()
    sh(["ostree", "commit", f"--repo={repo}", "--branch=floor", f"--tree=dir={tree}", "--no-bindings",
        f"--timestamp=@{sde}", "--subject=floor"])
    t["ostree-commit-bare"] = time.monotonic() - s
    (tree / "usr/etc").rename(tree / "etc")
    oci = work / "floor-oci"
    s = time.monotonic()
    sh(["umoci", "init", "--layout", str(oci)])
    sh(["umoci", "new", "--image", f"{oci}:latest"])
    sh(["umoci", "insert", "--rootless", "--image", f"{oci}:latest", str(tree), "/"])
    t["umoci-single-layer"] = time.monotonic() - s
    shutil.rmtree(tree)
    return t


def compose(target: Path, extra: list[str] | None = None) -> tuple[float, str]:
    s = time.monotonic()
    done = subprocess.run([CLI, "--config", str(MANIFEST), "--target-dir", str(target), "--compose-type", "test",
                           "--quiet", *(extra or [])], capture_output=True, text=True)
    secs = time.monotonic() - s
    if done.returncode not in (0, 3):
        raise SystemExit(f"compose failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return secs, done.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round each (CI smoke run)")
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    rounds = 1 if args.quick else 2
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-compose-"))
    work.mkdir(parents=True, exist_ok=True)
    composes: list[float] = []
    floors: list[float] = []
    try:
        sde = 0
        for i in range(rounds):
            target = work / f"target-{i}"
            secs, topdir = compose(target)
            composes.append(secs)
            lock = yaml.safe_load((Path(topdir) / "metadata/lockfile.yaml").read_text())
            sde = lock["source_date_epoch"]
            state = (Path(topdir) / "STATUS").read_text().strip()
            print(f"compose cold round {i + 1}: {secs:.1f}s ({Path(topdir).name}, {state})", flush=True)
            steps = floor(work / f"floor-{i}", sde)
            floors.append(sum(steps.values()))
            detail = ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
            print(f"floor round {i + 1}: {floors[-1]:.1f}s ({detail})", flush=True)
            shutil.rmtree(work / f"floor-{i}", ignore_errors=True)
        if not args.quick:
            secs, _ = compose(work / "target-0")
            print(f"no-op recompose: {secs:.1f}s", flush=True)
        c, f = statistics.median(composes), statistics.median(floors)
        print(f"compose {c:.1f}s, floor {f:.1f}s")
        print(f"ratio compose/floor = {c / f:.2f}")
    finally:
        if args.work is None:
            subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
