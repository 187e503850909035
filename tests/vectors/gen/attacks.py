"""Generates tests/vectors/attacks.json: refusal (and edge-acceptance) cases
for the HMAC schemes, computed with Python's standard library (hmac,
hashlib, base64), never with hookseal.

    python3 tests/vectors/gen/attacks.py > tests/vectors/attacks.json

Each case: scheme, secrets, body, headers (or a query), now (Unix seconds),
and either "accept" (with the secret index that must match) or "code" (the
verifier's reason: missing_header, malformed_header, no_matching_signature,
timestamp_too_old, timestamp_too_new, ...) with "header" (the header the
reason names) and "why" (the peer failure or rule it stands for).
"""

import base64
import hashlib
import hmac
import json
import sys

NOW = 1735421346
STD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STD_KEY = base64.b64decode(STD[6:])
UTF8 = "pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg"
BODY = '{"type":"invoice.paid","amount":1250}'


def b64(b):
    return base64.b64encode(b).decode()


def std_sig(msg_id, ts, body=BODY, key=STD_KEY):
    return b64(hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest())


def gh_sig(body=BODY, secret=UTF8):
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def stripe_sig(ts, body=BODY, secret=UTF8):
    return hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()


def std(sig, msg_id="msg_1", ts=NOW, **extra):
    h = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}
    h.update(extra)
    return h


good = std_sig("msg_1", NOW)
raw = base64.b64decode(good)
cases = []


def case(name, why, scheme, headers, expect=None, secrets=None, body=BODY, now=NOW, header=None, accept=None):
    c = {"name": name, "why": why, "scheme": scheme,
         "secrets": secrets or ([STD] if scheme == "standard" else [UTF8]),
         "body": body, "now": now, "headers": headers}
    if accept is not None:
        c["accept"] = accept
    else:
        c["code"] = expect
        if header:
            c["header"] = header
    cases.append(c)


# Truncated and empty signatures (svix's Rust crate once accepted `v1,`).
case("v1, with nothing after it", "svix Rust crate compared to the shorter length", "standard",
     std("v1,"), "malformed_header", header="webhook-signature")
case("signature cut to 1 character", "truncation", "standard", std("v1," + good[:1]), "malformed_header",
     header="webhook-signature")
case("signature of 31 bytes", "truncation", "standard", std("v1," + b64(raw[:31])), "malformed_header",
     header="webhook-signature")
case("github signature cut to 63 hex digits", "truncation", "github",
     {"X-Hub-Signature-256": "sha256=" + gh_sig()[:63]}, "malformed_header", header="X-Hub-Signature-256")
case("github sha256= with nothing", "truncation", "github", {"X-Hub-Signature-256": "sha256="},
     "malformed_header", header="X-Hub-Signature-256")
# A missing header never skips verification (Appwrite once did).
case("no signature header", "Appwrite skipped verification when the header was absent", "standard",
     {"webhook-id": "msg_1", "webhook-timestamp": str(NOW)}, "missing_header", header="webhook-signature")
case("github: no signature header", "Appwrite-style skip", "github", {}, "missing_header",
     header="X-Hub-Signature-256")
case("stripe: no signature header", "Appwrite-style skip", "stripe", {}, "missing_header", header="Stripe-Signature")
case("slack: no timestamp header", "a signature without its timestamp", "slack",
     {"X-Slack-Signature": "v0=" + "0" * 64}, "missing_header", header="X-Slack-Request-Timestamp")
case("no id header", "the id is signed", "standard", {"webhook-timestamp": str(NOW), "webhook-signature": "v1," + good},
     "missing_header", header="webhook-id")
# Whitespace.
case("spaces and a tab around the value are not part of it", "RFC 9110 optional whitespace", "standard",
     std(" \tv1," + good + " "), accept=0)
case("a space inside the base64", "strict decoding", "standard", std("v1," + good[:10] + " " + good[10:]),
     "malformed_header", header="webhook-signature")
# Repeated headers.
case("github signature header twice", "a single-valued header repeated", "github",
     {"X-Hub-Signature-256": ["sha256=" + gh_sig(), "sha256=" + gh_sig()]}, "malformed_header",
     header="X-Hub-Signature-256")
case("webhook-id twice", "which id was signed?", "standard",
     std("v1," + good, **{}) | {"webhook-id": ["msg_1", "msg_2"]}, "malformed_header", header="webhook-id")
case("webhook-signature twice, each a list", "HTTP list headers may be split", "standard",
     std(["v1," + b64(b"\0" * 32), "v1," + good]), accept=0)
# Hex and base64 canonical forms.
case("uppercase hex", "one MAC, one text", "github", {"X-Hub-Signature-256": "sha256=" + gh_sig().upper()},
     "malformed_header", header="X-Hub-Signature-256")
case("base64 without padding", "canonical base64 only", "standard", std("v1," + good.rstrip("=")),
     "malformed_header", header="webhook-signature")
last = good[-2]
bumped = good[:-2] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(last) + 1) % 64] + "="
case("base64 with non-zero padding bits", "non-canonical: decodes to the same MAC", "standard",
     std("v1," + bumped), "malformed_header", header="webhook-signature")
case("overlong base64: 33 bytes", "overlong", "standard", std("v1," + b64(raw + b"\0")), "malformed_header",
     header="webhook-signature")
case("base64url alphabet", "another alphabet", "standard",
     std("v1," + good.replace("+", "-").replace("/", "_")) if ("+" in good or "/" in good)
     else std("v1," + good[:-3] + "-=="), "malformed_header", header="webhook-signature")
# Timestamps at and past the tolerance (300 s), absurd and non-numeric.
for delta, expect in ((-300, None), (-301, "timestamp_too_old"), (300, None), (301, "timestamp_too_new")):
    ts = NOW + delta
    name = f"timestamp {delta:+d} s"
    if expect:
        case(name, "outside the replay window", "standard", std("v1," + std_sig("msg_1", ts), ts=ts), expect)
    else:
        case(name, "the window is inclusive", "standard", std("v1," + std_sig("msg_1", ts), ts=ts), accept=0)
big = "1" + "0" * 30
case("timestamp 10^30", "overflow", "standard", std("v1," + std_sig("msg_1", big), ts=big), "malformed_header",
     header="webhook-timestamp")
case("timestamp not a number", "non-numeric", "standard", std("v1," + std_sig("msg_1", "soon"), ts="soon"),
     "malformed_header", header="webhook-timestamp")
case("timestamp with a sign", "digits only", "standard", std("v1," + std_sig("msg_1", f"+{NOW}"), ts=f"+{NOW}"),
     "malformed_header", header="webhook-timestamp")
case("stripe: timestamp 10^30", "overflow", "stripe",
     {"Stripe-Signature": f"t={big},v1=" + stripe_sig(big)}, "malformed_header", header="Stripe-Signature")
case("stripe: no t= item", "the timestamp is signed", "stripe", {"Stripe-Signature": "v1=" + stripe_sig(NOW)},
     "malformed_header", header="Stripe-Signature")
case("stripe: two t= items", "which one was signed?", "stripe",
     {"Stripe-Signature": f"t={NOW},t={NOW},v1=" + stripe_sig(NOW)}, "malformed_header", header="Stripe-Signature")
case("stripe: only a v0 signature", "unknown versions are skipped", "stripe",
     {"Stripe-Signature": f"t={NOW},v0=" + stripe_sig(NOW)}, "no_matching_signature")
# Wrong key, wrong body, wrong id.
case("signed with another secret", "mismatch", "standard",
     std("v1," + std_sig("msg_1", NOW, key=b"another key of some length")), "no_matching_signature")
case("the id changed after signing", "the id is signed", "standard", std("v1," + good, msg_id="msg_2"),
     "no_matching_signature")
case("only an unknown version", "v2 is skipped, nothing is left", "standard", std("v2," + good),
     "no_matching_signature")
case("rotation: the second secret matches", "several secrets", "standard", std("v1," + good),
     secrets=["whsec_" + b64(b"old secret, rotated away"), STD], accept=1)

bad_secrets = [
    {"scheme": "standard", "secret": "whsec_***", "reason": "not_base64", "why": "not base64 after whsec_"},
    {"scheme": "x-signature", "secret": "short", "reason": "too_short", "why": "x-signature needs 10 characters"},
    {"scheme": "github", "secret": "", "reason": "empty", "why": "an empty secret signs nothing"},
]

json.dump({"$comment": [
    "Refusal and edge cases for the HMAC schemes, computed with Python's hmac/hashlib/base64 by",
    "tests/vectors/gen/attacks.py, never with hookseal. A header value that is a list means the header",
    "is sent several times. Verify with `secrets` at `now` (tolerance 300 s): `accept` gives the index of",
    "the secret that must match; otherwise the verifier must refuse with `code` (naming `header`).",
    "bad_secrets: refused when the verifier is built, with `reason`."],
    "cases": cases, "bad_secrets": bad_secrets}, sys.stdout, indent=1)
print()
