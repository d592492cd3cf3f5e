"""os-release: the manifest's keys rendered over Debian's file (osrelease.py), and the prepare step that writes it
into a tree without following what packages planted (prepare/os_release.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from deb_bootc_compose import manifest, osrelease
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, VariantState
from deb_bootc_compose.phases.ostree_prepare import OstreePreparePhase
from deb_bootc_compose.prepare import PrepareJob, os_release

# base-files 13.8 (trixie)
DEBIAN = """\
PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.2
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""


def sourced(text: str, tmp_path: Path) -> dict[str, str]:
    """What a shell sees (os-release is meant to be sourceable): every key, as /bin/sh reads it."""
    path = tmp_path / "os-release"
    path.write_text(text)
    keys = osrelease.parse(text)
    script = f". {shlex.quote(str(path))}; " + "; ".join(f'printf "%s\\0" "${k}"' for k in keys)
    out = subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True).stdout
    return dict(zip(keys, out.split("\0")[:-1], strict=True))


def test_parse_reads_debians_file() -> None:
    keys = osrelease.parse(DEBIAN + "# a comment\n\nnot a line\n")
    assert keys["PRETTY_NAME"] == "Debian GNU/Linux 13 (trixie)" and keys["ID"] == "debian"
    assert keys["VERSION_CODENAME"] == "trixie" and len(keys) == 10


def test_render_replaces_in_place_appends_the_rest_keeps_debians_lines() -> None:
    out = osrelease.render(DEBIAN, {"NAME": "Particle-OS", "ID": "particle-os", "VARIANT_ID": "server",
                                    "PRETTY_NAME": "Particle-OS 1 (on Debian 13)"})
    lines = out.splitlines()
    assert lines[:7] == ['PRETTY_NAME="Particle-OS 1 (on Debian 13)"', "NAME=Particle-OS", 'VERSION_ID="13"',
                         'VERSION="13 (trixie)"', "VERSION_CODENAME=trixie", "DEBIAN_VERSION_FULL=13.2",
                         "ID=particle-os"]
    assert lines[7:10] == DEBIAN.splitlines()[7:10]  # Debian's URLs kept byte for byte
    assert lines[10:] == ["VARIANT_ID=server", "ID_LIKE=debian"]  # not Debian: Debian-like


def test_id_like_holds_debian_unless_the_image_is_debian() -> None:
    assert "ID_LIKE" not in osrelease.parse(osrelease.render(DEBIAN, {"NAME": "Debian Atomic"}))
    assert osrelease.parse(osrelease.render(DEBIAN, {"ID": "x", "ID_LIKE": "ubuntu"}))["ID_LIKE"] == "ubuntu debian"
    assert osrelease.parse(osrelease.render(DEBIAN, {"ID": "x", "ID_LIKE": "debian"}))["ID_LIKE"] == "debian"


def test_values_a_shell_could_misread_are_quoted(tmp_path: Path) -> None:
    hostile = {"NAME": 'Q "$(touch /tmp/pwned)" `id` \\ $HOME ä', "PRETTY_NAME": "it's", "ID": "x"}
    out = osrelease.render(DEBIAN, hostile)
    seen = sourced(out, tmp_path)
    assert seen["NAME"] == hostile["NAME"] and seen["PRETTY_NAME"] == "it's"
    assert osrelease.parse(out)["NAME"] == hostile["NAME"]  # our parser reads what we write
    assert seen["HOME_URL"] == "https://www.debian.org/" and seen["ID_LIKE"] == "debian"


def test_merge_is_key_by_key() -> None:
    assert osrelease.merge({"NAME": "A", "ID": "a"}, {"ID": "b", "VARIANT_ID": "v"}) == \
        {"NAME": "A", "ID": "b", "VARIANT_ID": "v"}


# ---- the prepare step on a tree ----
def make_tree(root: Path, os_release_text: str = DEBIAN) -> Path:
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/lib/os-release").write_text(os_release_text)
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    return root


def job_for(tmp_path: Path, tree: Tree, os_release_yaml: str, variant: str = "base") -> PrepareJob:
    path = tmp_path / "m.yaml"
    path.write_text("name: x\nversion: '1'\nsuite: trixie\nsources: [{url: 'http://deb.debian.org/debian'}]\n"
                    + os_release_yaml)
    target = TargetPaths(tmp_path / "target")
    ctx = ComposeContext(manifest=manifest.load(path), manifest_path=path, target=target,
                         paths=target.compose("x-1-20261205.t.0"), compose_id="x-1-20261205.t.0",
                         compose_type="test", source_date_epoch=1700000000)
    return PrepareJob.of(OstreePreparePhase(ctx), VariantState(variant, "amd64"), tree)


def test_without_os_release_the_file_is_untouched(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    before = os.lstat(root / "usr/lib/os-release")
    with Tree(root) as t:
        os_release.run(job_for(tmp_path, t, ""))
    after = os.lstat(root / "usr/lib/os-release")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (root / "usr/lib/os-release").read_text() == DEBIAN


def test_the_variants_keys_over_the_manifests_over_debians(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    os.chmod(root / "usr/lib/os-release", 0o644)
    (root / "etc/os-release").unlink()
    (root / "etc/os-release").write_text("ID=planted\n")  # a package made it a file: Debian's link again
    text = ("os_release: {NAME: Debian Atomic, VERSION_ID: '13'}\n"
            "variants: {cloud: {os_release: {VARIANT_ID: cloud, VARIANT: Cloud}}}\n")
    with Tree(root) as t:
        os_release.run(job_for(tmp_path, t, text, "cloud"))
    keys = osrelease.parse((root / "usr/lib/os-release").read_text())
    assert keys["NAME"] == "Debian Atomic" and keys["VARIANT_ID"] == "cloud" and keys["VARIANT"] == "Cloud"
    assert keys["ID"] == "debian" and "ID_LIKE" not in keys and keys["HOME_URL"] == "https://www.debian.org/"
    assert os.readlink(root / "etc/os-release") == "../usr/lib/os-release"
    assert os.stat(root / "usr/lib/os-release").st_mode & 0o777 == 0o644


def test_a_planted_link_is_refused_never_followed(tmp_path: Path, host_dir: Path) -> None:
    secret = host_dir / "secret"
    secret.write_text("ID=host\n")
    root = make_tree(tmp_path / "tree")
    (root / "usr/lib/os-release").unlink()
    (root / "usr/lib/os-release").symlink_to(secret)
    with Tree(root) as t, pytest.raises(ComposeError, match="/usr/lib/os-release is not a regular file"):
        os_release.run(job_for(tmp_path, t, "os_release: {NAME: X}\n"))
    assert secret.read_text() == "ID=host\n"
    # a link to a directory of the host planted at /etc/os-release is replaced, not written through
    listing = sorted(p.name for p in host_dir.iterdir())
    root2 = make_tree(tmp_path / "tree2")
    (root2 / "etc/os-release").unlink()
    (root2 / "etc/os-release").symlink_to(host_dir)
    with Tree(root2) as t:
        os_release.run(job_for(tmp_path, t, "os_release: {NAME: X}\n"))
    assert os.readlink(root2 / "etc/os-release") == "../usr/lib/os-release"
    assert sorted(p.name for p in host_dir.iterdir()) == listing and secret.read_text() == "ID=host\n"


def test_a_missing_os_release_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    (root / "usr/lib/os-release").unlink()
    with Tree(root) as t, pytest.raises(ComposeError, match="/usr/lib/os-release is missing"):
        os_release.run(job_for(tmp_path, t, "os_release: {NAME: X}\n"))
