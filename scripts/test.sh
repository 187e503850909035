#!/usr/bin/env bash
# Every test: formatting, lints, the vector copy, unit/property/vector/CLI
# tests, and the interop test against the official Standard Webhooks library.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
cd "$root"

echo "== vectors: tests/vectors must equal ../shared/vectors when it exists"
if [ -d "$root/../shared/vectors" ]; then
  diff -r "$root/../shared/vectors" "$root/tests/vectors"
  echo "tests/vectors matches ../shared/vectors"
else
  echo "../shared/vectors absent: using the repo's copy"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo test"
cargo test --workspace --all-features
echo "== interop"
bash tests/interop/run.sh
