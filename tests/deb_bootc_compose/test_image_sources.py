"""``image_sources``: the default (the manifest's sources reachable from elsewhere), explicit entries rendered
as deb822 stanzas, and entries apt elsewhere cannot reach refused with file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_compose_manifest import MINIMAL, errors, write

from deb_bootc_compose import imagesources, manifest

SOURCES = """\
name: x
version: "1"
suite: trixie
sources:
  - url: http://deb.debian.org/debian
    components: [main, contrib]
    check_valid_until: false
  - {url: "http://127.0.0.1:8080/repo", trusted: true}
  - {url: "file:///srv/local", trusted: true}
  - {url: "http://[::1]/x", trusted: true}
  - {url: "http://mirror.localhost/debian"}
  - {orchestrator: {url: "http://hub.example.org", tag: t1, key: k.asc}}
  - {url: "https://apt.example.org/debian", suite: stable, key: keys/example.asc}
"""


def test_default_is_the_reachable_sources(tmp_path: Path) -> None:
    chosen, left_out = imagesources.effective(manifest.load(write(tmp_path, SOURCES)))
    assert [(es.source.url, es.from_manifest) for es in chosen] == [
        ("http://deb.debian.org/debian", 0), ("https://apt.example.org/debian", 6)]
    assert left_out == ["http://127.0.0.1:8080/repo (a loopback address)", "file:///srv/local (a file: URL)",
                        "http://[::1]/x (a loopback address)", "http://mirror.localhost/debian (a loopback host)",
                        "http://hub.example.org/repos/t1 (an orchestrator tag (a hub's URL))"]
    debian, own = (es.source for es in chosen)
    assert imagesources.stanza(debian, "trixie", imagesources.DEBIAN_KEYRING) == (
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main contrib\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\nCheck-Valid-Until: no\n")
    assert (own.suite, own.key) == ("stable", "keys/example.asc")


def test_minimal_default(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, MINIMAL))
    assert m.image_sources is None
    assert [es.source.url for es in imagesources.effective(m)[0]] == ["http://deb.debian.org/debian"]


def test_explicit_entries(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, SOURCES + "image_sources:\n  - url: https://deb.debian.org/debian/\n"
                            "    suite: trixie-updates\n  - {url: 'https://x.example.org/d', trusted: true}\n"))
    chosen, left_out = imagesources.effective(m)
    assert left_out == [] and [es.from_manifest for es in chosen] == [None, None]
    assert imagesources.stanza(chosen[0].source, "trixie", imagesources.DEBIAN_KEYRING) == (
        "Types: deb\nURIs: https://deb.debian.org/debian\nSuites: trixie-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert "Trusted: yes\n" in imagesources.stanza(chosen[1].source, "trixie", None)
    assert imagesources.effective(manifest.load(write(tmp_path, MINIMAL + "image_sources: []\n")))[0] == []


@pytest.mark.parametrize(("entry", "key", "needle"), [
    ("{url: 'http://127.0.0.1:8080/debian'}", "image_sources.0.url", "is a loopback address: apt-get in a "
                                                                      "Containerfile or on a machine cannot reach it"),
    ("{url: 'http://localhost/debian'}", "image_sources.0.url", "is a loopback host"),
    ("{url: 'file:///srv/repo'}", "image_sources.0.url", "is a file: URL"),
    ("{url: 'ftp://x.org/debian'}", "image_sources.0.url", "must be an http:// or https:// URL"),
    ("{url: \"https://x.org/d\\nTrusted: yes\"}", "image_sources.0.url", "without spaces, quotes or control"),
    ("{url: 'https://x.org/d', suite: '../x'}", "image_sources.0.suite", "not a suite name"),
    ("{url: 'https://x.org/d', components: []}", "image_sources.0.components", "at least 1 item"),
    ("{url: 'https://x.org/d', priority: 5}", "image_sources.0.priority", "unknown key"),
    ("{orchestrator: {url: 'http://hub', tag: t}}", "image_sources.0", "url"),
])
def test_bad_entries_name_file_line_key(tmp_path: Path, entry: str, key: str, needle: str) -> None:
    problems = errors(tmp_path, MINIMAL + f"image_sources:\n  - {entry}\n")
    assert any(p.startswith(f"{tmp_path / 'm.yaml'}:9:{key}") and needle in p for p in problems), problems


class _Job:
    """What the apt-sources step uses of a PrepareJob: the tree, the manifest, the apt root, the logs."""

    def __init__(self, tmp_path: Path, m: manifest.Manifest, manifest_path: Path) -> None:
        from types import SimpleNamespace

        from deb_bootc_compose.intree import Tree

        (tmp_path / "tree/etc/apt").mkdir(parents=True)
        (tmp_path / "tree/etc/apt/sources.list").write_text("deb http://old.example.org/debian trixie main\n")
        (tmp_path / "logs").mkdir()
        self.tree, self.manifest = Tree(tmp_path / "tree"), m
        self.log_path = tmp_path / "logs/ostree-prepare.log"
        self.logged: list[str] = []
        self.vs = SimpleNamespace(arch="amd64")
        self.ctx = SimpleNamespace(target=SimpleNamespace(apt_root=lambda key: tmp_path / "apt" / key),
                                   manifest_path=manifest_path)

    def write_log(self, text: str) -> None:
        self.logged.append(text)

    def own_dir(self, rel: str) -> None:
        self.tree.mkdir(rel, parents=True, exist_ok=True)


def test_the_step_writes_the_image_sources(tmp_path: Path) -> None:
    from deb_bootc_compose.aptconfig import PrivateApt
    from deb_bootc_compose.prepare import apt_sources

    # the default: the reachable sources; a source's key is the one gather fetched into the apt root
    path = write(tmp_path, SOURCES)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/example.asc").write_bytes(b"\x99binary-key")
    m = manifest.load(path)
    job = _Job(tmp_path / "a", m, path)
    gathered = PrivateApt.keyring(job.ctx.target.apt_root(PrivateApt.key_for(m, "amd64")), 6)
    gathered.parent.mkdir(parents=True)
    gathered.write_bytes(b"gathered-key")
    apt_sources.run(job)  # type: ignore[arg-type]
    t = job.tree
    assert not t.lexists("etc/apt/sources.list")
    text = t.read_text(apt_sources.SOURCES)
    assert "URIs: http://deb.debian.org/debian\n" in text and "127.0.0.1" not in text and "hub.example" not in text
    assert "Signed-By: /etc/apt/keyrings/compose-source6.gpg\n" in text
    assert t.read_bytes("etc/apt/keyrings/compose-source6.gpg") == b"gathered-key"
    assert any("127.0.0.1:8080" in line and "left out" in line for line in job.logged)
    # explicit entries: their own key, read relative to the manifest
    path = write(tmp_path, MINIMAL + "image_sources:\n  - {url: 'https://apt.example.org/d', key: keys/example.asc}\n")
    job = _Job(tmp_path / "b", manifest.load(path), path)
    apt_sources.run(job)  # type: ignore[arg-type]
    assert "Signed-By: /etc/apt/keyrings/image-source0.gpg\n" in job.tree.read_text(apt_sources.SOURCES)
    assert job.tree.read_bytes("etc/apt/keyrings/image-source0.gpg") == b"\x99binary-key"
    # none at all
    path = write(tmp_path, MINIMAL + "image_sources: []\n")
    job = _Job(tmp_path / "c", manifest.load(path), path)
    apt_sources.run(job)  # type: ignore[arg-type]
    assert not job.tree.lexists(apt_sources.SOURCES) and job.tree.is_dir("etc/apt/sources.list.d")
