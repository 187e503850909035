#!/usr/bin/env python3
"""Generates webhook bodies that JSON.stringify would rewrite: random
whitespace and indentation, number forms (1.0, 2.50, 1e5, -0.0, 1E-7, 20-digit
integers, subnormals), \\u escapes and surrogate pairs, integer-like keys, and
extra top-level fields beside `event` and `data`.

    bodies.py COUNT DIR [SEED]   writes DIR/0000.json ... (one body per file)

Every body is an object with `event` and `data` (a Fincra-shaped payload that
Hedera's receiver takes as well). Bodies stay inside what PostgreSQL's jsonb
stores (no lone surrogate, no \\u0000), since the same bodies go through the
outbox; the Node differential test in crates/hookseal covers those.
"""
import os
import random
import sys

NUMBERS = ["1.0", "2.50", "1e5", "-0.0", "-0", "1E-7", "12345678901234567890", "0.10",
           "350.00", "5e-324", "1e21", "9007199254740993", "123.4500", "-3.0e2", "0", "42",
           "2.2250738585072014e-308", "1.7976931348623157e308", "0.000001", "1e-7"]
KEYS = ["id", "amount", "fee", "currency", "status", "2", "1", "10", "01", "0",
        "4294967294", "4294967295", "-1", "note", "ref", "b", "a"]
CHARS = ["a", "Z", " ", "é", "☃", "😀", "\u2028", "/", "\\\\", '\\"', "\\n", "\\t", "\\/",
         "\\u00e9", "\\u2603", "\\ud83d\\ude00", "\\u001f", "\\u007f", "\x7f", "\\b", "\\f"]


def ws(r):
    return "".join(r.choice([" ", "\n", "\t", "\r\n", "  "]) for _ in range(r.randint(0, 2)))


def string(r):
    return '"' + "".join(r.choice(CHARS) for _ in range(r.randint(0, 8))) + '"'


def number(r):
    if r.random() < 0.6:
        return r.choice(NUMBERS)
    digits = str(r.randint(0, 10 ** r.randint(1, 22)))
    frac = "." + str(r.randint(0, 999)) + "0" * r.randint(0, 2) if r.random() < 0.5 else ""
    exp = r.choice(["", "e3", "E-2", "e+1", "e-310", "e280"]) if r.random() < 0.3 else ""
    return r.choice(["", "-"]) + digits + frac + exp


def value(r, depth):
    k = r.random()
    if depth > 2 or k < 0.35:
        return number(r)
    if k < 0.6:
        return string(r)
    if k < 0.7:
        return r.choice(["true", "false", "null"])
    if k < 0.85:
        return "[" + ",".join(ws(r) + value(r, depth + 1) + ws(r) for _ in range(r.randint(0, 4))) + "]"
    return obj(r, depth + 1, [])


def obj(r, depth, fixed):
    members = list(fixed)
    for _ in range(r.randint(0, 5)):
        members.append(('"' + r.choice(KEYS) + '"', value(r, depth)))  # repeats happen
    r.shuffle(members)
    return "{" + ",".join(ws(r) + k + ws(r) + ":" + ws(r) + v + ws(r) for k, v in members) + "}"


def body(r):
    fixed = [('"event"', '"' + r.choice(["payout.successful", "charge.completed", "naïve ☃"]) + '"'),
             ('"data"', obj(r, 1, [('"amount"', number(r))]))]
    if r.random() < 0.4:
        fixed.append(('"' + r.choice(["meta", "1", "created"]) + '"', value(r, 1)))
    return ws(r) + obj(r, 0, fixed) + ws(r)


def main():
    count, out = int(sys.argv[1]), sys.argv[2]
    r = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    os.makedirs(out, exist_ok=True)
    for i in range(count):
        with open(os.path.join(out, f"{i:04}.json"), "w", encoding="utf-8") as f:
            f.write(body(r))


if __name__ == "__main__":
    main()
