"""Cold compose of examples/minimal.yaml against the floor done by hand and against debos, in the same run;
plus the no-op recompose against mkosi's incremental reuse.

The floor is the least work that gives the same kind of result: the same mmdebstrap (minbase plus the
same packages, SOURCE_DATE_EPOCH set, dpkg's force-unsafe-io as the compose uses), the dracut rebuild, a
bare-repo ``ostree commit`` and one single-layer OCI write with umoci. The compose does all that plus
resolution, the lockfile, the pool, the OSTree-ready layout, the lint, the archive repo, the chunked OCI
image and metadata.

debos (1.1.1, ``--disable-fakemachine``: its VM mode does not work here) gets a recipe for the same package
set: debootstrap (minbase) + apt + ostree-commit into an archive repo. It does less (no OSTree-ready layout,
no initramfs with the ostree module, no OCI, no metadata).

The no-op recompose is the same manifest composed again into the warm target directory without
``--lockfile``: mkosi's ``Incremental=yes`` reuse of an unchanged config takes 5.8 s here.

    python bench/compose_cold.py                  # 2 rounds of each, medians; 3 no-op recomposes
    python bench/compose_cold.py --rounds 1       # one round of each
    python bench/compose_cold.py --quick --compose-target DIR
        # the CI smoke run: the cold compose is the one already made in DIR (its time from its global log),
        # one floor round, one no-op recompose in DIR, debos only checked with --dry-run

Prints one line per measurement and the final ``ratio compose/floor = X.XX`` (and ``ratio compose/debos``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from debsandbox.bwrap import bwrap_argv

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "examples" / "minimal.yaml"
CLI = str(Path(sys.executable).parent / "deb-bootc-compose")
MIRROR = os.environ.get("DEB_TEST_MIRROR", "http://deb.debian.org/debian")
ADDED = ["ostree", "ostree-boot", "dracut", "grub2-common", "grub-efi-amd64-bin"]
MKOSI_INCREMENTAL = 5.8  # seconds, ../shared/notes/peers.md
NOOP_TARGET = 6.0


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:8])} ... failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return done


def packages() -> list[str]:
    return list(yaml.safe_load(MANIFEST.read_text())["packages"]) + ADDED


def floor(work: Path, sde: int) -> dict[str, float]:
    """The hand-made floor; returns seconds per step."""
    tree = work / "floor-tree"
    work.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(sde), "INITRD": "No"}
    s = time.monotonic()
    sh(["unshare", "--mount", "--propagation", "private", "--", "mmdebstrap", "--mode=root", "--variant=minbase",
        "--quiet", "--dpkgopt=force-unsafe-io", f"--include={','.join(packages())}", "trixie", str(tree), MIRROR],
       env=env)
    t["mmdebstrap"] = time.monotonic() - s
    kver = next((tree / "usr/lib/modules").iterdir()).name
    s = time.monotonic()
    sh(bwrap_argv(["dracut", "--no-hostonly", "--reproducible", "--add", "ostree", "--force", "--kver", kver,
                   f"/usr/lib/modules/{kver}/initramfs.img"], root=tree, user_namespace=False), env=env)
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


def debos_recipe() -> str:
    """debootstrap (minbase) + apt (the same packages, no recommends) + ostree-commit: debos's nearest equivalent."""
    recipe = {
        "architecture": "amd64",
        "actions": [
            {"action": "debootstrap", "suite": "trixie", "components": ["main"], "mirror": MIRROR,
             "variant": "minbase", "merged-usr": True},
            {"action": "apt", "recommends": False, "packages": packages()},
            {"action": "ostree-commit", "repository": "repo", "branch": "debian/trixie/amd64/debos",
             "subject": "debos bench"},
        ],
    }
    return yaml.safe_dump(recipe, sort_keys=False)


def debos(work: Path, *, dry_run: bool = False) -> float:
    """One debos run (``--disable-fakemachine``) of :func:`debos_recipe`; returns its seconds."""
    if shutil.which("debos") is None:
        raise SystemExit("debos is not installed (apt-get install --no-install-recommends debos)")
    work.mkdir(parents=True, exist_ok=True)
    recipe = work / "minimal.yaml"
    recipe.write_text(debos_recipe())
    artifacts = work / "artifacts"
    artifacts.mkdir(exist_ok=True)
    sh(["ostree", "init", f"--repo={artifacts / 'repo'}", "--mode=archive"])
    argv = ["debos", "--disable-fakemachine", f"--artifactdir={artifacts}", str(recipe)]
    if dry_run:
        argv.insert(1, "--dry-run")
    s = time.monotonic()
    sh(argv, cwd=work)
    secs = time.monotonic() - s
    if not dry_run:
        sh(["ostree", f"--repo={artifacts / 'repo'}", "rev-parse", "debian/trixie/amd64/debos"])
    return secs


def compose(target: Path, extra: list[str] | None = None) -> tuple[float, str]:
    s = time.monotonic()
    done = subprocess.run([CLI, "--config", str(MANIFEST), "--target-dir", str(target), "--compose-type", "test",
                           "--quiet", *(extra or [])], capture_output=True, text=True)
    secs = time.monotonic() - s
    if done.returncode not in (0, 3):
        raise SystemExit(f"compose failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return secs, done.stdout.strip().splitlines()[-1]


def made_compose(target: Path) -> tuple[float, Path]:
    """The first FINISHED compose of MANIFEST in ``target`` that really built (not a no-op): (seconds, topdir)."""
    for top in sorted(p for p in target.glob("debian-bootc-13-*") if p.is_dir() and not p.is_symlink()):
        status = (top / "STATUS").read_text().strip() if (top / "STATUS").is_file() else ""
        if status != "FINISHED" or not (top / "logs/rootfs.log").is_file():
            continue
        m = re.search(r": FINISHED in ([\d.]+)s", (top / "logs/global.log").read_text())
        if m:
            return float(m.group(1)), top
    raise SystemExit(f"{target}: no FINISHED compose of {MANIFEST.name} that built its tree (rootfs.log) to reuse")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round, debos only dry-run (CI smoke run)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each cold measurement (default 2: medians)")
    ap.add_argument("--compose-target", type=Path,
                    help="reuse the cold compose already made in this target dir instead of composing again")
    ap.add_argument("--no-debos", action="store_true", help="leave debos out")
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    rounds = 1 if args.quick else max(1, args.rounds)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-compose-"))
    work.mkdir(parents=True, exist_ok=True)
    composes: list[float] = []
    floors: list[float] = []
    debos_runs: list[float] = []
    try:
        sde = 0
        warm: Path | None = args.compose_target
        for i in range(rounds):
            if args.compose_target is not None and i == 0:
                secs, topdir = made_compose(args.compose_target)
                how = "made earlier in this run"
            else:
                target = work / f"target-{i}"
                secs, top = compose(target)
                topdir, how = Path(top), "cold"
                warm = warm or target
            composes.append(secs)
            sde = yaml.safe_load((topdir / "metadata/lockfile.yaml").read_text())["source_date_epoch"]
            state = (topdir / "STATUS").read_text().strip()
            print(f"compose cold round {i + 1}: {secs:.1f}s ({topdir.name}, {state}, {how})", flush=True)
            steps = floor(work / f"floor-{i}", sde)
            floors.append(sum(steps.values()))
            detail = ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
            print(f"floor round {i + 1}: {floors[-1]:.1f}s ({detail})", flush=True)
            shutil.rmtree(work / f"floor-{i}", ignore_errors=True)
            if not args.no_debos and not args.quick:
                debos_runs.append(debos(work / f"debos-{i}"))
                print(f"debos round {i + 1}: {debos_runs[-1]:.1f}s", flush=True)
                subprocess.run(["rm", "-rf", "--one-file-system", str(work / f"debos-{i}")], check=False)
        if not args.no_debos and args.quick:
            debos(work / "debos-dry", dry_run=True)
            print("debos: recipe accepted (--dry-run)", flush=True)
        assert warm is not None
        noops = [compose(warm)[0] for _ in range(1 if args.quick else 3)]
        n = statistics.median(noops)
        print(f"no-op recompose: {n:.1f}s (median of {len(noops)}: {', '.join(f'{s:.1f}' for s in noops)}; "
              f"target <= {NOOP_TARGET:.0f}s; mkosi Incremental=yes {MKOSI_INCREMENTAL}s: "
              f"ratio {n / MKOSI_INCREMENTAL:.2f})", flush=True)
        c, f = statistics.median(composes), statistics.median(floors)
        print(f"compose {c:.1f}s, floor {f:.1f}s" + (f", debos {statistics.median(debos_runs):.1f}s" if debos_runs
                                                       else ""))
        print(f"ratio compose/floor = {c / f:.2f}")
        if debos_runs:
            print(f"ratio compose/debos = {c / statistics.median(debos_runs):.2f}")
    finally:
        if args.work is None:
            subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
