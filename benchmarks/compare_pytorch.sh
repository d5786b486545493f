#!/usr/bin/env bash
# cpdiff beside PyTorch on this machine (issue 17): the same workloads, at the same sizes and thread count, timed in
# steady state by cpdiff's Google Benchmark programs and by benchmarks/torch_reference.py (Debian's python3-torch,
# CPU), printed as one Markdown table with the command line and the machine, for the README.
#
# Workloads (cpdiff program and benchmark | PyTorch, torch_reference.py's name; both float32):
#   ae_medium      p-diff medium parameter AE, n = 73,728 -> latent [4, 117], batch 16: one training step
#                  (forward_train with input noise 0.001, latent noise 0.1 and clamp; MSE; backward; AdamW)
#                  cpdiff_bench_models ae_medium_train_step/cpu | ae_medium_train_step
#   unet_train     p-diff U-Net (64..512 channels, learned timestep table), latent [4, 117] + condition 512,
#                  batch 16: one DDPM training step (draw t and eps, x_t, forward, MSE on eps, backward, AdamW)
#                  cpdiff_bench_models unet_paper_train_step/cpu | unet_paper_train_step
#   unet_sample    the same U-Net, batch 10: draw t and eps, x_t, one denoiser forward (no gradients)
#                  cpdiff_bench_models unet_paper_sampling_step/cpu | unet_paper_sampling_step
#   style_ae_mlp   the appendix (style) AE, models::style_autoencoder<pipeline::generator_autoencoder> (channels
#   style_ae_vit   8, 16, 16, 8, kernel 5, latent 64; Tanh latent, clamp, linear skip; BatchNorm on batch
#                  statistics) on LoRA vectors of n = 3,688 (the MLP base's) / 24,576 (the ViT base's), batch 64:
#                  one training step as ae_medium's
#                  cpdiff_bench_models style_ae_example_{mlp,vit}_train_step/cpu | the same names
#   merge_r1/4/16  LoRA merge W += (16 / r) B A into 48 matrices W [768, 768] (B [768, r], A [r, 768])
#                  cpdiff_bench_lora_merge lora_merge_48x768x768/r:R (nn::lora_linear::merge: a copy of A and B
#                  for unmerge, then one GEMM into W; the unmerges between iterations are not timed) |
#                  W.addmm_(B, A, alpha=s) in place, the same 48 products
#   vit_finetune   the example's ViT (HF layout: pre-LayerNorm blocks, exact-erf GELU, LayerNorm eps 1e-12; 28x28x1
#                  images, patch 7, width 64, 6 layers, 4 heads, MLP 128) with LoRA r = 16, alpha 32, dropout 0.1
#                  on query / value, batch 128: forward, cross-entropy, backward (d input through every layer),
#                  AdamW (lr 1e-3) on the LoRA parameters only
#                  cpdiff_bench_vit BM_vit_finetune_step | vit_finetune_step
# Differences left: the random draws (cpdiff's Philox streams, torch's generator: same distributions, other
# values) and the initial weights; torch's AdamW for-loop implementation against cpdiff's one pass over the
# store; the merge's copy of A and B on the cpdiff side (48 x 2 x 768 x r floats, next to 48 x 768 x 768 read and
# written); PyTorch runs from Python (its per-op dispatch overhead is part of its figure, as it is for a user).
#
# Steady state on both sides: each model is built once and one (cpdiff) or --warmup (PyTorch) steps run untimed
# before the timing. cpdiff's figure is Google Benchmark's real time per iteration: bench_models registers its
# own MinTime (2 s for ae_medium and unet_train, 1 s for the others), which overrides --min-time; bench_vit and
# bench_lora_merge run for --min-time seconds. PyTorch's is the mean of --steps steps. With --repetitions R both
# sides report the median of R such timings. The workloads run one after another, each cpdiff figure next to
# its PyTorch one (on a shared machine both sides then see about the same neighbours).
#
# Same conditions: OMP_NUM_THREADS = T for both programs and torch.set_num_threads(T); OPENBLAS_NUM_THREADS and
# MKL_NUM_THREADS = T too. GOMP_SPINCOUNT=10000 (what cpdiff's programs set for themselves, core/openmp_wait.hpp)
# for both, unless you set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself (then yours is used for both).
# PyTorch's BLAS: Debian's python3-torch calls whatever libblas.so.3 the system's alternative points to; with
# only libblas3 (what install_deps.sh's --no-install-recommends leaves) that is the unoptimised reference BLAS,
# single-threaded (about 2-3 GFLOP/s here), which is no fair opponent for float matrix products. --torch-blas
# openblas (the default) runs the PyTorch side with OpenBLAS (Debian's libopenblas0-openmp, the OpenMP build,
# so that OMP_NUM_THREADS governs it as it does torch): the installed one if there is one, else the package is
# fetched with `apt-get download` and unpacked into build-bench/openblas-openmp, and put on LD_LIBRARY_PATH of the
# PyTorch process only (the system's alternative is left alone). --torch-blas system uses the system's libblas.so.3.
# The table's header says which BLAS the PyTorch process loaded.
#
# Usage: bash benchmarks/compare_pytorch.sh [--threads T] [--steps N] [--warmup N] [--min-time S]
#            [--repetitions R] [--only LIST] [--cpdiff-build DIR] [--torch-blas openblas|system]
#   --threads T         threads of both sides (default: nproc)
#   --steps N           PyTorch's timed steps per workload (default 20); --warmup N its untimed ones (default 2)
#   --min-time S        Google Benchmark's --benchmark_min_time where no MinTime is registered (default 2)
#   --repetitions R     R timings per workload and side, the median reported (default 1)
#   --only LIST         comma-separated workload keys or prefixes: ae_medium, unet_train, unet_sample, style_ae_mlp,
#                       style_ae_vit, merge_r1, merge_r4, merge_r16, vit_finetune ("merge", "unet", "style_ae": groups)
#   --cpdiff-build DIR  a build folder holding benchmarks/cpdiff_bench_{models,vit,lora_merge}; default: configure
#                       build-bench/ (Ninja, Release, no tests, examples, CUDA or MPI) and build only the programs
#                       the selected workloads need
# Run it on an otherwise idle machine for figures to publish.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmdline="benchmarks/compare_pytorch.sh${*:+ $*}"
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # (nproc itself honours OMP_NUM_THREADS)
threads=$cores
steps=20
warmup=2
min_time=2
reps=1
only=
build=
torch_blas=openblas
python=/usr/bin/python3
die() { echo "compare_pytorch.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --min-time) min_time=${2:?}; shift 2 ;;
    --repetitions) reps=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --cpdiff-build) build=${2:?}; shift 2 ;;
    --torch-blas) torch_blas=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for v in threads steps reps; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v/reps/repetitions} takes a positive integer"; done
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup takes an integer"
[[ $min_time =~ ^[0-9]*\.?[0-9]+$ ]] || die "--min-time takes a number of seconds"
[[ $torch_blas == openblas || $torch_blas == system ]] || die "--torch-blas takes openblas or system"

# key | program | benchmark name (the start of Google Benchmark's name) | torch_reference.py name | table label
workloads=(
  "ae_medium|models|ae_medium_train_step/cpu|ae_medium_train_step|p-diff medium AE training step (n = 73,728, batch 16)"
  "unet_train|models|unet_paper_train_step/cpu|unet_paper_train_step|U-Net DDPM training step (latent [4, 117] + condition 512, batch 16)"
  "unet_sample|models|unet_paper_sampling_step/cpu|unet_paper_sampling_step|U-Net sampling step (denoiser forward, batch 10)"
  "style_ae_mlp|models|style_ae_example_mlp_train_step/cpu|style_ae_example_mlp_train_step|appendix style AE training step (n = 3,688, batch 64)"
  "style_ae_vit|models|style_ae_example_vit_train_step/cpu|style_ae_example_vit_train_step|appendix style AE training step (n = 24,576, batch 64)"
  "merge_r1|lora_merge|lora_merge_48x768x768/r:1/|lora_merge_48x768x768/r:1|LoRA merge, 48 x (768 x 768), r = 1"
  "merge_r4|lora_merge|lora_merge_48x768x768/r:4/|lora_merge_48x768x768/r:4|LoRA merge, 48 x (768 x 768), r = 4"
  "merge_r16|lora_merge|lora_merge_48x768x768/r:16/|lora_merge_48x768x768/r:16|LoRA merge, 48 x (768 x 768), r = 16"
  "vit_finetune|vit|BM_vit_finetune_step/|vit_finetune_step|ViT LoRA fine-tuning step (r = 16 on query/value, batch 128)"
)
# --only: a key selects itself; anything else, the keys it begins ("merge": the three ranks).
matches() {  # matches KEY ITEM
  local w
  for w in "${workloads[@]}"; do [[ ${w%%|*} == "$2" ]] && { [[ $1 == "$2" ]]; return; }; done
  [[ -n $2 && $1 == "$2"* ]]
}
selected=()
IFS=, read -ra wanted <<< "$only"
for w in "${workloads[@]}"; do
  if [[ -z $only ]]; then selected+=("$w"); continue; fi
  for s in "${wanted[@]}"; do matches "${w%%|*}" "$s" && { selected+=("$w"); break; }; done
done
for s in "${wanted[@]}"; do
  [[ -n $s ]] || continue
  hit=0
  for w in "${workloads[@]}"; do matches "${w%%|*}" "$s" && hit=1; done
  ((hit)) || die "--only: no workload key is or starts with '$s' (keys: ae_medium unet_train unet_sample style_ae_mlp style_ae_vit merge_r1 merge_r4 merge_r16 vit_finetune)"
done
((${#selected[@]})) || die "--only: no workload selected"
programs=()
for w in "${selected[@]}"; do
  IFS='|' read -r _ prog _ _ _ <<< "$w"
  [[ " ${programs[*]} " == *" cpdiff_bench_$prog "* ]] || programs+=("cpdiff_bench_$prog")
done

# PyTorch (and, when we build, cpdiff's build dependencies), as the project installs them.
if [[ -z $build ]] || ! "$python" -c 'import torch' 2> /dev/null; then
  bash "$root/cmake/install_deps.sh" python3-torch >&2
fi
"$python" -c 'import torch' || die "$python cannot import torch"

# cpdiff's programs.
if [[ -z $build ]]; then
  build=$root/build-bench
  if [[ ! -f $build/CMakeCache.txt ]]; then
    echo "compare_pytorch.sh: configuring $build" >&2
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCPDIFF_BUILD_TESTS=OFF \
      -DCPDIFF_BUILD_EXAMPLES=OFF -DCPDIFF_ENABLE_CUDA=OFF -DCPDIFF_MPI=OFF > "$build/configure.log" 2>&1 ||
      { cat "$build/configure.log" >&2; die "cmake configure failed"; }
  fi
  echo "compare_pytorch.sh: building ${programs[*]} in $build" >&2
  cmake --build "$build" --target "${programs[@]}" >&2
fi
for p in "${programs[@]}"; do
  [[ -x $build/benchmarks/$p ]] || die "$build/benchmarks/$p is missing: cmake --build $build --target $p"
done

# PyTorch's BLAS.
blas_dir=
blas_source="the system's libblas.so.3"
if [[ $torch_blas == openblas ]]; then
  blas_dir=/usr/lib/x86_64-linux-gnu/openblas-openmp
  blas_source="the installed libopenblas0-openmp, on LD_LIBRARY_PATH"
  if [[ ! -e $blas_dir/libblas.so.3 ]]; then
    blas_source="libopenblas0-openmp unpacked into build-bench/openblas-openmp, on LD_LIBRARY_PATH"
    blas_dir=$root/build-bench/openblas-openmp/usr/lib/x86_64-linux-gnu/openblas-openmp
    if [[ ! -e $blas_dir/libblas.so.3 ]]; then
      echo "compare_pytorch.sh: fetching libopenblas0-openmp (apt-get download) into $root/build-bench/openblas-openmp" >&2
      mkdir -p "$root/build-bench/openblas-openmp"
      fetch=$(mktemp -d)
      chmod 755 "$fetch"
      if (cd "$fetch" && apt-get download libopenblas0-openmp > /dev/null 2>&1) && ls "$fetch"/*.deb > /dev/null 2>&1; then
        dpkg -x "$fetch"/libopenblas0-openmp_*.deb "$root/build-bench/openblas-openmp"
      fi
      rm -rf "$fetch"
    fi
    if [[ ! -e $blas_dir/libblas.so.3 ]]; then
      echo "compare_pytorch.sh: no OpenBLAS (apt-get download libopenblas0-openmp failed): PyTorch runs with the system's BLAS" >&2
      blas_dir=
      blas_source="the system's libblas.so.3: no OpenBLAS could be fetched"
    fi
  fi
fi

export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
spin_note="OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-} (yours)"
if [[ -z ${OMP_WAIT_POLICY:-} && -z ${GOMP_SPINCOUNT:-} ]]; then
  export GOMP_SPINCOUNT=10000
  spin_note="GOMP_SPINCOUNT=10000"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gb_args=(--benchmark_format=json --benchmark_min_time="$min_time")
((reps > 1)) && gb_args+=(--benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true)
torch_env=()
[[ -n $blas_dir ]] && torch_env=(env "LD_LIBRARY_PATH=$blas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

for w in "${selected[@]}"; do
  IFS='|' read -r key prog bench tname _ <<< "$w"
  echo "compare_pytorch.sh: $key: cpdiff ($prog)..." >&2
  # The filter: the benchmark's name from its start, regex characters escaped.
  filter="^$(sed 's/[][\\.^$*+?(){}|]/\\&/g' <<< "$bench")"
  "$build/benchmarks/cpdiff_bench_$prog" --benchmark_filter="$filter" "${gb_args[@]}" > "$work/$key.json" \
    2> "$work/$key.err" || { cat "$work/$key.err" >&2; die "cpdiff_bench_$prog failed"; }
  echo "compare_pytorch.sh: $key: PyTorch..." >&2
  "${torch_env[@]}" "$python" "$root/benchmarks/torch_reference.py" --device cpu --threads "$threads" --steps "$steps" \
    --warmup "$warmup" --repeats "$reps" --only "$tname" > "$work/$key.torch" 2> "$work/$key.torch.err" ||
    { cat "$work/$key.torch.err" >&2; die "torch_reference.py failed"; }
  printf '%s\n' "$w" >> "$work/selected"
done

cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null || true)
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null || true)
march=$(sed -n 's/^CPDIFF_MARCH:[A-Z]*=//p' "$build/CMakeCache.txt" 2> /dev/null || true)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
cxx_version=unknown
[[ -n $cxx ]] && cxx_version=$("$cxx" --version 2> /dev/null | head -1)
torch_pkg=$(dpkg-query -W -f='${Version}' python3-torch 2> /dev/null || echo "not from apt")
export CMP_WORK="$work" CMP_REPS="$reps" CMP_CMDLINE="$cmdline" CMP_NPROC="$cores" CMP_THREADS="$threads" \
  CMP_CPU="$cpu_model" CMP_SPIN="$spin_note" CMP_CXX="$cxx_version" CMP_BUILD="${build_type:-?}${march:+, -march=$march}" \
  CMP_STEPS="$steps" CMP_WARMUP="$warmup" CMP_MIN_TIME="$min_time" CMP_BLAS_SOURCE="$blas_source" \
  CMP_TORCH_PKG="$torch_pkg"

"$python" - << 'EOF'
import json, os, sys
E = os.environ
work, reps = E["CMP_WORK"], int(E["CMP_REPS"])
scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def cpdiff_ms(key):
    with open(os.path.join(work, key + ".json")) as f:
        runs = json.load(f)["benchmarks"]
    if reps > 1:
        runs = [r for r in runs if r.get("aggregate_name") == "median"]
    if len(runs) != 1:
        sys.exit(f"compare_pytorch.sh: {key}: expected one cpdiff figure, got {len(runs)}")
    return runs[0]["real_time"] * scale[runs[0]["time_unit"]]


def torch_ms(key):
    info, ms = {}, None
    with open(os.path.join(work, key + ".torch")) as f:
        for line in f:
            w = line.split()
            if w and w[0] == "torch-info":
                info = dict(x.split("=", 1) for x in w[1:])
            elif len(w) == 4 and w[0] == "torch":
                ms = float(w[3])
    if ms is None:
        sys.exit(f"compare_pytorch.sh: {key}: no PyTorch figure")
    return ms, info


def fmt(ms):
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


rows, info = [], {}
with open(os.path.join(work, "selected")) as f:
    for line in f:
        key, prog, bench, tname, label = line.rstrip("\n").split("|")
        c = cpdiff_ms(key)
        t, info = torch_ms(key)
        if info.get("threads") != E["CMP_THREADS"]:
            sys.exit(f"compare_pytorch.sh: {key}: PyTorch ran {info.get('threads')} threads, not {E['CMP_THREADS']}")
        rows.append(f"| {label} | {fmt(c)} | {fmt(t)} | {t / c:.2f} |")

print(f"Command: `{E['CMP_CMDLINE']}`")
print(f"Machine: {E['CMP_NPROC']} cores (nproc), {E['CMP_CPU']}; {E['CMP_THREADS']} thread(s) on both sides "
      f"(OMP_NUM_THREADS, torch.set_num_threads), {E['CMP_SPIN']}")
blas = info.get("blas", "?")
note = E["CMP_BLAS_SOURCE"]
if "/blas/libblas.so" in blas:
    note += "; the reference BLAS of libblas3: unoptimised, one thread"
blas = f"{os.path.basename(blas)} ({note})"
print(f"cpdiff: {E['CMP_CXX']}, {E['CMP_BUILD']}, Eigen GEMM. PyTorch {info.get('version', '?')} "
      f"(python3-torch {E['CMP_TORCH_PKG']}), CPU, BLAS {blas}")
print(f"Steady state, ms per step: cpdiff = Google Benchmark real time per iteration (min time: bench_models' own "
      f"1-2 s, else {E['CMP_MIN_TIME']} s; after an untimed step); PyTorch = mean of {E['CMP_STEPS']} steps after "
      f"{E['CMP_WARMUP']} untimed" + (f"; median of {reps} repetitions on both sides" if reps > 1 else ""))
print()
print("| workload | cpdiff ms | PyTorch ms | PyTorch/cpdiff (>1: cpdiff faster) |")
print("|---|---:|---:|---:|")
print("\n".join(rows))
EOF
