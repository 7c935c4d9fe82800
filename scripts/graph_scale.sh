#!/usr/bin/env bash
# BiFeat at scale, on the GENERATED papers100M-shaped graph (50M nodes x 128 features: 25.6 GB of
# f32 features, more than this machine's memory): generate it (once), compress its features, then
# sample and gather mini-batches (1,024 seeds, fan-outs 15,10,5) from each store, one process per
# store so that each peak RSS is the store's own: the compressed store in memory against the raw
# matrix memory-mapped from disk. Then a few GraphSAGE training steps from the compressed store.
#   scripts/graph_scale.sh [NODES]   (default 50000000; needs about 33 GB of disk at 50M)
# BATCHES=N batches per timed pass of the compressed store (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-50000000}
dir=data/generated-graph
batches=${BATCHES:-50}
[ -x build/gannet ] && [ -x build/bench_graph_epoch ] || scripts/build.sh build --target gannet_cli --target bench_graph_epoch
if [ ! -f "$dir/features.safetensors" ] || [ "$(python3 -c "import json;print(json.load(open('$dir/summary.json'))['nodes'])" 2>/dev/null)" != "$nodes" ]; then
  /usr/bin/time -f "generate: %e s, peak RSS %M KiB" build/gannet graph generate --out "$dir" --nodes "$nodes"
fi
# The two-level layout the figures in docs/results.md were measured with (39.4x at 50M nodes);
# the CLI's default since 2026-12-06 is PQ alone with M = 16 and 8-bit codebooks (31.6x).
[ -f "$dir/features.bifeat.safetensors" ] ||
  /usr/bin/time -f "compress: %e s, peak RSS %M KiB" build/gannet graph compress --data "$dir" \
    --sq-fraction 0.04 --sq-bits 8 --pq-subvectors 8 --codebook-bits 32
/usr/bin/time -f "bifeat: %e s, peak RSS %M KiB" build/bench_graph_epoch --data "$dir" --stores bifeat \
  --fanouts 15,10,5 --epochs 3 --max-batches "$batches" --sample-only
# The raw matrix does not fit in memory: each batch pages in hundreds of thousands of scattered
# rows from disk (minutes a batch), so one warm-up batch and one timed.
/usr/bin/time -f "raw: %e s, peak RSS %M KiB" build/bench_graph_epoch --data "$dir" --stores raw \
  --fanouts 15,10,5 --epochs 1 --max-batches 1 --sample-only
/usr/bin/time -f "bifeat training: %e s, peak RSS %M KiB" build/bench_graph_epoch --data "$dir" --stores bifeat \
  --fanouts 15,10,5 --epochs 2 --max-batches 5
