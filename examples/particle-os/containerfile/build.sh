#!/bin/sh
# Build particle-os from the Containerfile, check it is still a bootable bootc image, make a disk image of it and
# boot that in QEMU. Needs podman, skopeo, qemu and deb-bootc-compose (run as root for install-to-disk).
set -eu
cd "$(dirname "$0")"
mkdir -p out
podman=podman
[ -d /run/systemd/system ] || podman="podman --cgroup-manager=cgroupfs --events-backend=file"  # no systemd here
# BASE=oci-archive:/path/to/another.oci-archive ./build.sh builds FROM another copy of the base
$podman build ${BASE:+--build-arg BASE=$BASE} --tag localhost/particle-os:latest .
image=containers-storage:localhost/particle-os:latest  # read from podman's storage: no podman save needed
# errors fail the build; warnings (e.g. what maintainer scripts leave in /var) are for you to judge
deb-bootc-compose lint "$image"
deb-bootc-compose install-to-disk "$image" out/particle-os.qcow2 --stateroot particle-os
deb-bootc-compose boot-test out/particle-os.qcow2 --command 'grep -qx ID=particle-os /usr/lib/os-release' \
    --command 'htop --version' \
    --command 'dpkg -s tmux' \
    --command 'dpkg -s vim-tiny'
