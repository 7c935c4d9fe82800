#!/usr/bin/env bash
# Fashion-MNIST, VL-MoE against its dense counterpart over several seeds (issue 21's acceptance,
# docs/vlmoe.md): for each seed and model (configs/fashion_vlmoe.json, configs/fashion_dense.json),
# pre-trains on the (image, class name) pairs, evaluates zero-shot classification by the class names'
# texts on the test split, fine-tunes an image classifier from that checkpoint
# (configs/fashion_classify.json with init.checkpoint swapped) and evaluates its test accuracy.
# The two models of a seed run side by side on one thread each, so that both see the same machine.
# Usage: scripts/vlmoe_fashion_seeds.sh BUILD_DIR PRETRAIN_STEPS FINETUNE_STEPS [SEED...]  (seeds: 1 2 3)
#   OUT (environment, default runs/vlmoe_fashion_seeds): runs go to OUT/NAME_sSEED and
#   OUT/NAME_ft_sSEED (removed first), logs beside them; OUT/results.txt gets a line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: scripts/vlmoe_fashion_seeds.sh BUILD_DIR PRETRAIN_STEPS FINETUNE_STEPS [SEED...]" >&2; exit 2; }
bin="$1/gannet" pre="$2" fine="$3"
shift 3
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
[ -x "$bin" ] || { echo "vlmoe_fashion_seeds: no $bin (build gannet_cli first)" >&2; exit 1; }
for n in "$pre" "$fine"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "vlmoe_fashion_seeds: step counts must be positive integers, not '$n'" >&2; exit 2; }
done
out="${OUT:-runs/vlmoe_fashion_seeds}"
mkdir -p "$out"
results="$out/results.txt"
: > "$results"

# configure SOURCE DEST SEED RUN STEPS [INIT]: the config with seed, steps, run dir, one thread, init.
configure() {
  python3 - "$@" <<'EOF'
import json, sys
src, path, seed, run, steps = sys.argv[1:6]
c = json.load(open(src))
c["seed"] = int(seed)
c["train_steps"] = int(steps)
c["checkpoint"]["dir"] = run
c["threads"] = 1
if len(sys.argv) > 6:
    c["init"]["checkpoint"] = sys.argv[6]
json.dump(c, open(path, "w"), indent=1)
EOF
}

# train CONFIG RUN: trains, recording the seconds; an error is reported by the caller.
train() {
  local start
  start=$(date +%s)
  "$bin" train --config "$1" --no-progress > "$2.train.log" 2>&1 || true
  echo "$(( $(date +%s) - start ))" > "$2.seconds"
}

# One model of one seed: pre-train, zero-shot, fine-tune, accuracy; one line to results.txt.
one() {
  local name="$1" seed="$2" run="$out/$1_s$2" ft="$out/$1_ft_s$2" zs acc
  configure "configs/fashion_$name.json" "$run.json" "$seed" "$run" "$pre"
  rm -rf "$run" "$ft"
  train "$run.json" "$run"
  [ -f "$run/checkpoint.safetensors" ] || { echo "vlmoe_fashion_seeds: $name seed $seed pre-training failed (see $run.train.log)" >&2; return 1; }
  zs=$(OMP_NUM_THREADS=1 "$bin" eval -m "$run/checkpoint.safetensors" -d data/fashion-mnist --batch 32 | awk '$1 == "test" { print $3 }')
  configure configs/fashion_classify.json "$ft.json" "$seed" "$ft" "$fine" "$run/checkpoint.safetensors"
  train "$ft.json" "$ft"
  [ -f "$ft/checkpoint.safetensors" ] || { echo "vlmoe_fashion_seeds: $name seed $seed fine-tuning failed (see $ft.train.log)" >&2; return 1; }
  acc=$(OMP_NUM_THREADS=1 "$bin" eval -m "$ft/checkpoint.safetensors" -d data/fashion-mnist --batch 32 | awk '$1 == "test" { print $4 }')
  echo "fashion_$name $seed zero-shot $zs fine-tuned $acc pretrain $(cat "$run.seconds")s finetune $(cat "$ft.seconds")s" | tee -a "$results"
}

status=0
for seed in "${seeds[@]}"; do
  one vlmoe "$seed" & a=$!
  one dense "$seed" & b=$!
  wait "$a" || status=1
  wait "$b" || status=1
done
[ "$status" = 0 ] || exit 1
echo "model: mean zero-shot and fine-tuned test accuracy over seeds ${seeds[*]}"
awk '{ n[$1]++; z = $4; f = $6; sub(/%/, "", z); sub(/%/, "", f); zs[$1] += z; fs[$1] += f }
     END { for (k in n) printf "%s: zero-shot %.2f%%, fine-tuned %.2f%%\n", k, zs[k] / n[k], fs[k] / n[k] }' "$results" | sort
