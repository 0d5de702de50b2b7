#!/usr/bin/env bash
# Installs the Debian 12 packages wsgate needs to build, run and test.
# Idempotent: only packages that are missing are installed, so a second run is quick.
# Usage: scripts/install-deps.sh [build|test|cluster]
#   test adds what the test suites need; cluster what `make cluster` runs (Redis, nginx, Node.js)
set -euo pipefail

profile="${1:-build}"

build_packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libspdlog-dev libcli11-dev libjwt-dev libhiredis-dev
)
cluster_packages=(redis-server nginx-light curl)
# The cluster demo client runs on Node.js; a machine that already has node keeps its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  cluster_packages+=(nodejs npm)
fi
test_packages=(libgtest-dev openssl procps clang-format git "${cluster_packages[@]}")

wanted=("${build_packages[@]}")
case "$profile" in
  test) wanted+=("${test_packages[@]}") ;;
  cluster) wanted+=("${cluster_packages[@]}") ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
