"""A hostile build-dependency cannot poison deb-mock's caches, nor leave the sandbox.

``dm-evil``'s postinst runs as root inside the sandbox (as every maintainer script of a build-dependency
does) while the build-dependencies of ``dm-victim`` are installed. It tries to write into the root cache
and into every other set's snapshot through the descriptors of every process it can see, and after the
double-chroot escape through their host paths; it tries to read and write a host file. Then the lower
layers of a build with another set (``dm-simple``'s) must be exactly what they were. Maintainer scripts
run without network (only apt's download step has it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import uuid
from pathlib import Path

import pytest

from srcpkg import make_source

pytestmark = pytest.mark.integration

POSTINST = r"""#!/bin/sh
# A hostile maintainer script: poison every cache layer deb-mock has, then escape to the host.
set +e
try_poison() {
  for d in "$@"; do
    [ -d "$d" ] || continue
    if touch "$d/POISON" 2>/dev/null; then echo "DM-EVIL: POISONED $d"; fi
  done
}
for fd in /proc/[0-9]*/fd/*; do
  [ -d "$fd" ] && try_poison "$fd" "$fd/root" "$fd/upper" "$fd/usr"
done
for m in /proc/[0-9]*/root /proc/[0-9]*/cwd; do
  ls "$m/@CACHE@" >/dev/null 2>&1 && echo "DM-EVIL: CACHE VISIBLE THROUGH $m"
done
mount -o remount,rw / 2>/dev/null && echo "DM-EVIL: REMOUNTED"
[ "$(grep -c : /proc/net/dev)" -gt 1 ] && echo "DM-EVIL: NETWORK"  # more than loopback
mknod /evil-disk b 8 0 2>/dev/null && echo "DM-EVIL: MKNOD"
perl -e '
  mkdir "/evil-sub"; chroot "/evil-sub"; chdir ".." for 1 .. 64; chroot ".";
  exec "/bin/sh", "-c", q{
    cat "@HOSTDIR@/marker" 2>/dev/null
    echo "DM-EVIL: escaped-to-host" > "@HOSTDIR@/written-by-postinst" 2>/dev/null && echo "DM-EVIL: WROTE HOST"
    for d in @CACHE@/root-cache/*/*/root @CACHE@/deps-cache/*/upper; do
      [ -d "$d" ] && touch "$d/POISON" 2>/dev/null && echo "DM-EVIL: POISONED $d"
    done
    echo "DM-EVIL: attack finished"
  }'
exit 0
"""


def manifest(tree: Path) -> dict[str, tuple[object, ...]]:
    """Every entry of a tree: type, mode, owner, size, sha256 (files), target (links), xattrs."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in ["", *dirnames, *filenames]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            digest: str = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            xattrs = tuple(
                sorted((k, os.getxattr(p, k, follow_symlinks=False)) for k in os.listxattr(p, follow_symlinks=False))
            )
            out[os.path.relpath(p, tree)] = (
                stat.S_IFMT(st.st_mode),
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size,
                digest,
                xattrs,
            )
    return out



def test_hostile_postinst_cannot_poison_other_sets_or_escape(  # type: ignore[no-untyped-def]
    deb_mock, sources, mock_cache, tmp_path, host_dir
) -> None:
    # a build with another set: its lower layers are what must stay untouched
    simple = deb_mock("--rebuild", str(sources["simple"]))
    assert simple.rc == 0, simple.out
    key = re.search(r"build-dependency set: .* key ([0-9a-f]+)", simple.log("state.log"))
    assert key, simple.log("state.log")
    if os.geteuid() == 0:  # no path from the host leads a mapped id to the trees
        for d in ("root-cache", "deps-cache", "builds", "failed", "chroots"):
            st = (mock_cache / d).stat()
            assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o700), d
    layers = [next(mock_cache.glob("root-cache/debian-trixie-amd64-*/current")).resolve() / "root"]
    layers.append(mock_cache / "deps-cache" / key.group(1) / "upper")
    before = [manifest(layer) for layer in layers]

    postinst = POSTINST.replace("@CACHE@", str(mock_cache)).replace("@HOSTDIR@", str(host_dir))
    # a version of its own per run: the set that holds it is never a cache hit, so the postinst runs
    version = f"1.0+t{uuid.uuid4().hex[:8]}"
    evil = make_source(tmp_path, "dm-evil", version, files={"debian/dm-evil.postinst": postinst})
    victim = make_source(tmp_path, "dm-victim", "1.0", build_depends="debhelper-compat (= 13), dm-evil")
    run = deb_mock("--chain", str(evil), str(victim))
    assert run.rc == 0, run.out
    summary = json.loads((run.resultdir / "result.json").read_text())
    victim_dir = run.resultdir / summary["builds"][1]["resultdir"]
    root_log = (victim_dir / "root.log").read_text()
    victim_key = re.search(r"build-dependency set: .* key ([0-9a-f]+)", (victim_dir / "state.log").read_text())
    assert victim_key and f"dm-evil={version}" in root_log
    assert "DM-EVIL: attack finished" in root_log, root_log[-3000:]  # the attack really ran, as ns-root
    assert "POISONED" not in root_log and "VISIBLE" not in root_log, root_log[-3000:]
    assert "HOST-SECRET-MARKER" not in root_log and "WROTE HOST" not in root_log, root_log[-3000:]
    assert "REMOUNTED" not in root_log and "MKNOD" not in root_log, root_log[-3000:]
    assert "DM-EVIL: NETWORK" not in root_log, "maintainer scripts must run without network"
    assert not (host_dir / "written-by-postinst").exists()
    for layer, old in zip(layers, before, strict=True):
        assert not (layer / "POISON").exists()
        assert manifest(layer) == old, f"{layer} changed"
    # and the other set is still the one its builds get
    again = deb_mock("--rebuild", str(sources["simple"]))
    assert again.rc == 0 and f"key {key.group(1)}" in again.log("state.log")
    assert "build-dependency cache: hit" in again.log("state.log")
    # the hostile set is of no use to anyone else: leave the shared test cache as it was
    shutil.rmtree(mock_cache / "deps-cache" / victim_key.group(1))
