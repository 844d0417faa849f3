#!/usr/bin/env bash
# Search benchmark: `GET /find/?q=PATTERN` over a node holding 1,000,000 paths, against `grep`
# over the same node's whole `/find/` listing saved to a file (the search a user would do
# without the endpoint), in one run, reported as a ratio (dftp / grep). Nothing is asserted:
# the machine is shared and noisy.
#
#   bench/search.sh                         # 1,000 directories of 1,000 empty files, 5 rounds
#   DIRS=100 PER_DIR=1000 ROUNDS=3 bench/search.sh
#
# Needs curl, grep and python3 (free ports). Listens on 127.0.0.1 only; multicast is off.
set -euo pipefail

DIRS=${DIRS:-1000}
PER_DIR=${PER_DIR:-1000}
ROUNDS=${ROUNDS:-5}

cd "$(dirname "$0")/.."
cargo build --release -q -p dftp
DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp

WORK=$(mktemp -d /tmp/dftp-search-bench.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "# preparing $DIRS x $PER_DIR empty files in $WORK"
python3 - "$WORK/root" "$DIRS" "$PER_DIR" <<'PY'
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    p = os.path.join(root, f"dir{d:04d}")
    os.makedirs(p)
    for f in range(per):
        open(os.path.join(p, f"file-{d:04d}-{f:04d}.dat"), "wb").close()
PY

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mgmt=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/root" --node-name bench --http-listen "127.0.0.1:$port" \
  --http-mgmt-listen "127.0.0.1:$mgmt" --ftp-listen '' --multicast-discovery-addr '' > "$WORK/node.log" 2>&1 &
PID=$!
want=$((DIRS * PER_DIR + DIRS))
for _ in $(seq 1 600); do
  got=$(curl -s "http://127.0.0.1:$port/find/" 2>/dev/null | wc -l || true)
  [ "$got" = "$want" ] && break
  sleep 0.5
done
[ "$got" = "$want" ] || { echo "the node did not list every path ($got of $want)" >&2; exit 1; }
curl -s "http://127.0.0.1:$port/find/" > "$WORK/all.txt"

# A glob on the name and the same test as a regular expression on the last segment.
GLOB='*-0?42-*7.DAT'
REGEX='/[^/]*-0.42-[^/]*7\.dat$'

best() { sort -g | head -1; }
t_find=$(for _ in $(seq 1 "$ROUNDS"); do
  curl -s -o "$WORK/found.txt" -w '%{time_total}\n' "http://127.0.0.1:$port/find/?q=$(python3 -c 'import urllib.parse,sys;print(urllib.parse.quote(sys.argv[1]))' "$GLOB")"
done | best)
t_grep=$(for _ in $(seq 1 "$ROUNDS"); do
  s=$(date +%s.%N); grep -i -E "$REGEX" "$WORK/all.txt" > "$WORK/grepped.txt"; e=$(date +%s.%N)
  python3 -c "print($e - $s)"
done | best)
n_find=$(wc -l < "$WORK/found.txt"); n_grep=$(wc -l < "$WORK/grepped.txt")
same=$(cmp -s "$WORK/found.txt" "$WORK/grepped.txt" && echo yes || echo NO)
echo "paths: $want; matches: /find/ $n_find, grep $n_grep; same lines: $same"
python3 -c "
f, g = $t_find, $t_grep
print(f'/find/?q= best of $ROUNDS: {f*1000:.1f} ms; grep over the saved listing: {g*1000:.1f} ms; ratio dftp/grep {f/g:.2f}')"
