#!/usr/bin/env bash
# gannet's main job on its default data, from a fresh machine: install packages, build, fetch
# and tokenize the Brown corpus, train the demo GPT (a few minutes on 2 cores), and print the
# validation perplexity and a text sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
./build/gannet data prepare --out data/brown
./build/gannet train --config "${1:-configs/demo.json}"
