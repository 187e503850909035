#!/usr/bin/env bash
# Fault injection (tests/faults/faults.py) on a throwaway cluster:
#   bash tests/faults/run.sh [events per fault] [output markdown]
#   HOOKSEAL_FLAVOUR=portable bash tests/faults/run.sh ...   # on the portable flavour
# Prints the table RELIABILITY.md holds; exits non-zero when an event is
# lost or wrongly dead-lettered, or the dispatcher stopped working.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
cd "$root"
events=${1:-200}
out=${2:-$root/target/faults.md}
mkdir -p "$(dirname "$out")"
(cd crates/hookseal-pg && cargo pgrx install --pg-config /usr/bin/pg_config >/dev/null)
cargo build -q -p hookseal-cli
work=$(mktemp -d /tmp/hf.XXXX)
chown postgres:postgres "$work"
trap 'cp "$work/pg/dispatcher.log" "$(dirname "$out")/faults-dispatcher.log" 2>/dev/null || true; stop_cluster "$work/pg"; rm -rf "$work"' EXIT
flavour_cluster "$work/pg" "max_connections = 100"
flavour_install faults
echo "faults on the $flavour flavour"
python3 tests/faults/faults.py --installed --hookseal "$root/target/debug/hookseal" --pgport "$PGPORT" \
  --pgdata "$work/pg" --pgbin "$PG_BIN" --events "$events" --out "$out" || {
  echo "--- dispatcher log (last 40 lines)" >&2; tail -40 "$work/pg/dispatcher.log" >&2; exit 1; }
