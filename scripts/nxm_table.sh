#!/usr/bin/env bash
# The figures of finished NxMiFormer runs (scripts/nxm_experiments.sh), a table row per run, from
# each run's metrics.jsonl: the final validation accuracy (the student's forward, whose numbers
# are the packed file's: `gannet compress` prints the same figure run packed), its macro-F1, the
# validation cross-entropy against the labels, and the distillation loss as the mean of the last
# 20 steps' training losses and as the last step's alone.
#   scripts/nxm_table.sh NAME...    (NAME: a run under runs/, e.g. nxm_1of4_l1_genre)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: scripts/nxm_table.sh NAME..." >&2; exit 2; }
echo "| run | accuracy | macro-F1 | val loss | KD loss (mean of last 20 steps) | KD loss (last step) |"
echo "|---|---|---|---|---|---|"
for name in "$@"; do
  metrics="runs/$name/metrics.jsonl"
  [ -f "$metrics" ] || { echo "nxm_table: no $metrics" >&2; exit 1; }
  python3 - "$name" "$metrics" <<'EOF'
import json, sys
name, path = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
final = [r for r in rows if r.get("final")]
if not final:
    sys.exit(f"nxm_table: {path} has no final validation (is the run finished?)")
steps = {r["step"]: r["loss"] for r in rows if "loss" in r and not r.get("final")}
last = sorted(steps)[-20:]
f = final[-1]
print(f"| {name} | {100 * f['val_accuracy']:.2f}% | {100 * f['val_macro_f1']:.2f}% | {f['val_loss']:.4f} "
      f"| {sum(steps[s] for s in last) / len(last):.4f} | {steps[last[-1]]:.4f} |")
EOF
done
