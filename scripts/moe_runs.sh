#!/usr/bin/env bash
# The Mixture-of-Experts comparison of issue 5, on the Brown corpus: the demo GPT (4 layers, d 256)
# trained dense, with 8 experts top-1 in every other block (same active FLOPs per token), with
# 8 experts top-2, and as a PR-MoE (pyramid 4 -> 8 experts plus the dense MLP as a residual); same
# steps, same data order (same seed). Then the plot of validation loss against tokens and training
# seconds, and `gannet moe-stats` with its chart for the top-1 model.
#
# PARALLEL=2 (the default) trains two configs at a time with one thread each, so that the two runs
# of a pair see the same machine; PARALLEL=1 THREADS=2 runs one at a time. Wall-clock figures need
# an otherwise quiet machine. Each run takes about 8-12 minutes of 2 cores.
#
#   scripts/moe_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${GANNET:-build/gannet}
PARALLEL=${PARALLEL:-2}
THREADS=${THREADS:-$((PARALLEL == 1 ? 2 : 1))}
CONFIGS=(moe_dense moe_top1 moe_top2 moe_prmoe)

[ -x "$BIN" ] || scripts/build.sh
[ -f data/brown/train.tok ] || "$BIN" data prepare --out data/brown
mkdir -p runs

run_one() {
  local name=$1 out="runs/$1"
  if [ -f "$out/done" ]; then echo "skip $out (done)"; return; fi
  python3 - "$name" "$THREADS" <<'PY'
import json, sys
name, threads = sys.argv[1], int(sys.argv[2])
c = json.load(open(f"configs/{name}.json"))
c["threads"] = threads
json.dump(c, open(f"runs/{name}.json", "w"), indent=2)
PY
  local resume=()
  # Continue from a checkpoint; a run killed before its first one starts over.
  if [ -f "$out/checkpoint.safetensors" ]; then resume=(--resume); else rm -rf "$out"; fi
  "$BIN" train --config "runs/$name.json" --no-progress --sample-prompt '' "${resume[@]}" >"$out.log" 2>&1
  touch "$out/done"
  echo "== $out: $(tail -n 1 "$out/metrics.jsonl")"
}

for ((i = 0; i < ${#CONFIGS[@]}; i += PARALLEL)); do
  for ((j = i; j < i + PARALLEL && j < ${#CONFIGS[@]}; ++j)); do run_one "${CONFIGS[$j]}" & done
  wait
done

"$BIN" plot runs/moe_dense runs/moe_top1 runs/moe_top2 runs/moe_prmoe \
  -l dense -l "MoE 8x top-1" -l "MoE 8x top-2" -l "PR-MoE 4-8" --out runs/moe.svg | tee runs/moe.txt
"$BIN" moe-stats runs/moe_top1/checkpoint.safetensors data/brown --chart runs/moe_top1.moe.svg | tee runs/moe_top1.stats.txt
