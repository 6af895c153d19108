#!/usr/bin/env bash
# The main job on an embedded default: the demo repository in examples/demo applied to files
# under a temporary root, with SQLite state. Plan, apply, plan again (no changes), then a manual
# edit shows up as drift and the next apply heals it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh release
bin=$PWD/build/release/driftless

work=$(mktemp -d -t driftless-demo.XXXXXX)
cp -r examples/demo "$work/repo"
root="$work/root"
export DRIFTLESS_STATE="$work/state.db"
export DRIFTLESS_SECRET_API_TOKEN="demo-token-$RANDOM$RANDOM"
step() { printf '\n\033[1m$ driftless %s\033[0m\n' "$*"; }
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
