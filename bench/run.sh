#!/usr/bin/env bash
# Builds the release preset and runs the engine benchmark with the given arguments
# (see engine_bench.cc: --sizes, --runs, --parallelism, ...). The table is printed and written
# to bench/results/latest.md, the figures to bench/results/latest.json.
#
#   bench/run.sh                               # N = 1,000 10,000 100,000, 3 runs each
#   bench/run.sh --sizes 1000,10000 --runs 5
#
# JOBS sets the build's parallel jobs (default 2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
top="$(dirname "$here")"
cd "$top"

cmake --preset release
cmake --build --preset release --parallel "${JOBS:-2}"

mkdir -p bench/results
exec build/release/bench/driftless-bench \
  --bin build/release/src/driftless \
  --out bench/results/latest.md \
  --json bench/results/latest.json \
  "$@"
