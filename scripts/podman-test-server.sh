#!/usr/bin/env bash
# Starts or stops the Podman service the container tests use: Debian's podman 4.3 serving its
# Docker-compatible and libpod APIs on a unix socket in a new folder under /tmp (short, for the
# socket's 107-byte limit), with its own storage (vfs), run, network and event folders and a
# containers.conf of its own, so that it shares nothing with the machine's podman or with a
# service of another build. No registry is needed: the images are made from Debian's
# busybox-static.
#
#   scripts/podman-test-server.sh start|stop DIR
#
# `start` writes, in DIR:
#   endpoint           unix:///tmp/dl-pm.XXXXXX/podman.sock, what a container target takes
#   env                CONTAINERS_CONF=... and CONTAINERS_STORAGE_CONF=... lines: with them,
#                      the podman command line (and podman-compose) talks to the same storage
#   busybox-rootfs.tar a root filesystem: /bin/busybox and its applet links
#   busybox-image.tar  the same as an image archive (podman save of localhost/busybox:fixture)
#   pid                the service's process id
# `stop` removes what the service still runs, stops it by its pid and removes both folders.
set -euo pipefail
action=${1:?start or stop}
dir=${2:?the folder for the service}

podman_in() {  # podman_in BASE ARGS...: the podman command line on BASE's storage
  local base=$1
  shift
  CONTAINERS_CONF="$base/containers.conf" CONTAINERS_STORAGE_CONF="$base/storage.conf" \
    podman "$@"
}

stop() {
  if [[ -f "$dir/base" ]]; then
    local base pid
    base=$(cat "$dir/base")
    if [[ -f "$base/containers.conf" ]]; then
      # Containers hold network namespaces, firewall rules and mounts outside the folder.
      podman_in "$base" pod rm -af -t 0 >/dev/null 2>&1 || true
      podman_in "$base" rm -af -t 0 >/dev/null 2>&1 || true
      podman_in "$base" network prune -f >/dev/null 2>&1 || true
    fi
    if [[ -f "$dir/pid" ]]; then
      pid=$(cat "$dir/pid")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    # Mounts left below the folder (a container's shm) would make rm fail.
    { grep -o " $base/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$base"
  fi
  rm -rf "$dir"
}

command -v podman >/dev/null || { echo "podman-test-server: no podman (install podman)" >&2; exit 1; }
busybox=$(command -v busybox || true)
[[ -n "$busybox" ]] && "$busybox" --list-full >/dev/null 2>&1 ||
  { echo "podman-test-server: no busybox (install busybox-static)" >&2; exit 1; }

case "$action" in
  start)
    stop  # a service left behind by an interrupted run
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    base=$(mktemp -d /tmp/dl-pm.XXXXXX)
    echo "$base" >"$dir/base"
    mkdir -p "$base/tmp" "$base/networks"
    # runc and cgroupfs: no systemd here. Explicit ulimits: the defaults (from the service's own
    # limits) can exceed what a container may set. Events in a file of the folder.
    cat >"$base/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$base/events.log"
tmp_dir = "$base/tmp"

[network]
network_config_dir = "$base/networks"
EOF
    cat >"$base/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$base/root"
runroot = "$base/run"
EOF
    printf 'CONTAINERS_CONF=%s\nCONTAINERS_STORAGE_CONF=%s\n' "$base/containers.conf" \
      "$base/storage.conf" >"$dir/env"

    # The busybox root filesystem: the static binary and a link per applet.
    rootfs="$base/rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/www" "$rootfs/data"
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in $("$busybox" --list-full); do
      [[ "$applet" == bin/busybox ]] && continue
      mkdir -p "$rootfs/$(dirname "$applet")"
      ln -sf /bin/busybox "$rootfs/$applet"
    done
    tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
      -cf "$dir/busybox-rootfs.tar" .
    rm -rf "$rootfs"
    podman_in "$base" import -q -c "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin" -c 'CMD ["sh"]' \
      "$dir/busybox-rootfs.tar" localhost/busybox:fixture >/dev/null
    podman_in "$base" save -q -o "$dir/busybox-image.tar" localhost/busybox:fixture
    podman_in "$base" rmi -f localhost/busybox:fixture >/dev/null

    sock="$base/podman.sock"
    CONTAINERS_CONF="$base/containers.conf" CONTAINERS_STORAGE_CONF="$base/storage.conf" \
      setsid podman system service --time=0 "unix://$sock" >"$base/service.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 3000); do
      if curl -sf --unix-socket "$sock" http://podman/_ping >/dev/null 2>&1; then
        echo "unix://$sock" >"$dir/endpoint"
        echo "podman-test-server: podman service on $sock"
        exit 0
      fi
      kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
      sleep 0.1
    done
    echo "podman-test-server: the service did not start" >&2
    cat "$base/service.log" >&2
    exit 1
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
