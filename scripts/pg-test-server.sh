#!/usr/bin/env bash
# Starts or stops the PostgreSQL server the tests use: Debian's postgresql-15, a fresh cluster in
# a new folder under /tmp (short, for the unix socket's 107-byte limit, and reachable by the
# server's user whatever the permissions of the checkout), listening only on a unix socket there.
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user. `start`
# writes the connection string to DIR/dsn; `stop` stops the server and removes both folders.
#
#   scripts/pg-test-server.sh start|stop DIR
set -euo pipefail
action=${1:?start or stop}
dir=${2:?the folder for the cluster}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$bin/initdb" ]] || { echo "pg-test-server: no PostgreSQL server (install postgresql-15)" >&2; exit 1; }

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  if [[ -f "$dir/socket" ]]; then
    local sock
    sock=$(cat "$dir/socket")
    if [[ -f "$sock/data/postmaster.pid" ]]; then
      as_owner "$bin/pg_ctl" -D "$sock/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$sock"
  fi
  rm -rf "$dir"
}

case "$action" in
  start)
    stop  # a server left behind by an interrupted run
    mkdir -p "$dir"
    sock=$(mktemp -d /tmp/dl-pg.XXXXXX)
    echo "$sock" >"$dir/socket"
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$sock"; fi
    as_owner "$bin/initdb" -D "$sock/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$sock/initdb.log" 2>&1 || { cat "$sock/initdb.log" >&2; exit 1; }
    # Many tests and 20-process concurrency tests at once; fsync off: nothing here must survive
    # a crash of the machine.
    as_owner "$bin/pg_ctl" -D "$sock/data" -l "$sock/server.log" -w -t 300 \
      -o "-c listen_addresses='' -k $sock -c max_connections=300 -c fsync=off \
          -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB" start \
      >/dev/null || { cat "$sock/server.log" >&2; exit 1; }
    echo "host=$sock port=5432 user=postgres dbname=postgres" >"$dir/dsn"
    echo "pg-test-server: PostgreSQL running in $sock"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
