#!/usr/bin/env bash
# Configures and builds gannet. Usage: scripts/build.sh [BUILD_DIR] [--target NAME]... [extra cmake args...]
# Without --target, builds everything (the CLI, the tests and the benchmarks); with it, only the
# named targets (gannet_cli is the `gannet` program; gannet_tests, gannet_dist_tests, bench_*).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
targets=()
cmake_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = --target ]; then
    [ $# -ge 2 ] || { echo "scripts/build.sh: --target needs a target name" >&2; exit 2; }
    targets+=(--target "$2")
    shift 2
  else
    cmake_args+=("$1")
    shift
  fi
done
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
