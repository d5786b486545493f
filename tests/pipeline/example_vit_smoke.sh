#!/bin/bash
# The main example on the ViT base (--base vit), tiny: every stage of the transformer path runs and writes what
# the README promises (the base as a Hugging Face folder, PEFT adapters with evaluation.json, report.json with
# n_params), and a second run re-uses the pre-trained base instead of training it again.
# Usage: example_vit_smoke.sh EXAMPLE_BINARY OUT_DIR
set -euo pipefail
bin=$1
out=$2
rm -rf "$out"
tiny=(--base vit --experiments tasks --out "$out" --train-images 600 --test-images 200 --pretrain-epochs 1
      --finetune-epochs 1 --checkpoints 3 --generations 2 --ae-steps 10 --diffusion-steps 50 --ddim-steps 10)
fail() { echo "example_vit_smoke: $*" >&2; exit 1; }

"$bin" "${tiny[@]}" > "$out.first.log" 2>&1 || { cat "$out.first.log"; fail "first run failed"; }
grep -q "pre-training the ViT base" "$out.first.log" || fail "the first run did not pre-train the base"
grep -q "24576 parameters per adapter" "$out.first.log" || fail "expected n = 24,576 (r = 16 on 12 projections)"
for f in base/config.json base/model.safetensors report.json adapters/tasks/evaluation.json \
         adapters/tasks/reverse_the_order_of_the_ten_classes_1/adapter_model.safetensors; do
  [ -s "$out/$f" ] || fail "missing $out/$f"
done
grep -q '"model_type": "vit"' "$out/base/config.json" || fail "base/config.json is not a ViT config"
grep -Eq '"n_params": ?24576' "$out/report.json" || fail "report.json has no n_params 24576"
grep -q 'base_model.model.vit.encoder.layer.5.attention.attention.value.lora_B.weight' \
  "$out/adapters/tasks/reverse_the_order_of_the_ten_classes_1/adapter_model.safetensors" ||
  fail "the adapter lacks PEFT's key for layer 5's value projection"

"$bin" "${tiny[@]}" > "$out.second.log" 2>&1 || { cat "$out.second.log"; fail "second run failed"; }
grep -q "the pre-trained ViT base: " "$out.second.log" || fail "the second run did not re-use base/"
grep -q "pre-training the ViT base" "$out.second.log" && fail "the second run trained the base again"
# the same base both times: the clean accuracy lines agree
a=$(grep "base accuracy on clean test images" "$out.first.log")
b=$(grep "base accuracy on clean test images" "$out.second.log")
[ "$a" = "$b" ] || fail "clean accuracy differs after loading the base: '$a' vs '$b'"
echo "example_vit_smoke: ok ($a)"
