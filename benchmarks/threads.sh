#!/usr/bin/env bash
# Thread scaling of the whole-model steps (issue 17): cpdiff_bench_models at 1, 2, 4, 8 and 16 OpenMP threads,
# as many of those as this machine has cores, one program run per thread count, printed as one Markdown table
# (steady-state ms per step; the last columns are the time at 1 and at 2 threads over the time at the most
# threads: above 1 when more threads help, and never below 1 is issue 17's target).
# Usage: bash benchmarks/threads.sh [--build DIR] [--filter REGEX] [--threads "1 2 4"]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
filter=.
counts=
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --threads) counts=$2; shift 2 ;;
    *) echo "threads.sh: unknown argument '$1' (expected --build DIR, --filter REGEX or --threads LIST)" >&2
       exit 2 ;;
  esac
done
bench=$build/benchmarks/cpdiff_bench_models
if [[ ! -x $bench ]]; then
  echo "threads.sh: $bench is missing: build it with 'cmake --build $build --target cpdiff_bench_models'" >&2
  exit 1
fi
cores=$(nproc)
if [[ -z $counts ]]; then
  for t in 1 2 4 8 16; do (( t <= cores )) && counts+="$t "; done
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

args=(--benchmark_filter="$filter" --benchmark_format=csv)
for t in $counts; do
  echo "threads.sh: $t thread(s)..." >&2
  # OMP_PROC_BIND=false: the kernels' teams float over the cores, as in a user's run.
  OMP_NUM_THREADS=$t OMP_PROC_BIND=false "$bench" "${args[@]}" 2> /dev/null |
    awk -F, -v t="$t" '$1 ~ /^"/ { gsub(/"/, "", $1); n = $1; sub(/\/min_time.*/, "", n); print n "," t "," $3 }' >> "$work/rows.csv"
done

echo "| workload (ms per step, $cores cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')) |" \
     "$(for t in $counts; do printf '%s thr | ' "$t"; done)1 thr / most | 2 thr / most |"
echo "|---|$(for t in $counts; do printf -- '---|'; done)---|---|"
awk -F, -v counts="$counts" '
  { ms[$1 "," $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
  END {
    m = split(counts, ts, " ")
    for (i = 1; i <= n; ++i) {
      w = order[i]; line = "| " w " |"
      for (j = 1; j <= m; ++j) line = line sprintf(" %.1f |", ms[w "," ts[j]])
      one = ms[w ",1"]; two = ms[w ",2"]; most = ms[w "," ts[m]]
      line = line (one > 0 && most > 0 ? sprintf(" %.2fx |", one / most) : " - |")
      line = line (two > 0 && most > 0 ? sprintf(" %.2fx |", two / most) : " - |")
      print line
    }
  }' "$work/rows.csv"
