#!/usr/bin/env bash
# The device check of issue 6, one prepared script for a machine with an NVIDIA GPU (H100/H200, sm_90):
# builds the CUDA tests and benchmarks, runs the GPU tests (GPU against the CPU reference), then times the
# same workloads with the cpu backend, the cuda backend and PyTorch. Meant to finish in under 8 minutes.
# Usage: bash benchmarks/gpu_check.sh [build-dir]     (results also land in $OUT when that is set)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpu}
out=${OUT:-$build/gpu_check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCPDIFF_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" -DCPDIFF_BUILD_EXAMPLES=OFF > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target cpdiff_test_cuda_cuda_core cpdiff_test_cuda_cuda_layers cpdiff_bench_gpu \
      > "$out/build.log" 2>&1 || { grep -m 20 -E "error" "$out/build.log"; exit 1; }
status=0
for t in cuda_core cuda_layers; do
  echo "== GPU test $t"
  "$build/tests/cpdiff_test_cuda_$t" 2>&1 | tee "$out/test_$t.log" | tail -5 || status=1
done
echo "== cpdiff benchmarks (cpu and cuda backends)"
"$build/benchmarks/cpdiff_bench_gpu" --benchmark_min_time=2 2>&1 | tee "$out/bench_gpu.txt"
echo "== PyTorch on the same workloads"
python3 "$root/benchmarks/torch_reference.py" --device cuda 2>&1 | tee "$out/torch_cuda.txt"
exit $status
