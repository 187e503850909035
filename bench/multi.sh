#!/usr/bin/env bash
# One worker over three PostgreSQL clusters (issue 24), release builds:
# the delivery latency (p50/p99, the event's insert -> delivered_at) of two of them
# under a steady flow, before and while the third is stopped; then the
# drain throughput of one worker over the three against one worker over one
# database, three alternating rounds. Results go to BENCHMARKS.md by hand.
#   bash bench/multi.sh [SECONDS]   (default 10 s of flow per phase)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
need_rust
# The release extension, as the other dispatcher benchmarks use (install the
# debug one again afterwards for the tests: scripts/lib.sh install_extension).
(cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
out=${MULTI_RESULTS:-$root/target/bench-multi.txt}
mkdir -p "$(dirname "$out")"
: > "$out"
MULTI_BENCH=1 MULTI_SECONDS=${1:-10} MULTI_RESULTS=$out bash "$root/tests/dispatch/multi.sh"
echo "results in $out"
