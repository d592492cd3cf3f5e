"""The ccache plugin on real builds (piuparts: test_piuparts_integration.py).

The second build of a C package, with a new changelog entry (a new version, so a new build directory), hits
ccache for every compilation; a build cannot see another source's cache, and the links and junk it plants in
its own are never followed by the host (its stats log replaced by a link is refused, its size measured and
its cache removed without following them).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from dm_helpers import DEB_MOCK, Run

from debsandbox.sandbox import remove_tree
from srcpkg import make_source

pytestmark = pytest.mark.integration

CONFIG = "debian-trixie-amd64"

C_FILES = {f"src/part{i}.c": f'#include "parts.h"\nint part{i}(int x) {{ return x * {i + 2} + PARTS_BASE; }}\n'
           for i in range(4)}
C_FILES["src/parts.h"] = "#define PARTS_BASE 3\nint part0(int);\nint part1(int);\nint part2(int);\nint part3(int);\n"
C_FILES["src/main.c"] = ('#include <stdio.h>\n#include "parts.h"\n'
                         'int main(void) { printf("%d\\n", part0(1) + part1(2) + part2(3) + part3(4)); return 0; }\n')
C_FILES["Makefile"] = (
    "OBJS = src/main.o src/part0.o src/part1.o src/part2.o src/part3.o\n"
    "all: dm-cc\ndm-cc: $(OBJS)\n\t$(CC) $(LDFLAGS) -o $@ $(OBJS)\n"
    "%.o: %.c src/parts.h\n\t$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<\n"
    "install:\n\tinstall -D -m 0755 dm-cc $(DESTDIR)/usr/bin/dm-cc\n"
)

# a build that looks for other caches, tries to write beside its own, and plants links (to host paths) and junk
EVIL_RULES = """#!/usr/bin/make -f
%:
\tdh $@

override_dh_auto_build:
\tdh_auto_build
\t@echo "VICTIM-FILES=$$(find / -path /proc -prune -o -name victim-entry -print 2>/dev/null | wc -l)"
\t@echo "MOUNTS=$$(ls /deb-mock | tr '\\n' ,)"
\t@if ls -A "$$DM_VICTIM" >/dev/null 2>&1; then echo VICTIM-READABLE; else echo VICTIM-UNREACHABLE; fi
\t@touch $$CCACHE_DIR/../escape 2>/dev/null || true
\tln -sfn "$$DM_HOST_DIR" $$CCACHE_DIR/host-link
\tmkdir -p $$CCACHE_DIR/sub && ln -sfn / $$CCACHE_DIR/sub/root-link
\tif [ -n "$$DM_JUNK" ]; then dd if=/dev/zero of=$$CCACHE_DIR/junk bs=1M count=$$DM_JUNK; fi
\tif [ -n "$$DM_STATS_LINK" ]; then ln -sf "$$DM_STATS_LINK" /deb-mock/ccache-stats/stats.log; fi
"""


def run(mock_cache: Path, resultdir: Path, *args: str) -> Run:
    argv = [DEB_MOCK, "--cache-dir", str(mock_cache), "--resultdir", str(resultdir), "-r", CONFIG, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout + proc.stderr, resultdir)


def c_source(d: Path, name: str, version: str, rules: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    kw = {"rules": rules} if rules else {}
    return make_source(d, name, version, architecture="any", files=C_FILES,
                       binaries={name: "Depends: ${shlibs:Depends}, ${misc:Depends}"}, **kw)


def fresh_key(mock_cache: Path, source: str) -> Path:
    key = mock_cache / "ccache" / CONFIG / source
    remove_tree(key)  # the test cache persists between runs: start from an empty cache
    return key


def test_ccache_hits_on_the_second_build_of_a_changed_source(mock_cache, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = fresh_key(mock_cache, "dm-ccache")
    first = run(mock_cache, tmp_path / "r1", "--enable-plugin", "ccache", "--rebuild",
                str(c_source(tmp_path / "v1", "dm-ccache", "1.0")))
    assert first.rc == 0, first.out
    cc = first.result["plugins"]["ccache"]
    assert cc["state"] == "ok" and cc["key"] == f"{CONFIG}/dm-ccache", cc
    assert cc["hits"] == 0 and cc["misses"] == 5, cc  # main.c and four parts
    assert 0 < cc["size"] <= cc["max_size"] == 2 * 10**9
    assert "ccache" in {p["package"] for p in first.result["buildroot"]}  # the target's own, with the build-deps
    st = key.stat()
    assert st.st_mode & 0o777 == 0o700 and st.st_uid != os.geteuid()  # the build user's (mapped) id, private

    # a new changelog entry: a new version, so a new build directory and SOURCE_DATE_EPOCH
    second = run(mock_cache, tmp_path / "r2", "--enable-plugin", "ccache", "--rebuild",
                 str(c_source(tmp_path / "v2", "dm-ccache", "1.1")))
    assert second.rc == 0, second.out
    cc2 = second.result["plugins"]["ccache"]
    assert cc2["hits"] == 5 and cc2["misses"] == 0, cc2
    assert cc2["size"] >= cc["size"] * 0.5

    off = run(mock_cache, tmp_path / "r3", "--rebuild", str(c_source(tmp_path / "v3", "dm-ccache", "1.2")))
    assert off.rc == 0 and "ccache" not in off.result["plugins"]  # off unless enabled

    scrub = subprocess.run([DEB_MOCK, "--cache-dir", str(mock_cache), "-r", CONFIG, "--scrub", "c-cache"],
                           capture_output=True, text=True, timeout=300)
    assert scrub.returncode == 0, scrub.stderr
    assert not key.parent.exists() and (mock_cache / "root-cache").is_dir()  # the config's caches, nothing else


def test_a_build_reaches_no_other_cache_and_what_it_plants_is_never_followed(  # type: ignore[no-untyped-def]
    mock_cache, tmp_path
) -> None:
    victim = fresh_key(mock_cache, "dm-ccache")  # the other test's source (may be absent: then made empty here)
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "victim-entry").write_text("another source's cache\n")
    fresh_key(mock_cache, "dm-ccache-evil")
    host = tmp_path / "host-dir"  # a host directory the planted links point at
    host.mkdir()
    with open(host / "big", "wb") as fh:
        fh.write(os.urandom(1 << 20) * 30)  # 30 MB: counted if du followed the link
    secret = tmp_path / "stats-secret"  # a "stats log" the host would count if it followed the planted link
    secret.write_text("# x.c\ndirect_cache_hit\n" * 777)
    defines = ["-D", f'environment.DM_VICTIM="{victim}"', "-D", f'environment.DM_HOST_DIR="{host}"']
    opts = ["--enable-plugin", "ccache", "--plugin-option", "ccache:max-size=16M"]

    planted = run(mock_cache, tmp_path / "e1", *opts, *defines, "--rebuild",
                  str(c_source(tmp_path / "e1src", "dm-ccache-evil", "1.0", EVIL_RULES)))
    assert planted.rc == 0, planted.out
    build_log = planted.log("build.log")
    assert "VICTIM-FILES=0\nMOUNTS=ccache,ccache-stats,src," in build_log  # its own cache only, the other nowhere
    assert "VICTIM-UNREACHABLE" in build_log
    assert not (victim.parent / "escape").exists()
    evil = victim.parent / "dm-ccache-evil"
    assert os.path.islink(evil / "host-link") and os.path.islink(evil / "sub" / "root-link")
    cc = planted.result["plugins"]["ccache"]
    assert cc["size"] < 16 * 10**6 and "removed" not in cc, cc  # du did not follow host-link to 30 MB

    # junk over the cap and a stats log that is a link to a host file: the cache is removed (the links in it
    # not followed: the host directory is intact), the link is refused and the build fails
    junk = run(mock_cache, tmp_path / "e2", *opts, *defines, "-D", 'environment.DM_JUNK="24"',
               "-D", f'environment.DM_STATS_LINK="{secret}"', "--rebuild",
               str(c_source(tmp_path / "e2src", "dm-ccache-evil", "1.1", EVIL_RULES)))
    assert junk.rc == 1, junk.out
    res = junk.result
    assert res["error"].startswith("plugin ccache: refusing the build's ccache stats log: "), res["error"]
    cc = res["plugins"]["ccache"]
    assert cc["removed"].endswith("bytes, over max-size 16M") and "hits" not in cc, cc
    assert not evil.exists()
    assert (host / "big").stat().st_size == 30 << 20 and secret.is_file()
    assert (victim / "victim-entry").read_text() == "another source's cache\n"
    assert sorted(p.name for p in junk.resultdir.glob("*.deb"))  # the build's packages are kept
    remove_tree(victim)
