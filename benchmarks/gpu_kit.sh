#!/usr/bin/env bash
# Builds the CUDA test programs, the GPU benchmark, the CPU one of the same workloads (bench_models) and the
# main example on the GPU and on the CPU (cpdiff_cond_pdiff_fashion_cuda, cpdiff_cond_pdiff_fashion) on a machine with nvcc (no GPU needed) into a kit
# folder that a GPU machine without Eigen, Catch2 or Google Benchmark can run with
#   CPDIFF_GPU_KIT=<kit> bash benchmarks/gpu_check.sh
# The host code is compiled for x86-64-v3 (AVX2/FMA), not -march=native, so it runs on another CPU.
# The kit carries libcudart, libbenchmark and libgomp; cuBLAS and NCCL (hundreds of MB) come from the GPU machine;
# and Fashion-MNIST for the example (kit/fashion-mnist, which gpu_check.sh passes as --data).
# Usage: bash benchmarks/gpu_kit.sh [kit-dir=.gpukit] [build-dir=build-gpukit]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kit=${1:-$root/.gpukit}
build=${2:-$root/build-gpukit}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCPDIFF_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DCPDIFF_MARCH=x86-64-v3 -DCPDIFF_BUILD_EXAMPLES=ON > /dev/null
targets=cpdiff_test_cuda  # every tests/cuda/test_*.cu, one program (tests/CMakeLists.txt)
cmake --build "$build" -j "$(nproc)" --target $targets cpdiff_bench_gpu cpdiff_bench_models \
  cpdiff_cond_pdiff_fashion_cuda cpdiff_cond_pdiff_fashion
rm -rf "$kit"; mkdir -p "$kit/lib"
for t in $targets; do cp "$build/tests/$t" "$kit/"; done
cp "$build/benchmarks/cpdiff_bench_gpu" "$build/benchmarks/cpdiff_bench_models" "$build/examples/cpdiff_cond_pdiff_fashion_cuda" \
  "$build/examples/cpdiff_cond_pdiff_fashion" "$kit/"
for lib in libcudart.so.13 libbenchmark.so.1debian libgomp.so.1; do
  # awk reads to the end (no early exit): under pipefail a SIGPIPE'd ldd would fail the script
  path=$(for b in "$kit"/cpdiff_*; do ldd "$b"; done | awk -v l="$lib" '$1 == l && !p { p = $3 } END { print p }')
  if [[ -n "$path" ]]; then cp -L "$path" "$kit/lib/"; fi
done
# The example's data (30 MB): a GPU machine has no dataset-fashion-mnist package.
fm=/usr/share/datasets/fashion-mnist
if [[ -d "$fm" ]]; then cp -r "$fm" "$kit/fashion-mnist"; fi
ls -la "$kit" "$kit/lib"
