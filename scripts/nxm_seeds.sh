#!/usr/bin/env bash
# NxMiFormer runs over several training seeds: each config of configs/NAME.json is run again with
# the seed (the data order) swapped in, to runs/nxm_seeds/NAME_sSEED. A search config trains the
# forms its own first run picked (runs/<its dir>/nm_search.json, written as explicit groups), so
# that the seeds vary the training, not the search. Prints scripts/nxm_table.sh's rows for every
# run and, per config, the mean and the sample standard deviation of accuracy and distillation loss
# over its seeds and its own run in runs/NAME (seed 1234), when that finished; then, for each two
# configs, the per-seed differences (the same seeds see the same data order) with their mean's
# standard error. Give one task's configs at a time: every two configs are paired.
#   scripts/nxm_seeds.sh "NAME..." [SEED...]   (seeds default 2 3; the configs' own seed is 1234)
#   THREADS (environment, default 1): each run's thread count. Finished runs are not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/nxm_seeds.sh \"NAME...\" [SEED...]" >&2; exit 2; }
read -r -a names <<< "$1"
shift
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(2 3)
gannet=build/gannet
[ -x "$gannet" ] || { echo "nxm_seeds: no $gannet (scripts/build.sh build --target gannet_cli)" >&2; exit 1; }
out=runs/nxm_seeds
mkdir -p "$out"
for name in "${names[@]}"; do
  [ -f "configs/$name.json" ] || { echo "nxm_seeds: no configs/$name.json" >&2; exit 1; }
  for seed in "${seeds[@]}"; do
    run="$out/${name}_s$seed"
    [ -f "$run/model.nm.safetensors" ] && continue
    python3 - "configs/$name.json" "$run" "$seed" <<'EOF'
import json, os, sys
path, run, seed = sys.argv[1:]
c = json.load(open(path))
ct = c["compression_training"]
search = ct["sparse_pruning"].pop("search", None)
if search and search.get("enabled"):
    picked = os.path.join(c["checkpoint"]["dir"], "nm_search.json")
    if not os.path.exists(picked):
        sys.exit(f"nxm_seeds: {path} searches: run it once first (no {picked})")
    forms = json.load(open(picked))
    sparse, bits = {}, {}
    for product, form in forms.items():
        pattern, b = form.split()
        if pattern != "dense":
            sparse.setdefault(pattern, []).append(product)
        bits.setdefault(b, []).append(product)
    ct["sparse_pruning"]["different_groups"] = {
        "sp_" + p.replace(":", "of"): {"params": {"nm_pattern": p}, "modules": m} for p, m in sparse.items()}
    ct["weight_quantization"]["different_groups"] = {
        "wq_" + b: {"params": {"start_bits": int(b[3:]), "target_bits": int(b[3:])}, "modules": m}
        for b, m in bits.items()}
c["seed"] = int(seed)
c["checkpoint"]["dir"] = run
json.dump(c, open(run + ".json", "w"), indent=1)
EOF
    rm -rf "$run"
    start=$(date +%s)
    OMP_NUM_THREADS=${THREADS:-1} "$gannet" compress --config "$run.json" --no-progress > "$run.log" 2>&1 ||
      { echo "nxm_seeds: $run failed (see $run.log)" >&2; exit 1; }
    echo "nxm_seeds: $run took $(( $(date +%s) - start )) s" >&2
  done
done
runs=()  # each config's own run (seed 1234, runs/NAME) first, where it finished
for name in "${names[@]}"; do
  [ -f "runs/$name/model.nm.safetensors" ] && runs+=("$name")
  for seed in "${seeds[@]}"; do runs+=("nxm_seeds/${name}_s$seed"); done
done
table=$(scripts/nxm_table.sh "${runs[@]}")
echo "$table"
echo
echo "| config | seeds | accuracy mean (sd) | KD loss, last 20 steps, mean (sd) |"
echo "|---|---|---|---|"
echo "$table" | tail -n +3 | python3 -c '
import itertools, math, re, statistics, sys
rows = {}  # config -> {seed: (accuracy, KD loss)}
for line in sys.stdin:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    run = cells[0].split("/")[-1]
    m = re.search(r"_s([0-9]+)$", run)
    name, seed = (run[:m.start()], int(m.group(1))) if m else (run, 1234)
    rows.setdefault(name, {})[seed] = (float(cells[1].rstrip("%")), float(cells[4]))
sd = lambda x: statistics.stdev(x) if len(x) > 1 else float("nan")
se = lambda x: sd(x) / math.sqrt(len(x))
for name, r in rows.items():
    acc, kd = [a for a, _ in r.values()], [k for _, k in r.values()]
    print(f"| {name} | {len(r)} | {statistics.mean(acc):.2f}% ({sd(acc):.2f}) | {statistics.mean(kd):.4f} ({sd(kd):.4f}) |")
print()
print("Paired by seed (the same data order), first minus second: mean (standard error of the mean)")
print()
print("| configs | seeds | accuracy difference | KD loss difference | accuracy ahead on |")
print("|---|---|---|---|---|")
for a, b in itertools.combinations(rows, 2):
    seeds = sorted(set(rows[a]) & set(rows[b]))
    if not seeds:
        continue
    da = [rows[a][s][0] - rows[b][s][0] for s in seeds]
    dk = [rows[a][s][1] - rows[b][s][1] for s in seeds]
    ahead = sum(d > 0 for d in da)
    print(f"| {a} - {b} | {len(seeds)} | {statistics.mean(da):+.2f} ({se(da):.2f}) | "
          f"{statistics.mean(dk):+.4f} ({se(dk):.4f}) | {ahead} of {len(seeds)} |")
'
