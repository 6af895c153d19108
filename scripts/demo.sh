#!/usr/bin/env bash
# The main job on an embedded default: the demo repository in examples/demo applied to files
# under a temporary root, with SQLite state. Part 1, a plain folder: plan, apply, plan again (no
# changes), a manual edit shows up as drift and the next apply heals it. Part 2, the same files
# as a Git repository: a branch is an environment, applies record their commit, and a new
# commit leaves the environment behind until it is applied; a preview branch of staging is its own
# environment until its branch is deleted and env prune destroys it.
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

printf '\n# Part 2: the same declarations in Git. Branch staging is environment staging.\n'
# A state of its own: environment `default` of part 1 was applied from a folder, with no commit
# that env prune could read its declarations from.
export DRIFTLESS_STATE="$work/state-git.db"
git_() { printf '$ git %s\n' "$*"; git -C "$work/repo" -c user.name=Demo -c user.email=demo@example.com "$@"; }
git_ init -q -b staging
git_ add -A
git_ commit -q -m "Site for the demo"
dl plan
dl apply --auto-approve
printf '$ (change the greeting of staging)\n'
echo "greeting: Hello from the staging branch" > "$work/repo/vars/staging.yaml"
git_ commit -q -am "Greet from the staging branch"
dl env list
dl apply --auto-approve
step history staging
"$bin" history staging --dir "$work/repo"

printf '\n# A preview of staging: branch feature/staging/<name> is environment staging-<name>,\n'
printf '# with the variables of staging; merged and deleted, env prune destroys it.\n'
git_ switch -q -c feature/staging/more-workers
printf '$ (set workers: 4 for the preview)\n'
echo "workers: 4" > "$work/repo/vars/staging-more-workers.yaml"
git_ add -A
git_ commit -q -m "More workers"
dl apply --auto-approve
printf '$ cat %s\n' "$root/staging-more-workers/motd"
cat "$root/staging-more-workers/motd"
git_ switch -q staging
git_ branch -q -D feature/staging/more-workers
dl env prune --auto-approve
printf '\nThe demo ran in %s (files under %s, state in %s).\n' "$work" "$root" "$work/state.db and $work/state-git.db"
