#!/usr/bin/env bash
# The whole test suite from a fresh machine: install packages, build, run the unit tests, then
# build again with AddressSanitizer + UndefinedBehaviorSanitizer and run them once more; then build
# the library and the gannet program with clang and run each fuzzer (fuzz/, libFuzzer + ASan + UBSan)
# for a bounded time. (The tests and benchmarks also build with clang: `scripts/build.sh build-fuzz
# -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DGANNET_FUZZ=ON`; left out here for time.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
start=$(date +%s)
scripts/build.sh build
(cd build && ctest --output-on-failure -j 2 --timeout 900)
# The sanitized build skips the benchmarks (the first build compiled them; ctest runs none).
scripts/build.sh build-asan --target gannet_tests --target gannet_dist_tests --target gannet_cli \
  -DGANNET_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j 2 --timeout 1800)
scripts/build.sh build-fuzz --target gannet_cli -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DGANNET_FUZZ=ON
FUZZ_BUILD_DIR=build-fuzz FUZZ_JOBS=2 scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
echo "all tests passed in $(( $(date +%s) - start )) s"
