#!/usr/bin/env bash
# Times the same driftless commands with a SQLite state and with a PostgreSQL state (a private
# server started for the run: scripts/pg-test-server.sh, unix socket, fsync off) and prints the
# ratios PostgreSQL / SQLite. Uses the release build; build it first.
#
#   bench/state-backends.sh [SIZES (default "1000 10000")] [RUNS (default 5)]
#
# Per size N: a repository from driftless-gen-repo, `apply --auto-approve` from empty (timed
# once per backend), then RUNS timings of a no-change `plan --detailed-exitcode`; the medians
# are compared. No timing is asserted anywhere: this only prints.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build/release}
bin=$build/src/driftless
gen=$build/bench/driftless-gen-repo
sizes=${1:-"1000 10000"}
runs=${2:-5}
[[ -x $bin && -x $gen ]] || { echo "build the release preset first ($bin, $gen)" >&2; exit 1; }

work=$(mktemp -d /tmp/dl-state-bench.XXXXXX)
pgdir=$work/pg
cleanup() { bash "$here/scripts/pg-test-server.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
bash "$here/scripts/pg-test-server.sh" start "$pgdir" >/dev/null
dsn=$(cat "$pgdir/dsn")
host=$(sed -E 's/.*host=([^ ]+).*/\1/' <<<"$dsn")
psql_cmd() { psql "$dsn" -qAtc "$1"; }

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '| N | operation | SQLite ms | PostgreSQL ms | PostgreSQL / SQLite |\n|---|---|---|---|---|\n'
for n in $sizes; do
  repo=$work/repo-$n
  "$gen" "$repo" "$n" >/dev/null
  declare -A apply_ms plan_ms
  for backend in sqlite postgres; do
    root=$work/root-$n-$backend
    if [[ $backend == sqlite ]]; then
      state=$work/state-$n.db
    else
      psql_cmd "CREATE DATABASE bench_$n"
      state="postgresql:///bench_$n?host=$host&port=5432&user=postgres"
    fi
    args=(--dir "$repo" --state "$state" --var "root=$root")
    t0=$(now_ms)
    "$bin" apply --auto-approve "${args[@]}" >/dev/null
    apply_ms[$backend]=$(( $(now_ms) - t0 ))
    times=()
    for ((r = 0; r < runs; r++)); do
      t0=$(now_ms)
      "$bin" plan --detailed-exitcode "${args[@]}" >/dev/null
      times+=($(( $(now_ms) - t0 )))
    done
    plan_ms[$backend]=$(printf '%s\n' "${times[@]}" | median)
  done
  for op in apply plan; do
    if [[ $op == apply ]]; then s=${apply_ms[sqlite]}; p=${apply_ms[postgres]}; label="apply from empty"
    else s=${plan_ms[sqlite]}; p=${plan_ms[postgres]}; label="plan, no changes (median of $runs)"; fi
    printf '| %s | %s | %s | %s | %s |\n' "$n" "$label" "$s" "$p" \
      "$(awk -v a="$p" -v b="$s" 'BEGIN {printf "%.2f", a / b}')"
  done
  unset apply_ms plan_ms
done
