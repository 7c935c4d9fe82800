#!/usr/bin/env bash
# Distributed training on Brown, beside one process, on this machine: the demo GPT (and its 8-expert
# MoE form) for STEPS steps at the demo's global batch (16 windows of 128 tokens), one process with
# 2 threads against 2 processes with 1 thread each (data parallel, ZeRO 0/1/2; expert parallel).
# Prints, per run, the median tokens/s over the steps after the first 10, the optimizer state per
# rank and the bytes each group moved per step. Usage: scripts/dist_runs.sh [STEPS] (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-60}"
out=runs/dist
source scripts/brown_runs_lib.sh
run() {  # name np threads
  train_run "$@"
  python3 - "$out/$1/metrics.jsonl" "$1" "$2" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
tps = statistics.median(r["tokens_per_s"] for r in rows[10:])
last = rows[-1]
def mb(group):
    return sum(v["wire_bytes"] for v in last.get(group, {}).values()) / 1e6
print(f"{sys.argv[2]:<16} {sys.argv[3]:>2} proc  {tps:8.0f} tok/s  loss {last['loss']:.4f}  "
      f"optimizer {last.get('optimizer_bytes', 0)/1e6:6.2f} MB/rank  wire MB/step: data {mb('comm'):6.2f} "
      f"expert {mb('expert_comm'):6.2f}")
PY
}
cfg dense1 16 ""
cfg dense_z0 8 ', "zero_optimization": {"stage": 0}'
cfg dense_z1 8 ', "zero_optimization": {"stage": 1}'
cfg dense_z2 8 ', "zero_optimization": {"stage": 2}'
cfg moe1 16 "" "$moe"
cfg moe_ep2 8 ', "zero_optimization": {"stage": 1}, "parallel": {"expert": 2}' "$moe"
cfg dense_tp2 16 ', "parallel": {"tensor": 2}'
echo "run              procs  tokens/s (median after step 10), final loss, AdamW state per rank, bytes sent per step"
run dense1 1 2
run dense_z0 2 1
run dense_z1 2 1
run dense_z2 2 1
run dense_tp2 2 1
run moe1 1 2
run moe_ep2 2 1
