#!/usr/bin/env python3
"""Peers for bench/join.sh: P processes' worth of cluster members in one, each holding F files.

Each fake peer listens on its own loopback management port and speaks the original's protocol
(`POST /cluster/` answered with its table, `POST /update/` answered `ok`). When a greeting asks
for a full update, the peer streams its pre-generated full update (a file of JSON in the
original's field order) to the greeter's `/update/`, as a node of the original does. The bodies
are written once into DIR, so that the benchmark times the joining node, not Python.

    fake_peers.py DIR PEERS FILES_PER_PEER     # prints "ready <port> <port> ..." when listening
"""
import http.client
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

DIR, PEERS, PER = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
NOW = int(time.time())
FILES_PER_DIR = 1000


def body_path(i):
    return os.path.join(DIR, f"peer{i:03d}.json")


def write_body(i):
    """Peer i's files: peerNNN/dNNNN/file-NNNNNNN.dat, 1,000 to a directory, with the directories."""
    name = f"peer{i:03d}"
    path = body_path(i)
    if os.path.exists(path):
        return
    rec = ('{{"FullName":"{f}","Basename":"{b}","Dir":{d},"LastModified":{t},"LastInfoUpdated":{t},'
           '"SizeInBytes":{s},"FileMode":{m},"OwnerNode":"' + name + '","Deletion":false}}')
    with open(path + ".tmp", "w") as out:
        out.write('{"Files":[')
        out.write(rec.format(f=name, b=name, d="true", t=NOW, s=0, m=2147484141))
        for n in range(PER):
            if n % FILES_PER_DIR == 0:
                d = f"{name}/d{n // FILES_PER_DIR:04d}"
                out.write("," + rec.format(f=d, b=d.rsplit("/", 1)[1], d="true", t=NOW, s=0, m=2147484141))
            base = f"file-{n:07d}.dat"
            out.write("," + rec.format(f=f"{d}/{base}", b=base, d="false", t=NOW, s=n, m=420))
        out.write(f'],"UpdateTime":{NOW},"Full":true,"SenderNodeName":"{name}"}}')
    os.rename(path + ".tmp", path)


def push_full(i, mgmt):
    host, port = mgmt.rsplit(":", 1)
    size = os.path.getsize(body_path(i))
    conn = http.client.HTTPConnection(host or "127.0.0.1", int(port), timeout=600)
    with open(body_path(i), "rb") as body:
        conn.request("POST", "/update/", body=body,
                     headers={"Content-Type": "application/json", "Content-Length": str(size)})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            print(f"peer{i:03d}: full update answered {resp.status}", file=sys.stderr, flush=True)


class Peer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        i = self.server.index
        name = f"peer{i:03d}"
        if self.path == "/cluster/":
            form = urllib.parse.parse_qs(data.decode())
            me = {"Name": name, "PublicAddr": f"127.0.0.1:{self.server.server_address[1]}",
                  "MgmtAddr": f"127.0.0.1:{self.server.server_address[1]}", "LastAlive": int(time.time()),
                  "LastUpdatePushed": 0, "LastUpdateReceived": 0, "LastFullUpdateReceived": 0}
            out = json.dumps({"Name": "dftp", "Me": me, "Peers": {}}).encode()
            if form.get("request-full-update", ["false"])[0] == "true" and not self.server.sent:
                self.server.sent = True
                mgmt = form["mgmt-addr"][0]
                threading.Timer(0.05, push_full, (i, mgmt)).start()
        else:
            out = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


os.makedirs(DIR, exist_ok=True)
for i in range(PEERS):
    write_body(i)
servers = []
for i in range(PEERS):
    s = Server(("127.0.0.1", 0), Peer)
    s.index, s.sent = i, False
    threading.Thread(target=s.serve_forever, daemon=True).start()
    servers.append(s)
print("ready " + " ".join(str(s.server_address[1]) for s in servers), flush=True)
threading.Event().wait()
