"""Debian Atomic (examples/debian-atomic): one real compose of the three variants, then one VM session per
variant in which it proves its purpose, through ``boot-test``'s own code path (the variant's
``boot_test.commands`` from the compose's manifest, plus the checks below):

* base: the image brings its network up by itself (DHCP from QEMU's slirp; the boot test writes no network
  configuration), resolves through systemd-resolved, sshd listens with host keys made at this first boot;
* container-host: podman runs a container from a local OCI archive (a tiny static program, on a second disk);
* cloud: cloud-init configures the machine from a NoCloud seed disk (hostname, a file, a command).

The module compose runs in a target of its own, seeded with the test cache's pool, and its images share
their common layers (checked on the real OCI layouts). Cost: one three-variant compose and three TCG boots."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from atomicfixtures import CONTAINER_SAYS, SEED_HOSTNAME, nocloud_seed_disk, tiny_container_disk
from compose_helpers import EXAMPLES, harvest_target, run_cli, seed_target

from deb_bootc_compose import osrelease
from deb_bootc_compose.boot import cli
from deb_bootc_compose.boot.runner import boot_test
from deb_bootc_compose.metadata import variant_uid

pytestmark = pytest.mark.boot
MANIFEST = EXAMPLES / "debian-atomic" / "debian-atomic.yaml"
VARIANTS = ("base", "container-host", "cloud")


@pytest.fixture(scope="module")
def atomic(compose_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compose of examples/debian-atomic (the CLI, as a user runs it); its directory."""
    target = tmp_path_factory.mktemp("atomic-target")
    seed_target(compose_cache, target)
    try:
        run = run_cli(["--config", str(MANIFEST), "--target-dir", str(target), "--compose-type", "test"])
    finally:
        harvest_target(compose_cache, target)
    assert run.returncode == 0, f"the Debian Atomic compose failed ({run.returncode}):\n{run.stderr[-6000:]}"
    return Path(run.last_line)


def ostree_cat(topdir: Path, variant: str, path: str) -> str:
    entry = json.loads((topdir / "metadata/ostree.json").read_text())["payload"]["variants"][variant]["amd64"]
    done = subprocess.run(["ostree", f"--repo={topdir.parent / 'ostree/repo'}", "cat", entry["commit"], path],
                          capture_output=True, text=True, check=True)
    return done.stdout


def layers(topdir: Path, variant: str) -> dict[str, dict[str, object]]:
    layout = topdir / f"compose/{variant}/amd64/oci/layout"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    return {str(x["annotations"]["org.debian.bootc.layer"]): x for x in manifest["layers"]}


def test_one_compose_three_images_sharing_their_layers(atomic: Path) -> None:
    assert (atomic / "STATUS").read_text().strip() == "FINISHED"
    images = json.loads((atomic / "metadata/images.json").read_text())["payload"]["images"]
    packages = json.loads((atomic / "metadata/packages.json").read_text())["payload"]["packages"]
    for variant in VARIANTS:
        assert sorted(i["format"] for i in images[variant_uid(variant)]["amd64"]) == ["ociarchive", "qcow2"], variant
        release = osrelease.parse(ostree_cat(atomic, variant, "/usr/lib/os-release"))
        assert release["NAME"] == "Debian Atomic" and release["VARIANT_ID"] == variant, release
    names = {v: {str(p["name"]) for p in packages[v]["amd64"]} for v in VARIANTS}
    assert "podman" in names["container-host"] and "podman" not in names["base"] | names["cloud"]
    assert "cloud-init" in names["cloud"] and "cloud-init" not in names["base"] | names["container-host"]
    assert {"openssh-server", "sudo", "systemd-resolved", "locales"} <= names["base"] & names["cloud"]
    # the layers of packages every variant holds are the same blobs in the three images
    by_variant = {v: layers(atomic, v) for v in VARIANTS}
    common = set.intersection(*(set(ls) for ls in by_variant.values())) - {"unowned"}
    assert "kernel" in common and len(common) >= 10
    for layer_id in common:
        assert len({str(by_variant[v][layer_id]["digest"]) for v in VARIANTS}) == 1, layer_id
    sizes = {str(x["digest"]): int(str(x["size"])) for ls in by_variant.values() for x in ls.values()}
    alone = sum(int(str(x["size"])) for ls in by_variant.values() for x in ls.values())
    together = sum(sizes.values())  # what a registry stores: each blob once
    shared = sum(int(str(by_variant["base"][i]["size"])) for i in common)
    assert shared > alone / 6  # most of each image is the common part
    assert together <= alone - 2 * shared  # the common layers are stored once, not three times
    print(f"FIGURE debian-atomic OCI layers: {together / 1e6:.1f} MB stored together vs {alone / 1e6:.1f} MB "
          f"one by one ({len(common)} layers shared by the three)")


def boot(atomic: Path, variant: str, extra: list[str], disks: list[Path]) -> None:
    """One VM session of ``variant``: the boot test's checks, the variant's manifest commands, then ``extra``."""
    args = cli.parser().parse_args([str(atomic), "--variant", variant, "--image-network",
                                    "--log-dir", str(atomic / "logs" / f"boot-{variant}")])
    spec = cli.spec_for(args)
    assert spec.commands, f"{variant}: the compose's manifest gives no boot_test.commands"
    spec.commands = [*spec.commands, *extra]
    report = boot_test(spec, extra_disks=disks, net=True, net_setup=False)
    assert report.ok, f"{variant}: {report.summary()}\nserial log: {report.serial_log}"


def test_base_is_a_server_that_configures_itself(atomic: Path) -> None:
    boot(atomic, "base", [
        "/usr/lib/systemd/systemd-networkd-wait-online --any --ipv4 --timeout=180",
        "ip -4 -o addr show | grep -q 'inet 10.0.2.15/'",  # slirp's DHCP answer, asked for by the image itself
        "resolvectl dns | grep -q 10.0.2.3",  # the DNS server DHCP gave, in systemd-resolved
        "! test -e /run/systemd/network/50-deb-bootc-test.network",
    ], [])


def test_container_host_runs_a_container_from_a_local_oci_archive(atomic: Path, tmp_path: Path) -> None:
    disk = tiny_container_disk(tmp_path)
    boot(atomic, "container-host", [
        "cat /dev/vdb > /var/tmp/tiny.tar",
        f"podman run --rm --network=none oci-archive:/var/tmp/tiny.tar | grep -qx '{CONTAINER_SAYS}'",
    ], [disk])


def test_cloud_image_is_configured_by_cloud_init_from_a_seed(atomic: Path, tmp_path: Path) -> None:
    seed = nocloud_seed_disk(tmp_path)
    boot(atomic, "cloud", [
        "cloud-init status --wait --long",
        f'test "$(hostname)" = {SEED_HOSTNAME}',
        "grep -qx 'seeded by cloud-init' /etc/debian-atomic-seeded",
        "test -f /var/lib/debian-atomic-runcmd",
    ], [seed])


PARTICLE = EXAMPLES / "particle-os" / "containerfile"


def test_particle_os_from_its_containerfile_lints_installs_and_boots(atomic: Path, tmp_path: Path) -> None:
    """examples/particle-os/containerfile built FROM this compose's base image (podman, apt-get from the image's
    own sources), then linted and boot-tested straight from podman's storage (containers-storage:, no podman
    save): boot-test installs it onto a disk image and boots it with its packages working."""
    runroot = Path(tempfile.mkdtemp(prefix="particle-", dir="/tmp"))  # podman refuses a run root of > 50 chars
    storage = tmp_path / "storage"
    podman = ["podman", "--root", str(storage), "--runroot", str(runroot),
              "--storage-driver", "overlay", "--cgroup-manager=cgroupfs", "--events-backend=file"]
    base = f"oci:{atomic / 'compose/base/amd64/oci/layout'}"
    image = f"containers-storage:[overlay@{storage}+{runroot}]localhost/particle-os:1"
    try:
        argv = [*podman, "build", "--network=host", "--pull=never", "--build-arg", f"BASE={base}",
                "-t", "localhost/particle-os:1", str(PARTICLE)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"podman build:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        subprocess.run([*podman, "unmount", "--all"], capture_output=True)
        # what the example's build.sh runs: errors fail it; warnings (what apt's maintainer scripts leave in
        # /var, the files podman leaves in /etc/hostname and /run) are shown, as bootc container lint does
        lint = run_cli(["lint", image], timeout=900)
        assert lint.returncode == 0 and "0 error(s)" in lint.stdout, lint.stdout + lint.stderr
        args = cli.parser().parse_args([image, "--stateroot", "particle-os", "--log-dir", str(tmp_path / "logs")])
        with cli.prepared(args) as spec:
            spec.commands = ["grep -qx 'ID=\"particle-os\"' /usr/lib/os-release", "grep -q Particle-OS /etc/motd",
                             "htop --version", "tmux -V", "vim.tiny --version | grep -q 'VIM - Vi IMproved'",
                             "systemctl is-active ssh.service", "test -d /ostree/deploy/particle-os"]
            report = boot_test(spec, net=True, net_setup=False)
        assert report.ok, f"particle-os: {report.summary()}\nserial log: {report.serial_log}"
    finally:
        subprocess.run([*podman, "unmount", "--all"], capture_output=True)
        subprocess.run([*podman, "system", "reset", "--force"], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)
    assert not (tmp_path / "logs" / "boot-test-image.qcow2").exists()  # boot-test's disk image is gone

DERIVED = EXAMPLES / "particle-os" / "manifest" / "particle-os.yaml"


def oci_layers(layout: Path) -> list[dict[str, Any]]:
    index = json.loads((layout / "index.json").read_text())
    found: list[dict[str, Any]] = json.loads(
        (layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())["layers"]
    return found


def layer_members(layout: Path, digest: str) -> list[str]:
    with tarfile.open(layout / "blobs/sha256" / digest.split(":")[1], "r:gz") as tar:
        return tar.getnames()


def test_particle_os_from_its_derived_manifest_layers_on_the_base_and_boots(atomic: Path, tmp_path: Path) -> None:
    """examples/particle-os/manifest (``base:`` this compose's base variant), with iproute2 removed as well,
    composed in the same target (no disk phase: the OCI image is what is checked and installed), then again on the
    base's OCI archive (``base: {image: …}``) instead of its compose directory. Its image holds
    the base image's layers unchanged plus one of its own with whiteouts; skopeo reads it, lint passes, and the
    image installed from its OCI archive boots with its identity, its packages, and without iproute2. Its
    initramfs is the base's (nothing that makes it changed)."""
    data = yaml.safe_load(DERIVED.read_text())
    data["base"]["compose"] = str(atomic)
    data["variants"] = {"base": {"remove": ["iproute2"]}}
    config = tmp_path / "particle-os.yaml"
    config.write_text(yaml.safe_dump(data))
    run = run_cli(["--config", str(config), "--target-dir", str(atomic.parent), "--compose-type", "test",
                   "--skip-phase", "disk"], timeout=2400)
    assert run.returncode == 0, f"the derived compose failed ({run.returncode}):\n{run.stderr[-6000:]}"
    derived = Path(run.last_line)
    assert (derived / "STATUS").read_text().strip() == "FINISHED"
    lock = yaml.safe_load((derived / "metadata/lockfile.yaml").read_text())
    assert lock["lockfile_version"] == 2 and lock["base"]["compose_id"] == atomic.name, lock.get("base")
    base_layout, layout = (c / "compose/base/amd64/oci/layout" for c in (atomic, derived))
    base_layers = [str(x["digest"]) for x in oci_layers(base_layout)]
    base_digest = json.loads((base_layout / "index.json").read_text())["manifests"][0]["digest"]
    assert lock["base"]["images"] == {"amd64": base_digest}
    own = oci_layers(layout)
    assert [str(x["digest"]) for x in own[:-1]] == base_layers  # the base's layers, verbatim
    assert own[-1]["annotations"]["org.debian.bootc.layer"] == "derived"
    members = layer_members(layout, str(own[-1]["digest"]))
    assert "usr/share/doc/.wh.iproute2" in members and "usr/bin/htop" in members, members[:50]
    assert len(members) < 3000, f"{len(members)} entries: the derived layer repeats the base's files"
    # the kernel, dracut, ostree and systemd are the base's: its initramfs is kept, not made again
    assert "the base image's initramfs" in run.stdout + run.stderr, run.stderr[-3000:]
    assert not [m for m in members if m.startswith("usr/lib/modules/")], "the kernel or initramfs changed"
    # the same manifest on the base's image instead of its compose directory: the image carries what it needs
    archive = next((atomic / "compose/base/amd64/oci").glob("*.oci-archive"))
    data["base"] = {"image": f"oci-archive:{archive}"}
    config.write_text(yaml.safe_dump(data))
    again = run_cli(["--config", str(config), "--target-dir", str(atomic.parent), "--compose-type", "test",
                     "--skip-phase", "disk"], timeout=2400)
    assert again.returncode == 0, f"the derived compose on an image failed:\n{again.stderr[-6000:]}"
    on_image = Path(again.last_line)
    lock = yaml.safe_load((on_image / "metadata/lockfile.yaml").read_text())
    assert lock["base"]["image"] == f"oci-archive:{archive}" and lock["base"]["variant"] == "base", lock["base"]
    assert [str(x["digest"]) for x in oci_layers(on_image / "compose/base/amd64/oci/layout")[:-1]] == base_layers
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{layout}:1"], capture_output=True, text=True)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Labels"]["org.opencontainers.image.title"] == "particle-os"
    archive = next((derived / "compose/base/amd64/oci").glob("*.oci-archive"))
    lint = run_cli(["lint", f"oci-archive:{archive}"], timeout=900)
    assert lint.returncode == 0 and "0 error(s)" in lint.stdout, lint.stdout + lint.stderr
    disk = tmp_path / "particle-os.qcow2"
    installed = run_cli(["install-to-disk", f"oci-archive:{archive}", str(disk), "--stateroot", "particle-os"],
                        timeout=1800)
    assert installed.returncode == 0, installed.stderr[-4000:]
    spec = cli.spec_for(cli.parser().parse_args([str(disk), "--log-dir", str(tmp_path / "logs")]))
    spec.commands = ["grep -qx 'ID=particle-os' /usr/lib/os-release", "grep -q Particle-OS /etc/motd",
                     "htop --version", "tmux -V", "test ! -e /usr/share/doc/iproute2", "! command -v ip",
                     f"grep -q '{base_digest}' /usr/lib/deb-bootc/lockfile.yaml",  # the base it was built on
                     "grep -q 'name: particle-os' /usr/lib/deb-bootc/manifest.yaml",
                     "systemctl is-active ssh.service"]
    report = boot_test(spec, net=True, net_setup=False)
    assert report.ok, f"particle-os (derived): {report.summary()}\nserial log: {report.serial_log}"
