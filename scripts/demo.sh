#!/usr/bin/env bash
# gannet's main job on its default data, from a fresh machine: install packages, build the gannet
# program (only it: the tests and benchmarks are not needed), fetch and tokenize the Brown corpus,
# train the demo GPT (a few minutes on 2 cores), and print the validation perplexity and a text
# sample. Usage: scripts/demo.sh [CONFIG] [gannet train options, e.g. --resume]
# A second run over the same run directory (runs/demo) needs --resume, or the directory removed.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/demo.json}"
shift || true
scripts/setup.sh
scripts/build.sh build --target gannet_cli
./build/gannet data prepare --out data/brown
./build/gannet train --config "$config" "$@"
