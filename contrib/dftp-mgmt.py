#!/usr/bin/env python3
"""Sends one signed request to a dftp node's management interface and checks the answer's tag.

With --cluster-secret-file, every request to the management interface (POST /join/ too) must
carry an X-Dftp-Auth tag. This is that request from a shell:

    contrib/dftp-mgmt.py KEYFILE POST http://127.0.0.1:7041/join/ 'peer=10.0.0.2:7041'
    contrib/dftp-mgmt.py KEYFILE GET http://127.0.0.1:7041/cluster/

It prints the answer's body and exits 0 when the answer is a 2xx signed with one of the keys,
1 otherwise (the status and the reason go to stderr). Standard library only. The format is
dftp-core's `cluster_auth` module: a tag is HMAC-SHA256 over length-prefixed fields.
"""

import hashlib
import hmac
import os
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def keys_of(path):
    with open(path, encoding="utf-8") as f:
        lines = [l.strip() for l in f.read().splitlines()]
    return [l.encode() for l in lines if l and not l.startswith("#")]


def fields(*parts):
    return b"".join(b"%d:" % len(p) + p + b"\n" for p in parts)


def request_tags(keys, method, path, secs, nonce, body):
    msg = b"dftp-request-v1\n" + fields(
        method.encode(), path.encode(), str(secs).encode(), nonce, hashlib.sha256(body).digest()
    )
    return [hmac.new(k, msg, hashlib.sha256).hexdigest() for k in keys]


def response_ok(keys, header, nonce, status, body):
    if not header or not header.startswith("v1."):
        return False
    msg = b"dftp-response-v1\n" + fields(nonce, str(status).encode(), hashlib.sha256(body).digest())
    good = [hmac.new(k, msg, hashlib.sha256).hexdigest() for k in keys]
    return any(hmac.compare_digest(t, g) for t in header[3:].split(".") for g in good)


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    keyfile, method, url = argv[1], argv[2].upper(), argv[3]
    body = argv[4].encode() if len(argv) == 5 else b""
    keys = keys_of(keyfile)
    parts = urlsplit(url)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    secs, nonce = int(time.time()), os.urandom(16)
    stamp = "v1.%d.%s.%s" % (secs, nonce.hex(), ".".join(request_tags(keys, method, path, secs, nonce, body)))
    headers = {"X-Dftp-Auth": stamp}
    if method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=body if method != "GET" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req) as resp:
            status, answer, tag = resp.status, resp.read(), resp.headers.get("X-Dftp-Auth")
    except urllib.error.HTTPError as e:
        status, answer, tag = e.code, e.read(), e.headers.get("X-Dftp-Auth")
    signed = response_ok(keys, tag, nonce, status, answer)
    sys.stdout.buffer.write(answer)
    if not signed:
        print("the answer (%d) is not signed with the cluster secret" % status, file=sys.stderr)
        return 1
    if not 200 <= status < 300:
        print("status %d" % status, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
