"""``deb-bootc-compose init``: the projects it writes (both flavours) and what it refuses, writing nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from basecomposes import image, make_base
from compose_helpers import EXAMPLES

from deb_bootc_compose import manifest, osrelease
from deb_bootc_compose.cli import main

ATOMIC = EXAMPLES / "debian-atomic" / "debian-atomic.yaml"


def init(*args: object) -> int:
    return main(["init", *map(str, args)])


def test_manifest_project_from_debian_atomic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "particle"
    assert init("particle-os", "--from", ATOMIC, "--variant", "container-host", "--pretty-name", "Particle-OS",
                "--os-version", "2", "--dir", dest) == 0
    assert str(dest / "particle-os.yaml") in capsys.readouterr().out
    m = manifest.load(dest / "particle-os.yaml")
    assert (m.name, m.version, list(m.variants)) == ("particle-os", "2", ["container-host"])
    settings = m.for_variant("container-host")
    assert "podman" in settings.packages and "openssh-server" in settings.packages  # the base's, kept
    assert dict(settings.os_release) == {"ID": "particle-os", "ID_LIKE": "debian", "NAME": "Particle-OS",
                                         "VERSION_ID": "2", "VARIANT_ID": "container-host",
                                         "PRETTY_NAME": "Particle-OS 2 (Debian trixie based)"}
    files = {f.spec.path: f.spec.content for f in settings.files}
    assert files["/etc/issue"].startswith("Particle-OS 2") and "Particle-OS" in str(files["/etc/motd"])
    build = dest / "build.sh"
    assert build.stat().st_mode & 0o111 and "--variant container-host" in build.read_text()
    assert "podman info" in build.read_text()  # the base variant's own checks come along
    subprocess.run(["sh", "-n", str(build)], check=True)


def test_manifest_project_copies_what_the_base_reads_and_drops_its_updates(tmp_path: Path) -> None:
    base_dir = tmp_path / "base"
    (base_dir / "files").mkdir(parents=True)
    (base_dir / "files/motd.extra").write_text("extra\n")
    (base_dir / "scripts").mkdir()
    (base_dir / "scripts/tune.sh").write_text("true\n")
    (base_dir / "keys").mkdir()
    (base_dir / "keys/ostree.asc").write_text("not read by init\n")
    data = yaml.safe_load(ATOMIC.read_text())
    data["files"].append({"path": "/etc/motd.d/extra", "source": "files/motd.extra"})
    data["postprocess"].append({"name": "tune", "file": "scripts/tune.sh"})
    data["update"] = {"ostree": {"url": "https://updates.example.org/atomic", "gpg_public_key": "keys/ostree.asc"}}
    (base_dir / "atomic.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    dest = tmp_path / "p"
    assert init("particle-os", "--from", base_dir / "atomic.yaml", "--dir", dest) == 0
    text = (dest / "particle-os.yaml").read_text()
    assert "update" not in yaml.safe_load(text) and "updates.example.org" not in text
    assert (dest / "files/motd.extra").read_text() == "extra\n" and (dest / "scripts/tune.sh").is_file()
    assert not (dest / "keys").exists()
    manifest.load(dest / "particle-os.yaml")  # the copied files are where it says


def test_containerfile_project(tmp_path: Path) -> None:
    compose = tmp_path / "atomic-13-20261205.t.0"
    layout = compose / "compose/base/amd64/oci/layout"
    layout.mkdir(parents=True)
    (layout / "index.json").write_text("{}")
    (compose / "STATUS").write_text("FINISHED\n")
    dest = tmp_path / "cf"
    assert init("particle-os", "--containerfile", "--from", compose, "--package", "tree", "--package", "htop",
                "--dir", dest) == 0
    containerfile = (dest / "Containerfile").read_text()
    assert f"ARG BASE=oci:{layout}\nFROM ${{BASE}}\n" in containerfile
    assert "apt-get install -y --no-install-recommends tree htop" in containerfile
    assert "rm -rf /var/lib/apt /var/cache/apt /var/log/*" in containerfile
    assert "COPY os-release /usr/lib/os-release" in containerfile
    release = osrelease.parse((dest / "os-release").read_text())
    assert release["ID"] == "particle-os" and release["ID_LIKE"] == "debian"
    build = (dest / "build.sh").read_text()
    assert "image=containers-storage:localhost/particle-os:latest " in build and "oci.tar" not in build
    assert 'deb-bootc-compose lint "$image"' in build
    assert 'deb-bootc-compose install-to-disk "$image" out/particle-os.qcow2 --stateroot particle-os' in build
    assert "'dpkg -s htop'" in build
    subprocess.run(["sh", "-n", str(dest / "build.sh")], check=True)
    assert init("x", "--containerfile", "--from", "docker://registry.example.org/atomic:13", "--dir",
                tmp_path / "d") == 0
    assert "ARG BASE=docker://registry.example.org/atomic:13\n" in (tmp_path / "d/Containerfile").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["Bad_Name", "--from", ATOMIC], "a variant name is lower case"),
    (["ok", "--from", "/nonexistent/m.yaml"], "no such manifest or compose directory"),
    (["ok", "--from", ATOMIC, "--variant", "desktop"], "no variant 'desktop' (it has: base, container-host, cloud)"),
    (["ok", "--containerfile", "--from", "/nonexistent"], "not an image reference"),
])
def test_refusals_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[object],
                                message: str) -> None:
    dest = tmp_path / "proj"
    assert init(*args, "--dir", dest) == 2
    assert message in capsys.readouterr().err
    assert not dest.exists()


def test_an_existing_project_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "proj"
    dest.mkdir()
    (dest / "mine").write_text("keep\n")
    assert init("ok", "--from", ATOMIC, "--dir", dest) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in dest.iterdir()] == ["mine"]


def test_a_hostile_base_manifest_cannot_copy_host_files(tmp_path: Path, host_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A base manifest naming a file through a link (or above its directory) gets nothing copied: init reads
    below the manifest's directory without following links, before writing anything."""
    base_dir = tmp_path / "base"
    (base_dir / "files").mkdir(parents=True)
    (base_dir / "files/leak").symlink_to(host_dir / "marker")
    data = yaml.safe_load(ATOMIC.read_text())
    data["files"].append({"path": "/etc/leak", "source": "files/leak"})
    (base_dir / "atomic.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    data["files"][-1]["source"] = "../../../../../../../../../../" + str(host_dir / "marker")
    compose = make_base(tmp_path, data)  # a compose directory: init writes a derived manifest, which copies nothing
    # the manifest file: its own loader refuses the link; a compose's manifest naming files: refused as a base
    cases = ((base_dir / "atomic.yaml", "through a symlink"), (compose, "names files by path (files[2])"))
    for base, message in cases:
        dest = tmp_path / f"p-{base.name}"
        assert init("ok", "--from", base, "--dir", dest) == 2
        assert message in capsys.readouterr().err
        assert not dest.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--pretty-name", "Evil\nRUN curl x | sh"], "must not hold newlines"),
    (["--containerfile", "--package", "htop && curl x"], "not a Debian package name"),
])
def test_identity_and_packages_cannot_inject_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   args: list[str], message: str) -> None:
    dest = tmp_path / "proj"
    assert init("ok", "--from", "oci-archive:/x.tar" if "--containerfile" in args else ATOMIC, *args,
                "--dir", dest) == 2
    assert message in capsys.readouterr().err
    assert not dest.exists()


def test_manifest_project_from_a_compose_is_a_derived_manifest(tmp_path: Path) -> None:
    """From a compose directory (its latest- link), the project names it as its ``base:``, relative to itself."""
    make_base(tmp_path)
    dest = tmp_path / "projects/particle-os"
    assert init("particle-os", "--from", tmp_path / "target/latest-atomic-13", "--variant", "cloud",
                "--pretty-name", "Particle-OS", "--os-version", "2", "--dir", dest) == 0
    data = yaml.safe_load((dest / "particle-os.yaml").read_text())
    assert data["base"] == {"compose": "../../target/latest-atomic-13", "variant": "cloud"}
    assert "update" not in data and "sources" not in data
    m = manifest.load(dest / "particle-os.yaml")
    assert m.derived_from is not None and list(m.variants) == ["cloud"]
    assert m.variant_packages("cloud") == ["systemd", "sudo", "iproute2", "cloud-init"]
    assert dict(m.for_variant("cloud").os_release)["ID"] == "particle-os"
    assert "--variant cloud" in (dest / "build.sh").read_text()
    missing = tmp_path / "p2"
    assert init("x", "--from", tmp_path / "target/latest-atomic-13", "--variant", "desktop", "--dir", missing) == 2
    assert not missing.exists()


def test_manifest_project_from_an_image_is_a_derived_manifest(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """From one of our images (an OCI archive here), the project's ``base:`` is that image, its path relative to
    the project, its variant the image's own label; an image that is not ours is refused, writing nothing."""
    archive = tmp_path / "cloud.oci-archive"
    subprocess.run(["skopeo", "copy", f"oci:{image(tmp_path)}:13", f"oci-archive:{archive}:13"], check=True,
                   capture_output=True)
    dest = tmp_path / "projects/particle-os"
    assert init("particle-os", "--from", f"oci-archive:{archive}", "--dir", dest) == 0
    data = yaml.safe_load((dest / "particle-os.yaml").read_text())
    assert data["base"] == {"image": "oci-archive:../../cloud.oci-archive"}
    m = manifest.load(dest / "particle-os.yaml")
    assert m.derived_from is not None and m.derived_from.variant == "cloud" and list(m.variants) == ["cloud"]
    assert "cloud-init" in m.variant_packages("cloud")
    assert dict(m.for_variant("cloud").os_release)["ID"] == "particle-os"
    foreign = tmp_path / "foreign"
    subprocess.run(["skopeo", "copy", f"oci:{image(tmp_path / 'f', records=False)}:13", f"oci:{foreign}:13"],
                   check=True, capture_output=True)
    capsys.readouterr()
    assert init("x", "--from", f"oci:{foreign}:13", "--dir", tmp_path / "p3") == 2
    assert "was not made by deb-bootc-compose" in capsys.readouterr().err
    assert not (tmp_path / "p3").exists()
