"""A real OSTree sysroot, a signed repository served over HTTP and the deb-bootc client run against them.

ostree and the client run in a user namespace that maps only root (``unshare --user --map-root-user``): file
owners are the host's root as in a real sysroot, but no capability reaches the host, so libostree's FIFREEZE
of the sysroot's /boot falls back to syncfs instead of freezing the host's filesystem."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import subprocess
import tarfile
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


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_oci_layout(layout: Path, tag: str, version: str, layers: list[dict[str, bytes | None]]) -> str:
    """A real OCI image layout (the bytes skopeo and bootc read) with one image tagged ``tag``: each layer maps
    member names to contents (None: a directory; a name ending in ``.wh.X`` is a whiteout). The manifest digest."""
    diff_ids, descs = [], []
    for members in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                if data is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
        diff_ids.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
        gz = gzip.compress(raw.getvalue(), mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, gz)})
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Labels": {"org.opencontainers.image.version": version, "containers.bootc": "1"}},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, json.dumps(config).encode())}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cdesc,
                "layers": descs}
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             **_blob(layout, json.dumps(manifest).encode()), "annotations": {"org.opencontainers.image.ref.name": tag}}
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [mdesc]}))
    return str(mdesc["digest"])


def image_layers(version: str) -> list[dict[str, bytes | None]]:
    """A bootable-looking image in two layers; the second whites out a file of the first."""
    base: dict[str, bytes | None] = {
        "etc/": None, "etc/os-release": f"ID=debian\nVERSION={version}\n".encode(), "usr/": None, "usr/bin/": None,
        "usr/bin/old-tool": b"old", "usr/lib/modules/6.12.0-1-amd64/vmlinuz": b"kernel " + version.encode(),
        "usr/lib/modules/6.12.0-1-amd64/initramfs.img": b"initramfs", "opt/": None, "opt/x/": None,
        "opt/x/lower": b"lower",
    }
    top: dict[str, bytes | None] = {"usr/bin/.wh.old-tool": b"", "opt/x/.wh..wh..opq": b"",
                                    "opt/x/upper": b"upper", "etc/motd": f"image {version}\n".encode()}
    return [base, top]
