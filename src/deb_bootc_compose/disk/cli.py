"""``deb-bootc-compose install-to-disk SOURCE DISK``: :func:`register` adds the verb to the command line;
:func:`main` takes the arguments after the verb."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from debsandbox.commands import CommandError

from .errors import DiskError, NotEnoughSpace, SourceError, UsageError
from .install import InstallRequest, install, parse_size
from .layout import DiskOptions, MiB
from .source import IMAGE_FORMS, Registry

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
HELP = "install a compose, an OSTree ref or an OCI bootc image onto a disk image file or block device"
DESCRIPTION = ("Install a compose's OSTree commit (or an OCI bootc image) onto a new disk image or a block "
               "device: GPT, ESP with GRUB, /boot, root; the installed system follows the source's ref.")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("install-to-disk", help=HELP, description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=run)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deb-bootc-compose install-to-disk", description=DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help=f"a compose directory, ostree:REPO[:REF], an OSTree repo directory, or a bootc "
                   f"OCI image: {IMAGE_FORMS}")
    p.add_argument("disk", type=Path, help="the disk image to write (.raw or .qcow2) or a block device")
    p.add_argument("--ref", help="the ref to install when the repository holds several")
    p.add_argument("--variant", default="base", help="for a compose directory: the variant to install (default "
                   "base); its commit is the one recorded in the compose's metadata/ostree.json")
    p.add_argument("--arch", default="amd64", help="for a compose directory: the architecture (default amd64)")
    p.add_argument("--free-space", default="1GiB", help="free space left on the root filesystem (default 1GiB)")
    p.add_argument("--karg", action="append", default=[], help="extra kernel argument (repeatable)")
    p.add_argument("--no-serial-console", action="store_true",
                   help="do not add console=tty0 console=ttyS0,115200n8 to the kernel arguments")
    p.add_argument("--stateroot", default="debian", help="OSTree stateroot (os) name (default debian)")
    p.add_argument("--remote-url", help="where the installed system pulls updates from, unverified (default: the "
                   "signed update remote the image carries, manifest update.ostree; else a remote with no URL)")
    p.add_argument("--scratch", type=Path, help="directory for temporary files (default: next to DISK)")
    add_registry_arguments(p)
    p.add_argument("--log", type=Path, help="log file (default: DISK.install.log next to the scratch files)")
    p.add_argument("--i-know-this-wipes", dest="wipe", metavar="DEVICE",
                   help="required to write a block device: repeat the device path")


def add_registry_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-verify", default="true", choices=["true", "false"],
                   help="docker://: verify the registry's certificate (default true)")
    p.add_argument("--cert-dir", type=Path, help="docker://: the registry's CA (DIR/ca.crt)")


def registry_of(args: argparse.Namespace) -> Registry:
    return Registry(tls_verify=args.tls_verify == "true", cert_dir=args.cert_dir)


def main(argv: list[str] | None = None) -> int:
    return run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    try:
        options = DiskOptions(free_space=parse_size(args.free_space, "--free-space"),
                              kernel_args=tuple(args.karg), serial_console=not args.no_serial_console)
        result = install(InstallRequest(source=args.source, disk=args.disk, ref=args.ref, variant=args.variant,
                                        arch=args.arch, options=options,
                                        stateroot=args.stateroot, remote_url=args.remote_url,
                                        scratch=args.scratch, wipe_confirmation=args.wipe, log=args.log,
                                        registry=registry_of(args)))
    except (SourceError, NotEnoughSpace, UsageError) as exc:
        print(f"install-to-disk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DiskError as exc:
        print(f"install-to-disk: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except CommandError as exc:
        print(f"install-to-disk: a tool failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("install-to-disk: interrupted; partial files were removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    for fmt, path in result.images.items():
        print(f"{fmt}: {path} ({result.virtual_size // MiB} MiB virtual, {result.sizes.get(fmt, 0) // MiB} MiB "
              f"allocated) in {result.seconds:.0f}s")
    print(f"kernel arguments: {' '.join(result.kernel_args)}")
    print(str(next(iter(result.images.values()))))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
