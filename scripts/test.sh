#!/usr/bin/env bash
# Every test: formatting, lints, the vector copy, unit/property/vector/CLI
# tests, the interop test against the official Standard Webhooks library, and
# the Postgres extension's #[pg_test] and pg_regress suites (as `postgres`),
# the portable flavour's SQL signing against the native functions,
# the dispatcher's integration and crash tests, and the Lambda adapter's
# end-to-end test, release zip and template lint, and the providers'
# reference receivers (Node/Express) taking what every sender delivers (the
# outbox on both flavours).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
need_node   # the JSON differential test and the reference receivers
cd "$root"

echo "== vectors: every file of ../shared/vectors is in tests/vectors, byte for byte"
if [ -d "$root/../shared/vectors" ]; then
  # The repo adds its own vectors (tests/vectors/README.md lists which);
  # the shared ones are copies, never edited.
  for f in "$root/../shared/vectors"/*; do
    cmp "$f" "$root/tests/vectors/$(basename "$f")"
  done
  echo "tests/vectors holds ../shared/vectors unchanged"
else
  echo "../shared/vectors absent: using the repo's copy"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== no function in crates/*/src over 80 lines (tests aside)"
python3 scripts/fn-length.py
echo "== cargo test"
# The extension's tests need a PostgreSQL that refuses root: pg-test.sh runs them.
cargo test --workspace --all-features --exclude hookseal-pg
echo "== interop"
bash tests/interop/run.sh
echo "== postgres extension"
bash scripts/pg-test.sh
echo "== portable flavour: SQL signing and verification on a server without hookseal's library, against the native functions and the vectors"
bash tests/portable/run.sh
echo "== dispatcher (real PostgreSQL, receivers on 127.0.0.1, crash test)"
bash scripts/dispatch-test.sh
echo "== the same dispatcher, Lambda, receiver and CLI tests on the portable flavour (no library, sealed secrets)"
HOOKSEAL_FLAVOUR=portable bash scripts/dispatch-test.sh
echo "== lambda (cfn-lint, cargo lambda watch end to end, release zip)"
bash scripts/lambda-test.sh
echo "== fuzzing: every target 30 s (scripts/fuzz.sh; long runs are recorded in RELIABILITY.md)"
bash scripts/fuzz.sh 30
echo "== reference receivers (Express: Hedera, Fincra) from the CLI, the outbox and the Lambda relay"
bash tests/receivers/run.sh 200
echo "== reference receivers from the CLI and the outbox on the portable flavour"
HOOKSEAL_FLAVOUR=portable bash tests/receivers/run.sh 200
