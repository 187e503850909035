#!/usr/bin/env python3
"""Sends the generated bodies to the Express reference receivers.

    drive.py cli HOOKSEAL BODIES SCHEME URL           sign each body with `hookseal sign`
                                                      (secret in $S), POST what it says to send
    drive.py lambda HOOKSEAL BODIES URL               sign each body as a GitHub provider would
                                                      (secret in $INBOUND), POST the raw bytes to
                                                      the relay, which must answer 200
    drive.py sql APP BODIES                           print SQL that writes each body as an event
    drive.py stats URL N                              the receiver must have accepted N, refused 0

Exit 1 when anything was refused.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("content-type", "application/json")
    for k, v in headers:
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def bodies(folder):
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            yield name, f.read()


def sign(hs, scheme, body, env):
    with tempfile.NamedTemporaryFile() as out:
        p = subprocess.run([hs, "sign", "--scheme", scheme, "--secret-env", env, "--body-out", out.name],
                           input=body, capture_output=True, check=True)
        sent = open(out.name, "rb").read()
    headers = [tuple(line.split(": ", 1)) for line in p.stdout.decode().splitlines() if ": " in line]
    return headers, sent


def send_all(folder, url, make):
    """POSTs make(body) -> (headers, bytes) for every body; returns (sent, refused)."""
    n, refused = 0, []
    for name, body in bodies(folder):
        headers, sent = make(body)
        status = post(url, sent, headers)
        n += 1
        if status != 200:
            refused.append((name, status))
    return n, refused


def main():
    mode = sys.argv[1]
    refused = []
    if mode == "cli":
        hs, folder, scheme, url = sys.argv[2:6]
        n, refused = send_all(folder, url, lambda body: sign(hs, scheme, body, "S"))
        print(f"cli {scheme}: {n - len(refused)} of {n} accepted")
    elif mode == "lambda":
        hs, folder, url = sys.argv[2:5]
        # The provider signs and sends the raw bytes; the relay re-signs.
        n, refused = send_all(folder, url, lambda body: (sign(hs, "github", body, "INBOUND")[0], body))
        print(f"lambda relay: {n - len(refused)} of {n} relayed and accepted")
    elif mode == "sql":
        app, folder = sys.argv[2:4]
        for _, body in bodies(folder):
            text = body.decode()
            assert "$b$" not in text
            print(f"SELECT hookseal.webhook_send('{app}', 'payout.successful', $b${text}$b$::jsonb);")
    elif mode == "stats":
        url, want = sys.argv[2], int(sys.argv[3])
        with urllib.request.urlopen(url, timeout=10) as r:
            stats = json.load(r)
        print(f"receiver {url}: {stats}")
        if stats != {"accepted": want, "refused": 0}:
            refused.append(stats)
    if refused:
        print(f"refused: {refused[:10]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
