"""The piuparts plugin on real builds: the target suite's own piuparts, in deb-mock's sandbox.

A package with a dependency from the mirror (fetched into piuparts' local repository) that installs, removes
and purges cleanly passes, and so does the upgrade from the suite's own version of a package it has (its
``native-architecture``: fetched too, upgraded to the built one). One whose postinst leaves files that its
purge does not remove fails with piuparts' own finding and the files named, its .debs kept. A hostile
postinst, run by piuparts in its chroot, reaches neither the host nor the network nor anything outside the
chroot (it cannot mount, chroot out, or read another process's root), and piuparts names the install that
failed; ``fail-on: none`` keeps that build a success with the failure recorded.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest
from dm_helpers import DEB_MOCK, Run

from srcpkg import make_source

pytestmark = pytest.mark.integration

CONFIG = "debian-trixie-amd64"

LEAKY_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    mkdir -p /var/lib/dm-piu-leaky
    echo state > /var/lib/dm-piu-leaky/state
    echo generated > /etc/dm-piu-leaky.conf
fi
#DEBHELPER#
"""

# each attack prints "ATTACK NAME: blocked" or "ATTACK NAME: ESCAPED"; the script then fails, so piuparts logs
# its output with the failed command
HOSTILE_POSTINST = """#!/bin/bash
[ "$1" = configure ] || exit 0
try() {{ local what=$1; shift; if "$@" >/dev/null 2>&1; then echo "ATTACK $what: ESCAPED"; \
else echo "ATTACK $what: blocked"; fi; }}
try host-write sh -c 'echo pwned > {host}/pwned'
try host-read test -e {host}/marker
try loopback bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'
try network bash -c 'exec 3<>/dev/tcp/deb.debian.org/80'
try mount mount -t tmpfs none /mnt
try chroot-out perl -e 'mkdir "/x"; chroot "/x" or exit 1'
try proc-root sh -c 'for p in /proc/[0-9]*; do ls $p/root/deb-mock/piuparts/debs && exit 0; done; exit 1'
try userns unshare -U true
echo "ATTACKS DONE"
exit 1
"""


def run(mock_cache: Path, resultdir: Path, *args: str) -> Run:
    argv = [DEB_MOCK, "--cache-dir", str(mock_cache), "--resultdir", str(resultdir), "-r", CONFIG, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout + proc.stderr, resultdir)


def test_piuparts_passes_a_clean_package_and_names_what_a_purge_leaves(  # type: ignore[no-untyped-def]
    mock_cache, tmp_path
) -> None:
    ok = make_source(tmp_path, "dm-piu-ok", "1.0", files={"README": "ok\n"},
                     binaries={"dm-piu-ok": "Depends: hello, ${misc:Depends}", "native-architecture": ""},
                     install={"dm-piu-ok": "README usr/share/doc/dm-piu-ok-data\n"})
    passed = run(mock_cache, tmp_path / "ok", "--run-piuparts", "--rebuild", str(ok))
    assert passed.rc == 0, passed.out
    res = passed.result
    piu = res["plugins"]["piuparts"]
    assert piu["tool"] == "piuparts" and piu["version"].startswith("1."), piu
    assert piu["state"] == "ok" and piu["result"] == "pass" and piu["exit_code"] == 0, piu
    assert piu["passed"] == ["Installation and purging test", "Installation, upgrade and purging tests",
                             "All tests"] and piu["failed"] == [], piu
    assert piu["leftovers"] == [] and piu["packages"] == ["dm-piu-ok", "native-architecture"]
    assert list(piu["upgrade_from"]) == ["native-architecture"], piu  # the suite's version (0.2.6 in trixie)
    log = passed.log("piuparts.log")
    assert res["logs"]["plugin-piuparts"] == "piuparts.log"
    assert "fetched for piuparts' chroot: hello_" in log  # from the mirror, into its repository
    assert "native-architecture_" in log.split("fetched for piuparts' chroot: ")[1].splitlines()[0]
    assert "piuparts version" in log and "INFO: PASS: All tests." in log  # piuparts' own log

    leaky = make_source(tmp_path, "dm-piu-leaky", "1.0", files={"debian/dm-piu-leaky.postinst": LEAKY_POSTINST})
    failed = run(mock_cache, tmp_path / "leaky", "--run-piuparts", "--rebuild", str(leaky))
    assert failed.rc == 1, failed.out
    res = failed.result
    piu = res["plugins"]["piuparts"]
    assert res["state"] == "failed" and piu["state"] == "failed" and piu["result"] == "fail", piu
    assert piu["failed"] == ["Package purging left files on system", "Installation and purging test"], piu
    assert piu["upgrade_from"] == {}, piu  # the suite has no dm-piu-leaky: no upgrade test
    assert piu["leftovers"] == ["/etc/dm-piu-leaky.conf", "/var/lib/dm-piu-leaky/",
                                "/var/lib/dm-piu-leaky/state"], piu
    assert res["error"].startswith("plugin piuparts: piuparts failed (fail-on: failure): Package purging left "
                                   "files on system: /etc/dm-piu-leaky.conf, /var/lib/dm-piu-leaky/"), res["error"]
    assert sorted(p.name for p in failed.resultdir.glob("*.deb")) == ["dm-piu-leaky_1.0_all.deb"]


def test_a_hostile_maintainer_script_under_piuparts_reaches_no_host_no_network_no_way_out(  # type: ignore[no-untyped-def]
    mock_cache, tmp_path, host_dir
) -> None:
    listener = socket.socket()  # a host service on loopback: the sandbox has a network namespace of its own
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    connections: list[object] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except (TimeoutError, OSError):
                continue

    stop = threading.Event()
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        postinst = HOSTILE_POSTINST.format(host=host_dir, port=listener.getsockname()[1])
        src = make_source(tmp_path, "dm-piu-hostile", "1.0", files={"debian/dm-piu-hostile.postinst": postinst})
        done = run(mock_cache, tmp_path / "r", "--run-piuparts", "--plugin-option", "piuparts:fail-on=none",
                   "--rebuild", str(src))
    finally:
        stop.set()
        t.join()
        listener.close()
    assert done.rc == 0, done.out  # fail-on: none: piuparts' failure is recorded, the build stands
    res = done.result
    piu = res["plugins"]["piuparts"]
    assert res["state"] == "success" and piu["state"] == "ok" and piu["result"] == "fail", piu
    assert "'apt-get', '-y', '--allow-downgrades', 'install', './tmp/dm-piu-hostile_1.0_all.deb']" in \
        piu["failed_command"], piu
    log = done.log("piuparts.log")
    assert "piuparts failed (fail-on: none): command failed: ['chroot'" in log
    attacks = [line.strip() for line in log.splitlines() if line.strip().startswith("ATTACK ")]
    names = ["host-write", "host-read", "loopback", "network", "mount", "chroot-out", "proc-root", "userns"]
    assert attacks == [f"ATTACK {n}: blocked" for n in names], attacks
    assert "ATTACKS DONE" in log
    assert sorted(p.name for p in host_dir.iterdir()) == ["marker"] and not connections
    assert sorted(p.name for p in done.resultdir.glob("*.deb")) == ["dm-piu-hostile_1.0_all.deb"]
