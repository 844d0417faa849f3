#!/usr/bin/env bash
# Archive benchmark: `GET /fs/d/?format=tar` of a directory of 1,000 files of 1 MiB spread over
# three nodes (a third each), through one of them, against `tar -c` of the same files from one
# local directory, in one run, reported as a ratio (dftp / tar). Nothing is asserted: the
# machine is shared and noisy.
#
#   bench/archive.sh                     # 1,000 files of 1 MiB, 3 rounds, best of each
#   FILES=300 ROUNDS=5 bench/archive.sh
#
# Needs curl, tar and python3 (free ports). Everything listens on 127.0.0.1; multicast is off.
set -euo pipefail

FILES=${FILES:-1000}
ROUNDS=${ROUNDS:-3}

cd "$(dirname "$0")/.."
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

cargo build --release -q -p dftp
DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp

WORK=$(mktemp -d /tmp/dftp-archive-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "# preparing $FILES files of 1 MiB over three roots in $WORK"
mkdir -p "$WORK/n0/d" "$WORK/n1/d" "$WORK/n2/d" "$WORK/local/d"
head -c $((1 << 20)) /dev/urandom > "$WORK/one"
for i in $(seq 1 "$FILES"); do
  name=$(printf 'f%05d.bin' "$i")
  cp "$WORK/one" "$WORK/n$((i % 3))/d/$name"
  cp "$WORK/one" "$WORK/local/d/$name"
done
cat "$WORK"/n*/d/* "$WORK"/local/d/* > /dev/null  # into the page cache, for both sides alike

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
URL="http://127.0.0.1:${HTTP[0]}/fs/d/?format=tar"
want=$((FILES + 1))
for _ in $(seq 1 200); do
  got=$(curl -s "http://127.0.0.1:${HTTP[0]}/find/?prefix=/d" 2>/dev/null | wc -l || true)
  [ "$got" = "$want" ] && break
  sleep 0.1
done
[ "$got" = "$want" ] || { echo "the cluster did not list every file ($got of $want)" >&2; exit 1; }

# One check that the archive is whole before timing it.
curl -sS --fail "$URL" | tar -t | grep -c '\.bin$' | grep -qx "$FILES" || { echo "incomplete archive" >&2; exit 1; }

best() { sort -n | head -1; }
# Seconds, from nanoseconds.
time_it() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); awk -v n=$((e - s)) 'BEGIN { print n / 1e9 }'; }

dftp_times=(); tar_times=()
for _ in $(seq 1 "$ROUNDS"); do
  dftp_times+=("$(time_it bash -c "curl -sS --fail '$URL' -o - | cat > /dev/null")")
  tar_times+=("$(time_it bash -c "tar -C '$WORK/local' -cf - d | cat > /dev/null")")
done
d=$(printf '%s\n' "${dftp_times[@]}" | best)
t=$(printf '%s\n' "${tar_times[@]}" | best)
awk -v d="$d" -v t="$t" -v mib="$FILES" 'BEGIN {
  printf "dftp tar over 3 nodes: %.2f s (%.0f MiB/s)\n", d, mib / d
  printf "local tar -c:          %.2f s (%.0f MiB/s)\n", t, mib / t
  printf "ratio dftp / tar:      %.2f\n", d / t
}'
