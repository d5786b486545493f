#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ with clang++ (ASan + UBSan), writes the seed corpus with
# make_seeds, runs every harness over its regression inputs (tests/fuzz/regress/<harness>/), then fuzzes each
# for FUZZ_SECONDS seconds from a fresh copy of its seeds. Exits non-zero on any finding, naming the harness;
# reproducers are copied to tests/fuzz/found/<harness>/ (see README.md).
#
#   bash tests/fuzz/run.sh                              # 20 s per harness
#   FUZZ_SECONDS=3600 FUZZ_ONLY="npy peft" bash tests/fuzz/run.sh
#
# Environment: FUZZ_SECONDS (20), FUZZ_BUILD (build-fuzz, relative to the repository root), FUZZ_ONLY
# (space-separated harness names; default all), FUZZ_CXX (clang++), FUZZ_FOUND (tests/fuzz/found),
# FUZZ_RSS_MB (2048), FUZZ_TIMEOUT (10), FUZZ_SEED (libFuzzer's -seed; unset: a random one; CI sets 1 so that a
# CI run is reproducible). On Debian 12 as root, missing packages (clang, its sanitizer and
# fuzzer runtimes, Eigen, nlohmann-json, zlib) are installed with apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-20}"
build="${FUZZ_BUILD:-build-fuzz}"
found="${FUZZ_FOUND:-tests/fuzz/found}"
rss_mb="${FUZZ_RSS_MB:-2048}"
timeout_s="${FUZZ_TIMEOUT:-10}"
cxx="${FUZZ_CXX:-clang++}"
seed_arg=()
[[ -n "${FUZZ_SEED:-}" ]] && seed_arg=(-seed="$FUZZ_SEED")

all=(safetensors npy idx peft lora_collection checkpoint manifest generator_config weights generator npy_xtensor png)
# Longest input the fuzzer generates (raised to the longest seed or regression input when that is longer).
declare -A max_len=([safetensors]=16384 [npy]=4096 [idx]=65536 [peft]=16384 [lora_collection]=32768
                    [checkpoint]=16384 [manifest]=4096 [generator_config]=4096 [weights]=32768
                    [generator]=2621440 [npy_xtensor]=4096 [png]=8192)
declare -A libs=([idx]="-lz" [png]="-lz")
read -r -a harnesses <<< "${FUZZ_ONLY:-${all[*]}}"
for h in "${harnesses[@]}"; do
  [[ -n "${max_len[$h]:-}" ]] || { echo "fuzz: unknown harness '$h' (known: ${all[*]})" >&2; exit 2; }
done

# --- tools -------------------------------------------------------------------------------------------
# Missing packages through cmake/install_deps.sh (the library's own, then these). libclang-rt-dev (the sanitizer
# and libFuzzer runtimes) is only recommended by clang, which that script does not install, so it is named.
extra=(libclang-rt-dev)
command -v "$cxx" > /dev/null 2>&1 || extra+=(clang)
bash "$root/cmake/install_deps.sh" "${extra[@]}"
if [[ "$cxx" == clang++ ]] && ! command -v clang++ > /dev/null 2>&1; then  # only a versioned name, e.g. clang++-14
  cxx="$(printf '%s\n' /usr/bin/clang++-[0-9]* | sort -V | tail -1)"
fi
command -v "$cxx" > /dev/null 2>&1 || { echo "fuzz: no clang++ found (set FUZZ_CXX)" >&2; exit 1; }

# --- build -------------------------------------------------------------------------------------------
common=(-std=c++20 -I include -I/usr/include/eigen3 -g)
fuzz_flags=('-fsanitize=fuzzer,address,undefined' -fno-sanitize-recover=undefined -O1)
seed_flags=(-O1)
mkdir -p "$build"
flags_now="$("$cxx" --version | head -1) | ${common[*]} | ${fuzz_flags[*]} | ${seed_flags[*]}"
if [[ "$(cat "$build/flags.txt" 2> /dev/null)" != "$flags_now" ]]; then
  rm -f "$build"/fuzz_* "$build"/make_seeds
  echo "$flags_now" > "$build/flags.txt"
fi

# True when $1 is missing or older than its source, the shared helpers or any library header.
stale() {
  local bin="$1" src="$2"
  [[ ! -x "$bin" ]] && return 0
  [[ "$src" -nt "$bin" ]] && return 0
  [[ -n "$(find include tests/fuzz -name '*.hpp' -newer "$bin" -print -quit)" ]]
}

build_start=$SECONDS
compile() {  # compile NAME SRC FLAGS...; one compiler at a time (the machine may be busy)
  local name="$1" src="$2"
  shift 2
  if stale "$build/$name" "$src"; then
    echo "fuzz: building $name"
    local t=$SECONDS
    "$cxx" "${common[@]}" "$@" "$src" -o "$build/$name.tmp"
    mv "$build/$name.tmp" "$build/$name"
    echo "fuzz: built $name in $((SECONDS - t)) s"
  fi
}
compile make_seeds tests/fuzz/make_seeds.cpp "${seed_flags[@]}" -lz
for h in "${harnesses[@]}"; do
  # shellcheck disable=SC2086
  compile "fuzz_$h" "tests/fuzz/fuzz_$h.cpp" "${fuzz_flags[@]}" ${libs[$h]:-}
done
echo "fuzz: build took $((SECONDS - build_start)) s"

# --- seeds -------------------------------------------------------------------------------------------
rm -rf "$build/seeds"
"$build/make_seeds" "$build/seeds"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
summary=()

# Copies libFuzzer's artifacts (crash-*, leak-*, timeout-*, oom-*, slow-unit-*) of harness $1 to found/.
keep_findings() {
  local h="$1" f
  shopt -s nullglob
  for f in "$build/artifacts/$h"/*; do
    mkdir -p "$found/$h"
    cp "$f" "$found/$h/"
    echo "fuzz: $h: reproducer kept at $found/$h/$(basename "$f")"
  done
  shopt -u nullglob
}

# The report of a failed run, short: the error line, the top of the stack, the summary (frames cut to 240 chars).
show_error() {
  grep -E "ERROR|runtime error:|deadly signal|^ *#[0-9] |^SUMMARY" "$1" | head -n 16 | cut -c1-240 >&2 || true
}

# --- regression inputs ---------------------------------------------------------------------------------
for h in "${harnesses[@]}"; do
  dir="tests/fuzz/regress/$h"
  shopt -s nullglob
  inputs=("$dir"/*)
  shopt -u nullglob
  ((${#inputs[@]})) || continue
  mkdir -p "$build/logs" "$build/artifacts/$h"
  log="$build/logs/$h.regress.log"
  if "$build/fuzz_$h" -rss_limit_mb="$rss_mb" -timeout="$timeout_s" \
       -artifact_prefix="$build/artifacts/$h/" "${inputs[@]}" > "$log" 2>&1; then
    echo "fuzz: $h: ${#inputs[@]} regression input(s) ok"
  else
    echo "fuzz: $h: FAILED on a regression input (log: $log)" >&2
    grep "^Running:" "$log" | tail -n 1 >&2 || true  # the input that failed
    show_error "$log"
    failed+=("$h (regression)")
  fi
done

# --- fuzzing -------------------------------------------------------------------------------------------
((seconds > 0)) || harnesses=()  # FUZZ_SECONDS=0: regression inputs only (libFuzzer reads 0 as "no limit")
for h in "${harnesses[@]}"; do
  corpus="$build/corpus/$h"
  rm -rf "$corpus" "$build/artifacts/$h"
  mkdir -p "$corpus" "$build/artifacts/$h" "$build/logs"
  cp "$build/seeds/$h"/* "$corpus/"
  shopt -s nullglob
  extra=("tests/fuzz/regress/$h"/*)
  shopt -u nullglob
  ((${#extra[@]} == 0)) || cp "${extra[@]}" "$corpus/"
  len="${max_len[$h]}"
  longest="$(find "$corpus" -type f -printf '%s\n' | sort -n | tail -1)"
  ((longest > len)) && len="$longest"
  log="$build/logs/$h.log"
  echo "fuzz: $h: fuzzing for $seconds s (max_len $len)"
  t=$SECONDS
  rc=0
  "$build/fuzz_$h" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout="$timeout_s" -max_len="$len" \
    -dict=tests/fuzz/cpdiff.dict -print_final_stats=1 "${seed_arg[@]}" -artifact_prefix="$build/artifacts/$h/" "$corpus" \
    > "$log" 2>&1 || rc=$?
  took=$((SECONDS - t))
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  [[ -n "$execs" ]] || execs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)"
  [[ -n "$execs" ]] || execs="?"
  if ((rc == 0)); then
    result="ok"
  else
    result="FINDING (exit $rc; log $log)"
    failed+=("$h")
    show_error "$log"
    keep_findings "$h"
  fi
  summary+=("$(printf '%-18s %12s execs %5d s  %s' "$h" "$execs" "$took" "$result")")
  echo "${summary[-1]}"
done

if ((${#summary[@]})); then
  echo
  echo "fuzz: summary (FUZZ_SECONDS=$seconds)"
  printf '  %s\n' "${summary[@]}"
fi
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings"
