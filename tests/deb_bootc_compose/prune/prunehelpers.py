"""A small real compose target for the prune tests: compose directories with STATUS, metadata/ostree.json naming
real commits (no parent, like compose's) in TARGET/ostree/repo, lockfiles naming real .debs in the pool, input
records, and a ``latest-`` link."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from deb_bootc_compose import metadata as md
from deb_bootc_compose.lockfile import LockedPackage, LockedVariant, Lockfile
from deb_bootc_compose.paths import ComposePaths, TargetPaths

REF = "atomic/trixie/x86_64/base"


def ostree(repo: Path, *args: str) -> str:
    done = subprocess.run(["ostree", f"--repo={repo}", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ostree {args}: {done.stderr}"
    return done.stdout.strip()


def pool_deb(target: TargetPaths, name: str, size: int = 64 << 10, write: bool = True) -> LockedPackage:
    """A pool file (content derived from ``name``) and its lockfile entry."""
    data = hashlib.sha256(name.encode()).digest() * (size // 32)
    sha = hashlib.sha256(data).hexdigest()
    if write:
        path = target.pool_deb(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return LockedPackage(name=name, version="1", arch="amd64", sha256=sha, size=len(data), url=f"http://x/{name}.deb")


def make_compose(target: TargetPaths, compose_id: str, day: int, status: str, debs: list[LockedPackage],
                 files: dict[str, bytes] | None = None, commit: bool = True) -> ComposePaths:
    """Compose ``compose_id``, finished on 2026-12-``day``: one commit of ``files`` (unless not ``commit``)."""
    repo = target.ostree_repo
    if not (repo / "config").exists():
        repo.mkdir(parents=True)
        ostree(repo, "init", "--mode=archive")
    target.state.mkdir(parents=True, exist_ok=True)
    paths = target.compose(compose_id)
    paths.metadata.mkdir(parents=True)
    (paths.deliverables / "base/x86_64/images").mkdir(parents=True)
    (paths.deliverables / "base/x86_64/images/disk.raw").write_bytes(compose_id.encode() * 4096)
    if commit:
        tree = target.target / f".tree-{compose_id}"
        for name, data in (files or {"usr/lib/os-release": compose_id.encode()}).items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(data)
        checksum = ostree(repo, "commit", f"--branch={REF}", f"--tree=dir={tree}", "--parent=none", "--no-bindings",
                          f"--timestamp=@{1764892800 + day}", f"--subject={compose_id}")
        subprocess.run(["rm", "-rf", str(tree)], check=True)
        meta = md.ComposeMeta(compose_id, "atomic", "atomic", "13")
        md.write_json(paths.ostree_json, md.ostree_manifest(meta, [md.OstreeMeta("base", "x86_64", REF, checksum)]))
        record = target.input_record(hashlib.sha256(compose_id.encode()).hexdigest())
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"compose_id": compose_id, "variants": []}))
    Lockfile(name="atomic", version="13", suite="trixie", source_date_epoch=1764892800, sources=[],
             variants={"base": {"x86_64": LockedVariant(requested=["x"], packages=debs)}}).write(paths.lockfile)
    paths.status.write_text(status + "\n")
    stamp = 1764892800 + day * 86400.0
    os.utime(paths.status, (stamp, stamp))
    return paths


def commit_of(paths: ComposePaths) -> str:
    return md.load_ostree(paths.ostree_json)[0].commit


def state_of(target: TargetPaths) -> dict[str, object]:
    """What a prune may change: compose directories, commits, refs, pool files, input records, links."""
    objects = target.ostree_repo / "objects"
    return {
        "composes": sorted(p.name for p in target.target.iterdir() if p.is_dir() and p.name.startswith("atomic-")),
        "commits": sorted(p.parent.name + p.stem for p in objects.glob("??/*.commit")),
        "refs": ostree(target.ostree_repo, "refs"),
        "pool": sorted(str(p.relative_to(target.pool)) for p in target.pool.rglob("*") if p.is_file()),
        "inputs": sorted(p.name for p in target.input_records.glob("*.json")),
        "links": sorted(f"{p.name}->{os.readlink(p)}" for p in target.target.glob("latest-*")),
    }


def staging_commits(target: TargetPaths, count: int) -> list[str]:
    """``count`` commits of one ref in the bare-user staging repo, made in the user namespace as compose makes
    them (the repo belongs to ns-root)."""
    from deb_bootc_compose import treeops
    from deb_bootc_compose.phases.ostree_commit import ensure_ns_repo
    from debsandbox.sandbox import Sandbox

    ids = treeops.tree_ids()
    ensure_ns_repo(target.bare_repo, ids)
    out = []
    for n in range(count):
        tree = target.target / f".stage-{n}"
        (tree / "usr/lib").mkdir(parents=True)
        (tree / "usr/lib/os-release").write_text(f"staged {n}\n")
        done = Sandbox(root=None).run(["ostree", "commit", "--repo=@repo@", f"--branch={REF}", "--tree=dir=@tree@/.",
                                       "--parent=none", "--no-bindings", f"--subject=staged {n}"],
                                      ids=ids, paths={"repo": target.bare_repo, "tree": tree}, capture=True)
        subprocess.run(["rm", "-rf", str(tree)], check=True)
        out.append(done.output.strip().splitlines()[-1])
    return out


def staged(target: TargetPaths) -> list[str]:
    return sorted(p.parent.name + p.stem for p in (target.bare_repo / "objects").glob("??/*.commit"))
