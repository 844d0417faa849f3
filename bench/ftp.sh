#!/usr/bin/env bash
# FTP download benchmark: RETR of one big file from dftp (a file of the node asked, and one it
# proxies from another node) against vsftpd serving the same file on this machine, in one run,
# reported as ratios (dftp / vsftpd). Nothing is asserted: the machine is shared and noisy.
#
#   bench/ftp.sh                 # 1 GiB file, 5 rounds, best and median of each
#   ROUNDS=3 BIG_MIB=256 bench/ftp.sh
#
# Needs vsftpd (installed with apt-get when missing), curl and python3 (the FTP client).
# Everything listens on 127.0.0.1 with its own config in a temporary directory; multicast is off.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
BIG_MIB=${BIG_MIB:-1024}

cd "$(dirname "$0")/.."
if ! command -v vsftpd >/dev/null 2>&1 && ! [ -x /usr/sbin/vsftpd ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vsftpd >/dev/null
  service vsftpd stop >/dev/null 2>&1 || true
fi
VSFTPD=$(command -v vsftpd || echo /usr/sbin/vsftpd)
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

cargo build --release -q -p dftp
DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp

WORK=$(mktemp -d /tmp/dftp-ftp-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

echo "# preparing a ${BIG_MIB} MiB file in $WORK"
mkdir -p "$WORK/data" "$WORK/empty" "$WORK/chroot"
head -c $((BIG_MIB << 20)) /dev/zero > "$WORK/data/big.bin"
cat "$WORK/data/big.bin" > /dev/null  # into the page cache, for every server alike

# vsftpd: anonymous, read-only, sendfile on (its default), passive ports of its own.
VS_PORT=$(free_port)
cat > "$WORK/vsftpd.conf" <<VS
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$VS_PORT
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$WORK/data
local_enable=NO
write_enable=NO
anon_upload_enable=NO
anon_mkdir_write_enable=NO
run_as_launching_user=YES
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
secure_chroot_dir=$WORK/chroot
check_shell=NO
xferlog_enable=NO
pasv_enable=YES
pasv_min_port=40100
pasv_max_port=40199
use_sendfile=YES
VS
"$VSFTPD" "$WORK/vsftpd.conf" > "$WORK/vsftpd.log" 2>&1 &
PIDS+=($!)

# dftp: A holds the file, B holds nothing and proxies A's file.
A_HTTP=$(free_port); A_MGMT=$(free_port); A_FTP=$(free_port)
B_HTTP=$(free_port); B_MGMT=$(free_port); B_FTP=$(free_port)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/data" --node-name benchA --http-listen 127.0.0.1:$A_HTTP \
  --http-mgmt-listen 127.0.0.1:$A_MGMT --ftp-listen 127.0.0.1:$A_FTP --ftp-passive-ports 40200-40299 \
  --multicast-discovery-addr '' > "$WORK/a.log" 2>&1 &
PIDS+=($!)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/empty" --node-name benchB --http-listen 127.0.0.1:$B_HTTP \
  --http-mgmt-listen 127.0.0.1:$B_MGMT --ftp-listen 127.0.0.1:$B_FTP --ftp-passive-ports 40300-40399 \
  --multicast-discovery-addr '' --join 127.0.0.1:$A_MGMT > "$WORK/b.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 200); do
  if curl -sf "http://127.0.0.1:$B_HTTP/find/" | grep -qx /big.bin && curl -sf "ftp://127.0.0.1:$VS_PORT/" >/dev/null; then
    break
  fi
  sleep 0.1
done
curl -sf "http://127.0.0.1:$B_HTTP/find/" | grep -qx /big.bin || { echo "node B never saw big.bin" >&2; cat "$WORK"/*.log >&2; exit 1; }

# The client: a few lines of Python over raw sockets, reading the data connection into a 4 MiB
# buffer, so that it costs far less than any server (curl reads 16 KiB at a time and would be
# the bottleneck). Prints bytes per second of the RETR (EPSV to 226), checked for its size.
cat > "$WORK/retr.py" <<'PY'
import socket, sys, time
port, want = int(sys.argv[1]), int(sys.argv[2])
c = socket.create_connection(("127.0.0.1", port))
f = c.makefile("rb")
def reply():
    while True:
        line = f.readline().decode()
        if len(line) > 3 and line[3] == " ":
            return line
def cmd(s):
    c.sendall((s + "\r\n").encode())
    return reply()
reply()
cmd("USER anonymous"); cmd("PASS bench@"); cmd("TYPE I")
start = time.perf_counter()
port2 = int(cmd("EPSV").split("|||")[1].split("|")[0])
d = socket.create_connection(("127.0.0.1", port2))
d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
c.sendall(b"RETR big.bin\r\n")
first = reply()
assert first.startswith("150"), first
buf = memoryview(bytearray(4 << 20))
got = 0
while True:
    n = d.recv_into(buf)
    if n == 0:
        break
    got += n
d.close()
last = reply()
secs = time.perf_counter() - start
assert last.startswith("226"), last
assert got == want, (got, want)
cmd("QUIT")
print(got / secs)
PY
retr() { python3 "$WORK/retr.py" "$1" $((BIG_MIB << 20)); }

declare -A RES
CASES=(vsftpd dftp_local dftp_proxied)
declare -A PORT=([vsftpd]=$VS_PORT [dftp_local]=$A_FTP [dftp_proxied]=$B_FTP)
for c in "${CASES[@]}"; do retr "${PORT[$c]}" > /dev/null; done  # warm-up
for r in $(seq "$ROUNDS"); do
  for c in "${CASES[@]}"; do  # interleaved, so that noise hits every case alike
    RES[$c]="${RES[$c]:-} $(retr "${PORT[$c]}")"
  done
done

python3 - "$ROUNDS" "$BIG_MIB" "${RES[vsftpd]}" "${RES[dftp_local]}" "${RES[dftp_proxied]}" <<'PY'
import statistics, sys
rounds, mib = sys.argv[1], sys.argv[2]
names = ["vsftpd", "dftp local", "dftp proxied"]
runs = [[float(x) for x in a.split()] for a in sys.argv[3:]]
best = [max(r) for r in runs]
med = [statistics.median(r) for r in runs]
print(f"# RETR of a {mib} MiB file over loopback, {rounds} rounds (MiB/s)")
print(f"{'server':<14}{'best':>10}{'median':>10}{'ratio best':>12}{'ratio median':>14}")
for n, b, m in zip(names, best, med):
    print(f"{n:<14}{b / 2**20:>10.0f}{m / 2**20:>10.0f}{b / best[0]:>12.2f}{m / med[0]:>14.2f}")
PY
