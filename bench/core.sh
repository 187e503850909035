#!/usr/bin/env bash
# Core sign/verify benchmark: hookseal vs the raw HMAC floor and the svix and
# standardwebhooks crates, all measured in one criterion run. Prints the
# ratio table that BENCHMARKS.md records.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo bench -p hookseal --features http --bench sign_verify -- "$@" >&2
python3 bench/ratios.py target/criterion
