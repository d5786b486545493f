#!/usr/bin/env bash
# The sanitizer job (issue 15), run by CI after the README's test command: the readers' and trainers' tests
# (areas io, data, train, pipeline, optim) compiled by clang++ with AddressSanitizer and UndefinedBehaviorSanitizer,
# and run. Any sanitizer report fails the test that triggered it (-fno-sanitize-recover, halt_on_error), so a
# heap overflow, a use after free, a signed overflow or an out-of-range float-to-int cast in those paths fails CI.
# It is also the check that the library and its tests build with clang (the main build uses g++).
#   CPDIFF_SANITIZE_AREAS="io data" narrows the areas; CPDIFF_SANITIZE_BUILD_DIR moves the build folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# libclang-rt-dev: the sanitizer runtimes, only recommended by clang (install_deps.sh skips recommendations)
bash "$root/cmake/install_deps.sh" clang libclang-rt-dev libomp-dev
build=${CPDIFF_SANITIZE_BUILD_DIR:-$root/build-sanitize}
areas=${CPDIFF_SANITIZE_AREAS:-io data train pipeline optim}
jobs=${CPDIFF_JOBS:-$(nproc)}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1: sanitized code at -O0 runs the training tests several times slower; no examples or benchmarks.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
      -DCPDIFF_BUILD_EXAMPLES=OFF -DCPDIFF_BUILD_BENCHMARKS=OFF -DCPDIFF_MPI=OFF -DCPDIFF_ENABLE_CUDA=OFF > /dev/null
targets=()
regex=()
for area in $areas; do
  for t in $(ninja -C "$build" -t targets all | sed -n "s/^\(cpdiff_test_${area}_[0-9]*\): phony.*/\1/p"); do
    targets+=("$t")
  done
  regex+=("^$area/")
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "sanitize.sh: no test programs found for the areas '$areas' in $build" >&2
  exit 1
fi
echo "sanitize.sh: building ${targets[*]} with clang++ $flags"
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
pattern=$(IFS='|'; echo "${regex[*]}")
# Tests that read the example's output need the example, which this build leaves out.
ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
  ctest --test-dir "$build" --output-on-failure -j "$jobs" -R "$pattern" -E "example" --no-tests=error
