#!/usr/bin/env bash
# WebDAV benchmark, two comparisons in one run, reported as ratios. Nothing is asserted: the
# machine is shared and noisy.
#
# 1. PROPFIND Depth 1 of a directory of 10,000 files spread over three nodes, through one of
#    them, against nginx's autoindex listing of the same directory from one local disk (time to
#    the last byte, best of ROUNDS).
# 2. A recursive listing of a tree of 100,000 files through rclone's webdav backend
#    (`rclone lsl`, one PROPFIND Depth 1 per directory, as a mount's `ls -lR` asks) against
#    `GET /find/` of the same tree. (A FUSE mount needs /dev/fuse, which containers often lack;
#    `lsl` makes the same requests.)
#
#   bench/webdav.sh
#   ENTRIES=10000 TREE=100000 ROUNDS=3 bench/webdav.sh
#
# Needs curl, nginx, rclone and python3. Everything listens on 127.0.0.1; multicast is off.
set -euo pipefail

ENTRIES=${ENTRIES:-10000}
TREE=${TREE:-100000}
ROUNDS=${ROUNDS:-3}

cd "$(dirname "$0")/.."
for tool in curl nginx rclone python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done

cargo build --release -q -p dftp
DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp

WORK=$(mktemp -d /tmp/dftp-webdav-bench.XXXXXX)
chmod 755 "$WORK"  # nginx's workers read it as another user
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "# preparing $ENTRIES entries in one directory and a tree of $TREE files, over three roots, in $WORK"
python3 - "$WORK" "$ENTRIES" "$TREE" <<'PY'
import os, sys
work, entries, tree = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for n in range(3):
    os.makedirs(f"{work}/n{n}/flat", exist_ok=True)
os.makedirs(f"{work}/local/flat", exist_ok=True)
for i in range(entries):
    name = f"f{i:05d}.txt"
    for root in (f"{work}/n{i % 3}/flat", f"{work}/local/flat"):
        with open(f"{root}/{name}", "w") as f:
            f.write("x" * (i % 100))
# The tree: 100 files a directory, directories 10 to a parent.
for i in range(tree):
    d = i // 100
    path = f"{work}/n{d % 3}/tree/{d // 100:03d}/{d % 100:03d}"
    os.makedirs(path, exist_ok=True)
    open(f"{path}/f{i % 100:02d}", "w").close()
PY

declare -a HTTP MGMT
for n in 0 1 2; do
  HTTP[$n]=$(free_port); MGMT[$n]=$(free_port)
  join=()
  [ "$n" -gt 0 ] && join=(--join "127.0.0.1:${MGMT[0]}")
  RUST_LOG=warn "$DFTP" --dfsroot "$WORK/n$n" --node-name "bench$n" --http-listen "127.0.0.1:${HTTP[$n]}" \
    --http-mgmt-listen "127.0.0.1:${MGMT[$n]}" --ftp-listen '' --multicast-discovery-addr '' "${join[@]}" \
    > "$WORK/n$n.log" 2>&1 &
  PIDS+=($!)
done
want=$((ENTRIES + TREE + TREE / 100 + TREE / 10000 + 2))
for _ in $(seq 1 600); do
  got=$(curl -s "http://127.0.0.1:${HTTP[0]}/find/" 2>/dev/null | wc -l || true)
  [ "$got" -ge "$want" ] && break
  sleep 0.2
done
[ "$got" -ge "$want" ] || { echo "the cluster did not list every path ($got of $want)" >&2; exit 1; }

NGINX_PORT=$(free_port)
cat > "$WORK/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/local;
    location / { autoindex on; }
  }
}
NGX
nginx -c "$WORK/nginx.conf"
sleep 0.5

best() { sort -n | head -1; }
ttlb() { curl -sS --fail -o /dev/null -w '%{time_total}\n' "$@"; }
BASE="http://127.0.0.1:${HTTP[0]}"

n=$(curl -sS -X PROPFIND -H 'Depth: 1' "$BASE/fs/flat/" | grep -o '<D:response>' | wc -l)
[ "$n" = $((ENTRIES + 1)) ] || { echo "PROPFIND listed $n responses, not $((ENTRIES + 1))" >&2; exit 1; }

dav=(); ngx=()
for _ in $(seq 1 "$ROUNDS"); do
  dav+=("$(ttlb -X PROPFIND -H 'Depth: 1' "$BASE/fs/flat/")")
  ngx+=("$(ttlb "http://127.0.0.1:$NGINX_PORT/flat/")")
done
d=$(printf '%s\n' "${dav[@]}" | best)
g=$(printf '%s\n' "${ngx[@]}" | best)
awk -v d="$d" -v g="$g" -v n="$ENTRIES" 'BEGIN {
  printf "PROPFIND Depth 1, %d entries, 3 owners: %.3f s\n", n, d
  printf "nginx autoindex, same directory:        %.3f s\n", g
  printf "ratio PROPFIND / nginx:                 %.2f\n", d / g
}'

time_it() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); awk -v n=$((e - s)) 'BEGIN { print n / 1e9 }'; }
rcl=(); fnd=()
for _ in $(seq 1 "$ROUNDS"); do
  rcl+=("$(time_it rclone lsl --config /dev/null --checkers 8 ":webdav,url='$BASE/fs/':tree")")
  fnd+=("$(time_it curl -sS --fail "$BASE/find/?prefix=/tree/")")
done
r=$(printf '%s\n' "${rcl[@]}" | best)
f=$(printf '%s\n' "${fnd[@]}" | best)
awk -v r="$r" -v f="$f" -v n="$TREE" 'BEGIN {
  printf "rclone lsl over WebDAV, %d files: %.2f s\n", n, r
  printf "GET /find/ of the same tree:      %.2f s\n", f
  printf "ratio rclone / find:              %.1f\n", r / f
}'
