# Shared by the scripts that run `gannet compress` configs on the reference teachers (sourced, not
# run): xtc_experiments.sh and nxm_experiments.sh. The caller sets `names` (configs/NAME.json).
# Builds the CLI if needed, checks for the teachers (scripts/train_teacher.sh), then runs each
# config, resuming a run whose directory exists, with its time.
gannet=build/gannet
[ -x "$gannet" ] || scripts/build.sh build --target gannet_cli
for t in genre mode; do
  [ -f runs/teacher_$t/checkpoint.safetensors ] || { echo "$(basename "$0"): no teacher: run scripts/train_teacher.sh first" >&2; exit 1; }
done
for n in "${names[@]}"; do
  resume=()
  [ -d "runs/$n" ] && resume=(--resume)
  t0=$(date +%s)
  echo "== $n"
  "$gannet" compress --config "configs/$n.json" "${resume[@]}" --no-progress
  echo "$(basename "$0" .sh): $n took $(( $(date +%s) - t0 )) s"
done
