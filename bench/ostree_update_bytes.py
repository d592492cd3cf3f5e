"""What a machine downloads for a one-package update, published with static deltas, against a full pull.

Two real composes that differ in exactly one package: v1 (a compose of examples/minimal.yaml, or ``--v1 DIR``)
and v2, composed with ``--lockfile`` from v1's lockfile with ``hello`` replaced by a rebuild of it (one string
in /usr/bin/hello changed, version ``+bench1``, built a day after the newest package of v1: like a security
update, it moves the compose's SOURCE_DATE_EPOCH). Both are published (``deb-bootc-compose publish``, a key made
for the run) into one repository served over HTTP on 127.0.0.1 by a server that counts the bytes it sends;
``ostree pull`` into bare-user client repositories (as a machine's repo is: archive repos never use deltas):

* full: a fresh client pulls v2;
* update: a client that has v1 pulls v2 (it finds the v1→v2 static delta in the signed summary);
* update without deltas: the same with ``--disable-static-deltas`` (only the objects v1 lacks).

Also lists what differs between the two commits besides the package (``ostree diff``), the initramfs included.

    python bench/ostree_update_bytes.py                   # composes v1 and v2 (two composes, ~10 min here)
    python bench/ostree_update_bytes.py --quick --v1 DIR  # CI: v1 is an existing FINISHED compose, one compose
    python bench/ostree_update_bytes.py --json FILE       # the figures as JSON too

Prints ``ratio update/full = X.X%`` (goal <= 10%).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "examples" / "minimal.yaml"
CLI = str(Path(sys.executable).parent / "deb-bootc-compose")
PACKAGE = "hello"
OLD, NEW = b"Hello, world!", b"Hello, World!"  # same length: the binary stays valid
SKIP = "oci,disk,boot-test"  # the OSTree commit is what is measured


def sh(argv: list[str], **kw: Any) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv[:8]))} ... failed ({done.returncode}):\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def ostree(repo: Path, *args: str) -> str:
    return sh(["ostree", f"--repo={repo}", *args]).strip()


class Counter:
    def __init__(self) -> None:
        self.bytes = 0
        self.requests = 0
        self.lock = threading.Lock()

    def take(self) -> tuple[int, int]:
        with self.lock:
            got = (self.bytes, self.requests)
            self.bytes = self.requests = 0
            return got


def counting_handler(counter: Counter) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def copyfile(self, source: Any, outputfile: Any) -> None:
            while chunk := source.read(1 << 16):
                outputfile.write(chunk)
                with counter.lock:
                    counter.bytes += len(chunk)

        def send_response(self, code: int, message: str | None = None) -> None:
            with counter.lock:
                counter.requests += 1
            super().send_response(code, message)

    return Handler


def compose(manifest: Path, target: Path, extra: list[str]) -> Path:
    start = time.monotonic()
    out = sh([CLI, "--config", str(manifest), "--target-dir", str(target), "--compose-type", "test",
              "--skip-phase", SKIP, "--quiet", *extra], cwd=REPO, timeout=7200)
    topdir = Path(out.strip().splitlines()[-1])
    print(f"compose {topdir.name} in {target}: {time.monotonic() - start:.0f}s", flush=True)
    return topdir


def link_pool(src: Path, dest: Path) -> None:
    for root, _dirs, files in os.walk(src):
        d = dest / os.path.relpath(root, src)
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (d / f).exists():
                try:
                    os.link(os.path.join(root, f), d / f)
                except OSError:
                    shutil.copy2(os.path.join(root, f), d / f)


def rebuild(deb: Path, work: Path, sde: int) -> tuple[Path, str]:
    """``deb`` with one string of its binary changed, version +bench1, built at ``sde``."""
    tree = work / "pkg"
    shutil.rmtree(tree, ignore_errors=True)
    sh(["dpkg-deb", "-R", str(deb), str(tree)])
    binary = tree / "usr" / "bin" / PACKAGE
    data = binary.read_bytes()
    if OLD not in data:
        raise SystemExit(f"{binary} has no {OLD!r} to change")
    binary.write_bytes(data.replace(OLD, NEW))
    md5 = sh(["md5sum", f"usr/bin/{PACKAGE}"], cwd=tree).strip()
    sums = tree / "DEBIAN" / "md5sums"
    sums.write_text("".join(md5 + "\n" if line.endswith(f"  usr/bin/{PACKAGE}") else line + "\n"
                            for line in sums.read_text().splitlines()))
    control = tree / "DEBIAN" / "control"
    lines = control.read_text().splitlines()
    version = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Version:"))
    new_version = f"{version}+bench1"
    control.write_text("".join((f"Version: {new_version}" if line.startswith("Version:") else line) + "\n"
                               for line in lines))
    out = work / f"{PACKAGE}_{new_version}_amd64.deb"
    sh(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)], env={**os.environ,
                                                                                  "SOURCE_DATE_EPOCH": str(sde)})
    return out, new_version


def make_v2(v1: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """Compose v2: v1's lockfile with the package replaced (a new target, v1's pool linked in)."""
    lock = yaml.safe_load((v1 / "metadata" / "lockfile.yaml").read_text())
    old_sde = int(lock["source_date_epoch"])
    new_sde = old_sde + 86400
    entries = [p for per_arch in lock["variants"].values() for lv in per_arch.values() for p in lv["packages"]
               if p["name"] == PACKAGE]
    if not entries:
        raise SystemExit(f"{v1} has no {PACKAGE} to update")
    old = dict(entries[0])  # entries are updated in place below
    target = work / "target-v2"
    link_pool(v1.parent / "pool", target / "pool")
    deb, version = rebuild(target / "pool" / "by-sha256" / old["sha256"][:2] / f"{old['sha256']}.deb", work, new_sde)
    sha = sh(["sha256sum", str(deb)]).split()[0]
    (target / "pool" / "by-sha256" / sha[:2]).mkdir(parents=True, exist_ok=True)
    shutil.copy2(deb, target / "pool" / "by-sha256" / sha[:2] / f"{sha}.deb")
    for p in entries:
        p.update(version=version, sha256=sha, size=deb.stat().st_size, url=f"file://{deb}")
    lock["source_date_epoch"] = new_sde
    lockfile = work / "lockfile-v2.yaml"
    lockfile.write_text(yaml.safe_dump(lock, sort_keys=False))
    v2 = compose(v1 / "metadata" / "manifest.yaml", target, ["--lockfile", str(lockfile)])
    change = {"package": PACKAGE, "from": old["version"], "to": version, "sde": [old_sde, new_sde]}
    return v2, change


def commit_of(compose_dir: Path) -> tuple[str, str]:
    data = json.loads((compose_dir / "metadata" / "ostree.json").read_text())
    entry = data["payload"]["variants"]["base"]["amd64"]
    return entry["ref"], entry["commit"]


def changed_files(repo: Path, v1: str, v2: str) -> list[tuple[str, str, int]]:
    """(M|A|D, path, size in v2) of every file that differs."""
    result = []
    for line in ostree(repo, "diff", v1, v2).splitlines():
        kind, _, path = line.strip().partition(" ")
        path = path.strip()
        size = 0
        if kind != "D":
            listing = ostree(repo, "ls", v2, path).split()
            size = int(listing[3]) if len(listing) > 3 and listing[0][0] == "-" else 0
        result.append((kind, path, size))
    return sorted(result, key=lambda r: -r[2])


def client(where: Path, url: str, key: Path) -> Path:
    where.mkdir(parents=True)
    ostree(where, "init", "--mode=bare-user")
    ostree(where, "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true", f"--gpg-import={key}",
           "origin", url)
    return where


def timed_pull(repo: Path, counter: Counter, *args: str) -> dict[str, float]:
    counter.take()
    start = time.monotonic()
    ostree(repo, "pull", *args)
    nbytes, requests = counter.take()
    return {"bytes": nbytes, "requests": requests, "seconds": round(time.monotonic() - start, 1)}


def make_key(work: Path) -> tuple[Path, Path]:
    home = Path(tempfile.mkdtemp(prefix="bench-gpg-", dir="/tmp"))
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        sh(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "bench <bench@localhost>", "ed25519", "sign",
            "never"], env=env)
        (work / "key.sec").write_text(sh(["gpg", "--batch", "--armor", "--export-secret-keys"], env=env))
        (work / "key.pub").write_text(sh(["gpg", "--batch", "--armor", "--export"], env=env))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)
    return work / "key.sec", work / "key.pub"


def measure(v1: Path, v2: Path, work: Path) -> dict[str, Any]:
    secret, public = make_key(work)
    pub = work / "pub"
    for c in (v1, v2):
        start = time.monotonic()
        sh([CLI, "publish", str(c), "--to", str(pub), "--gpg-key", str(secret)])
        print(f"publish {c.name} ({c.parent.name}): {time.monotonic() - start:.1f}s", flush=True)
    ref, c1 = commit_of(v1)
    _, c2 = commit_of(v2)
    figures: dict[str, Any] = {"commits": [c1, c2], "changed": changed_files(pub, c1, c2)}
    counter = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(counting_handler(counter), directory=str(pub)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        full = client(work / "client-full", url, public)
        figures["full"] = timed_pull(full, counter, "origin", ref)
        shutil.rmtree(full)
        machine = client(work / "client-v1", url, public)
        figures["v1"] = timed_pull(machine, counter, "origin", f"{ref}@{c1}")
        nodelta = work / "client-v1-nodelta"
        sh(["cp", "-a", str(machine), str(nodelta)])
        figures["update"] = timed_pull(machine, counter, "origin", ref)
        figures["update_objects"] = timed_pull(nodelta, counter, "--disable-static-deltas", "origin", ref)
        for repo in (machine, nodelta):
            if ostree(repo, "rev-parse", f"origin:{ref}") != c2:
                raise SystemExit(f"{repo} did not end at v2")
    finally:
        server.shutdown()
        server.server_close()
    return figures


def report(figures: dict[str, Any], change: dict[str, Any]) -> None:
    mb = 1e6
    print(f"one-package change: {change['package']} {change['from']} -> {change['to']} "
          f"(SOURCE_DATE_EPOCH {change['sde'][0]} -> {change['sde'][1]})")
    changed = figures["changed"]
    print(f"files that differ between v1 and v2: {len(changed)}, {sum(s for _, _, s in changed) / mb:.2f} MB in v2")
    for kind, path, size in changed[:15]:
        print(f"  {kind} {path} {size} bytes")
    initramfs = [p for _, p, _ in changed if p.endswith("/initramfs.img")]
    print(f"initramfs: {'changed' if initramfs else 'unchanged'}")
    for name, label in (("full", "full pull of v2"), ("v1", "first pull of v1"),
                        ("update", "update v1->v2 with the static delta"),
                        ("update_objects", "update v1->v2 without deltas (objects)")):
        f = figures[name]
        print(f"{label}: {f['bytes'] / mb:.2f} MB in {f['requests']} requests, {f['seconds']}s")
    ratio = figures["update"]["bytes"] / figures["full"]["bytes"]
    objects = figures["update_objects"]["bytes"] / figures["full"]["bytes"]
    print(f"ratio update/full = {ratio * 100:.2f}% (goal <= 10%); without deltas {objects * 100:.2f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--v1", type=Path, help="an existing FINISHED compose of examples/minimal.yaml (else composed)")
    ap.add_argument("--quick", action="store_true", help="the CI smoke run (with --v1: one compose)")
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ostree-update-bytes-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        v1 = args.v1.resolve() if args.v1 else compose(MANIFEST, work / "target-v1", [])
        v2, change = make_v2(v1, work)
        figures = measure(v1, v2, work)
        report(figures, change)
        if args.json:
            args.json.write_text(json.dumps({"change": change, **figures}, indent=2))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
