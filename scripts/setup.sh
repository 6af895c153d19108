#!/usr/bin/env bash
# Installs what driftless needs from Debian's packages (Debian 12, run as root) and builds the
# optimised binary. Idempotent: packages already installed are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build ccache pkg-config git libyaml-dev libsqlite3-dev
          libssl-dev libgit2-dev libcli11-dev clang-format libgtest-dev libgmock-dev
          libbenchmark-dev libcurl4-openssl-dev libpq-dev postgresql-15 sqlite3 time
          podman runc catatonit containernetworking-plugins busybox-static podman-compose
          openssl libboost1.74-dev libcpp-httplib-dev python3-prometheus-client
          libjson-validator-perl zlib1g-dev chromium)
# The deployment files' test (test/deploy) reads them with kubectl and systemd-analyze. Debian's
# kubectl (kubernetes-client) and other builds (Google's `kubectl` package) both install
# /usr/bin/kubectl and conflict: take Debian's only when there is no kubectl at all.
command -v kubectl >/dev/null || packages+=(kubernetes-client)
command -v systemd-analyze >/dev/null || packages+=(systemd)
# The web UI is built with node and npm (ui/); a newer node already on the machine is kept.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

preset=${1:-release}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
