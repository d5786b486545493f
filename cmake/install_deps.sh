#!/usr/bin/env bash
# Installs the Debian packages cpdiff needs, only those missing (run as root on Debian 12).
set -euo pipefail
pkgs=(cmake ninja-build g++ libeigen3-dev xtensor-dev xtl-dev libxsimd-dev catch2 nlohmann-json3-dev
      zlib1g-dev libbenchmark-dev dataset-fashion-mnist)
pkgs+=("$@")  # extra packages a caller needs (tests/run.sh: OpenMPI for the data-parallel tests)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "cpdiff: installing missing packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "cpdiff: run as root (or install: ${missing[*]})" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
