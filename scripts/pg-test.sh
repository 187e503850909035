#!/usr/bin/env bash
# The Postgres extension's tests: #[pg_test]s through `cargo pgrx test` run as
# the `postgres` user, then the pg_regress suite against a throwaway cluster
# on a loopback port.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
cd "$root/crates/hookseal-pg"

echo "== cargo pgrx test (as postgres)"
work=$(mktemp -d /tmp/hs.XXXX)   # short: its path becomes a socket directory
chown postgres:postgres "$work"
trap 'stop_cluster "$work/regress"; rm -rf "$work"' EXIT
cargo pgrx test pg15 --runas postgres --pgdata "$work/pgrx"

echo "== pg_regress"
install_extension
start_cluster "$work/regress"
regress="$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress"
out="$work/regress/out"
mkdir -p "$out"
if ! "$regress" --inputdir=tests/pg_regress --outputdir="$out" --host=127.0.0.1 --port="$PGPORT" \
    --user=postgres --dbname=hookseal_regress sign_verify outbox flow history security privileges v1a described defects upgrade; then
  cat "$out/regression.diffs" >&2 || true
  exit 1
fi

echo "== no server key in the server log (inline settings refused, key file rotated)"
bash "$root/tests/security/keylog.sh"
