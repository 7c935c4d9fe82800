#!/usr/bin/env bash
# The reference teacher for XTC compression (issue 16): masked-language-model pre-training of a
# 6-layer encoder (d 384, 6 heads, vocab 8192) on the Brown training documents, then fine-tuning
# on the two classification tasks, brown-genre and brown-mode, and each model's accuracy beside
# its task's majority-class baseline. About 30 minutes on 2 cores.
#   scripts/train_teacher.sh     runs/teacher_{mlm,genre,mode}/checkpoint.safetensors
# A stage whose run directory exists is resumed (and only evaluated when it is complete).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build --target gannet_cli
gannet=build/gannet
start=$(date +%s)
"$gannet" data prepare  # also cuts the classification sets (gannet data tasks)

train() {  # CONFIG RUN_DIR
  local resume=()
  [ -d "$2" ] && resume=(--resume)
  local t0=$(date +%s)
  "$gannet" train --config "$1" "${resume[@]}"
  echo "train_teacher: $1 took $(( $(date +%s) - t0 )) s"
}
train configs/teacher_mlm.json runs/teacher_mlm
train configs/teacher_genre.json runs/teacher_genre
train configs/teacher_mode.json runs/teacher_mode
echo "train_teacher: trained in $(( $(date +%s) - start )) s"

echo "== MLM teacher on data/brown/val.tok"
"$gannet" eval --model runs/teacher_mlm/checkpoint.safetensors --data data/brown/val.tok
for t in genre mode; do
  echo "== brown-$t teacher on its validation windows"
  "$gannet" eval --model runs/teacher_$t/checkpoint.safetensors --data data/brown/tasks/brown-$t/val.safetensors
done
