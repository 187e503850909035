"""Generates tests/vectors/ed25519.json with tools hookseal does not use:
Python's `cryptography` (OpenSSL's ed25519) and the standard library's
`hmac`/`base64`. Deterministic: ed25519 signatures are, and every key here
comes from a fixed seed.

    python3 tests/vectors/gen/ed25519.py > tests/vectors/ed25519.json

RFC 8032 section 7.1 TEST 1-3 are copied from the RFC; the script checks them
against `cryptography` before writing anything.
"""

import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

RFC8032 = [
    {"test": "RFC 8032 7.1 TEST 1",
     "secret_key": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "message": "",
     "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"test": "RFC 8032 7.1 TEST 2",
     "secret_key": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "public_key": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "message": "72",
     "signature": "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"test": "RFC 8032 7.1 TEST 3",
     "secret_key": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "public_key": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "message": "af82",
     "signature": "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
]


def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def whsk(seed):
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return "whsk_" + base64.b64encode(seed + raw_public(key)).decode(), key


def whpk(key):
    return "whpk_" + base64.b64encode(raw_public(key)).decode()


def b64(b):
    return base64.b64encode(b).decode()


for v in RFC8032:
    k = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["secret_key"]))
    assert raw_public(k).hex() == v["public_key"], v["test"]
    assert k.sign(bytes.fromhex(v["message"])).hex() == v["signature"], v["test"]

seed = hashlib.sha256(b"hookseal v1a vector key 1").digest()
seed2 = hashlib.sha256(b"hookseal v1a vector key 2").digest()
sk, key = whsk(seed)
sk2, key2 = whsk(seed2)
pk, pk2 = whpk(key), whpk(key2)
hmac_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
msg_id, ts = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1735421346
body = '{"type":"invoice.paid","data":{"id":"in_1","amount":1250,"note":"café ☃"}}'
signed = f"{msg_id}.{ts}.{body}".encode()
v1a = b64(key.sign(signed))
v1a_other = b64(key2.sign(signed))
v1 = b64(hmac.new(base64.b64decode(hmac_secret[6:]), signed, hashlib.sha256).digest())
headers = lambda sig: {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}
sig_bytes = key.sign(signed)

accept = [
    {"name": "v1a alone, public key", "keys": [pk], "headers": headers(f"v1a,{v1a}"), "secret_index": 0,
     "sign_with": [sk]},
    {"name": "v1a alone, verified with the signing key", "keys": [sk], "headers": headers(f"v1a,{v1a}"),
     "secret_index": 0},
    {"name": "v1 and v1a in one header, signed by both", "keys": [hmac_secret, pk],
     "headers": headers(f"v1,{v1} v1a,{v1a}"), "secret_index": 0, "sign_with": [hmac_secret, sk]},
    {"name": "mixed header, receiver holds only the public key", "keys": [pk],
     "headers": headers(f"v1,{v1} v1a,{v1a}"), "secret_index": 0},
    {"name": "rotation: the second public key matches", "keys": [pk2, pk],
     "headers": headers(f"v1a,{v1a}"), "secret_index": 1},
    {"name": "an unknown version beside v1a is skipped", "keys": [pk],
     "headers": headers(f"v2,AAAA v1a,{v1a}"), "secret_index": 0},
]

tampered = bytearray(sig_bytes)
tampered[0] ^= 1
high_s = bytearray(sig_bytes)
# S + L (the group order) is the same signature value written non-canonically.
L = 2**252 + 27742317777372353535851937790883648493
s_int = int.from_bytes(sig_bytes[32:], "little") + L
non_canonical_s = bytes(sig_bytes[:32]) + s_int.to_bytes(32, "little") if s_int < 2**256 else None
reject = [
    {"name": "signed by another key", "keys": [pk], "headers": headers(f"v1a,{v1a_other}"),
     "code": "no_matching_signature"},
    {"name": "one flipped bit", "keys": [pk], "headers": headers(f"v1a,{b64(bytes(tampered))}"),
     "code": "no_matching_signature"},
    {"name": "truncated: v1a, with nothing after", "keys": [pk], "headers": headers("v1a,"),
     "code": "malformed_header"},
    {"name": "signature of 63 bytes", "keys": [pk], "headers": headers(f"v1a,{b64(sig_bytes[:63])}"),
     "code": "malformed_header"},
    {"name": "signature of 65 bytes", "keys": [pk], "headers": headers(f"v1a,{b64(sig_bytes + b'x')}"),
     "code": "malformed_header"},
    {"name": "HMAC signature under the v1a tag", "keys": [pk], "headers": headers(f"v1a,{v1}"),
     "code": "malformed_header"},
    {"name": "v1a signature under the v1 tag (64 bytes where v1 is 32)", "keys": [pk],
     "headers": headers(f"v1,{v1a}"), "code": "malformed_header"},
    {"name": "v1 only, receiver holds only the public key", "keys": [pk], "headers": headers(f"v1,{v1}"),
     "code": "no_matching_signature"},
    {"name": "body changed", "keys": [pk], "headers": headers(f"v1a,{v1a}"),
     "body": body.replace("1250", "1251"), "code": "no_matching_signature"},
    {"name": "non-canonical base64 (padding bits set)", "keys": [pk],
     "headers": headers("v1a," + b64(sig_bytes)[:-3] + chr(ord(b64(sig_bytes)[-3]) + 1) + "=="),
     "code": "malformed_header"},
]
if non_canonical_s:
    reject.append({"name": "S not reduced (S + L): malleable form", "keys": [pk],
                   "headers": headers(f"v1a,{b64(non_canonical_s)}"), "code": "no_matching_signature"})

bad_keys = [
    {"name": "whsk_ of 32 bytes (seed only)", "key": "whsk_" + b64(seed),
     "reason": "a signing key is 64 bytes (seed, then public key)"},
    {"name": "whsk_ whose public half is another key's", "key": "whsk_" + b64(seed + raw_public(key2)),
     "reason": "the public half does not belong to the seed"},
    {"name": "whpk_ of 31 bytes", "key": "whpk_" + b64(raw_public(key)[:31]), "reason": "a public key is 32 bytes"},
    {"name": "whpk_ of 33 bytes", "key": "whpk_" + b64(raw_public(key) + b"\0"), "reason": "a public key is 32 bytes"},
    {"name": "whpk_ of the identity point (small order)", "key": "whpk_" + b64(b"\x01" + b"\0" * 31),
     "reason": "a small-order point"},
    {"name": "whpk_ not base64", "key": "whpk_***", "reason": "not canonical base64"},
]

doc = {
    "$comment": [
        "Ed25519 and Standard Webhooks v1a vectors, computed with Python cryptography (OpenSSL) and hmac by",
        "tests/vectors/gen/ed25519.py, never with hookseal. rfc8032: the RFC's own test vectors.",
        "v1a: scheme `standard`; keys whsk_ = base64(seed || public key), whpk_ = base64(public key);",
        "the signed text is {id}.{timestamp}.{body}; v1 is HMAC-SHA256 under the whsec_ secret.",
        "accept: verify with `keys` at `now`; `sign_with` (when present) reproduces the header exactly.",
        "reject: must fail with `code` (the verifier's reason). bad_keys: must be refused as keys with `reason`.",
    ],
    "rfc8032": RFC8032,
    "v1a": {
        "body": body, "now": ts, "public_key": pk, "signing_key": sk,
        "accept": accept, "reject": reject, "bad_keys": bad_keys,
    },
}
json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
print()
