#!/usr/bin/env bash
# Installs the Debian packages the build, tests, examples and benchmarks need (run as root).
# Skips apt entirely when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache libeigen3-dev catch2 nlohmann-json3-dev libcli11-dev libstb-dev
      dataset-fashion-mnist libopenblas-dev libopenmpi-dev openmpi-bin)
if [ "${1:-}" = "--python" ]; then pkgs+=(python3-torch python3-torchvision); fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
