"""A real compose against a hostile package and a real interruption, in the session compose's target.

The package (made with dpkg-deb, served from a signed repository over HTTP) plants links from the files
ostree-prepare writes to files and directories of the host. A compose of it is first stopped with SIGTERM
in the middle of rootfs (dpkg at work), then composed again at once in the same target: the first ends
DOOMED with the signal and the phase on record and no process left; the second succeeds, the host's files
are untouched and the image holds what compose writes. A second interruption, with SIGINT, checks the
record only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from compose_helpers import CLI, EXAMPLES, REPO, SessionCompose, expected_status, harvest_target, run_cli

from deb_bootc_compose import treeops
from debarchive import aptrepo
from debarchive.signing import SigningKey
from debarchive.stanzas import import_deb
from httpserve import serve_directory
from srcpkg import interactive_sigint

pytestmark = pytest.mark.integration
SUITE = "hostile"
HOST_FILES = {"locale.conf": "LANG=host\n", "default-locale": "LANG=host\n", "ssh/ssh_host_ed25519_key": "host key\n",
              # a copyright file the SBOM would take a licence from if it followed the package's links
              "doc/copyright": "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                               "Files: *\nCopyright: host\nLicense: host-marker-4711\n"}
HOST_DIRS = ("sources.list.d", "tmpfiles.d", "ssh", "doc")


def make_hostile_deb(work: Path, host: Path) -> Path:
    """hostile-links: its postinst (run after systemd's, openssh-server's and hello's) points what ostree-prepare
    writes at ``host``: absolute links, a relative one climbing out with '..', directory links, and a link to a
    host file that does not exist yet (``/etc/machine-id``: mmdebstrap's clean-up keeps a dangling one, and
    writing through it would create the file on the host). And what the SBOM reads: its own documentation
    directory and hello's copyright file become links to a host directory and a host copyright file."""
    pkg = work / "hostile-links"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        "Package: hostile-links\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.org>\n"
        "Depends: systemd, openssh-server, base-files, hello\nDescription: plants links out of the image tree\n"
    )
    up = "../" * 12
    (pkg / "DEBIAN/postinst").write_text(f"""#!/bin/sh
set -e
rm -rf /etc/machine-id /etc/locale.conf /etc/default/locale /etc/apt/sources.list.d /etc/tmpfiles.d /etc/ssh
ln -s {host}/machine-id /etc/machine-id
ln -s {up}{str(host).lstrip("/")}/locale.conf /etc/locale.conf
ln -s {host}/default-locale /etc/default/locale
ln -s {host}/sources.list.d /etc/apt/sources.list.d
ln -s {host}/tmpfiles.d /etc/tmpfiles.d
ln -s {host}/ssh /etc/ssh
rm -rf /usr/share/doc/hostile-links
ln -s {host}/doc /usr/share/doc/hostile-links
ln -sf {host}/doc/copyright /usr/share/doc/hello/copyright
""")
    (pkg / "DEBIAN/postinst").chmod(0o755)
    deb = work / "hostile-links_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(pkg), str(deb)], check=True,
                   capture_output=True)
    return deb


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the manifest, the host directory the package's links point at), the repository served meanwhile."""
    base = tmp_path_factory.mktemp("hostile")
    host = base / "host"
    for d in HOST_DIRS:
        (host / d).mkdir(parents=True, exist_ok=True)
    for name, content in HOST_FILES.items():
        (host / name).write_text(content)
    www = base / "www"
    repo = www / "repo"
    key = SigningKey.ensure(base / "gnupg")
    entry = import_deb(repo, make_hostile_deb(base, host))
    key.export_public(base / "key.asc")
    aptrepo.publish(repo, SUITE, packages=[entry], key=key, origin="hostile", label="hostile")
    with serve_directory(www) as url:
        data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
        data["name"] = "hostile-bootc"  # refs and latest-* of its own: the session compose's stay as they are
        data["sources"].append({"url": f"{url}/repo", "suite": SUITE, "components": ["main"],
                                "key": str(base / "key.asc")})
        data["packages"].append("hostile-links")
        manifest = base / "hostile.yaml"
        manifest.write_text(yaml.safe_dump(data))
        yield manifest, host


def host_snapshot(host: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for root, dirs, files in os.walk(host):
        for name in [*dirs, *files]:
            p = Path(root) / name
            out[str(p.relative_to(host))] = None if p.is_dir() else p.read_text()
    return out


def processes_of(topdir: Path) -> list[str]:
    """Processes whose command line names ``topdir`` or whose root or working directory lies in it."""
    mark = str(topdir)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            places = [os.readlink(f"/proc/{pid}/root"), os.readlink(f"/proc/{pid}/cwd")]
        except OSError:
            continue
        if mark in cmd or any(p == mark or p.startswith(mark + "/") for p in places):
            found.append(f"{pid}: {cmd[:200]}")
    return found


class Running:
    """A compose started in the background, its stderr collected line by line."""

    def __init__(self, args: list[str], sigint: bool = False) -> None:
        self.proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=REPO, preexec_fn=interactive_sigint if sigint else None)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            hit = next((line for line in self.lines if needle in line), None)
            if hit:
                return hit
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} in the compose's progress:\n{''.join(self.lines)[-3000:]}")

    def finish(self, timeout: float) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return rc, "".join(self.lines)


def interrupt_mid_rootfs(target: Path, manifest: Path, name: str, sig: signal.Signals, *, dpkg: bool = True
                         ) -> tuple[Path, str, float]:
    """Start a compose, wait until mmdebstrap runs (and with ``dpkg``, until dpkg installs into the tree), send
    ``sig``; (topdir, stderr, seconds from the signal to the exit)."""
    run = Running(["--config", str(manifest), "--target-dir", str(target), "--compose-type", "test"],
                  sigint=sig == signal.SIGINT)
    run.wait_for("rootfs: base/amd64: mmdebstrap of", timeout=900)
    (topdir,) = [p for p in target.glob(f"{name}-13-*")
                 if (p / "STATUS").read_text().strip() == "STARTED"]
    info = topdir / "work/base/amd64/tree/var/lib/dpkg/info"
    deadline = time.monotonic() + 600
    while dpkg and time.monotonic() < deadline and run.proc.poll() is None:
        if info.is_dir() and len(list(info.glob("*.list"))) >= 10:
            break  # dpkg is unpacking and configuring in the tree now
        time.sleep(0.2)
    assert run.proc.poll() is None, "".join(run.lines)[-3000:]
    assert "rootfs: base/amd64: rootfs ready" not in "".join(run.lines), "rootfs ended before the signal"
    start = time.monotonic()
    run.proc.send_signal(sig)
    rc, err = run.finish(timeout=300)
    seconds = time.monotonic() - start
    assert rc == 130, err[-3000:]
    return topdir, err, seconds


def check_doomed(target: Path, topdir: Path, err: str, sig: signal.Signals) -> None:
    name = sig.name
    assert f"interrupted by {name} during the rootfs phase; the compose is DOOMED" in err
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"
    log = (topdir / "logs/global.log").read_text()
    assert f"DOOMED: interrupted by {name} during the rootfs phase" in log
    assert not (topdir / "work").exists() and not (topdir / "compose").exists()
    assert processes_of(topdir) == []
    assert treeops.mounts_under(target) == []


def test_sigterm_mid_rootfs_then_a_hostile_package_composes_safely(
    minimal_compose: SessionCompose, compose_cache: Path, hostile: tuple[Path, Path]
) -> None:
    manifest, host = hostile
    target = minimal_compose.target
    before = host_snapshot(host)
    topdir, err, seconds = interrupt_mid_rootfs(target, manifest, "hostile-bootc", signal.SIGTERM)
    check_doomed(target, topdir, err, signal.SIGTERM)
    print(f"SIGTERM mid-rootfs: the compose exited {seconds:.1f}s after the signal")
    # the next compose in the same target, at once: it works (and the hostile package is in it)
    run = run_cli(["--config", str(manifest), "--target-dir", str(target), "--compose-type", "test",
                   "--keep-work"])
    harvest_target(compose_cache, target)
    assert run.returncode == (0 if expected_status() == "FINISHED" else 3), run.stderr[-3000:]
    new = Path(run.last_line)
    assert new != topdir and (new / "STATUS").read_text().strip() == expected_status()
    # nothing on the host changed through the package's links
    assert host_snapshot(host) == before
    # and the image holds what compose writes, as plain files and directories of its own
    tree = new / "work/base/amd64/tree"
    try:
        for rel, content in (("etc/machine-id", ""), ("etc/locale.conf", "LANG=C.UTF-8\n"),
                             ("etc/default/locale", "LANG=C.UTF-8\n"),
                             ("etc/tmpfiles.d/home.conf", "# /home and /srv are symlinks into /var (OSTree)\n")):
            assert not (tree / rel).is_symlink() and (tree / rel).read_text() == content, rel
        for rel in ("etc/apt/sources.list.d", "etc/tmpfiles.d"):
            assert (tree / rel).is_dir() and not (tree / rel).is_symlink(), rel
        sources = (tree / "etc/apt/sources.list.d/compose.sources").read_text()
        assert "URIs: http://deb.debian.org/debian" in sources
        assert (tree / "etc/ssh").is_symlink()  # the package's own link, pointing nowhere in the image
        repo = target / "ostree/repo"
        ref = "hostile-bootc/trixie/amd64/base"
        machine_id = subprocess.run(["ostree", f"--repo={repo}", "cat", ref, "/usr/etc/machine-id"], check=True,
                                    capture_output=True, text=True).stdout
        assert machine_id == ""
        check_sbom_did_not_follow(new)
    finally:
        treeops.remove_tree(new / "work")


def check_sbom_did_not_follow(topdir: Path) -> None:
    """The SBOM took no licence through the package's links: hello's copyright and hostile-links' doc directory
    lead to the host, so both are NOASSERTION, with the reason."""
    doc = json.loads((topdir / "metadata/sbom/base.amd64.spdx.json").read_text())
    pkgs = {p["name"]: p for p in doc["packages"]}
    assert pkgs["hello"]["licenseDeclared"] == "NOASSERTION", pkgs["hello"]
    assert "/usr/share/doc/hello/copyright" in pkgs["hello"]["comment"] and "not read" in pkgs["hello"]["comment"]
    assert pkgs["hostile-links"]["licenseDeclared"] == "NOASSERTION"
    assert "(not followed)" in pkgs["hostile-links"]["comment"]
    assert "host-marker" not in json.dumps(doc)
    assert pkgs["base-files"]["versionInfo"] and pkgs["systemd"]["licenseDeclared"] != "NOASSERTION"


def test_sigint_mid_rootfs_is_recorded(minimal_compose: SessionCompose) -> None:
    """SIGINT (as from a terminal: the child gets SIGINT's default disposition back) during rootfs."""
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data["name"] = "sigint-bootc"
    manifest = minimal_compose.target.parent / "sigint-bootc.yaml"
    manifest.write_text(yaml.safe_dump(data))
    topdir, err, seconds = interrupt_mid_rootfs(minimal_compose.target, manifest, "sigint-bootc", signal.SIGINT,
                                                dpkg=False)
    check_doomed(minimal_compose.target, topdir, err, signal.SIGINT)
    print(f"SIGINT mid-rootfs: the compose exited {seconds:.1f}s after the signal")
