"""A real compose of examples/minimal.yaml (trixie), checked from every side; plus recomposes and faults."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from compose_helpers import EXAMPLES, SessionCompose, expected_status, run_cli

from deb_bootc_compose import lint, lockfile, pool, treeops
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.manifest import load as load_manifest
from deb_bootc_compose.paths import TargetPaths
from deb_bootc_compose.phases.base import ComposeContext, VariantState
from deb_bootc_compose.phases.order import NAMES
from deb_bootc_compose.phases.ostree_prepare import OstreePreparePhase
from deb_bootc_compose.prepare import PrepareJob, files, postprocess, prepare_tree, toplevel, users
from deb_bootc_compose.prepare import autovar as autovar_step
from debarchive.digest import sha256_file

pytestmark = pytest.mark.integration
REF = "debian-bootc/trixie/amd64/base"


def ostree(repo: Path, *args: str) -> str:
    return subprocess.run(["ostree", f"--repo={repo}", *args], check=True, capture_output=True, text=True).stdout


def commit_objects(repo: Path) -> set[str]:
    return {p.parent.name + p.stem for p in (repo / "objects").glob("*/*.commit")}


def write_manifest(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    data.update(changes)
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ---- the session compose ----
def test_cli_prints_compose_dir_last_and_status(minimal_compose: SessionCompose) -> None:
    c = minimal_compose
    assert c.topdir.parent == c.target
    assert re.fullmatch(r"debian-bootc-13-\d{8}\.t\.0", c.topdir.name)
    assert (c.topdir / "STATUS").read_text().strip() == expected_status()
    assert c.run.returncode == (0 if expected_status() == "FINISHED" else 3)
    for phase in ("init", "gather", "rootfs", "ostree_prepare", "ostree_commit"):
        assert (c.topdir / "logs" / f"{phase}.log").is_file(), phase
    assert (c.topdir / "logs" / "global.log").is_file()
    assert "ostree-commit: done" in c.run.stderr
    if expected_status() == "FINISHED":
        # latest-* names the newest FINISHED compose: this one, or a no-op recompose of it that another test
        # (the benchmark) made in this target since
        latest = c.target / os.readlink(c.target / "latest-debian-bootc-13")
        assert (latest / "STATUS").read_text().strip() == "FINISHED"
        assert (latest / "metadata/lockfile.yaml").read_bytes() == (c.topdir / "metadata/lockfile.yaml").read_bytes()
        # the FINISHED compose's layer plan is where the next compose in this target starts from
        kept = c.target / ".state/oci-plans/debian-bootc-base.amd64.json"
        assert kept.read_bytes() == (c.topdir / "compose/base/amd64/oci/layer-plan.json").read_bytes()


def test_tree_passes_lint(minimal_compose: SessionCompose) -> None:
    assert lint.check(minimal_compose.tree) == []


def test_tree_layout_rules(minimal_compose: SessionCompose) -> None:
    t = minimal_compose.tree
    kdirs = list((t / "usr/lib/modules").iterdir())
    assert len(kdirs) == 1
    kver = kdirs[0].name
    assert (kdirs[0] / "vmlinuz").stat().st_size > 5_000_000
    assert (kdirs[0] / "initramfs.img").stat().st_size > 5_000_000
    assert list((t / "boot").iterdir()) == []
    assert not list(t.glob("vmlinuz*")) and not list(t.glob("initrd.img*"))
    assert (t / "etc/machine-id").read_text() == ""
    assert not list((t / "etc/ssh").glob("ssh_host_*"))
    assert (t / "usr/lib/systemd/system/deb-bootc-ssh-keygen.service").is_file()
    root = next(line for line in (t / "etc/shadow").read_text().splitlines() if line.startswith("root:"))
    assert root.split(":")[1].startswith("!")
    assert (t / "etc/locale.conf").read_text() == "LANG=C.UTF-8\n"
    # Debian's template, with the 1 s menu of the disk image's own grub.cfg (ostree regenerates it from this)
    grub = (t / "etc/default/grub").read_text()
    template = (t / "usr/share/grub/default/grub").read_text()
    assert "GRUB_TIMEOUT=5" in template and grub == template.replace("GRUB_TIMEOUT=5", "GRUB_TIMEOUT=1")
    assert (t / "usr/lib/ostree/prepare-root.conf").read_text().count("readonly = true") == 1
    assert os.readlink(t / "var/lib/dpkg") == "../../usr/lib/sysimage/dpkg"
    assert sorted(p.name for p in (t / "var").iterdir()) == ["cache", "lib", "log"]
    assert not list((t / "var/log").iterdir())  # empty: apt in a Containerfile RUN needs it
    assert os.readlink(t / "var/cache/debconf") == "../../usr/lib/sysimage/debconf"  # debconf in a Containerfile RUN
    autovar = (t / "usr/lib/tmpfiles.d/deb-bootc-autovar.conf").read_text()
    assert "L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg" in autovar
    assert "d /var/tmp 1777 0 0 - -" in autovar
    assert "d /var/roothome 0700 0 0 - -" in autovar
    assert (t / "usr/lib/sysimage/debconf/config.dat").is_file()
    assert not (t / "etc/hostname").exists()
    sources = (t / "etc/apt/sources.list.d/compose.sources").read_text()
    assert "URIs: http://deb.debian.org/debian" in sources and "Suites: trixie" in sources
    assert not (t / "etc/apt/sources.list").exists()
    assert not (t / "etc/dpkg/dpkg.cfg.d/99mmdebstrap").exists()
    # the local repository's mount point (its host path) left nothing in the tree, so the commit does not
    # depend on where the target directory is
    work = str(minimal_compose.topdir / "work")
    assert work not in autovar and not (t / work.lstrip("/")).exists()
    assert kver.endswith("-amd64")


def test_initramfs_has_the_ostree_module(minimal_compose: SessionCompose) -> None:
    t = minimal_compose.tree
    kver = next((t / "usr/lib/modules").iterdir()).name
    listing = treeops.in_tree(t, ["lsinitrd", f"/usr/lib/modules/{kver}/initramfs.img"], capture=True).output
    assert "ostree-prepare-root" in listing
    assert "usr/lib/ostree/prepare-root.conf" in listing
    assert "ostree" in re.findall(r"^(\S+)$", listing.split("dracut modules:")[1].split("=====")[0], re.M)


def test_dpkg_database_works_in_both_places(minimal_compose: SessionCompose) -> None:
    t = minimal_compose.tree
    for argv in (["dpkg", f"--admindir={t}/usr/lib/sysimage/dpkg", "-l"], ["dpkg", f"--root={t}", "-l"]):
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        installed = {line.split()[1].split(":")[0] for line in out.splitlines() if line.startswith("ii ")}
        assert {"hello", "systemd", "openssh-server", "ostree", "ostree-boot", "dracut", "grub2-common"} <= installed
        assert len(installed) > 150


def test_commit_in_shared_archive_repo(minimal_compose: SessionCompose) -> None:
    repo = minimal_compose.target / "ostree" / "repo"
    config = (repo / "config").read_text().replace(" ", "")
    assert "mode=archive" in config and "zlib-level=1" in config
    lock = lockfile.load(minimal_compose.topdir / "metadata" / "lockfile.yaml")
    commit = ostree(repo, "rev-parse", REF).strip()
    assert len(commit) == 64
    subprocess.run(["ostree", f"--repo={repo}", "fsck"], check=True, capture_output=True)
    shown = ostree(repo, "show", REF)
    assert "Version: 13" in shown
    assert "debian-bootc 13 (base/amd64)" in shown
    assert "Parent:" not in shown
    ts = ostree(repo, "show", "--print-metadata-key=version", REF).strip()
    assert ts == "'13'"
    meta_binding = subprocess.run(
        ["ostree", f"--repo={repo}", "show", "--print-metadata-key=ostree.ref-binding", REF], capture_output=True
    )
    assert meta_binding.returncode != 0  # --no-bindings
    # the commit timestamp is SOURCE_DATE_EPOCH from the lockfile, not today
    log = ostree(repo, "log", REF)
    date = re.search(r"Date:\s+(\S+ \S+)", log)
    assert date is not None
    sde_day = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(lock.source_date_epoch))
    assert date.group(1) == sde_day
    # /etc is /usr/etc in the commit
    ls = ostree(repo, "ls", REF, "/usr/etc/os-release")
    assert "/usr/etc/os-release" in ls
    assert subprocess.run(["ostree", f"--repo={repo}", "ls", REF, "/etc"], capture_output=True).returncode != 0


def test_lockfile_content(minimal_compose: SessionCompose) -> None:
    target = TargetPaths(minimal_compose.target)
    lock = lockfile.load(minimal_compose.topdir / "metadata" / "lockfile.yaml")
    assert (lock.name, lock.version, lock.suite) == ("debian-bootc", "13", "trixie")
    lv = lock.variant("base", "amd64")
    assert lv.requested == ["systemd", "systemd-sysv", "linux-image-amd64", "openssh-server", "iputils-arping", "hello"]
    added = {a.name for a in lv.added}
    assert added == {"ostree", "ostree-boot", "dracut", "grub2-common", "grub-efi-amd64-bin"}
    assert all(a.reason for a in lv.added)
    names = {p.name: p for p in lv.packages}
    assert {"hello", "systemd", "libc6", "ostree", "dracut", "base-files"} <= set(names)
    assert names["hello"].source == "hello"
    assert names["libc6"].source == "glibc"
    for p in lv.packages:
        assert p.url.startswith("http://deb.debian.org/debian/pool/main/")
        assert p.repo == "http://deb.debian.org/debian"
        assert target.pool_deb(p.sha256).is_file()
    for p in lv.packages[:5]:
        assert sha256_file(target.pool_deb(p.sha256)) == p.sha256
    # SOURCE_DATE_EPOCH: the newest package build time, derived from the inputs, not today
    newest = max(pool.deb_timestamp(target.pool_deb(p.sha256)) for p in lv.packages)
    assert lock.source_date_epoch == newest
    assert lock.source_date_epoch < time.time() - 3600


def test_lockfile_recompose_same_commit_from_pool(
    minimal_compose: SessionCompose, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fresh target, the lockfile's URLs made unreachable: the pool alone gives the same commit."""
    src_lock = minimal_compose.topdir / "metadata" / "lockfile.yaml"
    data = yaml.safe_load(src_lock.read_text())
    for arches in data["variants"].values():
        for lv in arches.values():
            for p in lv["packages"]:
                p["url"] = p["url"].replace("http://deb.debian.org/", "http://127.0.0.1:9/")
    target = tmp_path_factory.mktemp("lockfile-target")
    lock_path = target.parent / f"{target.name}-lock.yaml"
    lock_path.write_text(yaml.safe_dump(data))
    shutil.copytree(minimal_compose.target / "pool", target / "pool", copy_function=os.link)
    run = run_cli(["--config", str(minimal_compose.manifest), "--target-dir", str(target),
                   "--lockfile", str(lock_path)])
    assert run.returncode in (0, 3), run.stderr[-3000:]
    topdir = Path(run.last_line)
    assert "nothing resolved" in (topdir / "logs" / "gather.log").read_text()
    a = ostree(minimal_compose.target / "ostree/repo", "rev-parse", REF).strip()
    b = ostree(target / "ostree/repo", "rev-parse", REF).strip()
    assert a == b
    assert lockfile.load(topdir / "metadata/lockfile.yaml").variants == lockfile.load(lock_path).variants
    # and the same OCI manifest digest
    digests = []
    for top in (minimal_compose.topdir, topdir):
        (index,) = (top / "compose/base/amd64/oci").glob("*/index.json")
        digests.append([m["digest"] for m in json.loads(index.read_text())["manifests"]])
    assert digests[0] == digests[1] and digests[0]
    # and the same SBOM but where each .deb came from (the lockfile's URLs were changed) and so its namespace
    sboms = [json.loads((top / "metadata/sbom/base.amd64.spdx.json").read_text())
             for top in (minimal_compose.topdir, topdir)]
    for doc in sboms:
        del doc["documentNamespace"]
        for p in doc["packages"]:
            p.pop("downloadLocation")
    assert sboms[0] == sboms[1]


def test_lockfile_missing_from_pool_and_mirror(tmp_path: Path) -> None:
    src = EXAMPLES / "minimal.yaml"
    lock = {
        "lockfile_version": 1, "name": "debian-bootc", "version": "13", "suite": "trixie",
        "source_date_epoch": 1700000000, "sources": [],
        "variants": {"base": {"amd64": {"requested": ["hello"], "packages": [{
            "name": "hello", "version": "0.0-gone", "arch": "amd64", "sha256": "0" * 64, "size": 1,
            "url": "http://deb.debian.org/debian/pool/main/h/hello/hello_0.0-gone_amd64.deb"}]}}},
    }
    lock_path = tmp_path / "lock.yaml"
    lock_path.write_text(yaml.safe_dump(lock))
    run = run_cli(["--config", str(src), "--target-dir", str(tmp_path / "t"), "--lockfile", str(lock_path)])
    assert run.returncode == 1
    assert "hello 0.0-gone (amd64) is no longer at" in run.stderr and "not in the pool" in run.stderr
    (topdir,) = [p for p in (tmp_path / "t").iterdir() if p.name.startswith("debian-bootc-13-")]
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"


def test_bad_lockfile_names_file_line_key(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock.yaml"
    lock_path.write_text("lockfile_version: 1\nname: x\nversion: '1'\nsuite: trixie\nsource_date_epoch: soon\n"
                         "sources: []\nvariants: {}\n")
    run = run_cli(["--config", str(EXAMPLES / "minimal.yaml"), "--target-dir", str(tmp_path / "t"),
                   "--lockfile", str(lock_path)])
    assert run.returncode == 1
    assert f"{lock_path}:5:source_date_epoch:" in run.stderr


def test_noop_recompose(minimal_compose: SessionCompose) -> None:
    """Unchanged inputs: recognised after gather, no rootfs, no new commit, deliverables reused; without
    --lockfile too (the sources' InRelease files are unchanged, so apt does not run): each within 6 s."""
    if expected_status() != "FINISHED":
        pytest.fail("no-op recompose needs a FINISHED compose: the oci/checksums phases are not installed")
    repo = minimal_compose.target / "ostree/repo"
    before = commit_objects(repo), commit_objects(minimal_compose.target / ".state/ostree-bare")
    lock = minimal_compose.topdir / "metadata/lockfile.yaml"
    previous = minimal_compose.topdir.name
    for extra in ([], ["--lockfile", str(lock)]):
        run = run_cli(["--config", str(minimal_compose.manifest), "--target-dir", str(minimal_compose.target),
                       "--compose-type", "test", *extra])
        assert run.returncode == 0, run.stderr[-3000:]
        topdir = Path(run.last_line)
        assert topdir != minimal_compose.topdir
        reused = re.search(r"inputs unchanged: reused (\S+)", run.stderr)
        assert reused is not None, run.stderr[-2000:]
        # the session compose, the previous round, or a no-op recompose of it another test made (the benchmark)
        same = (minimal_compose.target / reused.group(1) / "metadata/lockfile.yaml").read_bytes()
        assert reused.group(1) == previous or same == lock.read_bytes()
        previous = topdir.name
        assert not (topdir / "logs/rootfs.log").exists()
        assert (topdir / "STATUS").read_text().strip() == "FINISHED"
        sums = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=topdir / "compose/base/amd64",
                              capture_output=True, text=True)
        assert sums.returncode == 0 and ": OK" in sums.stdout, sums.stdout + sums.stderr
        assert (commit_objects(repo), commit_objects(minimal_compose.target / ".state/ostree-bare")) == before
        assert os.readlink(minimal_compose.target / "latest-debian-bootc-13") == topdir.name
        print(f"no-op recompose {extra or '(checking the sources)'}: {run.seconds:.1f}s")
        gather_log = (topdir / "logs/gather.log").read_text()
        if not extra:
            # every InRelease unchanged since the session compose: the resolution is reused, apt never runs
            assert "reusing that resolution (apt not run)" in gather_log, gather_log
        assert "apt-get update" not in gather_log
        assert run.seconds <= 6.0, f"no-op recompose {extra} took {run.seconds:.1f}s"
        # no tree to read: the SBOM is the reused compose's, listed in extra-files.json all the same
        sbom = "metadata/sbom/base.amd64.spdx.json"
        assert (topdir / sbom).read_bytes() == (minimal_compose.target / reused.group(1) / sbom).read_bytes()
        listed = json.loads((topdir / "metadata/extra-files.json").read_text())["payload"]["files"]
        assert [f["path"] for f in listed] == [sbom]



def test_skipped_phases_are_recorded_and_the_compose_finishes(minimal_compose: SessionCompose) -> None:
    """--skip-phase disk,boot-test, then --just-phase oci, in the session's target: the phases are left out,
    said so in the log and in metadata/phases.json, and the compose ends FINISHED. None of them makes a
    deliverable of minimal.yaml, so the session compose's deliverables are reused (seconds, not minutes)."""
    session = json.loads((minimal_compose.topdir / "metadata/phases.json").read_text())["payload"]
    assert [p["name"] for p in session["phases"]] == NAMES and session["skipped"] == []
    states = {p["name"]: p["state"] for p in session["phases"]}
    assert states["disk"] == states["boot-test"] == states["build"] == "not-needed"
    assert {states[n] for n in NAMES if n not in ("disk", "boot-test", "build")} == {"done"}
    for options, why, skipped in ((["--skip-phase", "disk,boot-test"], "--skip-phase", ["disk", "boot-test"]),
                                  (["--just-phase", "oci"], "--just-phase oci", ["build", "disk", "boot-test"])):
        run = run_cli(["--config", str(minimal_compose.manifest), "--target-dir", str(minimal_compose.target),
                       "--compose-type", "test", *options])
        assert run.returncode == 0, run.stderr[-3000:]
        topdir = Path(run.last_line)
        assert (topdir / "STATUS").read_text().strip() == "FINISHED"
        record = json.loads((topdir / "metadata/phases.json").read_text())
        assert record["header"] == {"type": "deb-bootc-compose.phases", "version": "1.0"}
        payload = record["payload"]
        assert payload["compose"] == {"id": topdir.name, "status": "FINISHED"} and payload["skipped"] == skipped
        assert [p["name"] for p in payload["phases"]] == NAMES
        phases = {p["name"]: p for p in payload["phases"]}
        for name in skipped:
            assert phases[name] == {"name": name, "state": "skipped", "reason": why}
            assert f"{name}: skipped: {why}" in run.stderr
        assert f"disk: skipped: {why}" in (topdir / "logs/global.log").read_text()
        assert phases["rootfs"]["state"] == phases["oci"]["state"] == "reused"
        assert phases["gather"]["state"] == phases["metadata"]["state"] == "done"
        assert phases["metadata"]["seconds"] >= 0
        assert "inputs unchanged: reused" in run.stderr and run.seconds < 30, run.stderr[-2000:]

def test_failing_postprocess_shows_its_output(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    """The postprocess step on the real tree (a copy): sandboxed, no network, output shown on failure."""
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-a", "--reflink=auto", str(minimal_compose.tree), str(tree)], check=True)
    manifest_path = write_manifest(tmp_path, postprocess=[
        {"name": "net-check", "script": "if getent ahosts deb.debian.org; then echo NETWORK; exit 9; fi\n"
                                        "echo sandboxed > /usr/share/postprocess-ran\n"},
        {"name": "breaks", "script": "echo about to fail: marker-4711\nls /nonexistent-dir\necho never\n"},
    ])
    target = TargetPaths(tmp_path / "target")
    ctx = ComposeContext(manifest=load_manifest(manifest_path), manifest_path=manifest_path, target=target,
                         paths=target.compose("x-1-20260101.0"), compose_id="x-1-20260101.0", compose_type="test",
                         source_date_epoch=1700000000)
    with pytest.raises(ComposeError) as info, Tree(tree) as t:
        postprocess.run(PrepareJob.of(OstreePreparePhase(ctx), VariantState("base", "amd64"), t))
    msg = str(info.value)
    assert "postprocess script breaks failed with exit code" in msg
    assert "about to fail: marker-4711" in msg and "/nonexistent-dir" in msg and "never" not in msg
    assert (tree / "usr/share/postprocess-ran").read_text() == "sandboxed\n"
    treeops.remove_tree(tree)


def test_nonexistent_package(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, packages=["hello", "no-such-package-4711"])
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t")])
    assert run.returncode == 1
    assert "no-such-package-4711" in run.stderr and "not found in suite trixie" in run.stderr
    assert "hello" not in run.stderr.split("not found")[0].split("package(s)")[-1]
    (topdir,) = [p for p in (tmp_path / "t").iterdir() if p.name.startswith("debian-bootc-13-")]
    assert (topdir / "STATUS").read_text().strip() == "DOOMED"
    assert not (topdir / "compose").exists()


def test_unreachable_source(tmp_path: Path) -> None:
    m = write_manifest(tmp_path, sources=[{"url": "http://127.0.0.1:9/debian", "components": ["main"]}])
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t")])
    assert run.returncode == 1
    assert "http://127.0.0.1:9/debian (trixie)" in run.stderr
    assert "reachable" in run.stderr


def test_malformed_manifest_cli(tmp_path: Path) -> None:
    m = tmp_path / "bad.yaml"
    m.write_text((EXAMPLES / "minimal.yaml").read_text().replace("suite: trixie", "suite: trixie\nbogus: 1"))
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t")])
    assert run.returncode == 2
    assert f"{m}:6:bogus: unknown key" in run.stderr
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").glob("debian-bootc-*"))


def test_cli_usage_and_verbs() -> None:
    run = run_cli(["--help"])
    assert run.returncode == 0 and "--target-dir" in run.stdout
    run = run_cli(["no-such-verb"])
    assert run.returncode == 2 and "unknown verb" in run.stderr
    run = run_cli(["compose", "--help"])
    assert run.returncode == 0 and "--lockfile" in run.stdout


def test_dead_compose_is_doomed_by_the_next(tmp_path: Path) -> None:
    """A compose killed with SIGKILL stays STARTED; the next compose in the target marks it DOOMED."""
    target = tmp_path / "t"
    dead = target / "debian-bootc-13-20260101.0"
    (dead / "work" / "base").mkdir(parents=True)
    (dead / "compose" / "base" / "amd64").mkdir(parents=True)
    (dead / "STATUS").write_text("STARTED\n")
    m = write_manifest(tmp_path, packages=["no-such-package-4711"])
    run = run_cli(["--config", str(m), "--target-dir", str(target)])
    assert run.returncode == 1
    assert "debian-bootc-13-20260101.0 was left STARTED by a compose that died" in run.stderr
    assert (dead / "STATUS").read_text().strip() == "DOOMED"
    assert not (dead / "work").exists() and not (dead / "compose").exists()


def test_users_groups_files_on_the_real_tree(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    """The example manifest's users, groups and files applied to a copy of the real tree (useradd in the tree)."""
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-a", "--reflink=auto", str(minimal_compose.tree), str(tree)], check=True)
    manifest_path = EXAMPLES / "trixie-updates-security.yaml"
    target = TargetPaths(tmp_path / "target")
    ctx = ComposeContext(manifest=load_manifest(manifest_path), manifest_path=manifest_path, target=target,
                         paths=target.compose("x-1-20260101.0"), compose_id="x-1-20260101.0", compose_type="test",
                         source_date_epoch=1700000000)
    t = Tree(tree)
    job = PrepareJob.of(OstreePreparePhase(ctx), VariantState("base", "amd64"), t)
    prepare_tree(job, [toplevel.STEP, users.STEP, files.STEP])
    passwd = (tree / "etc/passwd").read_text()
    assert "admin:x:1000:1000::/var/home/admin:/bin/bash" in passwd
    group = (tree / "etc/group").read_text()
    assert re.search(r"^admins:x:1500:admin$", group, re.M)
    assert re.search(r"^sudo:x:\d+:admin$", group, re.M)
    shadow = (tree / "etc/shadow").read_text()
    assert re.search(r"^admin:!:", shadow, re.M)  # no password: SSH key only
    keys = tree / "var/home/admin/.ssh/authorized_keys"
    assert keys.read_text().startswith("ssh-ed25519 ")
    # the tree belongs to the user namespace it is made in: inner uid 1000 is host uid base + 1000
    ids = treeops.tree_ids()
    treeops.adopt_host_writes(tree, ids)
    assert (keys.stat().st_uid, keys.stat().st_mode & 0o777) == (ids.host_uid(1000), 0o600)
    motd = (tree / "etc/motd").stat()
    assert (treeops.inner_uid(ids, motd.st_uid), treeops.inner_gid(ids, motd.st_gid)) == (0, 0)
    assert (tree / "etc/motd").read_text() == "Debian bootc server image (deb-bootc-compose)\n"
    autovar_step.run(job)
    autovar = (tree / "usr/lib/tmpfiles.d/deb-bootc-autovar.conf").read_text()
    assert "d /var/home/admin 0700 1000 1000 - -" in autovar
    assert ("C /var/home/admin/.ssh/authorized_keys - - - - /usr/share/factory/var/home/admin/.ssh/authorized_keys"
            in autovar)
    assert (tree / "usr/share/factory/var/home/admin/.ssh/authorized_keys").stat().st_uid == ids.host_uid(1000)
    # /var keeps only what images ship there: lib, an empty log (apt in a Containerfile RUN needs it) and the
    # debconf link into /usr (docs/variants.md)
    assert sorted(p.name for p in (tree / "var").iterdir()) == ["cache", "lib", "log"]
    assert not any((tree / "var/log").iterdir())
    assert [(p.name, os.readlink(p)) for p in (tree / "var/cache").iterdir()] == [
        ("debconf", "../../usr/lib/sysimage/debconf")]
    treeops.remove_tree(tree)
