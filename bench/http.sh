#!/usr/bin/env bash
# Whole-system HTTP benchmark: dftp against nginx serving the same files on this machine, in one
# run, reported as ratios (dftp / nginx). Nothing is asserted: the machine is shared and noisy.
#
#   bench/http.sh            # 1 GiB file + 1000 files of 4 KiB, 3 rounds each
#   ROUNDS=5 SMALL_SECS=20 bench/http.sh
#   DFTP=/tmp/old/target/release/dftp bench/http.sh   # another build of dftp
#
# Needs nginx and wrk (installed with apt-get when missing). Everything listens on 127.0.0.1;
# multicast is off.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SMALL_SECS=${SMALL_SECS:-10}
SMALL_FILES=${SMALL_FILES:-1000}
BIG_MIB=${BIG_MIB:-1024}
CONNS=${CONNS:-16}

cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1 || command -v "/usr/sbin/$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
  service nginx stop >/dev/null 2>&1 || true
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# DFTP=/path/to/dftp runs another build (an earlier commit's, for a before/after comparison).
if [ -z "${DFTP:-}" ]; then
  cargo build --release -q -p dftp
  DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp
fi

WORK=$(mktemp -d /tmp/dftp-bench.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as another user
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "# preparing files in $WORK"
mkdir -p "$WORK/data/small" "$WORK/empty"
head -c $((BIG_MIB << 20)) /dev/zero > "$WORK/data/big.bin"
python3 - "$WORK/data/small" "$SMALL_FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(4096))
PY

NGX_PORT=$(free_port)
cat > "$WORK/nginx.conf" <<NGX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $WORK/ngx_tmp;
  proxy_temp_path $WORK/ngx_tmp;
  fastcgi_temp_path $WORK/ngx_tmp;
  uwsgi_temp_path $WORK/ngx_tmp;
  scgi_temp_path $WORK/ngx_tmp;
  server { listen 127.0.0.1:$NGX_PORT; root $WORK/data; }
}
NGX
mkdir -p "$WORK/ngx_tmp"
"$NGINX" -c "$WORK/nginx.conf"

A_HTTP=$(free_port); A_MGMT=$(free_port); B_HTTP=$(free_port); B_MGMT=$(free_port)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/data" --node-name benchA --http-listen 127.0.0.1:$A_HTTP \
  --http-mgmt-listen 127.0.0.1:$A_MGMT --ftp-listen 127.0.0.1:$(free_port) --multicast-discovery-addr '' &
PIDS+=($!)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/empty" --node-name benchB --http-listen 127.0.0.1:$B_HTTP \
  --http-mgmt-listen 127.0.0.1:$B_MGMT --ftp-listen 127.0.0.1:$(free_port) --multicast-discovery-addr '' \
  --join 127.0.0.1:$A_MGMT &
PIDS+=($!)
for i in $(seq 100); do
  n=$(curl -s "http://127.0.0.1:$B_HTTP/find/?prefix=small/" | wc -l || true)
  [ "$n" -ge "$SMALL_FILES" ] && break
  sleep 0.2
done

# CPU time (user + system, in clock ticks) of the processes given, from /proc.
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
TICK=$(getconf CLK_TCK)

# Best of ROUNDS downloads of $1, in bytes per second; the server processes' CPU seconds per GiB
# (the rest of the arguments are their pids) go to $WORK/cpu.
big() {
  local url=$1 best=0 s t0 t1 bytes=0
  shift
  t0=$(ticks "$@")
  for _ in $(seq "$ROUNDS"); do
    s=$(curl -s -o /dev/null -w '%{speed_download}' "$url")
    best=$(python3 -c "print(max($best, $s))")
    bytes=$((bytes + (BIG_MIB << 20)))
  done
  t1=$(ticks "$@")
  python3 -c "print(($t1 - $t0) / $TICK / ($bytes / 2**30))" > "$WORK/cpu"
  echo "$best"
}

cat > "$WORK/random.lua" <<LUA
local prefix = os.getenv("PREFIX")
local n = tonumber(os.getenv("SMALL_FILES"))
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("%ssmall/f%05d.bin", prefix, math.random(0, n - 1)))
end
LUA
# Requests per second for random 4 KiB files; the server processes' CPU microseconds per
# request (the rest of the arguments are their pids) go to $WORK/cpu.
small() {
  local url=$1 prefix=$2 out t0 t1
  shift 2
  t0=$(ticks "$@")
  out=$(PREFIX=$prefix SMALL_FILES=$SMALL_FILES wrk -t2 -c"$CONNS" -d"${SMALL_SECS}s" -s "$WORK/random.lua" "$url")
  t1=$(ticks "$@")
  python3 -c "print(($t1 - $t0) / $TICK * 1e6 / $(echo "$out" | awk '/requests in/ {print $1}'))" > "$WORK/cpu"
  echo "$out" | awk '/Requests\/sec/ {print $2}'
}

NGX_PIDS=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')
A_PID=${PIDS[0]} B_PID=${PIDS[1]}
echo "# 1 GiB file, best of $ROUNDS (MB/s)"
NG=$(big "http://127.0.0.1:$NGX_PORT/big.bin" $NGX_PIDS); NGC=$(cat "$WORK/cpu")
LO=$(big "http://127.0.0.1:$A_HTTP/fs/big.bin" "$A_PID"); LOC=$(cat "$WORK/cpu")
PR=$(big "http://127.0.0.1:$B_HTTP/fs/big.bin" "$A_PID" "$B_PID"); PRC=$(cat "$WORK/cpu")
echo "# random 4 KiB files, ${SMALL_SECS}s with $CONNS connections (req/s)"
NGS=$(small "http://127.0.0.1:$NGX_PORT" "/" $NGX_PIDS); NGSC=$(cat "$WORK/cpu")
LOS=$(small "http://127.0.0.1:$A_HTTP" "/fs/" "$A_PID"); LOSC=$(cat "$WORK/cpu")
PRS=$(small "http://127.0.0.1:$B_HTTP" "/fs/" "$A_PID" "$B_PID"); PRSC=$(cat "$WORK/cpu")

python3 - "$NG" "$LO" "$PR" "$NGS" "$LOS" "$PRS" "$NGC" "$LOC" "$PRC" "$NGSC" "$LOSC" "$PRSC" <<'PY'
import sys
ng, lo, pr, ngs, los, prs, ngc, loc, prc, ngsc, losc, prsc = map(float, sys.argv[1:])
mb = lambda x: x / 1e6
print(f"{'case':<24}{'nginx':>9}{'dftp':>9}{'ratio':>7}   server CPU: {'nginx':>7}{'dftp':>7}")
print(f"{'1 GiB local (MB/s)':<24}{mb(ng):>9.0f}{mb(lo):>9.0f}{lo/ng:>7.2f}   s/GiB       {ngc:>7.2f}{loc:>7.2f}")
print(f"{'1 GiB proxied (MB/s)':<24}{mb(ng):>9.0f}{mb(pr):>9.0f}{pr/ng:>7.2f}   s/GiB       {ngc:>7.2f}{prc:>7.2f}")
print(f"{'4 KiB local (req/s)':<24}{ngs:>9.0f}{los:>9.0f}{los/ngs:>7.2f}   us/request  {ngsc:>7.1f}{losc:>7.1f}")
print(f"{'4 KiB proxied (req/s)':<24}{ngs:>9.0f}{prs:>9.0f}{prs/ngs:>7.2f}   us/request  {ngsc:>7.1f}{prsc:>7.1f}")
print("(server CPU: user + system time of the serving processes; proxied counts both nodes)")
PY
