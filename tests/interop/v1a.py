"""v1a (ed25519) interop: the hookseal CLI against Python's `cryptography`,
both ways, and (with HOOKSEAL_PSQL set to a psql command line) the
extension's webhook_sign/webhook_verify too.

- Python makes a key pair, writes whsk_/whpk_ as the Standard Webhooks spec
  (and Svix's server) do, signs `{id}.{ts}.{body}`; the CLI verifies with the
  public key (and with the signing key); a changed body is refused.
- The CLI makes the pair (`keygen --scheme standard-v1a`) and signs, alone and
  beside a v1 HMAC signature; Python verifies the v1a item with the raw
  public key it decodes from whpk_, and the v1 item with hmac.

On the portable flavour (HOOKSEAL_TEST_FLAVOUR=portable): SQL refuses ed25519
by name (pgcrypto has none), and the dispatcher's endpoint gets its key pair
from `hookseal keypair` (made outside the database, the signing key sealed;
HOOKSEAL_ADMIN_URL: an admin role's URL), then signs v1a at claim.

Usage: python3 v1a.py PATH_TO_HOOKSEAL
"""

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

BIN = sys.argv[1]
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}", file=sys.stderr)


def cli(args, body, env):
    p = subprocess.run([BIN, *args], input=body, capture_output=True, env={**os.environ, **env})
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def python_pair():
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return key, "whsk_" + base64.b64encode(seed + raw_pub(key)).decode(), \
        "whpk_" + base64.b64encode(raw_pub(key)).decode()


def headers_args(h):
    out = []
    for k, v in h.items():
        out += ["-H", f"{k}: {v}"]
    return out


def parse_headers(text):
    return dict(line.split(": ", 1) for line in text.strip().splitlines() if ": " in line)


def v1a_items(sig_header):
    return [i[4:] for i in sig_header.split(" ") if i.startswith("v1a,")]


def python_verifies(pk_text, h, body):
    pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(pk_text[5:]))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
    for sig in v1a_items(h["webhook-signature"]):
        try:
            pub.verify(base64.b64decode(sig), signed)
            return True
        except InvalidSignature:
            pass
    return False


# Python signs, the CLI verifies.
for n in range(20):
    key, sk, pk = python_pair()
    body = f'{{"type":"invoice.paid","n":{n},"note":"caf\u00e9"}}'.encode()
    msg_id, ts = f"msg_py{n}", str(int(time.time()))
    sig = base64.b64encode(key.sign(f"{msg_id}.{ts}.".encode() + body)).decode()
    h = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": f"v1a,{sig}"}
    for label, k in (("public key", pk), ("signing key", sk)):
        code, out, err = cli(["verify", "--scheme", "standard", "--secret-env", "K", *headers_args(h)], body, {"K": k})
        check(f"python-signed #{n} verifies with the {label}", code == 0, err)
    code, _, err = cli(["verify", "--scheme", "standard", "--secret-env", "K", *headers_args(h)], body + b" ", {"K": pk})
    check(f"python-signed #{n}, changed body refused", code == 1 and "no signature matches" in err, err)

# The CLI makes the pair and signs; Python verifies.
hmac_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
for n in range(20):
    code, out, err = cli(["keygen", "--scheme", "standard-v1a"], b"", {})
    sk, pk = out.split()
    check("keygen prints whsk_ then whpk_", sk.startswith("whsk_") and pk.startswith("whpk_"), out)
    # The pair is consistent: the seed's public key is whpk_.
    raw = base64.b64decode(sk[5:])
    derived = raw_pub(Ed25519PrivateKey.from_private_bytes(raw[:32]))
    check("whsk_ = seed || public key, and whpk_ is that key", raw[32:] == derived == base64.b64decode(pk[5:]))
    body = f'{{"type":"order.created","n":{n}}}'.encode()
    code, out, err = cli(["sign", "--scheme", "standard", "--secret-env", "SK", "--secret-env", "HS"], body,
                         {"SK": sk, "HS": hmac_secret})
    h = parse_headers(out)
    check(f"cli-signed #{n} is v1a then v1", h["webhook-signature"].startswith("v1a,")
          and " v1," in h["webhook-signature"], out)
    check(f"cli-signed #{n}: python verifies v1a", python_verifies(pk, h, body))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
    v1 = base64.b64encode(hmac.new(base64.b64decode(hmac_secret[6:]), signed, hashlib.sha256).digest()).decode()
    check(f"cli-signed #{n}: python verifies v1", f"v1,{v1}" in h["webhook-signature"].split(" "))
    check(f"cli-signed #{n}: other body refused by python", not python_verifies(pk, h, body + b"x"))

# The extension, when a database is at hand: SQL signs, Python verifies; Python signs, SQL verifies.
psql = os.environ.get("HOOKSEAL_PSQL")
flavour = os.environ.get("HOOKSEAL_TEST_FLAVOUR", "native")


def sql_run(q):
    p = subprocess.run(psql.split() + ["-qAtX", "-c", q], capture_output=True)
    return p.returncode, p.stdout.decode().strip(), p.stderr.decode()


def sql(q):
    code, out, err = sql_run(q)
    assert code == 0, err
    return out


if psql and flavour == "portable":
    key, sk, pk = python_pair()
    code, _, err = sql_run(f"SELECT hookseal.webhook_sign('standard', '{sk}', '{{}}', 'msg_sql1', now())")
    check("portable: SQL webhook_sign refuses a whsk_ key by name",
          code != 0 and "need the native flavour" in err and sk[5:] not in err, err)
    code, _, err = sql_run(f"SELECT hookseal.webhook_verify('standard', ARRAY['{pk}'], '{{}}', '{{}}')")
    check("portable: SQL webhook_verify refuses a whpk_ key by name", code != 0 and "native flavour" in err, err)
elif psql:
    import json
    key, sk, pk = python_pair()
    body = '{"type":"sql.signed","amount":2.5}'
    out = sql(f"SELECT hookseal.webhook_sign('standard', '{sk}', '{body}', 'msg_sql1', now())")
    h = json.loads(out)
    check("SQL webhook_sign with whsk_: python verifies", python_verifies(pk, h, body.encode()), out)
    ts = str(int(time.time()))
    sig = base64.b64encode(key.sign(f"msg_sql2.{ts}.{body}".encode())).decode()
    hdrs = json.dumps({"webhook-id": "msg_sql2", "webhook-timestamp": ts, "webhook-signature": f"v1a,{sig}"})
    ok = sql(f"SELECT hookseal.webhook_verify('standard', ARRAY['{pk}'], '{body}', '{hdrs}')")
    check("python-signed: SQL webhook_verify with whpk_", ok == "t", ok)
    bad = sql(f"SELECT hookseal.webhook_verify('standard', ARRAY['{pk}'], '{body} ', '{hdrs}')")
    check("python-signed, changed body: SQL refuses", bad == "f", bad)

# A delivery through the dispatcher (HOOKSEAL_DISPATCH_URL: a dispatcher
# role's database URL): an endpoint with a stored v1a key, events sent in
# SQL, `hookseal dispatch --drain` delivering to a receiver here that
# verifies with Python's cryptography and the public key handed out
# (native: by create_endpoint; portable: by `hookseal keypair`, whose
# --grace 0 expires the endpoint's HMAC secret at once). Then a rotation:
# both public keys verify every delivery of the grace period.
dispatch_url = os.environ.get("HOOKSEAL_DISPATCH_URL")
admin_url = os.environ.get("HOOKSEAL_ADMIN_URL")
if psql and dispatch_url:
    import http.server
    import threading
    seen = []  # (verified by each key in `public_keys`, has a v1 item)
    public_keys = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            h = {k: self.headers[k] or "" for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
            oks = [all(h.values()) and python_verifies(pk, h, body) for pk in public_keys]
            seen.append((oks, any(i.startswith("v1,") for i in h["webhook-signature"].split(" "))))
            self.send_response(200 if any(oks) else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    def keypair(ep, grace):
        code, out, err = cli(["keypair", "--database-url", admin_url, "--endpoint", ep, "--grace", grace], b"", {})
        check(f"hookseal keypair --grace {grace!r} succeeds", code == 0, err)
        lines = parse_headers(out)
        check("hookseal keypair prints a secret id and a whpk_ key, and no signing key",
              lines.get("public_key", "").startswith("whpk_") and "whsk_" not in out + err, out)
        return lines.get("public_key", "")

    def drain(n):
        del seen[:]
        sql(f"SELECT count(hookseal.webhook_send('{app}', 'order.created', jsonb_build_object('n', g))) "
            f"FROM generate_series(1, {n}) g")
        p = subprocess.run([BIN, "dispatch", "--database-url", dispatch_url, "--allow", "127.0.0.0/8", "--drain"],
                           capture_output=True)
        check("hookseal dispatch --drain succeeds", p.returncode == 0, p.stderr.decode()[-400:])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    app = sql("SELECT hookseal.create_app('v1a-interop')")
    if flavour == "portable":
        code, _, err = sql_run(f"SELECT hookseal.create_endpoint('{app}', '{url}', 'standard', NULL, 'default', "
                               f"'{{\"asymmetric\": true}}')")
        check("portable: create_endpoint with asymmetric refuses, naming hookseal keypair",
              code != 0 and "hookseal keypair" in err, err)
        ep = sql(f"SELECT endpoint_id FROM hookseal.create_endpoint('{app}', '{url}', 'standard')")
        public_keys.append(keypair(ep, "0"))
    else:
        out = sql(f"SELECT endpoint_id || ' ' || secret FROM hookseal.create_endpoint('{app}', "
                  f"'{url}', 'standard', NULL, 'default', '{{\"asymmetric\": true}}')")
        ep, pk = out.split()
        public_keys.append(pk)
    check("the endpoint's receiver holds a whpk_ public key", public_keys[0].startswith("whpk_"), public_keys[0])
    code, _, err = sql_run(f"SELECT hookseal.create_secret('{ep}')")
    check("create_secret refuses an HMAC secret on a v1a endpoint", code != 0 and "v1a key pairs" in err, err)
    n = 30
    drain(n)
    check(f"dispatcher delivered {n} v1a-signed events, python verified each, none with a v1 item",
          len(seen) == n and all(oks == [True] and not v1 for oks, v1 in seen), str(seen[:3]))
    if flavour == "portable":
        code, _, err = sql_run(f"SELECT hookseal.rotate_secret('{ep}')")
        check("portable: rotate_secret of a v1a endpoint refuses, naming hookseal keypair",
              code != 0 and "hookseal keypair" in err, err)
        public_keys.append(keypair(ep, "1 hour"))
    else:
        public_keys.append(sql(f"SELECT secret FROM hookseal.rotate_secret('{ep}', '1 hour')"))
    drain(20)
    check("after the rotation: 20 deliveries, each verified by the old and the new public key",
          len(seen) == 20 and all(oks == [True, True] and not v1 for oks, v1 in seen), str(seen[:3]))
    server.shutdown()

print(f"v1a interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
