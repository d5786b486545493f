#!/usr/bin/env bash
# Compile time of the umbrella header, the figures of the README's "Compile time" table:
#   1. parse <cpdiff/cpdiff.hpp> alone (-fsyntax-only);
#   2. a five-line file that includes it and builds a pdiff_autoencoder, compiled at -O2 (-c); then the same
#      with one encode and decode (the model's forward code instantiated and compiled too);
#   3. with --headers: the parse time of each third-party header the umbrella pulls in, alone.
# Each figure is the best of N runs (default 3) of wall-clock time, on an otherwise idle machine.
# Usage: bash benchmarks/compile_time.sh [--runs N] [--headers]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=3
headers=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --headers) headers=1; shift ;;
    *) echo "compile_time.sh: unknown argument '$1' (expected --runs N or --headers)" >&2; exit 2 ;;
  esac
done
cxx=${CXX:-g++}
flags=(-std=c++20 -O2 -march=native -fopenmp -I"$root/include" -I/usr/include/eigen3)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/umbrella.cpp" << 'EOF'
#include <cpdiff/cpdiff.hpp>
EOF
cat > "$work/five_lines_build.cpp" << 'EOF'
#include <cpdiff/cpdiff.hpp>
int main() {
  cpdiff::models::pdiff_autoencoder<cpdiff::models::pdiff_small> ae(2048, /*seed=*/0);
  return ae.parameters().size() > 0 ? 0 : 1;
}
EOF
cat > "$work/five_lines.cpp" << 'EOF'
#include <cpdiff/cpdiff.hpp>
int main() {
  cpdiff::models::pdiff_autoencoder<cpdiff::models::pdiff_small> ae(2048, /*seed=*/0);
  cpdiff::tensor<float, cpdiff::cpu> x({4, 2048});
  return ae.decode(ae.encode(x.cview())).shape()[0] == 4 ? 0 : 1;
}
EOF

# best_of <label> <command...>: runs the command $runs times, prints the fastest wall time.
best_of() {
  local label=$1 best="" t
  shift
  for ((i = 0; i < runs; i++)); do
    local start
    start=$(date +%s%N)
    "$@"
    t=$(($(date +%s%N) - start))
    if [[ -z $best ]] || ((t < best)); then best=$t; fi
  done
  printf '%-58s %3d.%02d s (best of %d)\n' "$label" $((best / 1000000000)) $((best / 10000000 % 100)) "$runs"
}

echo "$($cxx --version | head -1), flags: ${flags[*]}"
best_of "parse <cpdiff/cpdiff.hpp> (-fsyntax-only)" "$cxx" "${flags[@]}" -fsyntax-only "$work/umbrella.cpp"
best_of "five-line file: build a pdiff_autoencoder (-O2 -c)" "$cxx" "${flags[@]}" -c "$work/five_lines_build.cpp" -o "$work/five.o"
best_of "... and encode + decode a batch (-O2 -c)" "$cxx" "${flags[@]}" -c "$work/five_lines.cpp" -o "$work/five.o"
if ((headers)); then
  for h in Eigen/Dense xtensor/xtensor.hpp xtensor/xadapt.hpp nlohmann/json.hpp zlib.h omp.h iostream; do
    echo "#include <$h>" > "$work/h.cpp"
    best_of "parse <$h> alone" "$cxx" "${flags[@]}" -fsyntax-only "$work/h.cpp"
  done
fi
