#!/usr/bin/env bash
# The INT4 paper's decoder study on the Brown demo GPT (scripts/demo.sh trains it): validation
# perplexity of W8A8, W4A8 and W4A4 (int4 weights and int4 token-wise inputs in every block
# product), where W4A4's loss comes from (int4 inputs in the attention or the MLP only, and in one
# block at a time, the rest A8), and what recovers it (asymmetric inputs, groups of 32, LKD).
# Every model is quantized after training (`gannet quantize`) and run packed (`gannet eval`); then
# the inputs' statistics (`gannet input-stats`: outlier channels, one-sidedness, int4 error).
#   scripts/int4_decoder_study.sh [MODEL] [VAL]   (defaults: runs/demo/checkpoint.safetensors,
#                                                  data/brown/val.tok; LKD calibrates on train.tok)
# EVAL_BATCHES=N evaluates on the first N batches of 8 windows only (a larger model's quick pass).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-runs/demo/checkpoint.safetensors}
val=${2:-data/brown/val.tok}
calib=$(dirname "$val")/train.tok
gannet=build/gannet
[ -x "$gannet" ] || scripts/build.sh build --target gannet_cli
[ -f "$model" ] || { echo "$(basename "$0"): no model $model (run scripts/demo.sh first)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layers=$("$gannet" eval -m "$model" -d "$val" --max-batches 1 >/dev/null 2>&1 && python3 -c "
import json, struct, sys
f = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', f.read(8))[0]
print(json.loads(json.loads(f.read(n))['__metadata__']['model_config'])['n_layer'])" "$model")

eval_batches=${EVAL_BATCHES:-0}
ppl() { "$gannet" eval -m "$1" -d "$val" --max-batches "$eval_batches" | sed -n 's/.*perplexity \([0-9.]*\).*/\1/p'; }
base=$(ppl "$model")
printf '%-44s %10s %9s\n' "model ($(basename "$model"), $layers blocks)" perplexity "vs f32"
row() { printf '%-44s %10s %8s%%\n' "$1" "$2" "$(python3 -c "print(f'{100 * ($2 / $base - 1):+.2f}')")"; }
row f32 "$base"

# A config: int4 weights (g64) everywhere, int4 inputs for the modules in $1, int8 for those in $2.
config() {
  local four=$1 eight=$2 groups
  groups="\"aq4\": {\"params\": {\"bits\": 4}, \"modules\": $four}"
  [ "$eight" = "[]" ] || groups="$groups, \"aq8\": {\"params\": {\"bits\": 8}, \"modules\": $eight}"
  cat <<JSON
{"compression_training": {
  "weight_quantization": {"shared_parameters": {"enabled": true, "group_size": 64},
    "different_groups": {"wq1": {"params": {"start_bits": 4, "target_bits": 4},
                                 "modules": ["attn", "mlp", "embedding", "lm_head"]}}},
  "activation_quantization": {"shared_parameters": {"enabled": true},
    "different_groups": {$groups}}}}
JSON
}
run() {  # name, quantize arguments...
  local name=$1
  shift
  "$gannet" quantize -i "$model" -o "$work/q.safetensors" --no-progress "$@" >/dev/null
  row "$name" "$(ppl "$work/q.safetensors")"
}
run "W8A8" --scheme w8a8
run "W4A8" --scheme w4a8
run "W4A4" --scheme w4a4
echo "-- where the loss comes from (int4 inputs there, int8 elsewhere)"
config '["attn"]' '["mlp"]' > "$work/attn.json"
run "W4A4 attention, W4A8 MLP" --config "$work/attn.json"
config '["mlp"]' '["attn"]' > "$work/mlp.json"
run "W4A8 attention, W4A4 MLP" --config "$work/mlp.json"
for m in c_attn attn.c_proj c_fc mlp.c_proj; do
  config "[\"$m\"]" '["*"]' > "$work/m.json"
  run "W4A4 only in $m" --config "$work/m.json"
done
for ((l = 0; l < layers; ++l)); do
  config "[\"h.$l.\"]" '["*"]' > "$work/l.json"
  run "W4A4 only in block $l" --config "$work/l.json"
done
echo "-- what recovers it"
run "W4A4, asymmetric inputs" --scheme w4a4 --asymmetric-activations
run "W4A4, groups of 32" --scheme w4a4 --group 32
run "W4A4, asymmetric inputs, groups of 32" --scheme w4a4 --asymmetric-activations --group 32
run "W4A4, LKD 100 steps per block" --scheme w4a4 --lkd-steps 100 --calib "$calib"
run "W4A4, asymmetric inputs, LKD 100 steps" --scheme w4a4 --asymmetric-activations --lkd-steps 100 --calib "$calib"
echo "-- the inputs themselves (outlier channels, one-sidedness, quantization error)"
"$gannet" input-stats -m "$model" --calib "$calib"
