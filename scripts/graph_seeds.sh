#!/usr/bin/env bash
# GraphSAGE on the Debian graph over several training seeds, from one feature store: trains
# configs/debian_sage.json with the seed and store swapped in, then `graph eval` on the test and
# validation splits; prints a line per seed and the means (docs/results.md, "Graph learning").
# Usage: scripts/graph_seeds.sh BUILD_DIR NAME FEATURES [SEED...]
#   FEATURES: "raw" or a BiFeat file (from `gannet graph compress --out FILE`); seeds default 1 2 3.
#   THREADS (environment, default 1): the run's thread count. Runs go to runs/graph_seeds/NAME_sSEED.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: scripts/graph_seeds.sh BUILD_DIR NAME FEATURES [SEED...]" >&2; exit 2; }
bin="$1/gannet" name="$2" features="$3"
shift 3
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
[ -x "$bin" ] || { echo "graph_seeds: no $bin (build gannet_cli first)" >&2; exit 1; }
[ "$features" = raw ] || [ -f "$features" ] || { echo "graph_seeds: no feature file $features" >&2; exit 1; }
out=runs/graph_seeds
mkdir -p "$out"
tests=() vals=()
for seed in "${seeds[@]}"; do
  run="$out/${name}_s$seed"
  config="$out/${name}_s$seed.json"
  python3 - "$config" "$features" "$seed" "$run" "${THREADS:-1}" <<'EOF'
import json, sys
path, features, seed, run, threads = sys.argv[1:]
c = json.load(open("configs/debian_sage.json"))
c["graph"]["features"] = features
c["seed"] = int(seed)
c["checkpoint"]["dir"] = run
c["threads"] = int(threads)
json.dump(c, open(path, "w"), indent=1)
EOF
  rm -rf "$run"
  start=$(date +%s)
  "$bin" graph train --config "$config" --no-progress > "$run.train.log"
  secs=$(( $(date +%s) - start ))
  acc() { "$bin" graph eval --checkpoint "$run/checkpoint.safetensors" --split "$1" -t "${THREADS:-1}" |
          sed -n "s/.* $1 accuracy \([0-9.]*\),.*/\1/p"; }
  t=$(acc test) v=$(acc validation)
  [ -n "$t" ] && [ -n "$v" ] || { echo "graph_seeds: no accuracy for seed $seed (see $run.train.log)" >&2; exit 1; }
  tests+=("$t") vals+=("$v")
  echo "$name seed $seed: test $t validation $v (training ${secs}s)"
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.4f", s / NR }'; }
echo "$name mean over seeds ${seeds[*]}: test $(mean "${tests[@]}") validation $(mean "${vals[@]}")"
