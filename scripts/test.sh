#!/usr/bin/env bash
# Sets everything up and runs every test: the optimised build's full suite (unit, integration,
# end to end), then the unit tests again in a debug build with AddressSanitizer and UBSan, then
# the server's tests (HTTP layer, metrics, controller, API) with ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh release
ctest --preset release
bash scripts/setup.sh asan
ctest --preset asan
bash scripts/setup.sh tsan
ctest --preset tsan
# Formatting is part of the checks: `clang-format -i` on the files it names fixes them.
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror
