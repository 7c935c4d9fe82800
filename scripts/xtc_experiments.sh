#!/usr/bin/env bash
# XTC on the reference teacher (scripts/train_teacher.sh): the issue's acceptance runs and the
# paper's ablation on brown-genre, each a `gannet compress` of a config in configs/xtc_*.json.
#   scripts/xtc_experiments.sh [NAME...]    (default: all; NAME is a config's name, e.g. xtc_binary_mode)
# Every run prints the student's final validation (simulated), its packed file's size beside the
# teacher's f32 weights, and its accuracy run packed. A run whose directory exists is resumed.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(xtc_binary_mode xtc_binary_genre xtc_binary_l3_mode xtc_binary_l3_genre
                                 xtc_ternary_genre xtc_binary_genre_two_stage xtc_binary_genre_short)
source scripts/compress_runs_lib.sh
