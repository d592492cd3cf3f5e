"""Helpers for the publish tests: small real composes (a FINISHED compose directory whose metadata/ostree.json
names a real commit in TARGET/ostree/repo), OpenPGP keys exported to files, and a client repository that pulls
from the published one over HTTP with signature verification on."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deb_bootc_compose import metadata as md
from deb_bootc_compose.paths import ComposePaths, TargetPaths

REF = "tiny/trixie/amd64/base"


def sh(argv: list[str], **kw: object) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return str(done.stdout)


def ostree(repo: Path, *args: str) -> str:
    return sh(["ostree", f"--repo={repo}", *args]).strip()


def tiny_compose(target: Path, n: int, files: dict[str, bytes], status: str = "FINISHED", ref: str = REF) -> Path:
    """Compose number ``n`` in ``target``: one commit (no parent, fixed timestamp, like compose's) of ``files``."""
    tpaths = TargetPaths(target)
    repo = tpaths.ostree_repo
    if not (repo / "config").exists():
        repo.mkdir(parents=True)
        ostree(repo, "init", "--mode=archive")
    tree = target / f"tree-{n}"
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    commit = ostree(repo, "commit", f"--branch={ref}", f"--tree=dir={tree}", "--parent=none", "--no-bindings",
                    f"--timestamp=@{1700000000 + n}", f"--subject=tiny {n}", f"--add-metadata-string=version={n}")
    shutil.rmtree(tree)
    paths: ComposePaths = tpaths.compose(f"tiny-{n}-20261205.t.0")
    paths.deliverables.mkdir(parents=True)
    paths.status.write_text(status + "\n")
    meta = md.ComposeMeta(paths.compose_id, "tiny", "tiny", str(n))
    md.write_json(paths.ostree_json, md.ostree_manifest(meta, [md.OstreeMeta("base", "amd64", ref, commit)]))
    return paths.topdir


@dataclass(frozen=True)
class KeyFiles:
    secret: Path
    public: Path
    fingerprint: str


def make_key(where: Path, name: str) -> KeyFiles:
    """An ed25519 signing key without passphrase, exported to files (its GnuPG home is removed again)."""
    home = where / f"{name}-home"
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        sh(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"{name} <{name}@example.org>", "ed25519",
            "sign", "never"], env=env)
        out = sh(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env)
        fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
        secret, public = where / f"{name}.sec.asc", where / f"{name}.pub.asc"
        secret.write_text(sh(["gpg", "--batch", "--armor", "--export-secret-keys", fpr], env=env))
        public.write_text(sh(["gpg", "--batch", "--armor", "--export", fpr], env=env))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)
    return KeyFiles(secret, public, fpr)


def client(where: Path, url: str, public: Path | None, name: str = "origin") -> Path:
    """A client repository (bare-user) with a remote that verifies commits and the summary against ``public``."""
    repo = where / "client"
    repo.mkdir(parents=True)
    ostree(repo, "init", "--mode=bare-user")  # as a machine's repo is (bare): archive repos never use deltas
    args = ["remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true"]
    if public is not None:
        args.append(f"--gpg-import={public}")
    ostree(repo, *args, name, url)
    return repo


def pull(repo: Path, ref: str = REF, name: str = "origin") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ostree", f"--repo={repo}", "pull", name, ref], capture_output=True, text=True,
                          timeout=600)


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under ``root`` with its size, mtime and (for small files) content."""
    result: dict[str, tuple[int, int, bytes | None]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() and st.st_size < 65536 else None
        result[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, data)
    return result
