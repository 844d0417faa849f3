#!/usr/bin/env bash
# Join benchmark: a new node joins a cluster of PEERS nodes holding FILES_PER_PEER files each
# (default 20 × 500,000 = 10,000,000 paths) and receives one full update from each. Reported:
# the time from the node's start to the moment its `/find/` lists every path of the cluster, the
# node's CPU time and peak resident memory over that time, and the same figures per path.
# Nothing is asserted: the machine is shared and noisy.
#
#   bench/join.sh                              # 20 peers × 500,000 files
#   PEERS=20 FILES_PER_PEER=50000 bench/join.sh
#   DFTP=/path/to/dftp bench/join.sh           # another build (e.g. the previous commit's)
#
# The peers are fake (bench/fake_peers.py): they speak the original's protocol and stream
# pre-generated full updates (kept in /tmp/dftp-join-bodies-P-F between runs), so the time is
# the joining node's: receiving, parsing and applying 10M records, then listing them. Listens on
# 127.0.0.1 only; multicast is off.
set -euo pipefail

PEERS=${PEERS:-20}
FILES_PER_PEER=${FILES_PER_PEER:-500000}

cd "$(dirname "$0")/.."
if [ -z "${DFTP:-}" ]; then
  cargo build --release -q -p dftp
  DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp
fi

BODIES=/tmp/dftp-join-bodies-$PEERS-$FILES_PER_PEER
WORK=$(mktemp -d /tmp/dftp-join-bench.XXXXXX)
PID= FAKE=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  [ -n "$FAKE" ] && kill "$FAKE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "# preparing $PEERS fake peers x $FILES_PER_PEER files (bodies in $BODIES)"
python3 bench/fake_peers.py "$BODIES" "$PEERS" "$FILES_PER_PEER" > "$WORK/fake.out" 2> "$WORK/fake.err" &
FAKE=$!
for _ in $(seq 1 3600); do
  grep -q '^ready' "$WORK/fake.out" 2>/dev/null && break
  kill -0 "$FAKE" 2>/dev/null || { cat "$WORK/fake.err" >&2; exit 1; }
  sleep 0.5
done
ports=$(sed -n 's/^ready //p' "$WORK/fake.out")
join=$(for p in $ports; do printf '127.0.0.1:%s,' "$p"; done)
# Per peer: its files, a directory per 1,000 files, and its top directory.
want=$((PEERS * (FILES_PER_PEER + (FILES_PER_PEER + 999) / 1000 + 1)))

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port)
mgmt=$(free_port)
mkdir "$WORK/root"
start=$(date +%s.%N)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/root" --node-name joiner --http-listen "127.0.0.1:$port" \
  --http-mgmt-listen "127.0.0.1:$mgmt" --ftp-listen '' --multicast-discovery-addr '' \
  --join "${join%,}" > "$WORK/node.log" 2>&1 &
PID=$!
peak=0
held=0
for _ in $(seq 1 36000); do
  kill -0 "$PID" 2>/dev/null || { echo "the node exited" >&2; tail "$WORK/node.log" >&2; exit 1; }
  rss=$(awk '/^VmHWM/ {print $2}' /proc/$PID/status)
  held=$(curl -s "http://127.0.0.1:$mgmt/metrics" | awk '/^dftp_tree_paths\{owner="peer/ {s += $2} END {print s + 0}')
  [ "$held" -ge "$want" ] && break
  sleep 0.1
done
[ "$held" -ge "$want" ] || { echo "the node holds $held of $want paths" >&2; exit 1; }
listed=$(curl -s "http://127.0.0.1:$port/find/" | wc -l)
end=$(date +%s.%N)
ticks=$(awk '{print $14 + $15}' /proc/$PID/stat)
hz=$(getconf CLK_TCK)
rss=$(awk '/^VmRSS/ {print $2}' /proc/$PID/status)
peak=$(awk '/^VmHWM/ {print $2}' /proc/$PID/status)
python3 - "$start" "$end" "$ticks" "$hz" "$rss" "$peak" "$listed" "$want" "$PEERS" <<'PY'
import sys
start, end, ticks, hz, rss, peak, listed, want, peers = sys.argv[1:]
secs, cpu = float(end) - float(start), int(ticks) / int(hz)
listed, want = int(listed), int(want)
print(f"join of {peers} peers, {want:,} paths: /find/ lists {listed:,} lines after {secs:.1f} s")
print(f"  node CPU {cpu:.1f} s ({cpu / want * 1e9:.0f} ns per path); "
      f"RSS {int(rss) / 1024:.0f} MiB ({int(rss) * 1024 / want:.0f} B per path), peak {int(peak) / 1024:.0f} MiB")
PY
