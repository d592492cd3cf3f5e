"""``install-to-disk`` and ``boot-test`` on a compose directory use exactly the commit the compose recorded in
``metadata/ostree.json``, not the head of its ref in the shared repository (which later composes move on)."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from deb_bootc_compose import metadata as md
from deb_bootc_compose.boot import cli as boot_cli
from deb_bootc_compose.boot.firmware import BootTestError
from deb_bootc_compose.disk import cli as disk_cli
from deb_bootc_compose.disk import source
from deb_bootc_compose.disk.errors import SourceError

pytestmark = pytest.mark.integration
REF = "debian-bootc/trixie/amd64/base"


def ostree(*args: str) -> str:
    return subprocess.run(["ostree", *args], check=True, capture_output=True, text=True).stdout.strip()


def commit_tree(repo: Path, tmp: Path, content: str) -> str:
    tree = tmp / f"tree-{content}"
    (tree / "usr/share").mkdir(parents=True)
    (tree / "usr/bin").mkdir()
    (tree / "usr/share/version").write_text(content)
    return ostree(f"--repo={repo}", "commit", f"--branch={REF}", f"--tree=dir={tree}", "--parent=none",
                  "--no-bindings", f"--subject={content}")


@pytest.fixture
def moved_on(tmp_path: Path) -> tuple[Path, str, str]:
    """A compose that made commit A; a later compose moved the ref to B in the shared repository."""
    target = tmp_path / "target"
    repo = target / "ostree" / "repo"
    repo.parent.mkdir(parents=True)
    ostree("init", f"--repo={repo}", "--mode=archive")
    first = commit_tree(repo, tmp_path, "v1")
    second = commit_tree(repo, tmp_path, "v2")
    assert ostree(f"--repo={repo}", "rev-parse", REF) == second
    compose = target / "debian-bootc-13-20260101.t.0"
    (compose / "compose/base/amd64/images").mkdir(parents=True)
    (compose / "STATUS").write_text("FINISHED\n")
    meta = md.ComposeMeta(compose.name, "debian-bootc", "debian-bootc", "13")
    record = md.ostree_manifest(meta, [md.OstreeMeta("base", "amd64", REF, first)])
    md.write_json(compose / "metadata/ostree.json", record)
    return compose, first, second


def test_compose_source_is_the_recorded_commit(moved_on: tuple[Path, str, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    compose, first, second = moved_on
    src = source.from_compose(compose)
    assert (src.ref, src.commit) == (REF, first)
    assert src.remote_url is None  # never the build host's repository (the image's remote, or no URL)
    # install-to-disk takes that commit all the way to staging: this tiny commit has no ostree in it
    rc = disk_cli.main([str(compose), str(tmp_path / "d.raw"), "--free-space", "8MiB"])
    err = capsys.readouterr().err
    assert rc == 1 and f"commit {first} has no /usr/bin/ostree" in err, err
    assert second not in err
    assert not (tmp_path / "d.raw").exists()
    # boot-test expects that commit to be the booted one
    (compose / "compose/base/amd64/images/x.qcow2").write_bytes(b"")
    spec = boot_cli.spec_for(boot_cli.parser().parse_args([str(compose)]))
    assert spec.expected_commit == first


def test_compose_source_errors(moved_on: tuple[Path, str, str], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    compose, first, _ = moved_on
    with pytest.raises(SourceError, match=r"no commit for base/arm64 \(it has: base/amd64\)"):
        source.from_compose(compose, "base", "arm64")
    rc = disk_cli.main([str(compose), str(tmp_path / "d.raw"), "--ref", REF])
    assert rc == 2 and "choose what to install with --variant/--arch, not --ref" in capsys.readouterr().err
    # the commit was pruned from the shared repository
    repo = compose.parent / "ostree" / "repo"
    ostree(f"--repo={repo}", "prune", "--refs-only", "--depth=0")
    assert not source.has_commit(repo, first)
    with pytest.raises(SourceError, match=f"made commit {first} .*no longer holds it"):
        source.from_compose(compose)
    # a compose that never wrote its metadata
    (compose / "metadata/ostree.json").unlink()
    rc = disk_cli.main([str(compose), str(tmp_path / "d.raw")])
    err = capsys.readouterr().err
    assert rc == 2 and "records no OSTree commit" in err and "ostree:REPO:REF" in err
    (compose / "compose/base/amd64/images/x.qcow2").write_bytes(b"")
    with pytest.raises(BootTestError, match=r"records no OSTree commit.*--expect-commit"):
        boot_cli.spec_for(argparse.Namespace(target=compose, variant="base", arch="amd64", expect_commit=None,
                                             commands=None, timeout=None, log_dir=None))
    assert list(tmp_path.glob("d.raw*")) == []


def _with_host_tools(tree: Path) -> None:
    """Give ``tree`` a working /bin/sh and mknod: the host's dash and mknod with the libraries they load."""
    (tree / "usr/lib").mkdir(parents=True, exist_ok=True)
    (tree / "usr/lib64").mkdir(exist_ok=True)
    for name in ("bin", "lib", "lib64"):
        (tree / name).symlink_to(f"usr/{name}")
    for binary, name in (("/usr/bin/dash", "sh"), ("/usr/bin/mknod", "mknod")):
        subprocess.run(["cp", "-L", binary, str(tree / "usr/bin" / name)], check=True)
        libs = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
        for line in libs.splitlines():
            path = line.split("=>")[-1].split("(")[0].strip()
            if path.startswith("/"):
                rel = Path(path.lstrip("/"))
                dest = tree / (rel if rel.parts[0] == "usr" else Path("usr") / rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["cp", "-L", path, str(dest)], check=True)


def test_the_images_own_ostree_cannot_mknod_or_write_host_paths(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """install-to-disk runs the IMAGE's ostree (package code). A hostile one makes a node of the disk that
    holds this test's directory in the staging sysroot and writes a marker to a host path: in the staging
    user namespace mknod fails, the install fails naming the tool, and the host path stays empty. (Under the
    old bubblewrap, run as real root with CAP_MKNOD kept, mknod succeeded.)"""
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    dev = host_dir.stat().st_dev
    major, minor = (os.major(dev), os.minor(dev)) if os.major(dev) else (7, 0)
    tree = tmp_path / "hostile"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/etc").mkdir()
    (tree / "usr/lib/modules/6.1.0-hostile").mkdir(parents=True)
    (tree / "usr/lib/modules/6.1.0-hostile/vmlinuz").write_text("not a kernel")
    _with_host_tools(tree)
    hostile = tree / "usr/bin/ostree"
    hostile.write_text(
        "#!/bin/sh\n"
        f"echo direct > {host_dir}/direct-marker\n"
        f"mknod /target/hostdisk b {major} {minor} || {{ echo MKNOD-REFUSED; exit 1; }}\n"
        "echo MKNOD-SUCCEEDED\n"
    )
    hostile.chmod(0o755)
    repo = tmp_path / "repo"
    ostree("init", f"--repo={repo}", "--mode=archive")
    commit = ostree(f"--repo={repo}", "commit", f"--branch={REF}", f"--tree=dir={tree}", "--no-bindings")
    log = tmp_path / "install.log"
    rc = disk_cli.main([f"ostree:{repo}:{REF}", str(tmp_path / "d.raw"), "--free-space", "8MiB", "--log", str(log)])
    err = capsys.readouterr().err
    text = log.read_text()
    assert rc != 0, err
    assert "MKNOD-REFUSED" in text and "MKNOD-SUCCEEDED" not in text, text[-2000:]
    assert "Operation not permitted" in text
    assert sorted(p.name for p in host_dir.iterdir()) == []
    assert not (tmp_path / "d.raw").exists()
    assert commit
