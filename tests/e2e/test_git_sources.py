"""Git sources in build.sources: the schema (file:line:key errors), the source package made from a real git
repository served over HTTP (3.0 (native) and 3.0 (quilt) with the upstream tarball from upstream/<version>),
and the clear errors (missing ref, no debian/, unreachable URL, quilt without its upstream tag)."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from git_repos import git, native_repo, no_debian_repo, quilt_repo

from deb_bootc_compose import gitsource
from deb_bootc_compose.manifest import GitBuildSource, ManifestError, load
from debarchive.dsc import parse_dsc
from httpserve import serve_directory


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("git-served")
    native_repo(root, "gs-native", "1.2")
    quilt_repo(root, "gs-quilt", "2.0~rc1", "3")
    no_debian_repo(root, "gs-upstream")
    bare = quilt_repo(root, "gs-notag", "4.0")
    git(bare, "tag", "-d", "upstream/4.0")
    git(bare, "update-server-info")
    with serve_directory(root) as url:
        yield url, root


def test_manifest_takes_git_entries_and_names_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    head = "name: x\nversion: '1'\nsuite: trixie\nsources:\n  - url: http://deb.debian.org/debian\nbuild:\n" \
           "  target: trixie\n  sources:\n"
    path.write_text(head + "    - pkg_1.0.dsc\n"
                           "    - {git: 'https://salsa.debian.org/debian/hello.git', ref: debian/2.10-3}\n")
    m = load(path)
    assert m.build is not None
    assert m.build.sources == ["pkg_1.0.dsc", GitBuildSource(git="https://salsa.debian.org/debian/hello.git",
                                                             ref="debian/2.10-3")]
    path.write_text(head + "    - git: not-a-url\n      ref: main\n    - {git: 'https://h/r.git'}\n"
                           "    - {git: 'https://h/r.git', ref: '--upload-pack=x'}\n    - 42\n"
                           "    - {git: 'https://h/r.git', ref: main, branch: main}\n")
    with pytest.raises(ManifestError) as err:
        load(path)
    assert err.value.problems == [
        f"{path}:9:build.sources.0.git: 'not-a-url' is not a git URL; use http(s)://, git://, ssh:// or file:// "
        "(e.g. https://salsa.debian.org/debian/hello.git)",
        f"{path}:11:build.sources.1.ref: required key is missing",
        f"{path}:12:build.sources.2.ref: '--upload-pack=x' is not a git branch, tag or commit ID",
        f"{path}:13:build.sources.3: each entry is a .dsc URL or path, or a mapping {{git: URL, ref: REF}}",
        f"{path}:14:build.sources.4.branch: unknown key (check the spelling; see docs/compose.md for the schema)",
    ]


def test_native_source_from_a_branch_and_a_tag(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    head = git(root / "gs-native.git", "rev-parse", "main")
    for ref in ("main", "debian/1.2", head[:10]):
        made = gitsource.prepare(f"{url}/gs-native.git", ref, tmp_path / ref.replace("/", "_"))
        assert (made.ident, made.format, made.commit) == ("gs-native_1.2", "3.0 (native)", head)
        pkg = parse_dsc(made.dsc)
        assert [f.name for f in pkg.files] == ["gs-native_1.2.tar.xz"]
    out = tmp_path / "x"
    subprocess.run(["dpkg-source", "-x", str(made.dsc), str(out)], check=True, capture_output=True)
    assert (out / "greet").read_text() == '#!/bin/sh\necho "hello from gs-native"\n'
    assert not (out / ".git").exists()


def test_quilt_source_with_upstream_tarball_from_the_gbp_tag(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    made = gitsource.prepare(f"{url}/gs-quilt.git", "main", tmp_path / "w")
    assert (made.ident, made.format) == ("gs-quilt_2.0~rc1-3", "3.0 (quilt)")
    assert made.commit == git(root / "gs-quilt.git", "rev-parse", "main")
    names = sorted(f.name for f in parse_dsc(made.dsc).files)
    assert names == ["gs-quilt_2.0~rc1-3.debian.tar.xz", "gs-quilt_2.0~rc1.orig.tar.gz"]
    with tarfile.open(made.dsc.parent / "gs-quilt_2.0~rc1.orig.tar.gz") as orig:  # upstream/2.0_rc1, no debian/
        assert sorted(orig.getnames()) == ["gs-quilt-2.0~rc1", "gs-quilt-2.0~rc1/README", "gs-quilt-2.0~rc1/greet"]
    out = tmp_path / "x"
    subprocess.run(["dpkg-source", "-x", str(made.dsc), str(out)], check=True, capture_output=True)
    assert (out / "greet").read_text() == '#!/bin/sh\necho "hello from gs-quilt, patched"\n'  # patch applied
    # the same commit gives the same bytes (a second compose finds the same build, never a different .dsc)
    again = gitsource.prepare(f"{url}/gs-quilt.git", "main", tmp_path / "w2")
    assert again.dsc.read_bytes() == made.dsc.read_bytes()


@pytest.mark.parametrize(("repo", "ref", "expected"), [
    ("gs-native.git", "no-such-branch",
     r"the repository has no branch, tag or commit 'no-such-branch' \(it has: .*debian/1\.2.*\); fix the ref"),
    ("gs-upstream.git", "main", r"commit [0-9a-f]{12} has no debian/ directory at the top of the repository"),
    ("missing.git", "main", r"cannot clone it: .*not found; check the URL"),
    ("gs-notag.git", "main", r"3\.0 \(quilt\) needs the upstream tarball of 4\.0, made from the tag 'upstream/4\.0' "
                             r"\(git-buildpackage's convention\), which the repository lacks"),
])
def test_clear_errors(served: tuple[str, Path], tmp_path: Path, repo: str, ref: str, expected: str) -> None:
    url, _ = served
    with pytest.raises(gitsource.GitSourceError, match=rf"^m.yaml:build.sources.0: git source {url}/{repo} "
                                                       rf"\(ref {ref}\): {expected}"):
        gitsource.prepare(f"{url}/{repo}", ref, tmp_path / "w", where="m.yaml:build.sources.0")


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(gitsource.GitSourceError, match=r"cannot clone it: .*(Failed to connect|Could not resolve).*"
                                                       r"reachable from this machine"):
        gitsource.prepare("http://127.0.0.1:9/pkg.git", "main", tmp_path / "w")


def test_gbp_tag_names() -> None:
    assert gitsource.gbp_upstream_tag("1:2.0~rc1") == "upstream/1%2.0_rc1"
    assert gitsource.upstream_version("1:2.10-3") == "2.10"
    assert gitsource.upstream_version("1.0-1+deb13u1") == "1.0"
