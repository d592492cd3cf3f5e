"""Real apt (trixie with sqv, bookworm with gpgv) against repositories written by debarchive.

A signed repository with two made-up binary packages (one arch:any that Depends on one arch:all) and a
source package made with ``dpkg-source -b`` is served over HTTP on 127.0.0.1; clean chroots add it with
``signed-by=`` and install from it. Tampered indices and bad signatures must make apt refuse.
"""

from __future__ import annotations

import lzma
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from apt_chroot import AptChroot, Served
from debarchive_helpers import build_deb, build_source

from debarchive.aptrepo import (
    PackageEntry,
    PublishedRepo,
    SourceEntry,
    add_to_pool,
    pool_path,
    publish,
    scan_deb,
    scan_dsc,
)
from debarchive.signing import SigningKey

pytestmark = pytest.mark.integration


@dataclass
class RepoFixture:
    root: Path
    repo: PublishedRepo
    key: SigningKey
    packages: list[PackageEntry]
    sources: list[SourceEntry]
    url: str


def _make_repo(work: Path, root: Path, key: SigningKey, url: str, version: str = "1.0") -> RepoFixture:
    work.mkdir(parents=True, exist_ok=True)
    entries = []
    for deb in (
        build_deb(work, "dak-tool", f"{version}-1", "amd64", depends=f"dak-data (= {version}-1)", source="dak",
                  payload=f"tool {version}\n"),
        build_deb(work, "dak-data", f"{version}-1", "all", source="dak", payload=f"data {version}\n"),
    ):
        filename = pool_path("dak", deb.name)
        add_to_pool(root, deb, filename)
        entries.append(scan_deb(root / filename, filename))
    dsc = build_source(work, "dak", version)
    src_dir = "pool/main/d/dak"
    for name in (dsc.name, f"dak_{version}.tar.xz"):
        add_to_pool(root, work / name, f"{src_dir}/{name}")
    sources = [scan_dsc(root / src_dir / dsc.name, src_dir)]
    repo = publish(root, "dak-test", packages=entries, sources=sources, key=key, label="debarchive tests")
    return RepoFixture(root, repo, key, entries, sources, url)


@pytest.fixture(scope="session")
def signed_repo(http_root: Served, signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> RepoFixture:
    root = http_root.root / "good"
    return _make_repo(tmp_path_factory.mktemp("good-build"), root, signing_key, f"{http_root.url}/good")


def add_repo(chroot: AptChroot, fx: RepoFixture, *, url: str | None = None, source: bool = False,
             deb822: bool = False, key: SigningKey | None = None) -> None:
    chroot.reset_sources()
    keyring = Path("/etc/apt/keyrings/dak-test.asc")
    (chroot.root / keyring.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
    (key or fx.key).export_public(chroot.root / keyring.relative_to("/"))
    sources_d = chroot.root / "etc/apt/sources.list.d"
    if deb822:
        (sources_d / "dak-test.sources").write_text(fx.repo.deb822(url or fx.url, keyring, source=source))
    else:
        lines = [fx.repo.sources_line(url or fx.url, keyring)]
        if source:
            lines.append(fx.repo.sources_line(url or fx.url, keyring, source=True))
        (sources_d / "dak-test.list").write_text("\n".join(lines) + "\n")


def apt_update(chroot: AptChroot, binds: dict[str, str] | None = None) -> tuple[int, str]:
    result = chroot.run("apt-get", "update", binds=binds)
    return result.returncode, result.stdout + result.stderr


def test_install_from_signed_repo(chroot: AptChroot, signed_repo: RepoFixture, tmp_path: Path) -> None:
    add_repo(chroot, signed_repo, source=True, deb822=chroot.suite == "bookworm")
    code, out = apt_update(chroot)
    assert code == 0, out
    assert "W:" not in out and "E:" not in out, out
    verifier = "sqv" if chroot.suite == "trixie" else "gpgv"
    # trixie's apt verifies with Sequoia's sqv (stricter than gpgv), bookworm's with gpgv: prove that this
    # verifier is the one that accepted our signature by making it fail
    chroot.reset_sources()
    add_repo(chroot, signed_repo, source=True, deb822=chroot.suite == "bookworm")
    code, broken = apt_update(chroot, binds={str(chroot.root / "usr/bin/false"): f"/usr/bin/{verifier}"})
    assert code != 0 and "not signed" in broken, broken
    code, out = apt_update(chroot)
    assert code == 0 and "W:" not in out, out
    if verifier == "sqv":  # and sqv accepts both signature forms on its own
        dists = "/srv/dists"
        binds = {str(signed_repo.root / "dists" / "dak-test"): dists}
        keyring = "/etc/apt/keyrings/dak-test.asc"
        chroot.run("sqv", f"--keyring={keyring}", "--output=/tmp/out", "--cleartext", f"{dists}/InRelease",
                   binds=binds, check=True)
        chroot.run("sqv", f"--keyring={keyring}", f"--signature-file={dists}/Release.gpg", f"{dists}/Release",
                   binds=binds, check=True)
        # the RSA alternative (for very old clients) passes sqv's policy too
        rsa = SigningKey.ensure(tmp_path / "rsa", algorithm="rsa3072")
        (tmp_path / "signed" / "InRelease").parent.mkdir()
        (tmp_path / "signed" / "InRelease").write_bytes(rsa.clearsign(b"Origin: x\n"))
        rsa.export_public(tmp_path / "signed" / "rsa.asc")
        chroot.run("sqv", "--keyring=/srv/signed/rsa.asc", "--output=/tmp/out", "--cleartext", "/srv/signed/InRelease",
                   binds={str(tmp_path / "signed"): "/srv/signed"}, check=True)
    install = chroot.run("apt-get", "install", "-y", "--no-install-recommends", "dak-tool")
    assert install.returncode == 0, install.stdout + install.stderr
    status = chroot.run("dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n", "dak-tool", "dak-data",
                        check=True)
    assert status.stdout.splitlines() == [
        "dak-data 1.0-1 install ok installed",
        "dak-tool 1.0-1 install ok installed",
    ]
    assert (chroot.root / "usr/share/dak-data/README").read_text() == "data 1.0\n"
    # the Sources index works too: apt-get source verifies every file against it
    src = chroot.run("sh", "-c", "cd /tmp && apt-get source --download-only dak && ls")
    assert src.returncode == 0, src.stdout + src.stderr
    assert "dak_1.0.dsc" in src.stdout and "dak_1.0.tar.xz" in src.stdout
    chroot.run("apt-get", "purge", "-y", "dak-tool", "dak-data", check=True)


def test_upgrade_after_republish(chroot: AptChroot, signing_key: SigningKey, http_root: Served,
                                 tmp_path: Path) -> None:
    """The incremental path a tag repository takes: publish, install, publish a newer build, upgrade."""
    root = http_root.root / f"upgrade-{chroot.suite}"
    fx = _make_repo(tmp_path / "v1", root, signing_key, f"{http_root.url}/{root.name}", "1.0")
    add_repo(chroot, fx)
    code, out = apt_update(chroot)
    assert code == 0, out
    chroot.run("apt-get", "install", "-y", "dak-tool", check=True)
    fx2 = _make_repo(tmp_path / "v2", root, signing_key, fx.url, "2.0")  # both versions' files in the pool
    # Origin and Label must stay the same from one publish to the next: apt refuses a repository whose
    # Label changes ("changed its 'Label' value") unless the user confirms it
    publish(root, "dak-test", packages=[*fx.packages, *fx2.packages], sources=[*fx.sources, *fx2.sources],
            key=signing_key, label="debarchive tests")
    code, out = apt_update(chroot)
    assert code == 0 and "W:" not in out, out
    chroot.run("apt-get", "install", "-y", "--only-upgrade", "dak-tool", "dak-data", check=True)
    status = chroot.run("dpkg-query", "-W", "-f", "${Package} ${Version}\n", "dak-tool", "dak-data", check=True)
    assert status.stdout.splitlines() == ["dak-data 2.0-1", "dak-tool 2.0-1"]
    chroot.run("apt-get", "purge", "-y", "dak-tool", "dak-data", check=True)


def test_republish_between_inrelease_and_indices(chroot: AptChroot, signing_key: SigningKey, http_root: Served,
                                                 tmp_path: Path) -> None:
    """The race by-hash exists for: apt has read InRelease, then the repository is republished before apt
    fetches the indices that InRelease names. apt must still get exactly those (by hash) and succeed."""
    root = http_root.root / f"race-{chroot.suite}"
    fx = _make_repo(tmp_path / "v1", root, signing_key, f"{http_root.url}/{root.name}", "1.0")
    fx2 = _make_repo(tmp_path / "v2", root, signing_key, fx.url, "2.0")
    publish(root, "dak-test", packages=fx.packages, sources=fx.sources, key=signing_key, label="debarchive tests")
    old_generation = (root / "dists" / "dak-test").resolve()
    swapped = []

    def republish() -> None:
        publish(root, "dak-test", packages=fx2.packages, sources=fx2.sources, key=signing_key,
                label="debarchive tests")
        swapped.append((root / "dists" / "dak-test").resolve())

    http_root.hooks[f"/{root.name}/dists/dak-test/InRelease"] = republish
    add_repo(chroot, fx)
    del http_root.requests[:]
    code, out = apt_update(chroot)
    assert swapped and swapped[0] != old_generation, "the hook did not republish"
    assert code == 0 and "W:" not in out, out
    fetched = [r for r in http_root.requests if r.startswith(f"/{root.name}/") and "InRelease" not in r]
    assert fetched and all("/by-hash/SHA256/" in r for r in fetched), http_root.requests
    # apt holds the index of the generation whose InRelease it read: version 1.0
    policy = chroot.run("apt-cache", "policy", "dak-tool", check=True).stdout
    assert "Candidate: 1.0-1" in policy, policy
    code, out = apt_update(chroot)
    assert code == 0, out
    policy = chroot.run("apt-cache", "policy", "dak-tool", check=True).stdout
    assert "Candidate: 2.0-1" in policy, policy


def _copy_repo(fx: RepoFixture, dest: Path) -> Path:
    shutil.copytree(fx.root, dest, symlinks=True)
    return dest / "dists" / "dak-test"


def test_tampered_packages_refused(chroot: AptChroot, signed_repo: RepoFixture, http_root: Served) -> None:
    name = f"tampered-{chroot.suite}"
    dists = _copy_repo(signed_repo, http_root.root / name)
    # an attacker (or a broken mirror) swaps in a Packages index the signed Release does not vouch for,
    # under every name apt may fetch it by
    binary = dists / "main/binary-amd64"
    text = (binary / "Packages").read_text().replace("Depends: dak-data (= 1.0-1)", "Depends: dak-data")
    assert "Depends: dak-data\n" in text
    for path in [binary / "Packages", binary / "Packages.xz", *binary.glob("by-hash/*/*")]:
        xz = path.read_bytes()[:6] == b"\xfd7zXZ\x00"
        path.unlink()
        path.write_bytes(lzma.compress(text.encode(), format=lzma.FORMAT_XZ) if xz else text.encode())
    add_repo(chroot, signed_repo, url=f"{http_root.url}/{name}")
    code, out = apt_update(chroot)
    assert code != 0, out
    assert "Hash Sum mismatch" in out or "unexpected size" in out, out
    assert chroot.run("apt-cache", "policy", "dak-tool").stdout.strip() == "", "tampered index was accepted"


def test_bad_signature_refused(chroot: AptChroot, signed_repo: RepoFixture, http_root: Served) -> None:
    name = f"badsig-{chroot.suite}"
    dists = _copy_repo(signed_repo, http_root.root / name)
    for release in ("InRelease", "Release"):
        path = dists / release
        content = path.read_text().replace("Label: debarchive tests", "Label: debarchive t3sts")
        path.unlink()
        path.write_text(content)
    add_repo(chroot, signed_repo, url=f"{http_root.url}/{name}")
    code, out = apt_update(chroot)
    assert code != 0, out
    assert "not signed" in out or "signature" in out.lower(), out
    assert chroot.run("apt-cache", "policy", "dak-tool").stdout.strip() == ""


def test_wrong_key_refused(chroot: AptChroot, signed_repo: RepoFixture, tmp_path: Path) -> None:
    other = SigningKey.ensure(tmp_path / "other-key")
    add_repo(chroot, signed_repo, key=other)
    code, out = apt_update(chroot)
    assert code != 0, out
    assert "not signed" in out or "NO_PUBKEY" in out or "Missing key" in out, out
