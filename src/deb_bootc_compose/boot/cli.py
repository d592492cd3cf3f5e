"""``deb-bootc-compose boot-test COMPOSE_DIR_OR_IMAGE``: :func:`register` adds the verb to the command line;
:func:`main` takes the arguments after the verb.

The target is a compose directory, a disk image, or a bootc OCI image (``oci:``, ``oci-archive:``,
``containers-storage:``, ``docker://``): :func:`prepared` installs an OCI image onto a throw-away qcow2 with
``install-to-disk``'s own code first (an image that cannot boot is refused there, naming the cause).

From Python, :func:`main` also takes ``then``: more work in the same VM session once every check passed
(an update and a rollback, say), so that it costs no extra boot."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deb_bootc_compose.disk import source as disk_source
from deb_bootc_compose.disk.cli import add_registry_arguments, registry_of
from deb_bootc_compose.disk.errors import DiskError
from deb_bootc_compose.disk.install import InstallRequest, install
from deb_bootc_compose.imagelint.fetch import TRANSPORTS
from deb_bootc_compose.paths import ComposePaths
from debsandbox.commands import CommandError

from .firmware import BootTestError
from .runner import DEFAULT_TIMEOUT, BootTestSpec, Continuation, boot_test, find_disk_image, packages_from_metadata

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HELP = "boot a compose's disk image in QEMU (TCG/KVM, OVMF, no network unless --net) and check the running system"
DESCRIPTION = ("Boot a compose's disk image (or any image file) in QEMU on a throw-away overlay and check it: "
               "multi-user.target, no failed units, read-only /usr, writable /etc and /var, the booted OSTree "
               "commit, the installed packages, and the manifest's boot_test.commands.")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("boot-test", help=HELP, description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=run)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deb-bootc-compose boot-test", description=DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a compose directory, a .raw/.qcow2 disk image, or a bootc OCI image "
                   f"({disk_source.IMAGE_FORMS}), installed onto a throw-away disk image first")
    p.add_argument("--variant", default="base")
    p.add_argument("--arch", default="amd64")
    p.add_argument("--command", action="append", default=None, dest="commands",
                   help="a command line that must exit 0 in the guest (repeatable; default: the variant's "
                   "boot_test.commands when the compose keeps its manifest)")
    p.add_argument("--expect-commit", help="the OSTree commit that must be booted (default: the compose's)")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds allowed to reach a shell (default: manifest boot_test.timeout or {DEFAULT_TIMEOUT})")
    p.add_argument("--disk", action="append", type=Path, default=[], dest="disks", metavar="IMAGE",
                   help="attach another disk image, read-only, as /dev/vdb, /dev/vdc… (repeatable); e.g. an ext4 "
                   "image holding the next compose's OSTree repository, for an update without network")
    p.add_argument("--net", action="store_true",
                   help="give the VM QEMU user networking (virtio-net); the guest reaches the host's services at "
                   "10.0.2.2 (e.g. a published OSTree repository served on the host); default: no network")
    p.add_argument("--image-network", action="store_true",
                   help="like --net, but the image configures the interface itself (e.g. its own DHCP client): "
                   "nothing is written in the guest")
    p.add_argument("--log-dir", type=Path, help="where the serial log and report go (default: the compose's logs/, "
                   "the disk image's directory, or for an OCI image a new directory under /var/tmp)")
    p.add_argument("--stateroot", default="debian", help="OCI image: the OSTree stateroot it is installed as")
    add_registry_arguments(p)


def _manifest_boot_test(compose: Path, variant: str) -> tuple[list[str], float | None]:
    paths = ComposePaths.at(compose)
    for candidate in sorted(paths.metadata.glob("*.yaml")) + sorted(paths.logs.glob("*.yaml")):
        if candidate.name == paths.lockfile.name:
            continue
        try:
            from deb_bootc_compose import manifest

            m = manifest.load(candidate, check_files=False)  # a copy: the files it names are not beside it
        except Exception:
            continue
        if variant not in m.variants:
            return [], None
        spec = m.for_variant(variant).boot_test
        return list(spec.commands), float(spec.timeout)
    return [], None


def spec_for(args: argparse.Namespace) -> BootTestSpec:
    """The boot test of a compose directory or a disk image (an OCI image: :func:`prepared`)."""
    target = Path(args.target)
    if not target.exists():
        raise BootTestError(f"{target} does not exist (expected a compose directory or a disk image)")
    if target.is_dir():
        if not disk_source.is_compose_dir(target):
            raise BootTestError(f"{target} is a directory but not a compose (no STATUS and compose/)")
        paths = ComposePaths.at(target)
        image = find_disk_image(paths.images_dir(args.variant, args.arch))
        commit = args.expect_commit
        if commit is None:
            try:  # exactly the commit this compose made, even if its ref has moved on since
                commit = disk_source.compose_commit(target, args.variant, args.arch)[1]
            except disk_source.SourceError as exc:
                raise BootTestError(f"{exc}; or name the commit to expect with --expect-commit") from exc
        commands, timeout = _manifest_boot_test(target, args.variant)
        return BootTestSpec(image=image, log_dir=args.log_dir or paths.logs, expected_commit=commit,
                            expected_packages=packages_from_metadata(target, args.variant, args.arch),
                            commands=args.commands if args.commands is not None else commands,
                            timeout=args.timeout or timeout or DEFAULT_TIMEOUT)
    return BootTestSpec(image=target, log_dir=args.log_dir or target.parent, expected_commit=args.expect_commit,
                        commands=args.commands or [], timeout=args.timeout or DEFAULT_TIMEOUT)


@contextmanager
def prepared(args: argparse.Namespace) -> Iterator[BootTestSpec]:
    """The boot test of ``args.target``; an OCI image is installed first onto ``LOG_DIR/boot-test-image.qcow2``,
    which is removed afterwards (install-to-disk keeps one)."""
    target = str(args.target)
    if not target.startswith(TRANSPORTS):
        yield spec_for(args)
        return
    log_dir: Path = args.log_dir or Path(tempfile.mkdtemp(prefix="deb-bootc-boot-test-", dir="/var/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    disk = log_dir / "boot-test-image.qcow2"
    print(f"boot-test: installing {target} onto {disk} (log: {log_dir / 'install.log'})", flush=True)
    try:
        install(InstallRequest(source=target, disk=disk, stateroot=args.stateroot, scratch=log_dir,
                               log=log_dir / "install.log", registry=registry_of(args)))
    except (DiskError, CommandError) as exc:
        raise BootTestError(f"cannot install {target} to boot it: {exc}") from exc
    try:
        yield BootTestSpec(image=disk, log_dir=log_dir, expected_commit=args.expect_commit,
                           commands=args.commands or [], timeout=args.timeout or DEFAULT_TIMEOUT)
    finally:
        disk.unlink(missing_ok=True)


def main(argv: list[str] | None = None, then: Continuation | None = None) -> int:
    return run(parser().parse_args(argv), then)


def run(args: argparse.Namespace, then: Continuation | None = None) -> int:
    try:
        for disk in args.disks:
            if not disk.is_file():
                raise BootTestError(f"--disk {disk}: no such file (expected a raw or qcow2 disk image)")
        with prepared(args) as spec:
            print(f"boot-test: booting {spec.image} (serial log: {spec.log_dir / (spec.name + '-serial.log')})",
                  flush=True)
            report = boot_test(spec, then=then, extra_disks=list(args.disks), net=args.net or args.image_network,
                               net_setup=not args.image_network)
    except BootTestError as exc:
        print(f"boot-test: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(report.summary())
    if report.boot_seconds is not None:
        print(f"boot to shell: {report.boot_seconds:.0f}s under {report.accel}; {report.userspace_seconds or ''}")
    print(f"report: {spec.log_dir / (spec.name + '.json')}")
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
