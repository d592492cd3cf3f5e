"""The deb-bootc client's source package for the orchestrator: its version carries the hash of its source
(so the hub, which builds a version once, builds each client source once), written as a new changelog
entry in a copy; made with the real dpkg-source, in a sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deb_bootc_compose import clientdeb, clientsource
from deb_bootc_compose.errors import ComposeError

SOURCE = Path(__file__).resolve().parents[2] / "packaging" / "deb-bootc"
DIGEST = "0123456789abcdef" * 4


def test_hub_version_appends_the_first_twelve_hex_digits_of_the_source_hash() -> None:
    assert clientsource.hub_version("0.1.0", DIGEST) == "0.1.0+src0123456789ab"
    assert clientsource.hub_version("1:2.0", "f" * 64) == "1:2.0+srcffffffffffff"
    for bad in ("0123", DIGEST.upper(), DIGEST + "0", "g" * 64):
        with pytest.raises(ValueError, match="not a SHA-256 source hash"):
            clientsource.hub_version("0.1.0", bad)


def test_changelog_entry() -> None:
    entry = clientsource.changelog_entry("deb-bootc", "0.1.0+src0123456789ab", distribution="unstable",
                                         maintainer="A B <a@b.org>", date="Sat, 05 Dec 2026 00:00:00 +0000",
                                         digest=DIGEST)
    lines = entry.split("\n")
    assert lines[0] == "deb-bootc (0.1.0+src0123456789ab) unstable; urgency=medium"
    assert lines[1] == "" and lines[2].startswith("  * ") and f"    {DIGEST}" in lines
    assert " -- A B <a@b.org>  Sat, 05 Dec 2026 00:00:00 +0000" in lines  # two spaces before the date
    assert entry.endswith("+0000\n\n")  # a blank line before the entry below it
    assert all(len(line) <= 80 for line in lines)


def test_binary_depends_leaves_out_substitution_variables(tmp_path: Path) -> None:
    control = tmp_path / "control"
    control.write_text("Source: deb-bootc\n\nPackage: other\nDepends: foo\n\n"
                       "Package: deb-bootc\nDepends: python3 (>= 3.11), ${misc:Depends}, ostree | ostree-x\n")
    assert clientsource.binary_depends(control) == ("python3", "ostree")
    assert clientsource.binary_depends(SOURCE / "debian" / "control") == ("python3", "ostree")
    with pytest.raises(ComposeError, match="has no binary package nope"):
        clientsource.binary_depends(control, "nope")


def _field(tree: Path, name: str) -> str:
    return subprocess.run(["dpkg-parsechangelog", "-l", str(tree / "debian" / "changelog"), "-S", name],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.integration
def test_prepare_makes_a_native_source_package_with_the_hash_version(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "client"
    shutil.copytree(SOURCE, src)
    # a changelog that is a link in the client's tree: the copy's new entry must not be written through it
    (src / "debian" / "changelog.real").write_bytes((src / "debian" / "changelog").read_bytes())
    (src / "debian" / "changelog").unlink()
    (src / "debian" / "changelog").symlink_to("changelog.real")
    before = (src / "debian" / "changelog.real").read_bytes()
    monkeypatch.setenv(clientdeb.SOURCE_ENV, str(src))
    digest = clientdeb.source_hash(src)
    base = _field(src, "Version")

    made = clientsource.prepare(tmp_path / "work")
    assert made.version == f"{base}+src{digest[:12]}" and made.source == "deb-bootc"
    assert made.ident == f"deb-bootc_{made.version}" and made.source_hash == digest and made.origin == src
    assert made.dsc == tmp_path / "work" / f"{made.ident}.dsc" and made.depends == ("python3", "ostree")
    assert (src / "debian" / "changelog.real").read_bytes() == before and clientdeb.source_hash(src) == digest
    assert not (tmp_path / "work" / "tree").exists()  # only the source package is left
    dsc = made.dsc.read_text()
    assert "Format: 3.0 (native)\n" in dsc and f"Version: {made.version}\n" in dsc
    assert subprocess.run(["dpkg", "--compare-versions", made.version, "gt", base]).returncode == 0

    out = tmp_path / "unpacked"
    subprocess.run(["dpkg-source", "-x", str(made.dsc), str(out)], check=True, capture_output=True)
    assert _field(out, "Version") == made.version and digest in _field(out, "Changes")
    assert before.decode() in (out / "debian" / "changelog").read_text()  # the history below the new entry
    assert (out / "deb_bootc" / "cli.py").read_bytes() == (SOURCE / "deb_bootc" / "cli.py").read_bytes()
    assert os.access(out / "debian" / "rules", os.X_OK)

    again = clientsource.prepare(tmp_path / "work2")  # the same source: the same version (the hub's build reused)
    assert again.version == made.version
    (src / "deb_bootc" / "cli.py").write_text((src / "deb_bootc" / "cli.py").read_text() + "\n")
    changed = clientsource.prepare(tmp_path / "work3")
    assert changed.version == f"{base}+src{clientdeb.source_hash(src)[:12]}" != made.version


@pytest.mark.integration
def test_a_client_source_that_is_not_native_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "client"
    shutil.copytree(SOURCE, src)
    (src / "debian" / "source" / "format").write_text("3.0 (quilt)\n")
    monkeypatch.setenv(clientdeb.SOURCE_ENV, str(src))
    with pytest.raises(ComposeError, match=rf"client's source {src}: debian/source/format is '3.0 \(quilt\)'; "
                                           r"the client goes through the orchestrator as a 3.0 \(native\)"):
        clientsource.prepare(tmp_path / "work")
