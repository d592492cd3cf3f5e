"""``deb-bootc-compose lint`` on real images: the session compose (its compose directory) is clean, its image's
apt sources are the manifest's reachable ones (image_sources' default), and images built FROM its OCI layout
with Debian's podman (no network, storage in the test's directory) are judged as they should be: one that removes
a package with apt-get and cleans up as docs/variants.md says is clean; one whose kernel changed without a new
initramfs, with /boot content, an SSH host key and apt's lists left behind gets each message; the same image
repaired as docs/variants.md says (dracut for the kernel that stays, then clean up) is clean again; one without
its kernel fails, and install-to-disk refuses it from podman's storage, naming the cause."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from compose_helpers import SessionCompose, run_cli

pytestmark = pytest.mark.integration

GOOD = """\
FROM {base}
# what docs/variants.md's recipe does, offline: apt changes the package set, then cleans up in the same RUN
RUN apt-get remove -y hello && \\
    apt-get clean && rm -rf /var/lib/apt /var/cache/apt /var/log/* && \\
    echo derived > /usr/share/derived-marker
# debconf writes the image's database (/var/cache/debconf is a link to it), not a new one in /var
RUN echo 'lint-test lint-test/answer string 42' | debconf-set-selections && \\
    grep -q 'lint-test/answer' /usr/lib/sysimage/debconf/config.dat
"""
CHANGED = """\
FROM localhost/lint-good:1
RUN kdir=$(ls -d /usr/lib/modules/*) && mv "$kdir" "$kdir-new" && \\
    touch /boot/leftover && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && \\
    mkdir -p /var/lib/apt/lists && \\
    echo 'Origin: Debian' > /var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease
"""
REPAIRED = """\
FROM localhost/lint-changed:1
# docs/variants.md, after a kernel change: dracut for the kernel that stays, in /usr/lib/modules/KVER; clean up
RUN kver=$(ls /usr/lib/modules) && \\
    dracut --no-hostonly --reproducible --add ostree --tmpdir /tmp --force \\
        /usr/lib/modules/$kver/initramfs.img $kver && \\
    rm -rf /boot/* /etc/ssh/ssh_host_* /var/lib/apt
"""
NO_KERNEL = """\
FROM localhost/lint-good:1
RUN rm /usr/lib/modules/*/vmlinuz
"""


class Podman:
    """Debian's podman with its storage in one directory (overlay, cgroupfs: no systemd here), no network."""

    def __init__(self, top: Path) -> None:
        # podman refuses a run root longer than 50 characters: a short one under /tmp
        self.root, self.runroot = top / "root", Path(tempfile.mkdtemp(prefix="lintpod-", dir="/tmp"))
        self.argv = ["podman", "--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver",
                     "overlay", "--cgroup-manager=cgroupfs", "--events-backend=file"]

    def build(self, containerfile: str, tag: str, context: Path) -> None:
        (context / f"{tag}.Containerfile").write_text(containerfile)
        done = subprocess.run([*self.argv, "build", "--network=none", "--pull=never", "-f",
                               str(context / f"{tag}.Containerfile"), "-t", f"localhost/{tag}:1", str(context)],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"podman build {tag}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def ref(self, tag: str) -> str:
        return f"containers-storage:[overlay@{self.root}+{self.runroot}]localhost/{tag}:1"

    def close(self) -> None:
        subprocess.run([*self.argv, "unmount", "--all"], capture_output=True)
        subprocess.run([*self.argv, "system", "reset", "--force"], capture_output=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


def lint(image: str, scratch: Path) -> tuple[int, dict[str, object]]:
    done = run_cli(["lint", image, "--json", "--scratch", str(scratch)], timeout=900)
    assert done.returncode in (0, 1), f"lint {image}: {done.returncode}\n{done.stderr}"
    return done.returncode, json.loads(done.stdout)


def messages(report: dict[str, object]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in report["problems"]:  # type: ignore[attr-defined]
        out.setdefault(p["rule"], []).append(f"{p['severity']}: /{p['path']}: {p['message']}")
    return out


def test_session_compose_image_and_its_sources(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    code, report = lint(str(minimal_compose.topdir), tmp_path)
    assert (code, report["errors"], report["warnings"]) == (0, 0, 0), report
    # image_sources' default: the manifest's Debian source, signed by a keyring the image holds
    tree = minimal_compose.tree
    sources = (tree / "etc/apt/sources.list.d/compose.sources").read_text()
    assert sources == ("Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\n"
                       "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert (tree / "usr/share/keyrings/debian-archive-keyring.gpg").is_file()


def test_containerfile_images(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    layout = minimal_compose.topdir / "compose/base/amd64/oci/layout"
    index = json.loads((layout / "index.json").read_text())
    tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    podman = Podman(tmp_path / "podman")
    try:
        podman.build(GOOD.format(base=f"oci:{layout}:{tag}"), "lint-good", tmp_path)
        podman.build(CHANGED, "lint-changed", tmp_path)
        podman.build(REPAIRED, "lint-repaired", tmp_path)
        podman.build(NO_KERNEL, "lint-nokernel", tmp_path)

        code, report = lint(podman.ref("lint-good"), tmp_path / "scratch")
        assert (code, report["errors"]) == (0, 0), report
        # the one warning every podman build gets: its RUN leaves an empty /etc/hostname (bootc warns too)
        assert messages(report) == {"buildah-injected": ["warning: /etc/hostname: an empty file"]}

        code, report = lint(podman.ref("lint-changed"), tmp_path / "scratch")
        found = messages(report)
        assert code == 1
        kdir = next(p for p in found["initramfs-kernel"])
        assert kdir.startswith("error: /usr/lib/modules/") and "-new/initramfs.img: built for " in kdir
        assert "not for the kernel" in kdir
        assert found["ssh-host-keys"] == [f"error: /etc/ssh/ssh_host_ed25519_key{pub}: SSH host keys must be made "
                                          "at first boot, not shipped" for pub in ("", ".pub")]
        assert found["boot-empty"] == ["warning: /boot: must be empty in the image, holds leftover"]
        assert found["apt-cache"] == ["warning: /var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease: "
                                      "apt's package lists or caches: "
                                      "/var/lib/apt/lists/deb.debian.org_debian_dists_trixie_InRelease"]
        assert any("label ostree.linux=" in m for m in found["labels"])

        code, report = lint(podman.ref("lint-repaired"), tmp_path / "scratch")
        found = messages(report)
        assert (code, report["errors"]) == (0, 0), report
        assert set(found) == {"buildah-injected", "labels"}, found  # the label still names the old kernel

        code, report = lint(podman.ref("lint-nokernel"), tmp_path / "scratch")
        found = messages(report)
        assert code == 1 and found["kernel"] == [
            "error: /usr/lib/modules: no usr/lib/modules/$kver/vmlinuz: the image has no bootable kernel"]
        (tmp_path / "out").mkdir()
        done = run_cli(["install-to-disk", podman.ref("lint-nokernel"), str(tmp_path / "out/d.raw")], timeout=900)
        assert done.returncode == 2, done.stderr
        assert (f"install-to-disk: {podman.ref('lint-nokernel')} is not a bootable image, refusing to install it: "
                "/usr/lib/modules: no usr/lib/modules/$kver/vmlinuz: the image has no bootable kernel") in done.stderr
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["d.raw.install.log"]
    finally:
        podman.close()
