#!/usr/bin/env bash
# The main job on an embedded default: the demo repository in examples/demo applied to files
# under a temporary root, with SQLite state. Plan, apply, plan again (no changes), then a manual
# edit shows up as drift and the next apply heals it.
set -euo pipefail
cd "$(dirname "$0")/.."
# DRIFTLESS_BIN runs the demo with a binary built elsewhere (the end-to-end test does).
if [ -z "${DRIFTLESS_BIN:-}" ]; then
  bash scripts/setup.sh release
fi
bin=${DRIFTLESS_BIN:-$PWD/build/release/src/driftless}
[ -x "$bin" ] || { echo "demo: no driftless binary at $bin"; exit 1; }

work=$(mktemp -d -t driftless-demo.XXXXXX)
cp -r examples/demo "$work/repo"
root="$work/root"
export DRIFTLESS_STATE="$work/state.db"
export DRIFTLESS_SECRET_API_TOKEN="demo-token-$RANDOM$RANDOM"
bold='' plain=''
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s$ driftless %s%s\n' "$bold" "$*" "$plain"; }
dl() { step "$@"; "$bin" "$@" --dir "$work/repo" --var root="$root"; }

dl validate
dl plan
dl apply --auto-approve
set +e
dl plan --detailed-exitcode
code=$?
set -e
[ "$code" -eq 0 ] || { echo "demo: the second plan should have no changes (exit $code)"; exit 1; }

printf '\n# Someone edits a managed file by hand:\n$ echo "maintenance tonight" >> %s\n' "$root/default/motd"
echo "maintenance tonight" >> "$root/default/motd"
set +e
dl plan --detailed-exitcode
code=$?
set -e
[ "$code" -eq 2 ] || { echo "demo: the edit should show as drift (exit $code)"; exit 1; }
dl apply --auto-approve
step history
"$bin" history --dir "$work/repo"
printf '\nThe demo ran in %s (files under %s, state in %s).\n' "$work" "$root" "$DRIFTLESS_STATE"
