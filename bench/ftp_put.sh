#!/usr/bin/env bash
# FTP upload benchmark: STOR of one big file to dftp (a node that may write, with an account)
# against vsftpd with write_enable=YES (anonymous uploads into a directory of its own) on the
# same disk, in one run, reported as ratios (dftp / vsftpd). Nothing is asserted: the machine
# is shared and noisy.
#
#   bench/ftp_put.sh                 # 1 GiB file, 3 rounds, best and median of each
#   ROUNDS=5 BIG_MIB=256 bench/ftp_put.sh
#
# Each server ends an upload its own way: dftp writes a temporary file, fsyncs it and its
# directory and renames it into place before it answers 226; vsftpd writes into the file and
# answers once the data connection ends, leaving the data in the page cache. So the figures
# compare a durable upload with one that is not; DURABLE=0 is not offered, as dftp has no
# such mode.
#
# Needs vsftpd (installed with apt-get when missing) and python3 (the FTP client). Everything
# listens on 127.0.0.1 with its own config in a temporary directory; multicast is off.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
BIG_MIB=${BIG_MIB:-1024}

cd "$(dirname "$0")/.."
if ! command -v vsftpd >/dev/null 2>&1 && ! [ -x /usr/sbin/vsftpd ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vsftpd >/dev/null
  service vsftpd stop >/dev/null 2>&1 || true
fi
VSFTPD=$(command -v vsftpd || echo /usr/sbin/vsftpd)

cargo build --release -q -p dftp
DFTP=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/dftp

# On the disk the repository is on (not a tmpfs /tmp), for both servers alike.
WORK=$(mktemp -d "$PWD/target/dftp-ftp-put-bench.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# Uploads go to a directory of their own (vsftpd refuses a writable root for anonymous sessions
# when it chroots; with run_as_launching_user it does not, and paths are the real ones).
mkdir -p "$WORK/vs/up" "$WORK/dftp" "$WORK/chroot"
chmod 555 "$WORK/vs"
chmod 777 "$WORK/vs/up"
VS_PORT=$(free_port)
cat > "$WORK/vsftpd.conf" <<VS
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$VS_PORT
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$WORK/vs
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=NO
anon_other_write_enable=YES
anon_umask=022
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
VS
"$VSFTPD" "$WORK/vsftpd.conf" > "$WORK/vsftpd.log" 2>&1 &
PIDS+=($!)

A_HTTP=$(free_port); A_MGMT=$(free_port); A_FTP=$(free_port)
RUST_LOG=warn "$DFTP" --dfsroot "$WORK/dftp" --node-name benchA --http-listen 127.0.0.1:$A_HTTP \
  --http-mgmt-listen 127.0.0.1:$A_MGMT --ftp-listen 127.0.0.1:$A_FTP --ftp-passive-ports 40200-40299 \
  --multicast-discovery-addr '' --auth 'bench:bench@/:rw' > "$WORK/a.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 200); do
  if python3 -c "import socket;socket.create_connection(('127.0.0.1',$A_FTP)).close();socket.create_connection(('127.0.0.1',$VS_PORT)).close()" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

# The client: raw sockets, sending one 4 MiB buffer over and over (pseudo-random bytes, made
# once), so that it costs far less than any server. Prints bytes per second of the STOR (EPSV
# to 226).
cat > "$WORK/stor.py" <<'PY'
import os, socket, sys, time
port, user, password, path, total = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
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
cmd("USER " + user); cmd("PASS " + password); cmd("TYPE I")
buf = memoryview(os.urandom(4 << 20))
start = time.perf_counter()
port2 = int(cmd("EPSV").split("|||")[1].split("|")[0])
d = socket.create_connection(("127.0.0.1", port2))
d.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
c.sendall(("STOR " + path + "\r\n").encode())
first = reply()
assert first.startswith("150"), first
sent = 0
while sent < total:
    n = min(len(buf), total - sent)
    d.sendall(buf[:n])
    sent += n
d.close()
last = reply()
secs = time.perf_counter() - start
assert last.startswith("226"), last
cmd("QUIT")
print(sent / secs)
PY
stor() { python3 "$WORK/stor.py" "$1" "$2" "$3" "$4" $((BIG_MIB << 20)); }

declare -A RES
CASES=(vsftpd dftp)
declare -A ARGS=([vsftpd]="$VS_PORT anonymous x up/big.bin" [dftp]="$A_FTP bench bench /big.bin")
# shellcheck disable=SC2086
for c in "${CASES[@]}"; do stor ${ARGS[$c]} > /dev/null; done  # warm-up
for r in $(seq "$ROUNDS"); do
  for c in "${CASES[@]}"; do  # interleaved, so that noise hits every case alike
    sync
    # shellcheck disable=SC2086
    RES[$c]="${RES[$c]:-} $(stor ${ARGS[$c]})"
  done
done

python3 - "$ROUNDS" "$BIG_MIB" "${RES[vsftpd]}" "${RES[dftp]}" <<'PY'
import statistics, sys
rounds, mib = sys.argv[1], sys.argv[2]
names = ["vsftpd", "dftp"]
runs = [[float(x) for x in a.split()] for a in sys.argv[3:]]
best = [max(r) for r in runs]
med = [statistics.median(r) for r in runs]
print(f"# STOR of a {mib} MiB file over loopback to this disk, {rounds} rounds (MiB/s)")
print(f"{'server':<14}{'best':>10}{'median':>10}{'ratio best':>12}{'ratio median':>14}")
for n, b, m in zip(names, best, med):
    print(f"{n:<14}{b / 2**20:>10.0f}{m / 2**20:>10.0f}{b / best[0]:>12.2f}{m / med[0]:>14.2f}")
PY
