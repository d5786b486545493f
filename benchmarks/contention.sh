#!/usr/bin/env bash
# A run beside another CPU-bound process (issue 17): each workload of cpdiff_bench_models timed alone, then
# beside one busy process (a shell loop, like a compile sharing the machine), with OpenMP using every core.
# Losing one core of C should cost at most about C/(C-1) (2x on 2 cores); the target is at most 2.5x. OpenMP
# threads that spin-wait at barriers while a partner is descheduled make it far worse (14x was measured).
# Each line is run once as the programs run by default, and once per extra environment given with --env
# (e.g. --env GOMP_SPINCOUNT=300000: libgomp's own default, which the programs replace, core/openmp_wait.hpp).
# Two neighbours: a shell loop (an equal share of a core) and a compile loop started with `nice -n 10` (g++ on
# the umbrella header, as a build beside a run; under libgomp's default spin this was the worst case measured).
# Usage: bash benchmarks/contention.sh [--build DIR] [--filter REGEX] [--env VAR=VALUE ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
filter='ae_example_train_step|unet_example_train_step|style_ae_example_mlp_train_step|unet_paper_sampling_step'
envs=("")
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    *) echo "contention.sh: unknown argument '$1' (expected --build DIR, --filter REGEX or --env VAR=VALUE)" >&2
       exit 2 ;;
  esac
done
bench=$build/benchmarks/cpdiff_bench_models
if [[ ! -x $bench ]]; then
  echo "contention.sh: $bench is missing: build it with 'cmake --build $build --target cpdiff_bench_models'" >&2
  exit 1
fi
cores=$(nproc)
busy_pid=
stop_busy() {
  # the neighbour runs in its own session: kill its whole process group (the loop and its compiler)
  if [[ -n $busy_pid ]]; then kill -- -"$busy_pid" 2> /dev/null || true; wait "$busy_pid" 2> /dev/null || true; fi
  busy_pid=
}

# ms per step of each workload: "name ms" lines.
times() {
  local extra=$1
  env $extra OMP_NUM_THREADS="$cores" "$bench" --benchmark_filter="$filter" --benchmark_format=csv 2> /dev/null | awk -F, '$1 ~ /^"/ { gsub(/"/, "", $1); print $1, $3 }'
}

work=$(mktemp -d)
trap 'stop_busy; rm -rf "$work"' EXIT
echo '#include <cpdiff/cpdiff.hpp>' > "$work/umbrella.cpp"
start_busy() {
  case $1 in
    loop) setsid bash -c 'while :; do :; done' & ;;
    compile) setsid nice -n 10 bash -c 'while :; do g++ -std=c++20 -O2 -fopenmp -I"$0/include" -I/usr/include/eigen3 \
                                   -c "$1/umbrella.cpp" -o "$1/umbrella.o"; done' "$root" "$work" & ;;
  esac
  busy_pid=$!
  sleep 1
}

echo "| workload ($cores threads) | environment | neighbour | alone ms | beside it ms | slowdown |"
echo "|---|---|---|---|---|---|"
for extra in "${envs[@]}"; do
  for neighbour in loop compile; do
    alone=$(times "$extra")
    start_busy "$neighbour"
    beside=$(times "$extra")
    stop_busy
    join <(sort <<< "$alone") <(sort <<< "$beside") |
      awk -v e="${extra:-program default}" -v b="$neighbour" '{ n = $1; sub(/\/min_time.*/, "", n)
        printf "| %s | %s | %s | %.1f | %.1f | %.2fx |\n", n, e, b, $2, $3, $3 / $2 }'
  done
done
