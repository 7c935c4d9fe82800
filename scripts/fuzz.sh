#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/*_fuzzer.cpp, clang, ASan + UBSan) and runs each for SECONDS.
#   scripts/fuzz.sh [SECONDS] [NAME...]     NAME: safetensors, manifest, train_config, ... (default: all)
#   scripts/fuzz.sh 1800                    a longer run (half an hour per harness)
#   scripts/fuzz.sh --seeds                 rewrite the seed corpora fuzz/corpus/ (fuzz/make_corpus.cpp)
# Each harness first replays its regression inputs (fuzz/regressions/NAME/, crashes found before),
# then fuzzes from its seeds (fuzz/corpus/NAME/, read-only) and what earlier runs of this build
# directory found (BUILD/fuzz-corpus/NAME/). Any crash, hang (-timeout), memory blow-up
# (-rss_limit_mb, -malloc_limit_mb), leak or sanitizer report fails the script; the input that did it
# is written to fuzz/crashes/NAME-*. Logs: BUILD/fuzz-logs/NAME.log.
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (harnesses at once, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${FUZZ_JOBS:-1}"

configure() {
  local gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  cmake -S . -B "$build" "${gen[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DGANNET_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
}

if [ "${1:-}" = "--seeds" ]; then
  configure
  cmake --build "$build" -j "$(nproc)" --target fuzz_make_corpus
  rm -rf fuzz/corpus
  "$build/fuzz/fuzz_make_corpus" "$PWD"
  echo "fuzz: seeds written to fuzz/corpus/"
  exit 0
fi

seconds="${1:-45}"
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cpp; do n="$(basename "$f" .cpp)"; names+=("${n%_fuzzer}"); done
fi

configure
cmake --build "$build" -j "$(nproc)" --target "${names[@]/%/_fuzzer}"
mkdir -p fuzz/crashes "$build/fuzz-logs"

export OMP_NUM_THREADS=1
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"

# Runs one harness; returns non-zero on any finding.
run_one() {
  local name="$1" bin="$build/fuzz/${1}_fuzzer" log="$build/fuzz-logs/$1.log"
  local limits=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 "-artifact_prefix=fuzz/crashes/$name-")
  : >"$log"
  if compgen -G "fuzz/regressions/$name/*" >/dev/null; then
    if ! "$bin" "${limits[@]}" fuzz/regressions/"$name"/* >>"$log" 2>&1; then
      echo "fuzz: $name: a regression input fails again (log: $log)"
      return 1
    fi
  fi
  mkdir -p "$build/fuzz-corpus/$name"
  if ! "$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      "$build/fuzz-corpus/$name" "fuzz/corpus/$name" >>"$log" 2>&1; then
    echo "fuzz: $name: FAILED (log: $log; input in fuzz/crashes/)"
    grep -E "ERROR|SUMMARY|runtime error|terminate|what\(\)|Test unit written" "$log" | head -6 | sed 's/^/  /' || true
    return 1
  fi
  local execs cov ft
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
  echo "fuzz: $name: ok, ${seconds} s, ${execs:-?} runs, cov ${cov:-?}, ft ${ft:-?}"
}

failed=0
pids=()
for name in "${names[@]}"; do
  run_one "$name" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED; add each input from fuzz/crashes/ to fuzz/regressions/NAME/ once it is fixed"
  exit 1
fi
echo "fuzz: all harnesses ran clean"
