#!/usr/bin/env bash
# The example, unchanged, under mpirun (issue 16): two ranks run the tasks experiment of cond_pdiff_fashion and
# must (1) print once (rank 0 alone), (2) fine-tune the same LoRAs as one process does (condition i on rank i % 2,
# then shared: each condition's "LoRA for ..." line, accuracies included, equal to the one-process run's), and
# (3) write the report and the generated adapters once, complete.
# Usage: example_parity.sh MPIEXEC PROGRAM OUT
set -uo pipefail
mpiexec=$1 program=$2 out=$3
args=(--base mlp --quick --experiments tasks --ae-steps 150 --diffusion-steps 400 --generations 2 --ddim-steps 20)
rm -rf "$out" && mkdir -p "$out"
if ! OMP_NUM_THREADS=1 "$program" "${args[@]}" --out "$out/one" > "$out/one.log" 2>&1; then
  echo "FAIL: the one-process run failed"; cat "$out/one.log"; exit 1
fi
if ! timeout 600 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "$program" "${args[@]}" \
     --out "$out/two" > "$out/two.log" 2>&1; then
  echo "FAIL: the two-rank run failed"; cat "$out/two.log"; exit 1
fi
fail() { echo "FAIL: $1"; echo "--- two ranks:"; cat "$out/two.log"; exit 1; }
grep -q "^data parallel: 2 ranks (mpi)$" "$out/two.log" || fail "no 'data parallel: 2 ranks (mpi)' line"
[ "$(grep -c "^loading Fashion-MNIST" "$out/two.log")" -eq 1 ] || fail "the other rank printed too"
# the fine-tuned LoRAs: the same lines, without the elapsed time
lora_lines() { grep "^  LoRA for " "$1" | sed 's/  \[[0-9.e+]* s\]$//'; }
[ "$(lora_lines "$out/one.log" | wc -l)" -eq 6 ] || fail "expected 6 'LoRA for' lines in the one-process run"
if ! diff <(lora_lines "$out/one.log") <(lora_lines "$out/two.log"); then fail "the collected LoRAs differ"; fi
[ -s "$out/two/report.json" ] && [ -s "$out/two/report.md" ] || fail "no report written"
n=$(find "$out/two/adapters/tasks" -name adapter_model.safetensors | wc -l)
[ "$n" -eq 12 ] || fail "expected 12 generated adapters (6 tasks x 2), found $n"
[ -z "$(find "$out/two" -name '*.tmp.*')" ] || fail "temporary files left behind"
echo "ok: 2 ranks printed once, fine-tuned the one-process LoRAs, wrote the report and $n adapters"
