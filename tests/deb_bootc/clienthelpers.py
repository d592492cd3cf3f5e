"""A real OSTree sysroot, a signed repository served over HTTP and the deb-bootc client run against them.

ostree and the client run in a user namespace that maps only root (``unshare --user --map-root-user``): file
owners are the host's root as in a real sysroot, but no capability reaches the host, so libostree's FIFREEZE
of the sysroot's /boot falls back to syncfs instead of freezing the host's filesystem."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "packaging" / "deb-bootc"
OSNAME = "debian"
REF = "debian/trixie/amd64/base"
USERNS = ["unshare", "--user", "--map-root-user"]


def sh(*argv: str | Path, ns: bool = True, env: dict[str, str] | None = None) -> str:
    full = [*USERNS, *map(str, argv)] if ns else [str(a) for a in argv]
    done = subprocess.run(full, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    assert done.returncode == 0, f"{full}: {done.stderr[-2000:]}"
    return done.stdout


def client(sysroot: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run bin/deb-bootc with Debian's /usr/bin/python3, as an installed machine would."""
    argv = [*USERNS, "/usr/bin/python3", str(CLIENT / "bin" / "deb-bootc"), f"--sysroot={sysroot}", *args]
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(CLIENT)},
                          check=False)


def make_key(home: Path, uid: str) -> str:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    sh("gpg", "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key", uid, "rsa2048", "sign", "never",
       ns=False)
    out = sh("gpg", "--homedir", home, "--with-colons", "--list-keys", ns=False)
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def stop_agent(home: Path) -> None:
    """The gpg-agent that key generation and signing started for ``home`` (no agent outlives its test)."""
    if home.is_dir():
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)


def export_key(home: Path, dest: Path) -> Path:
    dest.write_text(sh("gpg", "--homedir", home, "--armor", "--export", ns=False))
    return dest


def make_tree(root: Path, version: str, pkgs: dict[str, str]) -> Path:
    """A minimal bootable tree: a kernel and initramfs where libostree looks, /usr/etc, a dpkg database."""
    mod = root / "usr/lib/modules/6.12.0-1-amd64"
    mod.mkdir(parents=True)
    (mod / "vmlinuz").write_bytes(b"kernel " + version.encode())
    (mod / "initramfs.img").write_bytes(b"initramfs " + version.encode())
    (root / "usr/etc").mkdir(parents=True)
    (root / "usr/etc/os-release").write_text(f"ID=debian\nVERSION={version}\n")
    db = root / "usr/lib/sysimage/dpkg"
    db.mkdir(parents=True)
    (db / "status").write_text("".join(f"Package: {n}\nStatus: install ok installed\nVersion: {v}\n\n"
                                       for n, v in pkgs.items()))
    return root


def commit(repo: Path, tree: Path, ref: str, version: str, pkgs: dict[str, str] | None,
           sign: tuple[Path, str] | None, summary_key: tuple[Path, str] | None = None) -> str:
    """Commit ``tree`` to ``ref`` (signed with ``sign``), then the summary (signed with ``summary_key``, by
    default the commit's key) as a publisher would."""
    meta = [f"--add-metadata-string=version={version}"]
    if pkgs is not None:
        meta.append(f"--add-metadata-string=deb-bootc.packages={json.dumps(pkgs, sort_keys=True)}")
    csum = sh("ostree", "commit", f"--repo={repo}", f"--branch={ref}", f"--tree=dir={tree}", "--no-bindings",
              f"--subject={version}", *meta).strip()
    if sign is not None:
        home, key = sign
        sh("ostree", "gpg-sign", f"--repo={repo}", f"--gpg-homedir={home}", csum, key)
    update_summary(repo, summary_key or sign)
    return csum


_published = itertools.count(1)


def update_summary(repo: Path, key: tuple[Path, str] | None) -> None:
    signing = [f"--gpg-homedir={key[0]}", f"--gpg-sign={key[1]}"] if key else []
    sh("ostree", "summary", "-u", f"--repo={repo}", *signing)
    # the test server answers If-Modified-Since with a one-second resolution: a summary republished within the
    # second a client cached the last one would look unchanged. A real publisher is never that fast.
    stamp = time.time() + 10 * next(_published)
    for name in ("summary", "summary.sig"):
        if (repo / name).exists():
            os.utime(repo / name, (stamp, stamp))


def deployments(sysroot: Path) -> list[dict[str, object]]:
    res = client(sysroot, "status", "--json")
    assert res.returncode == 0, res.stderr
    return list(json.loads(res.stdout)["deployments"])
