"""Reads criterion's estimates and prints hookseal's time as ratios against
the baselines measured in the same run (ratio < 1 means hookseal is faster)."""

import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median_ns(group, impl, size):
    p = root / group / impl / str(size) / "new" / "estimates.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())["median"]["point_estimate"]


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


rows = []
for op in ["verify", "sign"]:
    for scheme in ["standard", "native", "x-signature", "fincra"]:
        group = f"{op}_{scheme}"
        gdir = root / f"{op}_{scheme}"
        if not gdir.exists():
            continue
        for size in [128, 1024, 65536]:
            ours = median_ns(group, "hookseal", size)
            if ours is None:
                continue
            cells = [f"{op} `{scheme}`", f"{size} B", fmt(ours)]
            for base in ["hmac-floor", "svix", "standardwebhooks"]:
                b = median_ns(group, base, size)
                cells.append(f"{fmt(b)} (**{ours / b:.2f}×**)" if b else "—")
            rows.append(cells)

print("| operation | body | hookseal | raw HMAC floor (ratio) | svix (ratio) | standardwebhooks (ratio) |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")

# The JSON re-serialization (issue 9): x-signature at ~1 KiB, before/after.
jdir = root / "json_x-signature"
if jdir.exists():
    def one(name):
        p = jdir / name / "new" / "estimates.json"
        return json.loads(p.read_text())["median"]["point_estimate"] if p.exists() else None
    sb, vb, fl = one("sign-before"), one("verify-before-raw-match"), one("hmac-floor")
    print()
    print("| x-signature, ~1 KiB | median | vs before (same run) | vs raw HMAC floor |")
    print("|---|---|---|---|")
    for name, base in [("sign-before", sb), ("sign-after-compact-input", sb), ("sign-after-pretty-input", sb),
                       ("verify-before-raw-match", vb), ("verify-after-raw-match", vb),
                       ("verify-after-fallback-match", vb), ("compact-only", None), ("hmac-floor", None)]:
        t = one(name)
        if t is None:
            continue
        rel = f"**{t / base:.2f}×**" if base else "—"
        print(f"| {name} | {fmt(t)} | {rel} | {t / fl:.2f}× |")
