#!/usr/bin/env bash
# The device check of issue 6, one prepared script for a machine with an NVIDIA GPU (H100/H200, sm_90):
# builds the CUDA tests and benchmarks (or takes them prebuilt), runs the GPU tests (GPU against the CPU
# reference), then times the same workloads with the cpu backend, the cuda backend and PyTorch.
# Meant to finish in under 8 minutes.
#
# Usage: bash benchmarks/gpu_check.sh [build-dir]      (results also land in $OUT when that is set)
#   CPDIFF_GPU_KIT=dir   skip the build: dir holds cpdiff_test_cuda, cpdiff_bench_gpu and, in dir/lib, the
#                        shared libraries they need beyond the CUDA toolkit's (see benchmarks/gpu_kit.sh, which
#                        makes such a kit on a machine with nvcc but no GPU: a GPU machine then needs no
#                        Eigen, Catch2 or Google Benchmark).
#   CPDIFF_SANITIZE=1    also run compute-sanitizer (memcheck) over the core test program.
#   CPDIFF_GPU_BENCH=0   leave out the timings (cpdiff cuda / cpu, PyTorch).
#   CPDIFF_GPU_EXAMPLE="flags"  also run the main example with its models on the GPU
#                        (cpdiff_cond_pdiff_fashion_cuda) with these flags, into $out/example.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpu}
out=${OUT:-$build/gpu_check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv | tee "$out/gpu.txt"
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" | tee -a "$out/gpu.txt"

if [[ -n "${CPDIFF_GPU_KIT:-}" ]]; then
  kit=$(cd "$CPDIFF_GPU_KIT" && pwd)
  tests_dir=$kit bench_dir=$kit example_dir=$kit
  # The kit's own libraries first, then the CUDA toolkit's cuBLAS (system install or PyTorch's wheel).
  cublas_dir=$(python3 -c 'import nvidia.cublas as m; print(list(m.__path__)[0] + "/lib")' 2>/dev/null || true)
  # NCCL (cpdiff_test_cuda's test_cuda_nccl.cu) likewise: the toolkit's, or PyTorch's wheel's (218 MB: not in the kit)
  nccl_dir=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0] + "/lib")' 2>/dev/null || true)
  export LD_LIBRARY_PATH="$kit/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${cublas_dir}:${nccl_dir}:${LD_LIBRARY_PATH:-}"
  for b in "$kit"/cpdiff_*; do
    if ldd "$b" | grep -q "not found"; then echo "missing libraries for $b:"; ldd "$b" | grep "not found"; exit 1; fi
  done
else
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCPDIFF_ENABLE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" -DCPDIFF_BUILD_EXAMPLES=ON > "$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; exit 1; }
  targets=cpdiff_test_cuda  # every tests/cuda/test_*.cu, one program (tests/CMakeLists.txt)
  [[ -n "${CPDIFF_GPU_EXAMPLE:-}" ]] && targets="$targets cpdiff_cond_pdiff_fashion_cuda"
  cmake --build "$build" -j "$(nproc)" --target $targets cpdiff_bench_gpu cpdiff_bench_models > "$out/build.log" 2>&1 ||
    { grep -m 20 -E "error" "$out/build.log"; exit 1; }
  tests_dir=$build/tests bench_dir=$build/benchmarks example_dir=$build/examples
fi

status=0
for file in "$root"/tests/cuda/test_*.cu; do
  name=$(basename "$file" .cu)  # one run per test file, by Catch's filename tag or the file's own filter line
  filter=$(sed -n 's|^// catch-filter: \([^ ]*\).*|\1|p' "$file" | head -1)
  filter=${filter:-[#$name]}
  t=$tests_dir/cpdiff_test_cuda
  echo "== GPU test $name"
  start=$(date +%s%N)
  "$t" -# -w NoTests "$filter" --durations yes > "$out/$name.log" 2>&1
  rc=$?
  grep -E "^[0-9.]+ s: " "$out/$name.log" | sort -rn | head -5
  tail -4 "$out/$name.log"
  echo "   rc $rc, $(( ($(date +%s%N) - start) / 1000000 )) ms"
  [[ $rc -eq 0 ]] || status=1
done

if [[ -n "${CPDIFF_GPU_EXAMPLE:-}" ]]; then
  echo "== the main example on the GPU: cpdiff_cond_pdiff_fashion_cuda $CPDIFF_GPU_EXAMPLE"
  start=$(date +%s%N)
  data=()
  [[ -d "$example_dir/fashion-mnist" ]] && data=(--data "$example_dir/fashion-mnist")  # a kit's copy
  # shellcheck disable=SC2086
  "$example_dir/cpdiff_cond_pdiff_fashion_cuda" $CPDIFF_GPU_EXAMPLE "${data[@]}" --out "$out/example" > "$out/example.log" 2>&1
  rc=$?
  grep -vE "^ +step |^step " "$out/example.log" | tail -60
  echo "   rc $rc, $(( ($(date +%s%N) - start) / 1000000 )) ms"
  [[ $rc -eq 0 ]] || status=1
  rm -rf "$out/example/adapters"  # hundreds of small folders; the report and figures come back
fi
if [[ "${CPDIFF_GPU_BENCH:-1}" != 0 ]]; then
  echo "== cpdiff, cuda backend"
  "$bench_dir/cpdiff_bench_gpu" --benchmark_out="$out/bench_gpu.json" --benchmark_out_format=json 2>&1 |
    tee "$out/bench_gpu.txt"
  echo "== cpdiff, cpu backend (the same workloads, $(nproc) threads)"
  "$bench_dir/cpdiff_bench_models" --benchmark_out="$out/bench_cpu.json" --benchmark_out_format=json 2>&1 |
    tee "$out/bench_cpu.txt"
  echo "== PyTorch on the same workloads"
  python3 "$root/benchmarks/torch_reference.py" --device cuda 2>&1 | tee "$out/torch_cuda.txt"
  timeout 120 python3 "$root/benchmarks/torch_reference.py" --device cpu --steps 5 2>&1 | tee "$out/torch_cpu.txt"
fi

if [[ "${CPDIFF_SANITIZE:-0}" == 1 ]] && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer memcheck over the core GPU tests"
  timeout 120 compute-sanitizer --tool memcheck --print-limit 20 "$tests_dir/cpdiff_test_cuda" -# "[#test_cuda_core]" \
    > "$out/sanitizer.log" 2>&1
  echo "   rc $?"; tail -6 "$out/sanitizer.log"
fi
exit $status
