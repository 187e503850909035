"""Generates tests/vectors/named-headers.json: a described scheme whose
strongest version signs headers the signature names, beside a weaker
version over the body, and its accept/refuse cases. Computed with Python's
hmac/hashlib, never with hookseal.

    python3 tests/vectors/gen/named.py > tests/vectors/named-headers.json
"""

import hashlib
import hmac
import json
import sys

SECRET = "acme-named-headers-secret"
NOW = 1735421346
BODY = '{"type":"invoice.paid","amount":1250}'
SCHEME = {
    "name": "acme", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
    "signature": {"header": "Acme-Signature"},
    "format": {"tag": "v0", "tag_separator": "=", "list_separator": ",", "timestamp_tag": "t"},
    "timestamp": {"unit": "seconds"},
    "message": "{timestamp}.{body}",
    "stronger": [{"tag": "v1", "message": "{timestamp}.{headers}{body}"}],
    "signed_headers": {"tag": "h", "separator": ";"},
    "mismatch_status": 401,
}
NAMED = [("x-request-id", "req_1"), ("content-type", "application/json")]


def mac(text):
    return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


def v1(named=NAMED, body=BODY, ts=NOW):
    lines = "".join(f"{n.lower()}:{v.strip()}\n" for n, v in named)
    return mac(f"{ts}.{lines}{body}")


def v0(body=BODY, ts=NOW):
    return mac(f"{ts}.{body}")


def sig(*items):
    return ",".join(items)


names = "h=x-request-id;content-type"
full = sig(f"t={NOW}", names, "v1=" + v1(), "v0=" + v0())
base_headers = {"x-request-id": "req_1", "content-type": "application/json"}
cases = []


def case(name, why, value, extra=None, accept=None, code=None, header=None, body=BODY, drop=()):
    h = {k: v for k, v in base_headers.items() if k not in drop}
    h.update(extra or {})
    h["Acme-Signature"] = value
    c = {"name": name, "why": why, "body": body, "headers": h}
    if accept is not None:
        c["accept"] = accept
    else:
        c["code"] = code
        if header:
            c["header"] = header
    cases.append(c)


case("v1 and v0, both right", "the strongest verifies", full, accept=0)
case("only v0", "the strongest present is v0", sig(f"t={NOW}", "v0=" + v0()), accept=0)
case("only v1", "v0 is optional", sig(f"t={NOW}", names, "v1=" + v1()), accept=0)
case("v1 wrong, v0 right", "no downgrade: a right weaker signature never rescues a wrong stronger one",
     sig(f"t={NOW}", names, "v1=" + "0" * 64, "v0=" + v0()), code="no_matching_signature")
case("a named header did not arrive", "its own reason", full, drop=("x-request-id",),
     code="missing_signed_header", header="x-request-id")
case("a named header's value changed", "it is signed", full, extra={"x-request-id": "req_2"},
     code="no_matching_signature")
case("the names in another order", "the order is signed",
     sig(f"t={NOW}", "h=content-type;x-request-id", "v1=" + v1(), "v0=" + v0()), code="no_matching_signature")
case("v1 without the names item", "which headers?", sig(f"t={NOW}", "v1=" + v1(), "v0=" + v0()),
     code="malformed_header", header="Acme-Signature")
case("the names item twice", "which names?", sig(f"t={NOW}", names, names, "v1=" + v1()),
     code="malformed_header", header="Acme-Signature")
case("a named header sent twice", "which value was signed?", full,
     extra={"x-request-id": ["req_1", "req_1"]}, code="malformed_header", header="x-request-id")
case("spaces around a named header's value", "values are read trimmed", full,
     extra={"x-request-id": "  req_1 "}, accept=0)
case("named header arrives with other letter case", "names are case-insensitive", full, drop=("x-request-id",),
     extra={"X-Request-ID": "req_1"}, accept=0)
case("an empty name in the names item", "not a token", sig(f"t={NOW}", "h=x-request-id;;content-type", "v1=" + v1()),
     code="malformed_header", header="Acme-Signature")
case("the body changed", "it is signed", full, body=BODY.replace("1250", "1251"), code="no_matching_signature")

json.dump({"$comment": [
    "A described scheme with a stronger version over named headers (tests/vectors/gen/named.py, Python's hmac).",
    "Verify each case with `secret` at `now` (tolerance 300 s); a header value that is a list is sent once per",
    "element. `sign`: signing `body` at `now` with `named` (in order) must write `signature` exactly."],
    "scheme": SCHEME, "secret": SECRET, "now": NOW, "cases": cases,
    "sign": {"body": BODY, "named": NAMED, "signature": full}}, sys.stdout, indent=1)
print()
