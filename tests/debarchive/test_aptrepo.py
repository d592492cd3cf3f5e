from __future__ import annotations

import hashlib
import lzma
import os
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from debarchive_helpers import DebMaker, build_source, gpgv
from debian.deb822 import Deb822, Release

from debarchive import aptrepo, pool
from debarchive.aptrepo import (
    PackageEntry,
    RepoError,
    SourceEntry,
    add_to_pool,
    check_relative_path,
    pool_path,
    prune_pool,
    publish,
    read_packages,
    read_sources,
    referenced_files,
    scan_deb,
    scan_dsc,
)
from debarchive.signing import SigningKey


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_deb(root: Path, deb: Path, source: str | None = None) -> PackageEntry:
    name = deb.name.split("_")[0]
    filename = pool_path(source or name, deb.name)
    add_to_pool(root, deb, filename)
    return scan_deb(root / filename, filename)


# --------------------------------------------------------------------------- names and pool


def test_pool_path_rules() -> None:
    assert pool_path("hello", "hello_2.10-3_amd64.deb") == "pool/main/h/hello/hello_2.10-3_amd64.deb"
    assert pool_path("libfoo", "libfoo1_1_amd64.deb") == "pool/main/libf/libfoo/libfoo1_1_amd64.deb"
    assert pool_path("lib", "lib_1.dsc") == "pool/main/l/lib/lib_1.dsc"
    assert pool_path("0ad", "0ad_1.dsc", component="contrib") == "pool/contrib/0/0ad/0ad_1.dsc"
    for bad_source in ("", "Hello", "../x", "a b", "x"):
        with pytest.raises(RepoError, match="invalid source package name"):
            pool_path(bad_source, "f.deb")
    with pytest.raises(RepoError, match="bare file name"):
        pool_path("hello", "sub/f.deb")
    with pytest.raises(RepoError, match="invalid component"):
        pool_path("hello", "f.deb", component="main/../x")


@pytest.mark.parametrize(
    "name",
    ["", "/etc/passwd", "../x.deb", "pool/../../x", "pool//x", "pool/./x", "a\\b", "pool/a b.deb", "pool/ä.deb",
     "pool/.hidden", "pool/x;rm", "pool/x\n.deb", "pool/-x.deb"],
)
def test_unsafe_paths_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="unsafe"):
        check_relative_path(name)
    src = tmp_path / "src.deb"
    src.write_bytes(b"x")
    root = tmp_path / "repo"
    with pytest.raises(RepoError, match="unsafe"):
        add_to_pool(root, src, name)
    assert not root.exists() or list(root.rglob("*")) == []


def test_add_to_pool_links_and_refuses_different_content(tmp_path: Path) -> None:
    src = tmp_path / "a.deb"
    src.write_bytes(b"content")
    root = tmp_path / "repo"
    dest = add_to_pool(root, src, "pool/main/a/a/a.deb")
    assert dest == root / "pool/main/a/a/a.deb" and dest.read_bytes() == b"content"
    assert dest.stat().st_ino == src.stat().st_ino  # hard link, same filesystem
    assert add_to_pool(root, src, "pool/main/a/a/a.deb") == dest  # idempotent
    copy = tmp_path / "copy.deb"
    copy.write_bytes(b"content")
    assert add_to_pool(root, copy, "pool/main/a/a/a.deb") == dest  # same content, different inode
    other = tmp_path / "b.deb"
    other.write_bytes(b"other")
    with pytest.raises(RepoError, match=r"already exists in the pool .* different content"):
        add_to_pool(root, other, "pool/main/a/a/a.deb")
    assert dest.read_bytes() == b"content"
    with pytest.raises(RepoError, match="not a readable file"):
        add_to_pool(root, tmp_path / "missing.deb", "pool/main/m/m/m.deb")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.deb"]  # no temp files left


def test_add_to_pool_never_replaces_a_file_that_appears_meanwhile(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    src = tmp_path / "a.deb"
    src.write_bytes(b"ours")
    dest = root / "pool/main/a/a/a.deb"
    real_link = os.link

    def racing_link(a: object, b: object) -> None:
        if Path(str(b)) == dest and not dest.exists():  # another writer wins the race
            dest.write_bytes(b"theirs")
        real_link(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(pool.os, "link", racing_link)
    with pytest.raises(RepoError, match="different content"):
        add_to_pool(root, src, "pool/main/a/a/a.deb")
    assert dest.read_bytes() == b"theirs"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.deb"]


def test_add_to_pool_copies_across_filesystems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    src = tmp_path / "a.deb"
    real_link = os.link

    def no_link(a: object, b: object) -> None:  # the source file lives on "another filesystem"
        if Path(str(a)) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(pool.os, "link", no_link)
    src.write_bytes(b"content")
    dest = add_to_pool(tmp_path / "repo", src, "pool/main/a/a/a.deb")
    assert dest.read_bytes() == b"content" and dest.stat().st_ino != src.stat().st_ino
    assert oct(dest.stat().st_mode & 0o777) == oct(0o644)


# --------------------------------------------------------------------------- stanzas


def test_scan_deb_stanza_matches_file(make_deb: DebMaker, tmp_path: Path) -> None:
    deb = make_deb("dak-tool", "1:2.0-1", "amd64", depends="dak-data (>= 1.0)", source="dak-src (2.0-1)")
    entry = scan_deb(deb, "pool/main/d/dak-src/" + deb.name)
    assert (entry.name, entry.version, entry.arch) == ("dak-tool", "1:2.0-1", "amd64")
    assert (entry.source, entry.source_version) == ("dak-src", "2.0-1")
    assert entry.size == deb.stat().st_size and entry.sha256 == sha256(deb)
    fields = Deb822(entry.stanza)
    assert list(fields)[:3] == ["Package", "Source", "Version"]
    assert list(fields)[-4:] == ["Filename", "Size", "MD5sum", "SHA256"]
    assert fields["Filename"] == "pool/main/d/dak-src/dak-tool_2.0-1_amd64.deb"
    assert fields["Size"] == str(deb.stat().st_size)
    assert fields["MD5sum"] == hashlib.md5(deb.read_bytes()).hexdigest()
    assert fields["SHA256"] == sha256(deb)
    assert fields["Depends"] == "dak-data (>= 1.0)"
    assert fields["Description"].startswith("made-up package dak-tool\n A package built")
    assert "\n .\n Second par." in entry.stanza
    assert entry.stanza.endswith("\n") and "\n\n" not in entry.stanza
    assert PackageEntry.from_stanza(entry.stanza) == entry

    plain = scan_deb(make_deb("dak-data", "1.0"), "pool/main/d/dak-data/dak-data_1.0_all.deb")
    assert (plain.source, plain.source_version, plain.arch) == ("dak-data", "1.0", "all")


def test_scan_deb_refuses_bad_input(tmp_path: Path, make_deb: DebMaker) -> None:
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"!<arch>\nnot really")
    with pytest.raises(RepoError, match=r"junk\.deb is not a readable \.deb"):
        scan_deb(junk, "pool/main/j/junk/junk.deb")
    with pytest.raises(RepoError, match="no such file"):
        scan_deb(tmp_path / "missing.deb", "pool/main/m/m/m.deb")
    with pytest.raises(RepoError, match="unsafe Filename"):
        scan_deb(make_deb("dak-x", "1"), "../dak-x_1_all.deb")
    with pytest.raises(RepoError, match="lacks a valid"):
        PackageEntry.from_stanza("Package: x\nVersion: 1\n")


def test_scan_dsc_stanza(tmp_path: Path) -> None:
    dsc = build_source(tmp_path, "dak-hello", "1.0")
    entry = scan_dsc(dsc, "pool/main/d/dak-hello/")
    assert (entry.name, entry.version, entry.directory) == ("dak-hello", "1.0", "pool/main/d/dak-hello")
    assert entry.files == ("dak-hello_1.0.dsc", "dak-hello_1.0.tar.xz")
    fields = Deb822(entry.stanza)
    assert next(iter(fields)) == "Package" and "Source" not in fields
    assert fields["Format"] == "3.0 (native)"
    assert fields["Build-Depends"] == "debhelper-compat (= 13)"
    sums = {line.split()[2]: line.split()[:2] for line in fields["Checksums-Sha256"].strip().splitlines()}
    md5s = {line.split()[2]: line.split()[:2] for line in fields["Files"].strip().splitlines()}
    for name in entry.files:
        data = (tmp_path / name).read_bytes()
        assert sums[name] == [hashlib.sha256(data).hexdigest(), str(len(data))]
        assert md5s[name] == [hashlib.md5(data).hexdigest(), str(len(data))]
    assert SourceEntry.from_stanza(entry.stanza) == entry
    with pytest.raises(RepoError, match="unsafe Directory"):
        scan_dsc(dsc, "../pool")
    bad = tmp_path / "bad.dsc"
    bad.write_text("Format: 1.0\n")
    with pytest.raises(RepoError, match="no Source field"):
        scan_dsc(bad, "pool/main/b/bad")
    with pytest.raises(RepoError, match="cannot read"):
        scan_dsc(tmp_path / "none.dsc", "pool/main/n/none")


# --------------------------------------------------------------------------- publishing


def release_of(root: Path, suite: str) -> Release:
    return Release((root / "dists" / suite / "Release").read_text())


def test_publish_layout_hashes_and_signatures(tmp_path: Path, make_deb: DebMaker, signing_key: SigningKey) -> None:
    root = tmp_path / "repo"
    tool = add_deb(root, make_deb("dak-tool", "1.0-1", "amd64", depends="dak-data"), source="dak")
    tool_arm = add_deb(root, make_deb("dak-tool", "1.0-1", "arm64", depends="dak-data"), source="dak")
    data = add_deb(root, make_deb("dak-data", "1.0-1", "all"), source="dak")
    dsc = build_source(tmp_path, "dak", "1.0")
    src = scan_dsc(dsc, "pool/main/d/dak")
    date = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)
    repo = publish(root, "dak-test", packages=[tool, tool_arm, data], sources=[src], arches=("amd64", "arm64"),
                   key=signing_key, label="Tests", description="debarchive tests", date=date,
                   valid_for=timedelta(days=7))
    assert (repo.packages, repo.sources, repo.fingerprint) == (3, 1, signing_key.fingerprint)
    dists = root / "dists" / "dak-test"
    assert dists.is_symlink() and not os.readlink(dists).startswith("/")
    assert dists.resolve().parent == root / "dists" / ".generations" / "dak-test"

    rel = release_of(root, "dak-test")
    assert rel["Suite"] == rel["Codename"] == "dak-test"
    assert rel["Origin"] == "deb-bootc" and rel["Label"] == "Tests" and rel["Description"] == "debarchive tests"
    assert rel["Date"] == "Sun, 22 Nov 2026 01:02:03 GMT"
    assert rel["Valid-Until"] == "Sun, 29 Nov 2026 01:02:03 GMT"
    assert rel["Acquire-By-Hash"] == "yes"
    assert rel["Architectures"] == "amd64 arm64" and rel["Components"] == "main"
    listed = {f["name"]: f for f in rel["SHA256"]}
    assert set(listed) == {
        "main/binary-amd64/Packages", "main/binary-amd64/Packages.xz",
        "main/binary-arm64/Packages", "main/binary-arm64/Packages.xz",
        "main/source/Sources", "main/source/Sources.xz",
    }
    md5 = {f["name"]: f["md5sum"] for f in rel["MD5Sum"]}
    for name, f in listed.items():
        content = (dists / name).read_bytes()
        assert f["sha256"] == hashlib.sha256(content).hexdigest() and int(f["size"]) == len(content)
        assert md5[name] == hashlib.md5(content).hexdigest()
        by_hash = dists / Path(name).parent / "by-hash"
        assert (by_hash / "SHA256" / f["sha256"]).read_bytes() == content
        assert (by_hash / "MD5Sum" / md5[name]).read_bytes() == content
        if name.endswith(".xz"):
            assert lzma.decompress(content) == (dists / name[:-3]).read_bytes()

    amd64 = (dists / "main/binary-amd64/Packages").read_text()
    arm64 = (dists / "main/binary-arm64/Packages").read_text()
    assert amd64 == data.stanza + "\n" + tool.stanza and arm64 == data.stanza + "\n" + tool_arm.stanza
    assert (dists / "main/source/Sources").read_text() == src.stanza
    for entry in (tool, data):
        assert (root / entry.filename).stat().st_size == entry.size

    assert gpgv(signing_key, tmp_path, dists / "InRelease").returncode == 0
    assert gpgv(signing_key, tmp_path, dists / "Release.gpg", dists / "Release").returncode == 0
    inrelease = (dists / "InRelease").read_text()
    assert (dists / "Release").read_text() in inrelease

    assert repo.sources_line("http://h/repos/t/", tmp_path / "k.asc") == \
        f"deb [signed-by={tmp_path / 'k.asc'}] http://h/repos/t dak-test main"
    assert repo.deb822("http://h/repos/t", "/k.asc") == (
        "Types: deb\nURIs: http://h/repos/t\nSuites: dak-test\nComponents: main\nSigned-By: /k.asc\n")
    assert [e.name for e in read_packages(root, "dak-test")] == ["dak-data", "dak-tool"]
    assert read_packages(root, "dak-test", arch="arm64")[1] == tool_arm
    assert read_sources(root, "dak-test") == [src]


def test_publish_unsigned_and_empty(tmp_path: Path) -> None:
    repo = publish(tmp_path, "empty", packages=[])
    dists = tmp_path / "dists" / "empty"
    assert (dists / "main/binary-amd64/Packages").read_bytes() == b""
    assert not (dists / "InRelease").exists() and not (dists / "Release.gpg").exists()
    assert "Valid-Until" not in release_of(tmp_path, "empty")
    assert repo.sources_line("file:///r") == "deb [trusted=yes] file:///r empty main"
    assert "Trusted: yes" in repo.deb822("file:///r")
    with pytest.raises(RepoError, match="nothing published"):
        read_packages(tmp_path, "other")


def test_publish_refuses_bad_input(tmp_path: Path, make_deb: DebMaker) -> None:
    root = tmp_path / "repo"
    a = add_deb(root, make_deb("dak-a", "1", "amd64"))
    with pytest.raises(RepoError, match="invalid suite name"):
        publish(root, "../evil", packages=[a])
    with pytest.raises(RepoError, match="invalid suite name"):
        publish(root, "a/b", packages=[a])
    with pytest.raises(RepoError, match="only has arm64"):
        publish(root, "s", packages=[a], arches=("arm64",))
    with pytest.raises(RepoError, match="not 'all'"):
        publish(root, "s", packages=[a], arches=("all",))
    twin = PackageEntry(a.name, a.version, a.arch, a.source, a.source_version, "pool/main/d/dak-a/other.deb",
                        a.size, a.sha256, a.stanza)
    with pytest.raises(RepoError, match="listed twice with different files"):
        publish(root, "s", packages=[a, twin])
    evil = PackageEntry(a.name, a.version, a.arch, a.source, a.source_version, a.filename, a.size, a.sha256,
                        a.stanza + "\nPackage: injected\nVersion: 1\n")
    with pytest.raises(RepoError, match="no blank line"):
        publish(root, "s", packages=[evil])
    with pytest.raises(RepoError, match="invalid package name"):
        publish(root, "s", packages=[PackageEntry("Bad Name", "1", "amd64", "x", "1", a.filename, 1, a.sha256,
                                                  "Package: Bad Name\n")])
    with pytest.raises(RepoError, match="no blank line"):
        publish(root, "s", packages=[], sources=[SourceEntry("x", "1", "pool/x", (), "Package: x\n\nPackage: y\n")])
    with pytest.raises(RepoError, match="timezone-aware"):
        publish(root, "s", packages=[a], date=datetime(2026, 1, 1))
    with pytest.raises(RepoError, match="must be one non-empty line"):
        publish(root, "s", packages=[a], description="two\nlines")
    assert not (root / "dists" / "s").exists()
    assert list((root / "dists" / ".generations" / "s").glob(".tmp-*")) == []
    repo = publish(root, "s", packages=[a, a])  # identical duplicates merge
    assert repo.packages == 1


def generation_dirs(root: Path, suite: str) -> list[str]:
    return sorted(p.name for p in (root / "dists" / ".generations" / suite).iterdir() if p.is_dir())


def test_crash_before_swap_keeps_old_index(tmp_path: Path, make_deb: DebMaker, monkeypatch: pytest.MonkeyPatch,
                                           signing_key: SigningKey) -> None:
    root = tmp_path / "repo"
    a = add_deb(root, make_deb("dak-a", "1", "amd64"))
    b = add_deb(root, make_deb("dak-b", "1", "amd64"))
    publish(root, "s", packages=[a], key=signing_key)
    dists = root / "dists" / "s"
    before = {p.relative_to(dists): p.read_bytes() for p in dists.rglob("*") if p.is_file()}

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("simulated crash")

    # crash after writing every file of the new generation, just before the swap
    monkeypatch.setattr(aptrepo, "swap_symlink", crash)
    with pytest.raises(KeyboardInterrupt):
        publish(root, "s", packages=[a, b], key=signing_key)
    after = {p.relative_to(dists): p.read_bytes() for p in dists.rglob("*") if p.is_file()}
    assert after == before
    assert "dak-b" not in (dists / "main/binary-amd64/Packages").read_text()
    monkeypatch.undo()

    # crash in the middle of writing (while signing): nothing partial stays visible or on disk
    def sign_crash(data: bytes) -> bytes:
        raise RuntimeError("agent died")

    monkeypatch.setattr(signing_key.__class__, "sign_release", lambda self, data: sign_crash(data))
    with pytest.raises(RuntimeError, match="agent died"):
        publish(root, "s", packages=[a, b], key=signing_key)
    monkeypatch.undo()
    assert {p.relative_to(dists): p.read_bytes() for p in dists.rglob("*") if p.is_file()} == before
    assert not [p for p in (root / "dists" / ".generations" / "s").iterdir() if p.name.startswith(".tmp-")]

    # a hard kill leaves a temporary generation behind: invisible to readers, removed by the next publish
    leftover = root / "dists" / ".generations" / "s" / ".tmp-g00000099-x"
    (leftover / "main").mkdir(parents=True)
    (leftover / "Release").write_text("partial")
    assert (dists / "Release").read_text() != "partial"
    publish(root, "s", packages=[a, b], key=signing_key)
    assert not leftover.exists()
    assert "dak-b" in (dists / "main/binary-amd64/Packages").read_text()
    assert gpgv(signing_key, tmp_path, dists / "InRelease").returncode == 0


def test_old_by_hash_files_stay_reachable_and_generations_are_pruned(tmp_path: Path, make_deb: DebMaker) -> None:
    root = tmp_path / "repo"
    debs = [add_deb(root, make_deb(f"dak-p{i}", "1", "amd64")) for i in range(5)]
    dists = root / "dists" / "s"
    releases = []
    for i in range(5):
        publish(root, "s", packages=debs[: i + 1], keep=3, keep_seconds=0)
        releases.append(release_of(root, "s"))
        assert len(generation_dirs(root, "s")) == min(i + 1, 3)
    by_hash = dists / "main/binary-amd64/by-hash/SHA256"
    for old in releases[-3:]:  # the current generation and the two kept before it
        for f in old["SHA256"]:
            if f["name"] == "main/binary-amd64/Packages.xz":
                content = (by_hash / f["sha256"]).read_bytes()
                assert hashlib.sha256(content).hexdigest() == f["sha256"]
    oldest = next(f["sha256"] for f in releases[0]["SHA256"] if f["name"] == "main/binary-amd64/Packages")
    assert not (by_hash / oldest).exists()  # pruned: by-hash does not grow without bound
    assert len(list(by_hash.iterdir())) == 6  # Packages + Packages.xz of 3 generations


def test_recent_generations_are_kept_whatever_their_number(tmp_path: Path) -> None:
    for _ in range(5):
        publish(tmp_path, "s", packages=[], keep=2)  # default keep_seconds: 10 minutes
    gens = generation_dirs(tmp_path, "s")
    assert len(gens) == 5
    for gen in gens[:3]:  # make three of them old
        directory = tmp_path / "dists" / ".generations" / "s" / gen
        os.utime(directory, (directory.stat().st_atime, directory.stat().st_mtime - 3600))
    newest = publish(tmp_path, "s", packages=[], keep=2).generation
    assert generation_dirs(tmp_path, "s") == [*gens[3:], newest]


def test_unchanged_index_reuses_compressed_file(tmp_path: Path, make_deb: DebMaker) -> None:
    root = tmp_path / "repo"
    a = add_deb(root, make_deb("dak-a", "1", "amd64"))
    publish(root, "s", packages=[a])
    first = (root / "dists/s/main/binary-amd64/Packages.xz").stat().st_ino
    publish(root, "s", packages=[a])
    assert (root / "dists/s/main/binary-amd64/Packages.xz").stat().st_ino == first


def test_adopts_plain_directory(tmp_path: Path) -> None:
    (tmp_path / "dists" / "s").mkdir(parents=True)
    (tmp_path / "dists" / "s" / "Release").write_text("old tool\n")
    publish(tmp_path, "s", packages=[])
    assert (tmp_path / "dists" / "s").is_symlink()
    assert "Acquire-By-Hash" in (tmp_path / "dists" / "s" / "Release").read_text()


def test_readers_never_see_a_mix(tmp_path: Path, make_deb: DebMaker) -> None:
    """A reader polling during many publishes always finds Packages matching the Release it read."""
    root = tmp_path / "repo"
    debs = [add_deb(root, make_deb(f"dak-r{i}", "1", "amd64")) for i in range(8)]
    publish(root, "s", packages=debs[:1])
    dists = root / "dists" / "s"
    stop = threading.Event()
    problems: list[str] = []
    checks = [0]

    def reader() -> None:
        while not stop.is_set():
            gen = dists.resolve()  # what a web server does for each request path: resolve once
            try:
                rel = Release((gen / "Release").read_text())
                want = next(f["sha256"] for f in rel["SHA256"] if f["name"] == "main/binary-amd64/Packages")
                got = hashlib.sha256((gen / "main/binary-amd64/Packages").read_bytes()).hexdigest()
                by_hash = (dists / "main/binary-amd64/by-hash/SHA256" / want).read_bytes()
            except FileNotFoundError as exc:
                problems.append(f"missing file: {exc}")
                continue
            if got != want or hashlib.sha256(by_hash).hexdigest() != want:
                problems.append(f"mismatch in {gen.name}")
            checks[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(2, 9):
            publish(root, "s", packages=debs[:i])
    finally:
        stop.set()
        t.join()
    assert problems == [] and checks[0] > 0


def test_publish_is_reproducible(tmp_path: Path, make_deb: DebMaker) -> None:
    debs = []
    root = tmp_path / "r"
    for name in ("dak-z", "dak-a", "dak-m"):
        debs.append(add_deb(root, make_deb(name, "1", "all")))
    date = datetime(2026, 1, 1, tzinfo=UTC)
    publish(root, "suite-1", packages=debs, date=date)
    publish(root, "suite-2", packages=list(reversed(debs)), date=date)
    one = (root / "dists/suite-1/Release").read_text().replace("suite-1", "X")
    two = (root / "dists/suite-2/Release").read_text().replace("suite-2", "X")
    assert one == two


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_dpkg_scanpackages_agrees(tmp_path: Path, make_deb: DebMaker, compression: str) -> None:
    """Our stanza carries the same fields and values as dpkg-scanpackages' (the reference implementation),
    whatever the .deb's compression (zstd is what Ubuntu and some tools use)."""
    root = tmp_path / "repo"
    entry = add_deb(root, make_deb("dak-ref", "2.0-1", "amd64", depends="libc6", compression=compression))
    ref = subprocess.run(["dpkg-scanpackages", "-m", "pool"], cwd=root, capture_output=True, text=True, check=True)
    theirs = Deb822(ref.stdout)
    ours = Deb822(entry.stanza)
    theirs.pop("SHA1", None)
    theirs.pop("SHA512", None)
    assert dict(ours) == dict(theirs)


def test_origin_and_label_changes_refused(tmp_path: Path) -> None:
    publish(tmp_path, "s", packages=[], origin="hub", label="Tag s")
    before = (tmp_path / "dists/s/Release").read_text()
    with pytest.raises(RepoError, match=r"refusing to change Label 'Tag s' -> 'hub'.*allow-releaseinfo-change"):
        publish(tmp_path, "s", packages=[], origin="hub")
    with pytest.raises(RepoError, match="Origin 'hub' -> 'other'"):
        publish(tmp_path, "s", packages=[], origin="other", label="Tag s")
    assert (tmp_path / "dists/s/Release").read_text() == before
    publish(tmp_path, "s", packages=[], origin="hub", label="Tag s")
    publish(tmp_path, "s", packages=[], origin="new", allow_identity_change=True)
    assert release_of(tmp_path, "s")["Label"] == "new"


def test_import_deb_and_dsc_into_pool(tmp_path: Path, make_deb: DebMaker) -> None:
    root = tmp_path / "repo"
    deb = make_deb("libdak1", "1.0-1", "amd64", source="libdak")
    entry = aptrepo.import_deb(root, deb)
    assert entry.filename == "pool/main/libd/libdak/libdak1_1.0-1_amd64.deb"
    assert (root / entry.filename).read_bytes() == deb.read_bytes()
    assert entry == scan_deb(root / entry.filename, entry.filename)
    assert aptrepo.import_deb(root, deb, component="contrib").filename.startswith("pool/contrib/libd/libdak/")

    (tmp_path / "src").mkdir()
    dsc = build_source(tmp_path / "src", "dak", "1.0")
    src = aptrepo.import_dsc(root, dsc)
    assert src.directory == "pool/main/d/dak" and src.files == ("dak_1.0.dsc", "dak_1.0.tar.xz")
    for name in src.files:
        assert (root / src.directory / name).read_bytes() == (dsc.parent / name).read_bytes()

    # a corrupt source package is refused before anything reaches the pool
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = build_source(bad_dir, "dak-bad", "1.0")
    tarball = bad_dir / "dak-bad_1.0.tar.xz"
    tarball.write_bytes(tarball.read_bytes() + b"x")
    with pytest.raises(RepoError, match=r"dak-bad_1\.0\.tar\.xz has size"):
        aptrepo.import_dsc(root, bad)
    assert not (root / "pool/main/d/dak-bad").exists()
    with pytest.raises(RepoError, match="no such file"):
        aptrepo.import_dsc(root, tmp_path / "missing.dsc")


def test_republish_in_the_same_second_gets_a_later_mtime(tmp_path: Path) -> None:
    """HTTP caches compare Last-Modified in whole seconds: each generation must be newer by at least one."""
    stamps = []
    for i in range(3):
        publish(tmp_path, "s", packages=[], description=f"publish {i}")
        stamps.append({name: int((tmp_path / "dists/s" / name).stat().st_mtime)
                       for name in ("Release", "main/binary-amd64/Packages.xz")})
    assert stamps[0]["Release"] < stamps[1]["Release"] < stamps[2]["Release"]


def test_prune_pool_keeps_what_any_kept_generation_names(tmp_path: Path, make_deb: DebMaker) -> None:
    root = tmp_path / "repo"
    v1 = add_deb(root, make_deb("dak-p", "1", "amd64"))
    v2 = add_deb(root, make_deb("dak-p", "2", "amd64"))
    (tmp_path / "src").mkdir()
    src = aptrepo.import_dsc(root, build_source(tmp_path / "src", "dak", "1.0"))
    publish(root, "s", packages=[v1], sources=[src], keep_seconds=0)
    publish(root, "s", packages=[v2], keep_seconds=0)
    assert referenced_files(root) == {v1.filename, v2.filename, *(f"{src.directory}/{f}" for f in src.files)}
    assert prune_pool(root, min_age=0) == []  # the previous generation still names v1 and the source
    stray = root / "pool/main/s/stray/stray_1_all.deb"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    assert prune_pool(root) == []  # just added: it may be for a publish still to come
    publish(root, "s", packages=[v2], keep_seconds=0)
    publish(root, "s", packages=[v2], keep_seconds=0)  # now no kept generation names v1 or the source
    removed = prune_pool(root, min_age=0)
    assert removed == sorted([v1.filename, "pool/main/s/stray/stray_1_all.deb",
                              *(f"{src.directory}/{f}" for f in src.files)])
    assert (root / v2.filename).is_file() and not (root / "pool/main/s").exists()
    assert not (root / v1.filename).exists()
