#!/usr/bin/env bash
# Tiled ZeRO collectives on Brown: the demo GPT on 2 processes (1 thread each), ZeRO-2, micro-batch
# 8 per rank, with reduce_bucket_size = allgather_bucket_size = 0 (whole buckets), 2^20 (the
# default) and 2^18. Prints per run the staging buffers, the median peak tensor memory of a step
# (rank 0) and tokens/s after step 2, the final loss and the reduce-scatter calls per step.
# Usage: scripts/zero_tile_runs.sh [STEPS] (default 12).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-12}"
out=runs/tiles
source scripts/brown_runs_lib.sh
for t in 0 1048576 262144; do
  cfg "t$t" 8 ", \"zero_optimization\": {\"stage\": 2, \"reduce_bucket_size\": $t, \"allgather_bucket_size\": $t}"
  train_run "t$t" 2 1
  python3 - "$out/t$t/metrics.jsonl" "$t" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
print(f"tile {int(sys.argv[2]):>8}: staging {rows[-1]['staging_bytes']/1e6:6.2f} MB  "
      f"peak {statistics.median(r['peak_bytes'] for r in rows[2:])/1e6:7.2f} MB  "
      f"{statistics.median(r['tokens_per_s'] for r in rows[2:]):6.0f} tok/s  loss {rows[-1]['loss']:.4f}  "
      f"rs calls {rows[-1]['comm']['reduce_scatter']['calls']}")
PY
done
