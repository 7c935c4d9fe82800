#!/usr/bin/env bash
# VL-MoE against its dense counterpart over several seeds (issue 21's acceptance, docs/vlmoe.md):
# for each seed, trains configs/glyphs_vlmoe.json and configs/glyphs_dense.json with the seed, the
# step count and one thread each swapped in, the two runs side by side so that both see the same
# machine (same steps, same data order: the order follows from the seed), then `gannet eval` on
# test_chars and test_blocks. Prints a line per run and split, then each model's means.
# Usage: scripts/vlmoe_seeds.sh BUILD_DIR STEPS [SEED...]   (seeds default 1 2 3)
#   MODELS (environment, default "glyphs_vlmoe glyphs_dense"): the configs' names in configs/; NAME:N
#   trains that one N steps instead of STEPS (for equal wall time: fewer steps for the slower model).
#   OUT (environment, default runs/vlmoe_seeds): runs go to OUT/NAME_sSEED (removed first), logs beside.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/vlmoe_seeds.sh BUILD_DIR STEPS [SEED...]" >&2; exit 2; }
bin="$1/gannet" steps="$2"
shift 2
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
read -r -a models <<< "${MODELS:-glyphs_vlmoe glyphs_dense}"
[ -x "$bin" ] || { echo "vlmoe_seeds: no $bin (build gannet_cli first)" >&2; exit 1; }
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || { echo "vlmoe_seeds: STEPS must be a positive integer, not '$steps'" >&2; exit 2; }
out="${OUT:-runs/vlmoe_seeds}"
mkdir -p "$out"
results="$out/results.txt"
: > "$results"
for seed in "${seeds[@]}"; do
  pids=()
  for model in "${models[@]}"; do
    name="${model%%:*}" n="$steps"
    [ "$name" = "$model" ] || n="${model#*:}"
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "vlmoe_seeds: steps of $model must be a positive integer" >&2; exit 2; }
    run="$out/${name}_s$seed"
    python3 - "configs/$name.json" "$out/${name}_s$seed.json" "$seed" "$run" "$n" <<'EOF'
import json, sys
src, path, seed, run, steps = sys.argv[1:]
c = json.load(open(src))
c["seed"] = int(seed)
c["train_steps"] = int(steps)
c["checkpoint"]["dir"] = run
c["threads"] = 1
json.dump(c, open(path, "w"), indent=1)
EOF
    rm -rf "$run"
    ( start=$(date +%s)
      "$bin" train --config "$out/${name}_s$seed.json" --no-progress > "$run.train.log" 2>&1
      echo "$(( $(date +%s) - start ))" > "$run.seconds" ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done  # a failed run is reported below
  for model in "${models[@]}"; do
    name="${model%%:*}" run="$out/${model%%:*}_s$seed"
    [ -f "$run/checkpoint.safetensors" ] || { echo "vlmoe_seeds: $name seed $seed failed (see $run.train.log)" >&2; exit 1; }
    OMP_NUM_THREADS=1 "$bin" eval -m "$run/checkpoint.safetensors" -d data/glyphs --batch 32 |
      awk -v n="$name" -v s="$seed" -v t="$(cat "$run.seconds")" \
        '$1 ~ /^test_/ { print n, s, $1, $3, $4, $5, $6, $7, t }' | tee -a "$results"
  done
done
echo "model split: mean ITC, i2t R@1, i2t R@5, t2i R@1, t2i R@5, training seconds over seeds ${seeds[*]}"
awk '{ k = $1 " " $3; n[k]++; for (i = 4; i <= 9; i++) { v = $i; sub(/%/, "", v); s[k, i] += v } }
     END { for (k in n) printf "%s: %.4f %.2f%% %.2f%% %.2f%% %.2f%% %.0fs\n", k, s[k,4]/n[k], s[k,5]/n[k],
                                 s[k,6]/n[k], s[k,7]/n[k], s[k,8]/n[k], s[k,9]/n[k] }' "$results" | sort
