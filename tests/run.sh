#!/usr/bin/env bash
# The README's test command: install missing packages, build, run every test, then install the
# library into a prefix and build an outside project against it (find_package(cpdiff)).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/cmake/install_deps.sh" libopenmpi-dev openmpi-bin
build=${CPDIFF_BUILD_DIR:-$root/build}
jobs=${CPDIFF_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCPDIFF_MPI=ON
# The programs the tests need and the CPU benchmarks; `cmake --build "$build"` builds the CUDA example and GPU
# benchmark too.
cmake --build "$build" -j "$jobs" --target cpdiff_test_build
# ctest runs the test programs side by side, one core each: OpenMP teams of two in two programs at once
# would spin-wait on each other's cores (minutes instead of seconds).
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --test-dir "$build" --output-on-failure -j "$jobs"
# The consumer project: proves the installed package config works.
cmake --install "$build" --prefix "$build/_install" > /dev/null
cmake -S "$root/tests/consumer" -B "$build/_consumer" -G Ninja -DCMAKE_PREFIX_PATH="$build/_install"
cmake --build "$build/_consumer"
"$build/_consumer/cpdiff_consumer"
# The CUDA consumer (cpdiff_cuda_target() from the installed package), where nvcc is: built, and run (it says
# so when there is no GPU to run it on).
if [[ -x /usr/local/cuda/bin/nvcc ]] || command -v nvcc > /dev/null; then
  cmake -S "$root/tests/consumer_cuda" -B "$build/_consumer_cuda" -G Ninja -DCMAKE_PREFIX_PATH="$build/_install" \
        -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" -DCMAKE_CUDA_ARCHITECTURES=90
  cmake --build "$build/_consumer_cuda"
  "$build/_consumer_cuda/cpdiff_consumer_cuda"
fi
