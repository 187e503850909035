"""Generates tests/vectors/hook0.json: Hook0's `X-Hook0-Signature` scheme as a
hookseal description, and its accept/refuse cases. Computed with Python's
hmac/hashlib, never with hookseal, from Hook0's documented rules
(hook0/hook0, clients/rust/src/signature.rs and the output worker's
Signature::new):

- HMAC-SHA256 keyed by the subscription secret's UTF-8 bytes, hex.
- The header is `t=<unix seconds>,v0=<hex>,h=<names>,v1=<hex>`, comma-separated.
- v0 signs `<t>.<body>`.
- v1 signs `<t>.<names joined by a space>.<values joined by '.'>.<body>`, the
  names lower case, in the order `h` lists them (the sender sorts them).
- When v1 is present only v1 counts: a right v0 never rescues a wrong v1.

`published` holds the three signatures Hook0's own tests write (output
worker, create_signature_v0 / _v1 / _v0_and_v1); this script checks that it
computes each of them before writing anything.

    python3 tests/vectors/gen/hook0.py > tests/vectors/hook0.json
"""

import hashlib
import hmac
import json
import sys

SCHEME = {
    "name": "hook0", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
    "signature": {"header": "X-Hook0-Signature"},
    "format": {"tag": "v0", "tag_separator": "=", "list_separator": ",", "timestamp_tag": "t",
               "order": ["t", "v0", "h", "v1"]},
    "timestamp": {"unit": "seconds"},
    "message": "{timestamp}.{body}",
    "stronger": [{"tag": "v1", "message": "{timestamp}.{header_names}.{headers}.{body}"}],
    "signed_headers": {"tag": "h", "separator": " ", "each": "{value}", "join": "."},
    "mismatch_status": 401,
}
SECRET = "0b7f3d8c-2f1e-4a9b-9c6d-5e4f3a2b1c0d"
NOW = 1735421346
BODY = '{"event_type":"billing.invoice.paid","payload":{"amount":1250}}'
NAMED = [("x-event-id", "3a3e2f0e-9a0b-4c1d-8e7f-6a5b4c3d2e1f"),
         ("x-event-type", "billing.invoice.paid")]


def mac(secret, text):
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def v0(secret=SECRET, body=BODY, ts=NOW):
    return mac(secret, f"{ts}.{body}")


def v1(named=NAMED, secret=SECRET, body=BODY, ts=NOW):
    names = " ".join(n.lower() for n, _ in named)
    values = ".".join(v.strip() for _, v in named)
    return mac(secret, f"{ts}.{names}.{values}.{body}")


def header(named=NAMED, secret=SECRET, body=BODY, ts=NOW):
    names = " ".join(n.lower() for n, _ in named)
    return f"t={ts},v0={v0(secret, body, ts)},h={names},v1={v1(named, secret, body, ts)}"


# Hook0's own test vectors (secret "secret", body "hello !", 2021-11-15T00:30:00Z).
HOOK0_NAMED = [("X-Event-Id", "1a01cb48-5142-4d9b-8f90-d20cca61f0ee"),
               ("X-Event-Type", "service.resource.verb")]
HOOK0_V0 = "1b3d69df55f1e52f05224ba94a5162abeb17ef52cd7f4948c390f810d6a87e98"
HOOK0_V1 = "bc521546ba5de381b12f135782d2008b028c3065c191760b12b76850a8fc8f51"
assert v0("secret", "hello !", 1636936200) == HOOK0_V0
assert v1(HOOK0_NAMED, "secret", "hello !", 1636936200) == HOOK0_V1
published = [
    {"name": "Hook0 create_signature_v0", "secret": "secret", "now": 1636936200, "body": "hello !",
     "headers": {"X-Hook0-Signature": f"t=1636936200,v0={HOOK0_V0}"}},
    {"name": "Hook0 create_signature_v1", "secret": "secret", "now": 1636936200, "body": "hello !",
     "headers": {"X-Hook0-Signature": f"t=1636936200,h=x-event-id x-event-type,v1={HOOK0_V1}",
                 "X-Event-Id": HOOK0_NAMED[0][1], "X-Event-Type": HOOK0_NAMED[1][1]}},
    {"name": "Hook0 create_signature_v0_and_v1", "secret": "secret", "now": 1636936200, "body": "hello !",
     "named": [[n.lower(), v] for n, v in HOOK0_NAMED],
     "headers": {"X-Hook0-Signature":
                 f"t=1636936200,v0={HOOK0_V0},h=x-event-id x-event-type,v1={HOOK0_V1}",
                 "X-Event-Id": HOOK0_NAMED[0][1], "X-Event-Type": HOOK0_NAMED[1][1]}},
]
assert published[2]["headers"]["X-Hook0-Signature"] == header(HOOK0_NAMED, "secret", "hello !", 1636936200)

full = header()
base_headers = dict(NAMED)
cases = []


def case(name, why, value, extra=None, accept=None, code=None, hdr=None, body=BODY, drop=()):
    h = {k: v for k, v in base_headers.items() if k not in drop}
    h.update(extra or {})
    h["X-Hook0-Signature"] = value
    c = {"name": name, "why": why, "body": body, "headers": h}
    if accept is not None:
        c["accept"] = accept
    else:
        c["code"] = code
        if hdr:
            c["header"] = hdr
    cases.append(c)


names = "h=" + " ".join(n for n, _ in NAMED)
rev = list(reversed(NAMED))
case("v0 and v1, both right", "the strongest verifies", full, accept=0)
case("only v0", "a subscription without headers to sign", f"t={NOW},v0={v0()}", accept=0)
case("only v1", "v0 is optional", f"t={NOW},{names},v1={v1()}", accept=0)
case("v1 wrong, v0 right", "no downgrade: a right v0 never rescues a wrong v1",
     f"t={NOW},v0={v0()},{names},v1={'0' * 64}", code="no_matching_signature")
case("v1 over another body, v0 right", "no downgrade, with a real MAC in v1",
     f"t={NOW},v0={v0()},{names},v1={v1(body='{}')}", code="no_matching_signature")
case("items in another order", "a receiver reads the items in any order",
     f"{names},v1={v1()},t={NOW},v0={v0()}", accept=0)
case("h in the other order, signed in that order", "the order of h is the signed order",
     f"t={NOW},v0={v0()},h={' '.join(n for n, _ in rev)},v1={v1(rev)}", accept=0)
case("h in the other order, signed in the first", "the order is signed",
     f"t={NOW},v0={v0()},h={' '.join(n for n, _ in rev)},v1={v1()}", code="no_matching_signature")
case("a named header did not arrive", "its own reason", full, drop=("x-event-type",),
     code="missing_signed_header", hdr="x-event-type")
case("a named header's value changed", "it is signed", full, extra={"x-event-type": "billing.invoice.void"},
     code="no_matching_signature")
case("names in h in upper case", "Hook0 reads names as header names (lower case)",
     f"t={NOW},v0={v0()},h=X-Event-Id X-Event-Type,v1={v1()}", accept=0)
case("spaces around a named header's value", "values are read trimmed, as HTTP parsers do", full,
     extra={"x-event-id": "  " + NAMED[0][1] + " "}, accept=0)
case("a named header sent twice", "which value was signed?", full,
     extra={"x-event-id": [NAMED[0][1], NAMED[0][1]]}, code="malformed_header", hdr="x-event-id")
case("v1 without h", "which headers? (Hook0's sender always writes h beside v1)",
     f"t={NOW},v0={v0()},v1={v1()}", code="malformed_header", hdr="X-Hook0-Signature")
case("two spaces between names", "an empty name is not a header",
     f"t={NOW},h=x-event-id  x-event-type,v1={v1()}", code="malformed_header", hdr="X-Hook0-Signature")
case("the body changed", "it is signed", full, body=BODY.replace("1250", "1251"), code="no_matching_signature")
case("301 s old", "outside the 300 s tolerance", header(ts=NOW - 301), code="timestamp_too_old")

json.dump({"$comment": [
    "Hook0's X-Hook0-Signature as a described scheme (tests/vectors/gen/hook0.py, Python's hmac).",
    "Verify each case with `secret` at `now` (tolerance 300 s); a header value that is a list is sent once per",
    "element. `sign`: signing `body` at `now` with `named` (in order) must write `signature` exactly.",
    "`published`: Hook0's own test vectors, each verified with its `secret` at its `now`; one with `named` is",
    "also signed exactly."],
    "scheme": SCHEME, "secret": SECRET, "now": NOW, "cases": cases,
    "sign": {"body": BODY, "named": NAMED, "signature": full},
    "published": published}, sys.stdout, indent=1)
print()
