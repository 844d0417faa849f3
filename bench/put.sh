#!/usr/bin/env bash
# Upload benchmark: a 1 GiB HTTP PUT to dftp (to the node that takes the file, and through a node
# that forwards it to the owner) against nginx's dav module writing to the same disk, in one run,
# reported as ratios (dftp / nginx). Nothing is asserted: the machine is shared and noisy.
#
#   bench/put.sh                     # 1 GiB, 3 rounds, best of each
#   ROUNDS=5 BIG_MIB=256 bench/put.sh
#   DFTP=/tmp/old/target/release/dftp bench/put.sh
#
# Needs nginx (nginx-light has the dav module) and curl; installed with apt-get when missing.
# Everything listens on 127.0.0.1; multicast is off. All servers write under one temporary
# directory, so they share the disk (and its file system).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
BIG_MIB=${BIG_MIB:-1024}

cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null 2>&1 && ! [ -x /usr/sbin/nginx ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  service nginx stop >/dev/null 2>&1 || true
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${DFTP:-}" ]; then
  cargo build --release -q -p dftp
  DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp
fi

WORK=$(mktemp -d /var/tmp/dftp-put-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "# preparing a ${BIG_MIB} MiB body in $WORK"
# `up/` exists only on node A: a new file there goes to A, whichever node receives the PUT.
mkdir -p "$WORK/body" "$WORK/ngx/up" "$WORK/a/up" "$WORK/b/elsewhere" "$WORK/ngx_tmp"
chmod 777 "$WORK/ngx/up" "$WORK/ngx_tmp"
head -c $((BIG_MIB << 20)) /dev/urandom > "$WORK/body/big.bin"
cat "$WORK/body/big.bin" > /dev/null

NGX_PORT=$(free_port)
cat > "$WORK/nginx.conf" <<NGX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_temp_path $WORK/ngx_tmp;
  proxy_temp_path $WORK/ngx_tmp;
  fastcgi_temp_path $WORK/ngx_tmp;
  uwsgi_temp_path $WORK/ngx_tmp;
  scgi_temp_path $WORK/ngx_tmp;
  server {
    listen 127.0.0.1:$NGX_PORT;
    root $WORK/ngx;
    dav_methods PUT DELETE MKCOL;
    create_full_put_path on;
  }
}
NGX
"$NGINX" -c "$WORK/nginx.conf"

AUTH='bench:bench@/:rw'
A_HTTP=$(free_port); A_MGMT=$(free_port); B_HTTP=$(free_port); B_MGMT=$(free_port)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/a" --node-name benchA --http-listen 127.0.0.1:$A_HTTP \
  --http-mgmt-listen 127.0.0.1:$A_MGMT --ftp-listen 127.0.0.1:$(free_port) --multicast-discovery-addr '' \
  --auth "$AUTH" &
PIDS+=($!)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/b" --node-name benchB --http-listen 127.0.0.1:$B_HTTP \
  --http-mgmt-listen 127.0.0.1:$B_MGMT --ftp-listen 127.0.0.1:$(free_port) --multicast-discovery-addr '' \
  --auth "$AUTH" --join 127.0.0.1:$A_MGMT &
PIDS+=($!)
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$B_HTTP/find/" | grep -qx '/up' && break
  sleep 0.2
done

# CPU time (user + system, in clock ticks) of the processes given, from /proc.
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
TICK=$(getconf CLK_TCK)

# Best of ROUNDS uploads to $1, in bytes per second; the server processes' CPU seconds per GiB
# (the rest of the arguments are their pids) go to $WORK/cpu. Each round checks the status.
put() {
  local url=$1 best=0 out code speed t0 t1 bytes=0
  shift
  t0=$(ticks "$@")
  for _ in $(seq "$ROUNDS"); do
    out=$(curl -s -o /dev/null -u bench:bench -T "$WORK/body/big.bin" -w '%{http_code} %{speed_upload}' "$url")
    code=${out% *} speed=${out#* }
    case "$code" in 2*) ;; *) echo "PUT $url answered $code" >&2; exit 1 ;; esac
    best=$(python3 -c "print(max($best, $speed))")
    bytes=$((bytes + (BIG_MIB << 20)))
  done
  t1=$(ticks "$@")
  python3 -c "print(($t1 - $t0) / $TICK / ($bytes / 2**30))" > "$WORK/cpu"
  echo "$best"
}

NGX_PIDS=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')
A_PID=${PIDS[0]} B_PID=${PIDS[1]}
echo "# 1 GiB PUT, best of $ROUNDS (MB/s)"
NG=$(put "http://127.0.0.1:$NGX_PORT/up/big.bin" $NGX_PIDS); NGC=$(cat "$WORK/cpu")
LO=$(put "http://127.0.0.1:$A_HTTP/fs/up/big.bin" "$A_PID"); LOC=$(cat "$WORK/cpu")
PR=$(put "http://127.0.0.1:$B_HTTP/fs/up/big.bin" "$A_PID" "$B_PID"); PRC=$(cat "$WORK/cpu")
cmp -s "$WORK/body/big.bin" "$WORK/a/up/big.bin" || { echo "the file on A's disk is not the body sent" >&2; exit 1; }
[ ! -e "$WORK/b/up/big.bin" ] || { echo "the proxied PUT landed on B, not on the owner" >&2; exit 1; }

python3 - "$NG" "$LO" "$PR" "$NGC" "$LOC" "$PRC" <<'PY'
import sys
ng, lo, pr, ngc, loc, prc = map(float, sys.argv[1:])
mb = lambda x: x / 1e6
print(f"{'case':<24}{'nginx':>9}{'dftp':>9}{'ratio':>7}   server CPU s/GiB: {'nginx':>7}{'dftp':>7}")
print(f"{'1 GiB PUT local':<24}{mb(ng):>9.0f}{mb(lo):>9.0f}{lo/ng:>7.2f}{'':>21}{ngc:>7.2f}{loc:>7.2f}")
print(f"{'1 GiB PUT proxied':<24}{mb(ng):>9.0f}{mb(pr):>9.0f}{pr/ng:>7.2f}{'':>21}{ngc:>7.2f}{prc:>7.2f}")
print("(server CPU: user + system time of the serving processes; proxied counts both nodes)")
PY
