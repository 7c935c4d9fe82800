#!/usr/bin/env bash
# Activation checkpointing on Brown: the demo GPT (4 blocks, d 256, 16 x 128 tokens) and its
# 8-expert MoE form with experts over 2 processes, each without checkpointing, with it, and (MoE)
# with it but without keeping the all-to-all results. Prints per run the median tokens/s after the
# first 5 steps, the median peak tensor memory of a step, and the all-to-all bytes per step.
# Usage: scripts/checkpointing_runs.sh [STEPS] (default 25).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-25}"
out=runs/checkpointing
source scripts/brown_runs_lib.sh
run() {  # name np threads
  train_run "$@"
  python3 - "$out/$1/metrics.jsonl" "$1" "$2" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
tps = statistics.median(r["tokens_per_s"] for r in rows[5:])
peak = statistics.median(r["peak_bytes"] for r in rows[5:])
a2a = rows[-1].get("all_to_all_bytes_all_ranks", 0)
print(f"{sys.argv[2]:<16} {sys.argv[3]:>2} proc  {tps:8.0f} tok/s  peak {peak/1e6:7.1f} MB  "
      f"loss {rows[-1]['loss']:.4f}  all-to-all {a2a/1e6:6.2f} MB/step (all ranks)")
PY
}
ckpt=', "activation_checkpointing": {"enabled": true}'
again=', "activation_checkpointing": {"enabled": true, "keep_communication": false}'
cfg dense 16 ""
cfg dense_ckpt 16 "$ckpt"
cfg moe_ep2 8 ', "parallel": {"expert": 2}' "$moe"
cfg moe_ep2_ckpt 8 ', "parallel": {"expert": 2}'"$ckpt" "$moe"
cfg moe_ep2_again 8 ', "parallel": {"expert": 2}'"$again" "$moe"
echo "run              procs  tokens/s (median after step 5), peak tensor memory per step (rank 0), final loss, all-to-all"
run dense 1 2
run dense_ckpt 1 2
run moe_ep2 2 1
run moe_ep2_ckpt 2 1
run moe_ep2_again 2 1
