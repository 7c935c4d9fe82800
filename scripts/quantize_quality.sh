#!/usr/bin/env bash
# ZeroQuant quality on the Brown demo GPT: validation perplexity (whole val.tok, on the engine's
# integer kernels) of every scheme, by plain rounding, after LKD on training text, and after
# data-free LKD, beside the fp32 model; and each file's size against an f32 model file.
# Usage: scripts/quantize_quality.sh   (after scripts/demo.sh; env: GANNET, MODEL, OUT, LKD_STEPS, SCHEMES, DATA_FREE)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${GANNET:-build/gannet}
M=${MODEL:-runs/demo/checkpoint.safetensors}
VAL=data/brown/val.tok
TRAIN=data/brown/train.tok
OUT=${OUT:-runs/quant}
STEPS=${LKD_STEPS:-100}
SCHEMES=${SCHEMES:-"w8a8 w8a16 w4a16 w4a8 mixed"}
DATA_FREE=${DATA_FREE:-"w4a16 mixed"}
mkdir -p "$OUT"

ppl() { "$B" eval -m "$1" -d "$VAL" --engine | sed -E 's/.*perplexity ([0-9.]+).*/\1/'; }
ratio() { sed -nE 's/.*MB, ([0-9.]+)x the .*/\1/p' "$1"; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f%%", 100 * (a / b - 1) }'; }

fp=$(ppl "$M")
echo "fp32: validation perplexity $fp" | tee "$OUT/summary.md"
echo "" | tee -a "$OUT/summary.md"
echo "| scheme | size vs f32 file | plain rounding | LKD ($STEPS steps/layer) | data-free LKD |" | tee -a "$OUT/summary.md"
echo "|---|---|---|---|---|" | tee -a "$OUT/summary.md"
for s in $SCHEMES; do
  "$B" quantize -i "$M" -o "$OUT/$s.safetensors" --scheme "$s" > "$OUT/$s.log"
  plain=$(ppl "$OUT/$s.safetensors")
  "$B" quantize -i "$M" -o "$OUT/$s-lkd.safetensors" --scheme "$s" --lkd-steps "$STEPS" --calib "$TRAIN" --no-progress > "$OUT/$s-lkd.log"
  lkd=$(ppl "$OUT/$s-lkd.safetensors")
  free="-"
  if [[ " $DATA_FREE " == *" $s "* ]]; then
    "$B" quantize -i "$M" -o "$OUT/$s-free.safetensors" --scheme "$s" --lkd-steps "$STEPS" --data-free --no-progress > "$OUT/$s-free.log"
    f=$(ppl "$OUT/$s-free.safetensors")
    free="$f ($(delta "$f" "$fp"))"
  fi
  echo "| $s | $(ratio "$OUT/$s.log")x | $plain ($(delta "$plain" "$fp")) | $lkd ($(delta "$lkd" "$fp")) | $free |" | tee -a "$OUT/summary.md"
done
