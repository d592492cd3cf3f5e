"""Real OSTree commits of a bootable trixie tree, built for the disk and boot tests.

The disk tests and the boot fault tests need a bootable commit without waiting for a whole compose:
mmdebstrap trixie (systemd, kernel, dracut, ostree-boot, GRUB modules, hello), made OSTree-ready the
way ``/work/shared/notes/bootc-on-debian.md`` describes, committed into an archive-mode repository
(it carries bookworm's ``hello 2.10-3``; the update test needs two composes and runs on two real ones, see
tests/deb_bootc_compose/boot/). Results are cached under the ``test_cache``
directory keyed by a hash of everything that goes into them; every step runs for real on a cold cache.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from debsandbox.commands import run
from debsandbox.locks import flock

FIXTURE_VERSION = "3"  # bump to invalidate caches when the recipe below changes
SUITE = "trixie"
REF = "debian/trixie/amd64/base"
OSNAME = "debian"
EPOCH = 1767225600  # 2026-01-01
VERSION = "1"
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "udev", "dbus", "linux-image-amd64", "ostree", "ostree-boot", "dracut",
    "grub-efi-amd64-bin", "grub2-common", "e2fsprogs", "dosfstools", "kmod", "passwd", "login",
]
OLD_HELLO = "pool/main/h/hello/hello_2.10-3_amd64.deb"  # bookworm's; trixie has a newer one

PREPARE_ROOT_CONF = "[composefs]\nenabled = no\n[sysroot]\nreadonly = true\n"
DEFAULT_GRUB = 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR="Debian"\nGRUB_CMDLINE_LINUX=""\n'
TOPLEVEL_LINKS = {
    "home": "var/home", "root": "var/roothome", "opt": "var/opt", "srv": "var/srv", "mnt": "var/mnt",
    "media": "run/media", "ostree": "sysroot/ostree",
}


@dataclass(frozen=True)
class FixtureCommit:
    repo: Path  # archive-mode repository holding REF
    ref: str
    commit: str
    version: str
    kernel_version: str
    packages: dict[str, str]  # name -> version, as dpkg lists them in the tree


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with flock(path, keep_file=True):
        yield


def _download(url: str, dest: Path) -> Path:
    if not dest.exists():
        with httpx.stream("GET", url, follow_redirects=True, timeout=120) as resp:
            resp.raise_for_status()
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")  # workers may fetch it at the same time
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
            tmp.rename(dest)
    return dest


def _tmpfiles_for_var(tree: Path) -> list[str]:
    """Every directory and symlink under /var as a tmpfiles.d line (rpm-ostree's autovar), sorted."""
    lines = []
    var = tree / "var"
    for dirpath, dirnames, filenames in os.walk(var):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = "/" + str(p.relative_to(tree))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                lines.append(f"L {rel} - - - - {os.readlink(p)}")
            elif stat.S_ISDIR(st.st_mode):
                lines.append(f"d {rel} {stat.S_IMODE(st.st_mode):04o} {st.st_uid} {st.st_gid} - -")
    return sorted(lines)


def make_ostree_ready(tree: Path) -> str:
    """Turn an mmdebstrap tree into a committable OSTree tree (in place). Returns the kernel version."""
    modules = sorted((tree / "usr/lib/modules").iterdir())
    if len(modules) != 1:
        raise RuntimeError(f"expected one kernel in {tree}/usr/lib/modules, found {modules}")
    kver = modules[0].name
    shutil.copy2(tree / "boot" / f"vmlinuz-{kver}", modules[0] / "vmlinuz")
    for entry in (tree / "boot").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name in ("vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"):
        (tree / name).unlink(missing_ok=True)
    (tree / "etc/machine-id").write_text("")
    if not (tree / "etc/default/grub").exists():
        (tree / "etc/default/grub").write_text(DEFAULT_GRUB)
    (tree / "etc/locale.conf").write_text("LANG=C.UTF-8\n")
    (tree / "etc/hostname").write_text("debian-bootc\n")
    # dpkg and debconf databases live in /usr (the image), /var only links to them
    sysimage = tree / "usr/lib/sysimage"
    sysimage.mkdir(parents=True, exist_ok=True)
    (tree / "var/lib/dpkg").rename(sysimage / "dpkg")
    (tree / "var/cache/debconf").rename(sysimage / "debconf")
    tmpfiles = _tmpfiles_for_var(tree)
    tmpfiles += [
        "L+ /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg",
        "L+ /var/cache/debconf - - - - ../../usr/lib/sysimage/debconf",
        "d /var/home 0755 0 0 - -", "d /var/roothome 0700 0 0 - -", "d /var/opt 0755 0 0 - -",
        "d /var/srv 0755 0 0 - -", "d /var/mnt 0755 0 0 - -", "d /var/usrlocal 0755 0 0 - -",
    ]
    (tree / "usr/lib/tmpfiles.d/debian-bootc-var.conf").write_text("\n".join(tmpfiles) + "\n")
    shutil.rmtree(tree / "var")
    (tree / "var/lib").mkdir(parents=True)
    (tree / "var/cache").mkdir(parents=True)
    (tree / "var/lib/dpkg").symlink_to("../../usr/lib/sysimage/dpkg")
    (tree / "var/cache/debconf").symlink_to("../../usr/lib/sysimage/debconf")
    for name, target in TOPLEVEL_LINKS.items():
        p = tree / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        p.symlink_to(target)
    if (tree / "usr/local").exists():
        shutil.rmtree(tree / "usr/local")
    (tree / "usr/local").symlink_to("../var/usrlocal")
    (tree / "sysroot").mkdir(exist_ok=True)
    for name in ("dev", "proc", "sys", "run", "tmp"):
        shutil.rmtree(tree / name)
        (tree / name).mkdir(mode=0o1777 if name == "tmp" else 0o755)
    (tree / "etc").rename(tree / "usr/etc")
    return kver


def _dpkg_packages(tree: Path) -> dict[str, str]:
    out = run(["dpkg-query", f"--admindir={tree}/usr/lib/sysimage/dpkg", "-W", "-f", "${Package} ${Version}\\n"],
              capture=True).output
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def _recipe_source() -> str:
    """The code that makes a fixture commit: the cache key changes when it does (and only then)."""
    return "".join(inspect.getsource(f) for f in (_tmpfiles_for_var, make_ostree_ready, build_commit))


def build_commit(cache: Path, mirror: str) -> FixtureCommit:
    """Build (or load from the cache) the fixture commit in its own archive repo."""
    packages = list(BASE_PACKAGES)
    debs = cache / "disk-fixture" / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    local_debs = [_download(f"{mirror}/{OLD_HELLO}", debs / Path(OLD_HELLO).name)]
    key = hashlib.sha256(json.dumps([FIXTURE_VERSION, SUITE, mirror, VERSION, BASE_PACKAGES,
                                     _recipe_source()]).encode()).hexdigest()[:16]
    base = cache / "disk-fixture" / f"v{VERSION}-{key}"
    done = base / "fixture.json"
    with _locked(cache / "disk-fixture" / f".v{VERSION}.lock"):
        if done.exists():
            data = json.loads(done.read_text())
            return FixtureCommit(repo=Path(data["repo"]), ref=data["ref"], commit=data["commit"],
                                 version=data["version"], kernel_version=data["kernel_version"],
                                 packages=data["packages"])
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        log = base / "build.log"
        tree = base / "tree"
        install_local = "".join(f'cp {d} "$1/tmp/"; chroot "$1" dpkg -i /tmp/{d.name}; rm "$1/tmp/{d.name}"; '
                                for d in local_debs)
        dracut = install_local + (
            'kver=$(ls "$1/usr/lib/modules"); '
            f'printf "%s" "{PREPARE_ROOT_CONF}" > "$1/usr/lib/ostree/prepare-root.conf"; '
            'chroot "$1" dracut --force --no-hostonly --reproducible --add ostree '
            '"/usr/lib/modules/$kver/initramfs.img" "$kver"'
        )
        run(["mmdebstrap", "--mode=root", "--variant=minbase", f"--include={','.join(packages)}",
             "--components=main", "--dpkgopt=path-exclude=/usr/share/doc/*",
             "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
             f"--customize-hook={dracut}", SUITE, str(tree), mirror],
            log=log, extra_env={"SOURCE_DATE_EPOCH": str(EPOCH)})
        kver = make_ostree_ready(tree)
        pkgs = _dpkg_packages(tree)
        repo = base / "repo"
        run(["ostree", "init", f"--repo={repo}", "--mode=archive"], log=log)
        run(["ostree", "commit", f"--repo={repo}", f"--branch={REF}", f"--tree=dir={tree}", "--no-bindings",
             f"--timestamp=@{EPOCH}", f"--subject=fixture v{VERSION}", f"--add-metadata-string=version={VERSION}",
             f"--add-metadata-string=ostree.linux={kver}"], log=log)
        commit = run(["ostree", f"--repo={repo}", "rev-parse", REF], capture=True).output.strip()
        shutil.rmtree(tree)
        data = {"repo": str(repo), "ref": REF, "commit": commit, "version": VERSION, "kernel_version": kver,
                "packages": pkgs}
        done.write_text(json.dumps(data, indent=1))
        return FixtureCommit(repo=repo, ref=REF, commit=commit, version=VERSION, kernel_version=kver,
                             packages=pkgs)


# ---- composes made by the real DiskPhase, shared by the disk and boot tests of one session ----

@dataclass
class FixtureCompose:
    topdir: Path  # a compose directory (STATUS, compose/<variant>/<arch>/images, logs, metadata)
    commit: FixtureCommit
    ctx: Any  # the ComposeContext the phase ran with
    seconds: float


def fixture_manifest(commands: list[str] | None = None, timeout: int = 900, free_space: str = "1GiB") -> Any:
    """The compose manifest the disk and boot-test phases read (one variant, base, with the manifest's settings)."""
    from deb_bootc_compose.manifest import Manifest

    return Manifest.model_validate({
        "name": OSNAME, "version": VERSION, "suite": "trixie", "sources": [{"url": "http://deb.debian.org/debian"}],
        "outputs": ["oci", "raw", "qcow2"], "kernel_args": [], "disk": {"free_space": free_space},
        "boot_test": {"enabled": True, "commands": commands if commands is not None else ["hello"],
                      "timeout": timeout},
    })


def make_context(target: Path, commit: FixtureCommit, compose_id: str, manifest: Any) -> Any:
    from deb_bootc_compose.paths import TargetPaths
    from deb_bootc_compose.phases.base import ComposeContext, VariantState

    tp = TargetPaths(target)
    tp.ostree_repo.parent.mkdir(parents=True, exist_ok=True)
    if not tp.ostree_repo.exists():
        tp.ostree_repo.symlink_to(commit.repo)
    paths = tp.compose(compose_id)
    for d in (paths.logs, paths.metadata, paths.work):
        d.mkdir(parents=True, exist_ok=True)
    paths.status.write_text("STARTED\n")
    variant = VariantState(variant="base", arch="amd64", ref=commit.ref, commit=commit.commit,
                           kernel_version=commit.kernel_version)
    (paths.metadata / "packages.json").write_text(json.dumps({
        "header": {"type": "packages", "version": "1.0"},
        "payload": {"packages": {"base": {"amd64": [{"name": n, "version": v} for n, v in commit.packages.items()]}}},
    }))
    from deb_bootc_compose import metadata as md

    meta = md.ComposeMeta(compose_id, OSNAME, OSNAME, commit.version)
    md.write_json(paths.metadata / "ostree.json",
                  md.ostree_manifest(meta, [md.OstreeMeta("base", "amd64", commit.ref, commit.commit)]))
    return ComposeContext(manifest=manifest, manifest_path=target / "manifest.yaml", target=tp, paths=paths,
                          compose_id=compose_id, compose_type="test", variants=[variant])


def composed(cache: Path, mirror: str, tmp_root: Path) -> FixtureCompose:
    """The fixture commit run through the real DiskPhase into a compose directory (the disk tests' session
    fixture ``compose_v1`` makes it once)."""
    import time

    from deb_bootc_compose.phases.disk import DiskPhase

    commit = build_commit(cache, mirror)
    target = tmp_root / f"target-v{VERSION}"
    ctx = make_context(target, commit, f"debian-{VERSION}-20260101.t.0", fixture_manifest())
    start = time.monotonic()
    DiskPhase(ctx).run()
    seconds = time.monotonic() - start
    ctx.paths.status.write_text("FINISHED\n")
    return FixtureCompose(ctx.paths.topdir, commit, ctx, seconds)


def oci_archive(cache: Path, commit: FixtureCommit) -> Path:
    """The fixture commit as a plain-layer bootc OCI image (container form: /etc at the top), via umoci."""
    base = cache / "disk-fixture" / f"oci-{commit.commit[:16]}"
    archive = base / "image.oci-archive"
    with _locked(cache / "disk-fixture" / ".oci.lock"):
        if archive.exists():
            return archive
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        log = base / "build.log"
        layout, bundle = base / "layout", base / "bundle"
        run(["umoci", "init", "--layout", str(layout)], log=log)
        run(["umoci", "new", "--image", f"{layout}:latest"], log=log)
        run(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)], log=log)
        shutil.rmtree(bundle / "rootfs")
        run(["ostree", f"--repo={commit.repo}", "checkout", commit.commit, str(bundle / "rootfs")], log=log)
        (bundle / "rootfs/usr/etc").rename(bundle / "rootfs/etc")
        run(["umoci", "repack", "--image", f"{layout}:latest", str(bundle)], log=log)
        run(["umoci", "config", "--image", f"{layout}:latest", "--config.label", "containers.bootc=1"], log=log)
        shutil.rmtree(bundle)
        tmp = archive.with_suffix(".tmp")
        run(["tar", "-C", str(layout), "-cf", str(tmp), "."], log=log)
        shutil.rmtree(layout)
        tmp.rename(archive)
        return archive
