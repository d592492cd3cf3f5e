#!/bin/sh
# Compose particle-os from particle-os.yaml on its base (a Debian Atomic compose, see particle-os.yaml), check its
# image, and boot it in QEMU (run as root, or with subordinate ids).
set -eu
cd "$(dirname "$0")"
compose=$(deb-bootc-compose --config particle-os.yaml --target-dir composes | tail -n 1)
deb-bootc-compose lint --fatal-warnings --variant base "$compose"
deb-bootc-compose boot-test "$compose" --variant base --command 'grep -qx ID=particle-os /usr/lib/os-release' \
    --command 'htop --version' --command 'tmux -V' \
    --command 'systemctl is-active ssh.service' \
    --command 'test -s /etc/ssh/ssh_host_ed25519_key.pub' \
    --command 'ss -Hltn '\''sport = :22'\'' | grep -q .' \
    --command 'systemctl is-enabled systemd-networkd.service' \
    --command 'locale -a | grep -qx en_US.utf8' \
    --command 'sudo --version'
echo "$compose"
