#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs from the repo's test vectors into
fuzz/seeds/<target>/ (committed; scripts/fuzz.sh starts each run from the
seeds plus the minimized corpus). Signatures in the seeds are made with the
vectors' secrets, not the fuzz targets' secret, so none verifies there."""
import json, os, hashlib

root = os.path.dirname(os.path.abspath(__file__))
vec = os.path.join(root, "..", "tests", "vectors")
PRESETS = ["native", "standard", "x-signature", "flinks", "fincra", "signed-url",
           "stripe", "github", "shopify", "slack"]

def put(target, data):
    d = os.path.join(root, "seeds", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

schemes = json.load(open(os.path.join(vec, "schemes.json")))["schemes"]
for v in schemes:
    body = v["body"]
    put("json_reserialize", body)
    pick = PRESETS.index(v["scheme"]) if v["scheme"] in PRESETS else 0
    hv = list(v.get("headers", {}).values())
    put("signature_headers", bytes([pick]) + b"\xff".join(h.encode() for h in hv) + b"\xff" + body.encode())
    put("stored_secret", v["secret"])
    lines = [f"{k}:{val}".encode() for k, val in v.get("headers", {}).items()]
    put("receiver", bytes([0]) + b"\xff".join(lines + [b""] * (7 - len(lines))) + b"\xff" + body.encode())

named = json.load(open(os.path.join(vec, "named-headers.json")))
put("scheme_description", json.dumps(named["scheme"]))
hook0 = json.load(open(os.path.join(vec, "hook0.json")))
put("scheme_description", json.dumps(hook0["scheme"]))
put("scheme_description", 'name = "acme"\nalgorithm = "sha256"\nencoding = "hex"\nkey = "utf8"\n'
    'message = "{timestamp}.{body}"\nmismatch_status = 401\n[signature]\nheader = "X-Sig"\n'
    '[timestamp]\nheader = "X-Ts"\nunit = "seconds"\n')
ed = json.load(open(os.path.join(vec, "ed25519.json")))["v1a"]
for case in ed["accept"] + ed["reject"]:
    h = case.get("headers", {})
    put("signature_headers", bytes([10]) + b"\xff".join(
        h.get(k, "").encode() for k in ["webhook-signature", "webhook-timestamp", "webhook-id"]))
for k in ed.get("bad_keys", []):
    put("stored_secret", k["key"] if isinstance(k, dict) else k)
for s in ["5", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
          "Sun Nov  6 08:49:37 1994", "18446744073709551616"]:
    put("retry_after", s)
for u in ["http://127.0.0.1:8080/h", "https://[::ffff:10.0.0.1]/x", "http://0x7f.1/",
          "http://2130706433/", "https://example.com/hook", "http://[2001:db8::1]/"]:
    put("address_policy", b"\x00" * 17 + u.encode())
put("lambda_event", json.dumps({
    "version": "2.0", "routeKey": "$default", "rawPath": "/github", "rawQueryString": "",
    "headers": {"x-hub-signature-256": "sha256=00", "content-type": "application/json"},
    "requestContext": {"http": {"method": "POST", "path": "/github", "protocol": "HTTP/1.1",
                                "sourceIp": "203.0.113.7", "userAgent": "x"},
                       "accountId": "a", "apiId": "b", "domainName": "d", "domainPrefix": "d",
                       "requestId": "r", "routeKey": "$default", "stage": "$default",
                       "time": "t", "timeEpoch": 0},
    "body": "{}", "isBase64Encoded": False}))
put("lambda_event", json.dumps({"source": "aws.events", "detail-type": "Scheduled Event"}))
