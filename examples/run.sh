#!/usr/bin/env bash
# The README's main command: installs missing packages, builds and runs the full Cond P-Diff example (and builds
# the `cpdiff` command, build/examples/cli/cpdiff).
# Extra arguments go to the example (e.g. --quick, --out DIR, --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/cmake/install_deps.sh"
build=${CPDIFF_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" --target cpdiff_cond_pdiff_fashion cpdiff_cli
"$build/examples/cpdiff_cond_pdiff_fashion" --out "${CPDIFF_OUT:-$root/out/cond_pdiff}" "$@"
