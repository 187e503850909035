"""The portable flavour's SQL signing against the native flavour's and the vectors.

Usage: python3 signing.py NATIVE_DB_ARGS -- PORTABLE_DB_ARGS
(each a psql connection argument list). Every case is one statement run in
both databases; the outputs (the headers as jsonb, or the error message)
must be equal, except where the portable flavour refuses by design (the
JSON.stringify cases it cannot write exactly, ed25519, TOML), which must
then be that refusal. Then every vector of tests/vectors/schemes.json and
published.json that SQL can sign is signed in the portable database and
compared with the vector's headers. Exits 1 on any difference.
"""
import json
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
vectors = os.path.join(here, "..", "vectors")
argv = sys.argv[1:]
sep = argv.index("--")
native_args, portable_args = argv[:sep], argv[sep + 1:]


def q(s):
    return "NULL" if s is None else "'" + s.replace("'", "''") + "'"


def run_cases(args, statements):
    """Each statement's output or its error (terse, on the same stream), in order."""
    prelude = "\\set VERBOSITY terse\n"
    script = prelude + "".join(f"\\echo @@case@@\n{st}\n" for st in statements)
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0", *args],
        input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    parts = out.stdout.split("@@case@@\n")[1:]
    return [p.strip().replace("psql:<stdin>:", "") for p in parts]


presets = [s["name"] for s in json.loads(subprocess.run(
    ["psql", "-X", "-A", "-t", *portable_args, "-c",
     "SELECT hookseal._scheme_presets()"], capture_output=True, text=True, check=True).stdout)]
described = [
    json.dumps({"name": "acme", "algorithm": "sha512", "encoding": "base64", "key": "utf8",
                "signature": {"header": "X-Acme-Signature"},
                "format": {"tag": "v2", "tag_separator": "=", "list_separator": ";",
                           "timestamp_tag": "ts"},
                "timestamp": {"unit": "milliseconds"},
                "message": "acme:{timestamp}:{{{body}}}", "mismatch_status": 401}),
    json.dumps({"name": "idonly", "algorithm": "sha256", "encoding": "hex",
                "key": {"base64": {"prefix": "sk_"}}, "signature": {"header": "sig"},
                "id_header": "msg-id", "message": "{id}|{body}", "mismatch_status": 400}),
    json.dumps({"name": "versions", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
                "signature": {"header": "sig"},
                "format": {"tag": "v0", "tag_separator": "=", "list_separator": ","},
                "timestamp": {"header": "ts", "unit": "seconds"},
                "stronger": [{"tag": "v1", "message": "v1.{timestamp}.{body}"}],
                "message": "{timestamp}.{body}", "mismatch_status": 401}),
    json.dumps({"name": "ordered", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
                "signature": {"header": "sig"},
                "format": {"tag": "v0", "tag_separator": "=", "list_separator": ",",
                           "timestamp_tag": "t", "order": ["v1", "t", "v0"]},
                "timestamp": {"unit": "seconds"},
                "stronger": [{"tag": "v1", "message": "v1.{timestamp}.{body}"}],
                "message": "{timestamp}.{body}", "mismatch_status": 401}),
    json.dumps({"name": "misordered", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
                "signature": {"header": "sig"},
                "format": {"tag": "v0", "tag_separator": "=", "list_separator": ",",
                           "timestamp_tag": "t", "order": ["t", "v0"]},
                "timestamp": {"unit": "seconds"},
                "stronger": [{"tag": "v1", "message": "v1.{timestamp}.{body}"}],
                "message": "{timestamp}.{body}", "mismatch_status": 401}),
    '{"name": "bad", "algorithm": "md5"}',
    '{"name": "x" ',
    'name = "toml"',
    "no-such-scheme",
]
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "It's a Secret to Everybody",
           "sk_c2VjcmV0LWJ5dGVz", "whsec_not*base64", "", "short"]
bodies = [
    '{"id":"evt_1","type":"order.created","data":{"n":1,"s":"caf\u00e9 \\"q\\""}}',
    '{ "event": "charge.success", "data": { "amount": 1250, "ok": true }, "x": [1, 2.5] }',
    '{"externalId":"ext_42","n":3}',
    '{"n": 1.0}', '{"big": 12345678901234567890}', '{"a":1,"a":2}', '{"7":1}',
    'not json at all', '',
]
cases = []
for scheme in presets + described:
    for secret in secrets:
        for body in bodies:
            cases.append(
                f"SELECT hookseal.webhook_sign({q(scheme)}, {q(secret)}, {q(body)}, 'msg_abc', "
                f"'2024-12-28 21:29:06.123+00'::timestamptz)::text;")
        cases.append(f"SELECT hookseal.webhook_body({q(scheme)}, {q(bodies[1])});")
    cases.append(
        f"SELECT hookseal.webhook_sign({q(scheme)}, ARRAY[{q(secrets[0])}, NULL, {q(secrets[1])}], "
        f"{q(bodies[0])}, 'msg_abc', '2024-12-28 21:29:06+00')::text;")
    cases.append(
        f"SELECT row(m.*)::text FROM hookseal.webhook_sign_message({q(scheme)}, {q(secrets[1])}, "
        f"{q(bodies[1])}, 'msg_abc', '2024-12-28 21:29:06+00') m;")
    cases.append(f"SELECT hookseal.scheme_exists({q(scheme)});")
    # A new secret's shape (its characters are random) and that it signs.
    cases.append(f"SELECT regexp_replace(s, '[A-Za-z0-9_+/-]', 'x', 'g') || ' ' || "
                 f"(hookseal.webhook_sign({q(scheme)}, s, 'b', 'msg_1', now()) IS NOT NULL) "
                 f"FROM hookseal._new_secret({q(scheme)}) s;")
for call in [
    "hookseal.webhook_sign(NULL, 'k', 'b')", "hookseal.webhook_sign('github', NULL::text, 'b')",
    "hookseal.webhook_sign('github', 'k', NULL::text)",
    "hookseal.webhook_sign('stripe', 'k', 'b', NULL, '-infinity')",
    "hookseal.webhook_sign('stripe', 'k', 'b', NULL, '1969-12-31 23:59:59+00')",
    "hookseal.webhook_sign('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'b', 'has space')",
    "hookseal.webhook_sign('standard', 'whsk_abc', 'b', 'a')",
    "hookseal.webhook_sign('github', 'k', decode('ff00', 'hex'))",
    "hookseal.webhook_sign('github', ARRAY[]::text[], 'b')",
    "hookseal.secret_hash('whsec_x')", "hookseal.secret_hash('')",
    "hookseal.event_body('evt_1', 'a.b', 1735421346000, '{\"b\": [1, 2.50, {\"c\": \"x y\"}], \"a\": null}')",
    "hookseal._message_id('ok_id')", "hookseal._message_id('no spaces')", "hookseal._message_id(NULL)",
    "hookseal._endpoint_scheme_error('signed-url')", "hookseal._endpoint_scheme_error('nope')",
    "hookseal.new_id('nope')", "length(hookseal.new_id('evt'))", "left(hookseal.new_id('secret'), 7)",
    "hookseal._new_secret('nope')",
]:
    cases.append(f"SELECT {call};")

# hookseal.max_body_bytes as a session sets it (the native flavour's is a
# real setting, the portable one's a custom one read by _max_body_bytes).
big = q("x" * 2048)
for setting in ["'1kB'", "'1500'", "'2MB'"]:
    cases += [f"SET hookseal.max_body_bytes = {setting};",
              f"SELECT hookseal.webhook_verify_reason('github', ARRAY['k'], {big}, "
              "'{\"X-Hub-Signature-256\": \"sha256=00\"}');",
              "RESET hookseal.max_body_bytes;"]
native = run_cases(native_args, cases)
portable = run_cases(portable_args, cases)
assert len(native) == len(portable) == len(cases), (len(native), len(portable), len(cases))

# The refusals the portable flavour makes by design, and the native
# results they stand for.
by_design = ("cannot write JSON.stringify", "pgcrypto has no ed25519", "need the native flavour")


def normal(out):
    """The two flavours word two refusals differently: the byte offset of a
    JSON syntax error (PostgreSQL's parser gives none), and why a scheme
    description does not parse (serde's words in the core). Both keep the
    refusal and its prefix."""
    out = re.sub(r" \(at byte \d+\)", "", out)
    return re.sub(r"(scheme description does not parse:).*", r"\1 ...", out)


same = refused = 0
bad = []
for case, n, p in zip(cases, native, portable):
    if normal(n) == normal(p):
        same += 1
    elif any(r in p for r in by_design):
        refused += 1
    else:
        bad.append((case, n, p))
for case, n, p in bad[:int(os.environ.get("SHOW", "20"))]:
    print(f"DIFF {case}\n  native:   {n}\n  portable: {p}")
print(f"{len(cases)} cases: {same} identical, {refused} refused by design, {len(bad)} different")

# Vectors: each signed in the portable database alone.
vec_cases, want = [], []
for name in ["schemes.json", "published.json"]:
    doc = json.load(open(os.path.join(vectors, name)))
    items = doc["schemes"] if "schemes" in doc else doc.get("vectors", [])
    for v in items:
        if not isinstance(v, dict) or "headers" not in v or "secret" not in v or "body" not in v:
            continue
        if not isinstance(v["headers"], dict) or "scheme" not in v or v.get("expect") == "reject":
            continue
        ids = [h for k, h in v["headers"].items() if k.lower().endswith("-id")]
        id_ = ids[0] if ids else None
        ts = v.get("now")
        tsql = f"to_timestamp({ts})" if ts is not None else "now()"
        vec_cases.append(
            f"SELECT hookseal.webhook_sign({q(v['scheme'])}, {q(v['secret'])}, {q(v['body'])}, "
            f"{q(id_)}, {tsql})::text;")
        want.append((name, v))
js = json.load(open(os.path.join(vectors, "json-stringify.json")))
for v in js["vectors"]:
    for scheme, header in [("x-signature", "x-signature"), ("fincra", "signature")]:
        vec_cases.append(
            f"SELECT hookseal.webhook_sign({q(scheme)}, {q(js['secret'])}, {q(v['raw'])})::text;")
        want.append(("json-stringify.json", {"scheme": scheme, "headers": {header: v[scheme]}}))
        vec_cases.append(
            f"SELECT json_build_object('body', hookseal.webhook_body({q(scheme)}, {q(v['raw'])}))::text;")
        want.append(("json-stringify.json", {"scheme": scheme, "headers": {"body": v["canonical"]}}))
got = run_cases(portable_args, vec_cases)
vec_ok = vec_refused = 0
for (name, v), out in zip(want, got):
    if any(r in out for r in by_design):
        vec_refused += 1
        if os.environ.get("SHOW_REFUSED"):
            print(f"refused {name} {v['scheme']}: {out[:160]}")
        continue
    try:
        headers = json.loads(out)
    except ValueError:
        bad.append((f"{name} {v['scheme']}", json.dumps(v["headers"]), out))
        print(f"VECTOR {name} {v['scheme']}: {out}")
        continue
    w = {k.lower(): x for k, x in v["headers"].items()}
    g = {k.lower(): x for k, x in headers.items()}
    # A vector may carry headers beyond the signature's (content-type...).
    if all(w.get(k) == x for k, x in g.items()) and g:
        vec_ok += 1
    else:
        bad.append((f"{name} {v['scheme']}", json.dumps(w), out))
        print(f"VECTOR {name} {v['scheme']}:\n  want {w}\n  got  {g}")
print(f"{len(want)} vectors: {vec_ok} reproduced, {vec_refused} refused by design")

# Verification: every request of the vectors through webhook_verify_reason
# in both databases. The two must agree, and both must say what the vector
# says (accepted, or refused with its code).
checks = []  # (label, scheme, secrets, body, headers, now, url, expected code or "ok")
def add(label, scheme, secrets, body, headers, now, url, expect, tol=300):
    checks.append((label, scheme, secrets, body, headers, now, url, expect, tol))
for v in json.load(open(os.path.join(vectors, "schemes.json")))["schemes"]:
    add(f"schemes {v['scheme']}", v["scheme"], [v["secret"]], v["body"], v.get("headers"),
        v.get("now"), v.get("url"), "ok")
for v in json.load(open(os.path.join(vectors, "published.json")))["vectors"]:
    add(f"published {v['scheme']} {v.get('why', '')}", v["scheme"], [v["secret"]], v["body"],
        v["headers"], v.get("now"), None, "ok" if v.get("expect", "accept") == "accept" else "!ok")
for v in json.load(open(os.path.join(vectors, "attacks.json")))["cases"]:
    add(f"attacks {v['name']}", v["scheme"], v["secrets"], v["body"], v["headers"], v.get("now"),
        None, "ok" if "accept" in v else v["code"])
for file in ["named-headers.json", "hook0.json"]:
    nh = json.load(open(os.path.join(vectors, file)))
    for v in nh["cases"]:
        add(f"{file} {v['name']}", json.dumps(nh["scheme"]), [nh["secret"]], v["body"], v["headers"],
            nh["now"], None, "ok" if "accept" in v else v["code"])
    for v in nh.get("published", []):
        add(f"{file} {v['name']}", json.dumps(nh["scheme"]), [v["secret"]], v["body"], v["headers"],
            v["now"], None, "ok")
for v in js["vectors"]:
    for scheme, header in [("x-signature", "x-signature"), ("fincra", "signature")]:
        add(f"json-stringify {scheme} {v['raw'][:30]}", scheme, [js["secret"]], v["raw"],
            {header: v[scheme]}, None, None, "ok")
# Misuse and edges, compared between the flavours only ("=" expects nothing
# of its own).
std = json.load(open(os.path.join(vectors, "published.json")))["vectors"][0]
h = std["headers"]
for label, headers, secrets, now, tol in [
    ("svix spelling", {"svix-id": h["webhook-id"], "svix-timestamp": h["webhook-timestamp"],
                       "svix-signature": h["webhook-signature"]}, [std["secret"]], std["now"], 300),
    ("mixed spelling", {"webhook-id": h["webhook-id"], "svix-timestamp": h["webhook-timestamp"],
                        "svix-signature": h["webhook-signature"]}, [std["secret"]], std["now"], 300),
    ("header case", {k.upper(): x for k, x in h.items()}, [std["secret"]], std["now"], 300),
    ("two ids", dict(h, **{"Webhook-Id": "other"}), [std["secret"]], std["now"], 300),
    ("number value", dict(h, **{"webhook-id": 5}), [std["secret"]], std["now"], 300),
    ("array value", dict(h, **{"webhook-signature": [h["webhook-signature"], "v1,x"]}), [std["secret"]], std["now"], 300),
    ("null in array", dict(h, **{"webhook-signature": [None]}), [std["secret"]], std["now"], 300),
    ("too old", h, [std["secret"]], std["now"] + 301, 300),
    ("old by a fraction", h, [std["secret"]], std["now"] + 300.5, 300),
    ("too new", h, [std["secret"]], std["now"] - 1000, 300),
    ("tolerance 0", h, [std["secret"]], std["now"], 0),
    ("negative tolerance", h, [std["secret"]], std["now"], -1),
    ("NULL tolerance", h, [std["secret"]], std["now"], None),
    ("wrong secret", h, ["whsec_b2xkIHNlY3JldCwgcm90YXRlZCBhd2F5"], std["now"], 300),
    ("NULL among secrets", h, [None, std["secret"]], std["now"], 300),
    ("only NULL secrets", h, [None], std["now"], 300),
    ("a public key", h, ["whpk_" + "A" * 43 + "="], std["now"], 300),
    ("spaces around", {k: f"  {x}\t" for k, x in h.items()}, [std["secret"]], std["now"], 300),
    ("no headers", None, [std["secret"]], std["now"], 300),
    ("headers a string", "x", [std["secret"]], std["now"], 300),
]:
    add(f"misuse {label}", "standard", secrets, std["body"], headers, now, None, "=", tol)
url_v = [v for v in json.load(open(os.path.join(vectors, "schemes.json")))["schemes"]
         if v["scheme"] == "signed-url"][0]
for label, url in [("repeated parameter", url_v["url"] + "&signature=x"), ("no parameter", "https://r.example/x?a=1"),
                   ("bad escape", url_v["url"][:-3] + "%G1"), ("NULL url", None), ("query only", url_v["url"].split("?", 1)[1]),
                   ("with fragment", url_v["url"] + "#frag")]:
    add(f"signed-url {label}", "signed-url", [url_v["secret"]], url_v["body"], None, None, url, "=")
for label, body in [("not JSON", "nope"), ("no field", '{"status":"x"}')]:
    add(f"signed-url {label}", "signed-url", [url_v["secret"]], body, None, None, url_v["url"], "=")
stmts = []
for label, scheme, secrets, body, headers, now, url, expect, tol in checks:
    arr = "ARRAY[" + ", ".join(q(x) for x in secrets) + "]::text[]"
    hj = "NULL" if headers is None else q(json.dumps(headers)) + "::jsonb"
    tsql = f"to_timestamp({now})" if now is not None else "now()"
    tol = "NULL" if tol is None else tol
    stmts.append(f"SELECT hookseal.webhook_verify_reason({q(scheme)}, {arr}, {q(body)}, {hj}, {tol}, "
                 f"{tsql}, {q(url)});")
nv = run_cases(native_args, stmts)
pv = run_cases(portable_args, stmts)
v_same = v_refused = 0
for (label, *_, expect, _tol), n, p in zip(checks, nv, pv):
    says = lambda out: expect == "=" or (out == "ok" if expect == "ok" else (
        out != "ok" if expect == "!ok" else out.startswith(expect + ":")))
    if any(r in p for r in by_design):
        v_refused += 1
        if os.environ.get("SHOW_REFUSED"):
            print(f"refused {label}: {p[:160]}")
    elif normal(n) == normal(p) and says(p):
        v_same += 1
    else:
        bad.append((label, n, p))
        print(f"VERIFY {label} (vector says {expect})\n  native:   {n}\n  portable: {p}")
print(f"{len(checks)} verifications: {v_same} agree with native and the vector, {v_refused} refused by design")
if v_same == 0:
    print("nothing verified: the harness is broken")
    sys.exit(1)
if same == 0 or vec_ok == 0:
    print("nothing compared: the harness is broken")
    sys.exit(1)
sys.exit(1 if bad else 0)
