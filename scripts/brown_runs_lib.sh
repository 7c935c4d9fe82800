# Shared by the scripts that train the demo GPT on Brown under several configs (sourced, not run).
# The caller sets `out` (a folder under runs/) and `steps`.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
[ -f data/brown/train.tok ] || build/gannet data prepare --out data/brown
moe='"moe": {"num_experts": 8, "k": 1, "capacity_factor": 1.25, "eval_capacity_factor": 2.0}'
# Writes $out/NAME.json: the demo GPT (model-extra added to its model block), micro-batch MICRO,
# `steps` steps, checkpoint in $out/NAME; EXTRA is appended to the top-level keys.
cfg() {  # name micro extra [model-extra]
  cat > "$out/$1.json" <<JSON
{"model": {"vocab_size": 8192, "n_ctx": 128, "n_layer": 4, "n_head": 4, "n_embd": 256${4:+, $4}},
 "data": {"dir": "data/brown", "seq_len": 128}, "train_micro_batch_size_per_gpu": $2,
 "train_steps": $steps, "optimizer": {"type": "AdamW", "params": {"lr": 2e-3}},
 "scheduler": {"type": "WarmupCosineLR", "params": {"warmup_num_steps": 10}},
 "eval": {"interval": 0, "batches": 4}, "checkpoint": {"dir": "$out/$1", "interval": 0}$3}
JSON
}
# Trains $out/NAME.json on NP processes (1: without mpirun) of THREADS threads each, in a fresh
# $out/NAME (an earlier run there is removed).
train_run() {  # name np threads
  rm -rf "${out:?}/$1"  # a fresh run each time (gannet train refuses to start over an earlier one)
  if [ "$2" = 1 ]; then OMP_NUM_THREADS=$3 build/gannet train --no-progress --sample-prompt '' --config "$out/$1.json" >/dev/null
  else OMP_NUM_THREADS=$3 mpirun -np "$2" --oversubscribe build/gannet train --no-progress --sample-prompt '' --config "$out/$1.json" >/dev/null
  fi
}
