"""The files ``init`` writes besides the manifest: README, build.sh, Containerfile (``str.format`` templates)."""

from __future__ import annotations

CONTAINERFILE = """\
# {pretty}: a custom variant of {base}, made by deb-bootc-compose init (docs/variants.md).
# the base image: build with --build-arg BASE=... to start from another copy of it
ARG BASE={image}
FROM ${{BASE}}

# Packages on top of the base, from the image's own apt sources (its manifest's image_sources). Clean up apt's
# state in the same RUN (apt makes it again when it needs it): `deb-bootc-compose lint` warns about leftovers.
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\
 && apt-get clean \\
 && rm -rf /var/lib/apt /var/cache/apt /var/log/*

# The identity: os-release, the console greeting, the message of the day.
COPY os-release /usr/lib/os-release
COPY issue /etc/issue
COPY motd /etc/motd

# After a kernel change, regenerate the initramfs in the same RUN and set the ostree.linux label
# (docs/variants.md, "After a kernel change").
"""

BUILD_CONTAINERFILE = """\
#!/bin/sh
# Build {name} from the Containerfile, check it is still a bootable bootc image, make a disk image of it and
# boot that in QEMU. Needs podman, skopeo, qemu and deb-bootc-compose (run as root for install-to-disk).
set -eu
cd "$(dirname "$0")"
mkdir -p out
podman=podman
[ -d /run/systemd/system ] || podman="podman --cgroup-manager=cgroupfs --events-backend=file"  # no systemd here
# BASE=oci-archive:/path/to/another.oci-archive ./build.sh builds FROM another copy of the base
$podman build ${{BASE:+--build-arg BASE=$BASE}} --tag localhost/{name}:latest .
image=containers-storage:localhost/{name}:latest  # read from podman's storage: no podman save needed
# errors fail the build; warnings (e.g. what maintainer scripts leave in /var) are for you to judge
deb-bootc-compose lint "$image"
deb-bootc-compose install-to-disk "$image" out/{name}.qcow2 --stateroot {name}
deb-bootc-compose boot-test out/{name}.qcow2 --command 'grep -qx ID={name} /usr/lib/os-release'{checks}
"""

BUILD_MANIFEST = """\
#!/bin/sh
# Compose {name} from {manifest}, check its image, and boot it in QEMU (run as root, or with subordinate ids).
set -eu
cd "$(dirname "$0")"
compose=$(deb-bootc-compose --config {manifest} --target-dir composes | tail -n 1)
deb-bootc-compose lint --fatal-warnings --variant {variant} "$compose"
deb-bootc-compose boot-test "$compose" --variant {variant} --command 'grep -qx ID={name} /usr/lib/os-release'{checks}
echo "$compose"
"""

README = """\
# {pretty}

A custom variant of {base}, made with `deb-bootc-compose init` ({how}).

- `{source}` says what the image is: {what}
- `build.sh` builds it, checks it with `deb-bootc-compose lint` and boots it in QEMU with `boot-test`.

Change the identity in {identity}, add packages, then run `./build.sh`. docs/variants.md (in deb-bootc-compose)
walks through the rest: publishing updates, pushing to a registry, and what to do after a kernel change.
"""
