#!/usr/bin/env bash
# The data-efficiency comparison of issue 6, on the Brown corpus: a 6-layer GPT trained plain, with
# random-LTD, with a curriculum (sequence length + vocabulary rarity), and with both; then the plot
# of loss against tokens, layer-tokens and training seconds and the compute each run needs to
# reach the baseline's final validation loss (within 1%).
#
# Wall-clock figures need a quiet machine: run this alone. Each run takes about 15-25 minutes on
# 2 cores. REPEATS=N runs every config N times, interleaved (seeds differ), and writes one plot
# and table per repeat so that medians can be taken.
#
#   scripts/data_efficiency_runs.sh            # build if needed, prepare data, analyze, train, plot
#   REPEATS=3 THREADS=2 scripts/data_efficiency_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${GANNET:-build/gannet}
REPEATS=${REPEATS:-1}
THREADS=${THREADS:-0}
CONFIGS=(de_baseline de_random_ltd de_curriculum de_curriculum_ltd)

[ -x "$BIN" ] || scripts/build.sh
[ -f data/brown/train.tok ] || "$BIN" data prepare --out data/brown
# Samples are the fixed windows of data.seq_len (128) tokens; the index must match the config.
"$BIN" data analyze --tokens data/brown/train.tok --out data/brown/difficulty --seq-len 128 \
  --metric seqlen --metric vocabularyrarity --metric seqlen_vocabularyrarity

mkdir -p runs
for r in $(seq 1 "$REPEATS"); do
  for name in "${CONFIGS[@]}"; do
    out="runs/${name}_r${r}"
    if [ -f "$out/done" ]; then echo "skip $out (done)"; continue; fi
    # Same config with this repeat's output directory, seed and thread count.
    python3 - "$name" "$out" "$r" "$THREADS" <<'PY'
import json, sys
name, out, r, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = json.load(open(f"configs/{name}.json"))
c["checkpoint"]["dir"] = out
c["seed"] = 1234 + r - 1
c["threads"] = threads
json.dump(c, open(f"runs/{name}_r{r}.json", "w"), indent=2)
PY
    resume=()
    # Continue from a checkpoint; a run killed before its first one starts over.
    if [ -f "$out/checkpoint.safetensors" ]; then resume=(--resume); else rm -rf "$out"; fi
    echo "== $out"
    "$BIN" train --config "runs/${name}_r${r}.json" --no-progress --sample-prompt '' "${resume[@]}" 2>&1 | tee "$out.log"
    touch "$out/done"
  done
  "$BIN" plot "runs/de_baseline_r${r}" "runs/de_random_ltd_r${r}" "runs/de_curriculum_r${r}" \
    "runs/de_curriculum_ltd_r${r}" -l baseline -l random-LTD -l curriculum -l curriculum+random-LTD \
    --out "runs/data_efficiency_r${r}.svg" | tee "runs/data_efficiency_r${r}.txt"
done
