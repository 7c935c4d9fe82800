#!/usr/bin/env bash
# NxMiFormer on the reference teachers (scripts/train_teacher.sh): the issue's acceptance runs, each a
# `gannet compress` of a config in configs/nxm_*.json: 2:4 int8 by ADMM, one-shot (l1) and gradual
# magnitude pruning on brown-genre and brown-mode at equal steps (ADMM with its term in the loss
# and proximal, and a shorter proximal phase), the budgeted search (10x smaller block products than
# f32) and the best uniform configuration within the same budget (1:4 int8) on both tasks.
# Beside them (2026-12-06): the three pruning methods at 1:4 int8 (nxm_1of4_*) and at 2:4 int8 over
# 300 steps with a gentler ADMM penalty (nxm_long_*); ADMM with a projected forward at both
# (nxm_1of4_admmproj_*, nxm_long_admmproj_*) and the search trained by one-shot pruning, as the
# best uniform 1:4 int8 run was (nxm_search_l1_*); that run's pick, written as explicit groups,
# trained by the 1:4 ADMM schedule (nxm_search_admm_*). scripts/nxm_table.sh prints their figures.
#   scripts/nxm_experiments.sh [NAME...]    (default: all; NAME is a config's name, e.g. nxm_admm_mode)
# Every run prints the student's final validation (simulated), its packed file's size beside the
# teacher's f32 weights, and its accuracy run packed. A run whose directory exists is resumed.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(nxm_admm_genre nxm_l1_genre nxm_gradual_genre nxm_admm_mode nxm_l1_mode nxm_gradual_mode
                                 nxm_admm_loss_genre nxm_admm_loss_mode nxm_admm_short_genre
                                 nxm_search_genre nxm_uniform_1of4_genre nxm_search_mode nxm_uniform_1of4_mode
                                 nxm_1of4_l1_genre nxm_1of4_gradual_genre nxm_1of4_admm_genre
                                 nxm_1of4_l1_mode nxm_1of4_gradual_mode nxm_1of4_admm_mode
                                 nxm_long_l1_genre nxm_long_gradual_genre nxm_long_admm_genre
                                 nxm_long_l1_mode nxm_long_gradual_mode nxm_long_admm_mode
                                 nxm_1of4_admmproj_genre nxm_1of4_admmproj_mode
                                 nxm_long_admmproj_genre nxm_long_admmproj_mode
                                 nxm_search_l1_genre nxm_search_l1_mode nxm_search_admm_genre nxm_search_admm_mode)
source scripts/compress_runs_lib.sh
