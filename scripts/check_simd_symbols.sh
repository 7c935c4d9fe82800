#!/usr/bin/env bash
# Fails if a vector-ISA object file (*_simd.cpp, compiled with -mavx512f or -mavx2) defines a weak
# function: the linker keeps one copy of each weak symbol for the whole program, so scalar code
# could run that file's AVX-512 copy on a CPU without AVX-512 (core/isa_scratch.h says more).
# Usage: scripts/check_simd_symbols.sh OBJECT...   (CTest passes the gannet_avx512/avx2 objects)
set -euo pipefail
[ $# -gt 0 ] || { echo "check_simd_symbols: no object files given" >&2; exit 2; }
found=0
for o in "$@"; do
  # W: a weak function defined here (template instantiations, inline functions kept out of line).
  weak=$(nm -C --defined-only "$o" | awk '$2 == "W" { $1 = ""; $2 = ""; sub(/^  /, ""); print }' |
         grep -v -x 'gannet::Error::~Error()' || true)
  if [ -n "$weak" ]; then
    found=1
    echo "$o defines weak functions compiled for its ISA:" >&2
    echo "$weak" | sed 's/^/  /' >&2
  fi
done
[ "$found" -eq 0 ] && echo "check_simd_symbols: $# objects, no weak functions"
exit "$found"
