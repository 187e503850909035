"""Interop: the hookseal CLI against implementations we did not write.

- Standard Webhooks: the official `standardwebhooks` package from PyPI signs
  and verifies; the CLI verifies what it signed and it verifies what the CLI
  signed.
- x-signature, flinks, fincra: Python's own `hmac`, following the providers'
  documented code (Hedera's x-signature page, Flinks' and Fincra's pages kept
  in ../shared/seeds).
- With HOOKSEAL_PSQL (a psql command line for a database with hookseal,
  either flavour): the database's webhook_sign / webhook_verify against the
  official library both ways; with HOOKSEAL_DISPATCH_URL too (a dispatcher
  role's URL), events sent in SQL and delivered by `hookseal dispatch
  --drain` to a receiver here that verifies with the official library,
  before and after rotate_secret (both secrets verify during the grace).

Usage: python3 interop.py PATH_TO_HOOKSEAL_BINARY
Prints `N passed, M failed` and exits non-zero on any failure.
"""

import base64
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BIN = sys.argv[1]
rng = random.Random(20261123)
passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}", file=sys.stderr)


def cli(args, secret, body: bytes, extra_env=None):
    env = dict(os.environ, S=secret, **(extra_env or {}))
    return subprocess.run([BIN, *args, "--secret-env", "S"], input=body, env=env, capture_output=True)


def cli_sign(scheme, secret, body, *extra):
    p = cli(["sign", "--scheme", scheme, *extra], secret, body)
    assert p.returncode == 0, p.stderr
    out = {}
    for line in p.stdout.decode().splitlines():
        k, v = line.split(": ", 1)
        out[k] = v
    return out


def cli_verify(scheme, secret, body, headers, *extra):
    args = ["verify", "--scheme", scheme, *extra]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    return cli(args, secret, body).returncode


def random_payload():
    words = ["payment", "café", "☃", "\"quoted\"", "slash/", "tab\t", "x" * rng.randint(0, 40), "日本"]
    return {
        "type": rng.choice(["payment.created", "invoice.paid"]),
        "timestamp": rng.randint(0, 2**50),
        "data": {
            "id": "evt_" + "".join(rng.choice("abcdefXYZ0123") for _ in range(21)),
            "amount": rng.randint(0, 10**9),
            "note": " ".join(rng.choice(words) for _ in range(rng.randint(0, 6))),
            "flags": [rng.random() < 0.5 for _ in range(rng.randint(0, 4))],
            "nothing": None,
        },
    }


def js_stringify(obj):
    """JSON.stringify: compact, key order kept, UTF-8 (no \\u escapes)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# --- Standard Webhooks -----------------------------------------------------
for i in range(25):
    secret = "whsec_" + base64.b64encode(os.urandom(rng.randint(24, 64))).decode()
    wh = Webhook(secret)
    body = js_stringify(random_payload())
    msg_id = f"msg_{i}_{rng.randint(0, 10**9)}"
    now = datetime.now(tz=timezone.utc)
    ts = int(now.timestamp())

    # They sign, we verify.
    sig = wh.sign(msg_id, now, body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}
    check("standard: cli verifies library signature", cli_verify("standard", secret, body.encode(), headers) == 0)
    check("standard: cli rejects tampered body", cli_verify("standard", secret, (body + " ").encode(), headers) == 1)

    # We sign, they verify.
    ours = cli_sign("standard", secret, body.encode(), "--id", msg_id)
    try:
        wh.verify(body, ours)
        ok = True
    except WebhookVerificationError as e:
        ok = False
        print(e, ours, file=sys.stderr)
    check("standard: library verifies cli signature", ok)
    try:
        wh.verify(body + "x", ours)
        check("standard: library rejects tampered cli message", False)
    except WebhookVerificationError:
        check("standard: library rejects tampered cli message", True)

    # Rotation: two secrets, the library with either one accepts.
    secret2 = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    p = subprocess.run(
        [BIN, "sign", "--scheme", "standard", "--secret-env", "A", "--secret-env", "B", "--id", msg_id],
        input=body.encode(), env=dict(os.environ, A=secret, B=secret2), capture_output=True)
    both = dict(line.split(": ", 1) for line in p.stdout.decode().splitlines())
    for s in (secret, secret2):
        try:
            Webhook(s).verify(body, both)
            check("standard: library verifies rotated signature list", True)
        except WebhookVerificationError:
            check("standard: library verifies rotated signature list", False)

# --- x-signature (Hedera): HMAC-SHA256 hex of JSON.stringify(body) ----------
for i in range(25):
    secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789") for _ in range(32))
    payload = random_payload()
    body = js_stringify(payload).encode()
    theirs = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    check("x-signature: cli verifies python hmac", cli_verify("x-signature", secret, body, {"x-signature": theirs}) == 0)
    pretty = json.dumps(payload, indent=2, ensure_ascii=False).encode()
    check("x-signature: cli verifies pretty body by re-serialization",
          cli_verify("x-signature", secret, pretty, {"x-signature": theirs}) == 0)
    ours = cli_sign("x-signature", secret, body)["x-signature"]
    check("x-signature: python hmac verifies cli", hmac.compare_digest(ours, theirs))
    payload["data"]["amount"] += 1
    check("x-signature: cli rejects changed payload",
          cli_verify("x-signature", secret, js_stringify(payload).encode(), {"x-signature": theirs}) == 1)

# --- flinks: the documented Python verify_webhook_signature ----------------
def flinks_verify(payload_body, received_signature, secret_key):
    computed_hash = hmac.new(secret_key.encode("utf-8"), payload_body, hashlib.sha256).digest()
    computed_signature = base64.b64encode(computed_hash).decode("utf-8")
    return hmac.compare_digest(computed_signature, received_signature)


for i in range(25):
    secret = base64.urlsafe_b64encode(os.urandom(30)).decode()
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    ours = cli_sign("flinks", secret, body)["X-Flinks-Signature"]
    check("flinks: documented verify accepts cli", flinks_verify(body, ours, secret))
    check("flinks: documented verify rejects other body", not flinks_verify(body + b"!", ours, secret))
    theirs = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    check("flinks: cli verifies python", cli_verify("flinks", secret, body, {"X-Flinks-Signature": theirs}) == 0)

# --- fincra: the documented Python encrypt_webhook_data --------------------
for i in range(25):
    secret = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    payload = {"event": rng.choice(["payout.successful", "collection.successful"]),
               "data": {"id": rng.randint(1, 10**6), "amountCharged": rng.randint(0, 10**6),
                        "recipient": {"name": "Customer Name", "email": None}, "status": "successful"}}
    # Fincra's Python sample: json.dumps(payload, separators=(',', ':')) then HMAC-SHA512 hex.
    message = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    theirs = hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()
    check("fincra: cli verifies documented signature", cli_verify("fincra", secret, message, {"signature": theirs}) == 0)
    # A receiver sees the full webhook with extra fields and formatting; the
    # signature covers {event, data}.
    full = json.dumps({"event": payload["event"], "data": payload["data"], "extra": 1}, indent=1).encode()
    check("fincra: cli verifies {event,data} projection", cli_verify("fincra", secret, full, {"signature": theirs}) == 0)
    ours = cli_sign("fincra", secret, message)["signature"]
    check("fincra: documented check accepts cli", ours == theirs)


# --- Standard Webhooks through the database (either flavour) ---------------
psql = os.environ.get("HOOKSEAL_PSQL")


def sql(query):
    p = subprocess.run(psql.split() + ["-qAtX", "-v", "ON_ERROR_STOP=1"], input=query.encode(),
                       capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().strip()


def official_verifies(secret, body, headers):
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


if psql:
    for i in range(25):
        secret = "whsec_" + base64.b64encode(os.urandom(rng.randint(24, 64))).decode()
        body = js_stringify(random_payload())
        msg_id = f"msg_sql_{i}"
        out = sql(f"SELECT hookseal.webhook_sign('standard', $s${secret}$s$, $b${body}$b$, '{msg_id}', now())")
        h = json.loads(out)
        check("standard: library verifies SQL webhook_sign", official_verifies(secret, body, h), out)
        check("standard: library refuses SQL signature on another body",
              not official_verifies(secret, body + " ", h))
        now = datetime.now(tz=timezone.utc)
        theirs = json.dumps({"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                             "webhook-signature": Webhook(secret).sign(msg_id, now, body)})
        for b, want in ((body, "t"), (body + " ", "f")):
            got = sql(f"SELECT hookseal.webhook_verify('standard', ARRAY[$s${secret}$s$], $b${b}$b$, "
                      f"$h${theirs}$h$::jsonb)")
            check(f"standard: SQL webhook_verify of the library's signature is {want}", got == want, got)

dispatch_url = os.environ.get("HOOKSEAL_DISPATCH_URL")
if psql and dispatch_url:
    import http.server
    import threading
    seen = []  # (event id, verified by each secret in `secrets`)
    secrets = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            h = {k: self.headers[k] or "" for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
            seen.append((h["webhook-id"], [official_verifies(s, body, h) for s in secrets]))
            self.send_response(200 if any(seen[-1][1]) else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app = sql("SELECT hookseal.create_app('sw-interop')")
    ep, secret = sql(f"SELECT endpoint_id || ' ' || secret FROM hookseal.create_endpoint('{app}', "
                     f"'http://127.0.0.1:{server.server_address[1]}/hook', 'standard')").split()
    secrets.append(secret)

    def send_and_drain(n):
        sql("".join(f"SELECT hookseal.webhook_send('{app}', 'payment.created', $b${js_stringify(random_payload())}$b$);\n"
                    for _ in range(n)))
        p = subprocess.run([BIN, "dispatch", "--database-url", dispatch_url, "--allow", "127.0.0.0/8", "--drain"],
                           capture_output=True)
        check("hookseal dispatch --drain succeeds", p.returncode == 0, p.stderr.decode()[-500:])

    send_and_drain(30)
    check("dispatcher: 30 deliveries, each verified by the official library",
          len(seen) == 30 and all(ok == [True] for _, ok in seen), str(seen[:3]))
    secrets.append(sql(f"SELECT secret FROM hookseal.rotate_secret('{ep}')"))
    del seen[:]
    send_and_drain(20)
    check("after rotate_secret: 20 deliveries, the library verifies each with the old and the new secret",
          len(seen) == 20 and all(ok == [True, True] for _, ok in seen), str(seen[:3]))
    ids = set(sql(f"SELECT id FROM hookseal.events WHERE app_id = '{app}'").split())
    check("dispatcher: every webhook-id is an event id", {i for i, _ in seen} <= ids)
    server.shutdown()

print(f"interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
