#!/usr/bin/env bash
# dudect-style timing check of the MAC comparison (see
# crates/hookseal/examples/ct_timing.rs): exits 1 when Welch's |t| > 4.5
# between signatures differing in their first and in their last byte.
# Not a CI step: run it on a quiet machine and record the result.
#   bash bench/ct.sh [SAMPLES (2000000)] [RUNS (3)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build -q --release -p hookseal --example ct_timing
fail=0
for _ in $(seq "${2:-3}"); do
  target/release/examples/ct_timing "${1:-2000000}" || fail=1
done
exit $fail
