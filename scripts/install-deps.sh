#!/usr/bin/env bash
# Installs everything the three tools need on a Debian machine (run as root), then the project into a venv.
#   VENV (default: .venv in the checkout) is where the project is installed.
#   EXTRAS (default: empty) selects optional dependency groups, e.g. EXTRAS=test.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$here/.venv}
EXTRAS=${EXTRAS:-}

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: run me as root (apt-get install, /etc/subuid)" >&2
  exit 2
fi

APT_PACKAGES=(
  # deb-mock: bootstrap, isolation, source handling
  mmdebstrap bubblewrap uidmap dpkg-dev devscripts fakeroot apt-utils arch-test debian-archive-keyring
  xz-utils zstd gnupg ca-certificates curl git
  # deb-orchestrator: PostgreSQL for production and CI
  postgresql
  # deb-bootc-compose: OSTree, OCI, disks, boot tests
  ostree skopeo umoci podman runc mtools dosfstools fdisk e2fsprogs qemu-system-x86 qemu-utils ovmf
  iproute2 iptables
  # registry push tests: a real registry (its service is never started: see policy-rc.d below), TLS tools
  docker-registry openssl
  # the VM update test serves the published OSTree repository with nginx (its own instance on a free port)
  nginx
  # promtool: the metrics tests check the hub's /metrics output and test contrib/prometheus/alerts.yml
  # (a service package too: its Prometheus server is never started here)
  prometheus
  # the hub's web UI tests: selenium drives Debian's headless chromium (nothing downloads a browser)
  chromium chromium-driver
  # benchmarks compare against sbuild and debos (debos runs only with --disable-fakemachine here)
  sbuild debos
  python3-venv
)
stamp=/var/lib/apt/periodic/.deb-bootc-ecosystem-installed
want=$(printf '%s\n' "${APT_PACKAGES[@]}" | sort | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! dpkg -s "${APT_PACKAGES[@]}" >/dev/null 2>&1; then
  echo "==> apt: installing ${#APT_PACKAGES[@]} host packages"
  apt-get update -q
  # service packages (docker-registry, nginx, prometheus) start their daemon in postinst, which fails without
  # systemd: a policy-rc.d that forbids starting services (ours only if there is none; removed afterwards);
  # tests start their own instances on free ports
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
  mkdir -p "$(dirname "$stamp")" && echo "$want" > "$stamp"
fi

# deb-mock runs builds as an unprivileged mapped user: root needs a subordinate id range too.
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  grep -q '^root:' "$f" || echo 'root:100000:65536' >> "$f"
done

PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> venv: $VENV"
  "$PY" -m venv "$VENV"
fi
spec="$here"
[ -n "$EXTRAS" ] && spec="$here[$EXTRAS]"
echo "==> pip: installing the project ($spec)"
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$spec"
