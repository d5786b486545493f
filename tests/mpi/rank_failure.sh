#!/usr/bin/env bash
# A rank that crashes (std::_Exit) or throws in the middle of a two-rank training run must end the whole job with
# an error within seconds, not leave the other rank waiting in its all-reduce. Usage: rank_failure.sh MPIEXEC PROGRAM
set -uo pipefail
mpiexec=$1 program=$2
for mode in --die-at-step --throw-at-step; do
  out=$(timeout 120 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$program" "$mode" 3 2>&1)
  rc=$?
  if [ "$rc" -eq 124 ]; then echo "FAIL $mode: the job hung (killed after 120 s)"; echo "$out"; exit 1; fi
  if [ "$rc" -eq 0 ]; then echo "FAIL $mode: the job exited 0"; echo "$out"; exit 1; fi
  want="dying at step 3"
  [ "$mode" = --throw-at-step ] && want="cpdiff: rank 1 of 2: fail_at_step: rank 1 fails at step 3"
  if ! grep -qF "$want" <<<"$out"; then echo "FAIL $mode: no '$want' in the output"; echo "$out"; exit 1; fi
  echo "ok $mode: the job ended with exit code $rc"
done
