#!/usr/bin/env python3
"""Live-cluster measurements (issue: live cluster). Nothing is asserted; figures are printed.

  bench/live.py                 # all three measurements
  FILES=50000 bench/live.py     # a smaller tree for the join/memory part
  JOINS=5 bench/live.py         # five joiners in turn (each fresh), with medians

1. Write-to-visibility delay: a file written on node B's disk until it is listed by node A's
   /find/ (median and max of 20).
2. Join: node J joins node P, which holds FILES (default 200,000) files; time from J's start
   until J's /find/ lists all of them, and each node's resident memory per file (RSS with the
   tree minus RSS of a node without one, divided by the number of paths). The node without a
   tree has been joined by a peer of 10 files and has served requests, so that the code pages
   and runtime buffers every busy node has are in the baseline, not in the per-path figure.
3. Update sizes: a fake peer (this script) greets P asking for a full update, records the bytes
   of every POST /update/ it receives, then one file changes on P's disk: the incremental
   update's bytes against the full one's.

Everything listens on 127.0.0.1; multicast is off.
"""
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = int(os.environ.get("FILES", "200000"))
JOINS = int(os.environ.get("JOINS", "1"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def build():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "dftp"], cwd=ROOT, check=True)
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT))
    return os.path.join(meta["target_directory"], "release", "dftp")


class Node:
    def __init__(self, exe, name, root, join=None, extra=()):
        self.name, self.http, self.mgmt = name, free_port(), free_port()
        args = [exe, "--dfsroot", root, "--node-name", name, "--http-listen", f"127.0.0.1:{self.http}",
                "--http-mgmt-listen", f"127.0.0.1:{self.mgmt}", "--ftp-listen", f"127.0.0.1:{free_port()}",
                "--multicast-discovery-addr", "", *extra]
        if join:
            args += ["--join", join]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_LOG": "warn"})
        wait(lambda: get(self.url("/")) is not None, 120)

    def url(self, path):
        return f"http://127.0.0.1:{self.http}{path}"

    def mgmt_addr(self):
        return f"127.0.0.1:{self.mgmt}"

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def get(url, timeout=60):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()
    except Exception:
        return None


def wait(cond, limit, pause=0.002):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(pause)
    raise TimeoutError("condition not met")


def count_find(node, prefix=""):
    body = get(node.url("/find/?prefix=" + urllib.parse.quote(prefix)))
    return -1 if body is None else body.count(b"\n")


def make_tree(root, n):
    """n files over n/200 directories, names of realistic lengths."""
    per_dir = 200
    for d in range((n + per_dir - 1) // per_dir):
        dd = os.path.join(root, f"project-{d // 50:03d}", f"module_{d:05d}")
        os.makedirs(dd, exist_ok=True)
        for i in range(min(per_dir, n - d * per_dir)):
            with open(os.path.join(dd, f"file_{i:04d}_of_module_{d:05d}.dat"), "wb") as f:
                f.write(b"x")


def latency(exe, work):
    a_root, b_root = os.path.join(work, "lat-a"), os.path.join(work, "lat-b")
    os.makedirs(a_root)
    os.makedirs(os.path.join(b_root, "lat"))
    a = Node(exe, "latA", a_root)
    b = Node(exe, "latB", b_root, join=a.mgmt_addr())
    try:
        wait(lambda: b"latB" in (get(f"http://{a.mgmt_addr()}/cluster/") or b""), 30)
        wait(lambda: count_find(a, "lat") >= 1, 30)
        delays = []
        for i in range(20):
            name = f"lat/f{i:02d}.txt"
            t0 = time.monotonic()
            with open(os.path.join(b_root, name), "w") as f:
                f.write("x")
            wait(lambda: (get(a.url("/find/?prefix=" + name)) or b"").startswith(b"/" + name.encode()), 30, 0.001)
            delays.append((time.monotonic() - t0) * 1000)
            time.sleep(0.3)
        return delays
    finally:
        a.stop()
        b.stop()


def baseline_rss(exe, work):
    """The resident size of a node without a tree that has done what the measured nodes do: it
    scanned, was joined by a peer, received and sent full updates, served listings and /find/.
    An idle node that never ran that code would leave its pages in the per-path figure."""
    e_root, t_root = os.path.join(work, "e"), os.path.join(work, "t")
    os.makedirs(e_root)
    make_tree(t_root, 10)
    empty = Node(exe, "empty", e_root)
    tiny = Node(exe, "tiny", t_root, join=empty.mgmt_addr())
    try:
        wait(lambda: count_find(empty) >= 10, 30)
        for _ in range(3):
            get(empty.url("/find/"))
            get(empty.url("/fs/"))
            get(empty.url("/fs/project-000/module_00000/?format=json"))
            get(f"http://{empty.mgmt_addr()}/cluster/")
        time.sleep(1)
        return empty.rss()
    finally:
        tiny.stop()
        empty.stop()


class Recorder(http.server.BaseHTTPRequestHandler):
    sizes = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else self.read_chunked()
        if self.path.startswith("/update/"):
            u = json.loads(body)
            Recorder.sizes.append((bool(u.get("Full")), len(u.get("Files") or []), len(body)))
            self.reply(b"ok\n")
        else:
            me = {"Name": "recorder", "PublicAddr": "127.0.0.1:1", "MgmtAddr": f"127.0.0.1:{self.server.server_port}",
                  "LastAlive": 0, "LastUpdatePushed": 0, "LastUpdateReceived": 0, "LastFullUpdateReceived": 0}
            self.reply(json.dumps({"Name": "dftp", "Me": me, "Peers": {}}).encode())

    def read_chunked(self):
        out = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def main():
    exe = build()
    work = tempfile.mkdtemp(prefix="dftp-live-bench.")
    try:
        print("# 1. write-to-visibility delay (ms), 20 writes")
        d = latency(exe, work)
        print(f"median {statistics.median(d):.0f} ms, min {min(d):.0f}, max {max(d):.0f}")

        print(f"# 2. join a node holding {FILES} files")
        p_root = os.path.join(work, "p")
        t0 = time.monotonic()
        make_tree(p_root, FILES)
        print(f"(tree made in {time.monotonic() - t0:.1f}s)")
        base_rss = baseline_rss(exe, work)
        p = Node(exe, "owner", p_root)
        listing = get(p.url("/find/")).splitlines()
        total, last = len(listing), listing[-1].decode()[1:]
        times, owner_rss, peer_rss = [], [], []
        for run in range(JOINS):
            j_root = os.path.join(work, f"j{run}")
            os.makedirs(j_root)
            j = Node(exe, "joiner", j_root, join=p.mgmt_addr())
            # Poll for the last path only (a full /find/ per poll would steal the joiner's CPU),
            # then check that everything is there. An update is applied whole or not at all.
            wait(lambda: (get(j.url("/find/?prefix=" + urllib.parse.quote(last))) or b"").startswith(b"/"), 300, 0.002)
            times.append(time.monotonic() - j.started)
            assert count_find(j) >= total
            time.sleep(1)
            owner_rss.append((p.rss() - base_rss) / total)
            peer_rss.append((j.rss() - base_rss) / total)
            print(f"joiner lists all {total} paths {times[-1]:.2f} s after it was started;"
                  f" RSS per path: owner {owner_rss[-1]:.0f} B, peer {peer_rss[-1]:.0f} B")
            j.stop()
        if JOINS > 1:
            print(f"median of {JOINS}: join {statistics.median(times):.2f} s, RSS per path owner"
                  f" {statistics.median(owner_rss):.0f} B, peer {statistics.median(peer_rss):.0f} B")
        print(f"(empty node {base_rss / 1e6:.1f} MB)")

        print("# 3. update sizes")
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        form = urllib.parse.urlencode({"name": "recorder", "public-addr": "127.0.0.1:1",
                                       "mgmt-addr": f"127.0.0.1:{srv.server_port}", "request-full-update": "true"})
        urllib.request.urlopen(f"http://{p.mgmt_addr()}/cluster/", data=form.encode(), timeout=60).read()
        wait(lambda: any(full for full, _, _ in Recorder.sizes), 120)
        some = os.path.join(p_root, "project-000", "module_00000", "file_0000_of_module_00000.dat")
        with open(some, "w") as f:
            f.write("changed")
        wait(lambda: any(not full for full, _, _ in Recorder.sizes), 30)
        full = max(s for f, _, s in Recorder.sizes if f)
        inc = min(s for f, _, s in Recorder.sizes if not f)
        print(f"full update {full} bytes, incremental (1 file) {inc} bytes, ratio 1:{full / inc:.0f}")
        srv.shutdown()
        p.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
