#!/usr/bin/env bash
# The portable flavour's SQL signing against the native functions, same run:
# pgbench (1 client, S seconds per round, rounds alternating) calling
# webhook_sign and webhook_verify_reason on a 1 KiB body in a database with
# the native extension and in one with `hookseal install` (no library).
# Prints calls/s per side and portable / native. The outbox (webhook_send,
# drain) is not in the portable flavour yet, so this is the signing cost
# alone.
# Usage: bash bench/portable.sh [seconds per round (10)] [rounds (3)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
secs=${1:-10}
rounds=${2:-3}
cd "$root"
cargo build -q --release -p hookseal-cli
(cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
work=$(mktemp -d /tmp/hsb.XXXX)
chown postgres:postgres "$work"
trap 'stop_cluster "$work/pg"; rm -rf "$work"' EXIT
start_cluster "$work/pg"
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE native" -c "CREATE DATABASE portable"
psql -qX -v ON_ERROR_STOP=1 -d native -c "CREATE EXTENSION hookseal"
"$root/target/release/hookseal" install --database-url "postgres://postgres@127.0.0.1:$PGPORT/portable" >/dev/null
body=$(python3 -c 'import json; print(json.dumps({"type": "order.created", "data": {"pad": "x" * 980}}))')
sig=$(psql -qAtX -d native -c "SELECT hookseal.webhook_sign('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '$body', 'msg_1', now())::text")
printf '%s\n' "SELECT hookseal.webhook_sign('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '$body', 'msg_1', now());" > "$work/sign.sql"
printf '%s\n' "SELECT hookseal.webhook_verify_reason('standard', ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], '$body', '$sig'::jsonb);" > "$work/verify.sql"
[ "$(psql -qAtX -d portable -f "$work/verify.sql")" = ok ] || { echo "portable does not verify the native signature" >&2; exit 1; }
: > "$work/results"
for r in $(seq "$rounds"); do
  for what in sign verify; do
    for db in native portable; do
      tps=$("$PG_BIN/pgbench" -n -M prepared -f "$work/$what.sql" -c 1 -T "$secs" "$db" 2>/dev/null |
            awk '/^tps/ {print int($3)}')
      echo "$what $db $tps" | tee -a "$work/results"
    done
  done
done
python3 - "$work/results" <<'PY'
import statistics, sys
d = {}
for line in open(sys.argv[1]):
    what, db, tps = line.split()
    d.setdefault((what, db), []).append(int(tps))
print("\n| call, 1 KiB body, `standard` | native calls/s | portable calls/s | portable / native (medians) |")
print("|---|---|---|---|")
for what in ("sign", "verify"):
    n, p = d[(what, "native")], d[(what, "portable")]
    print(f"| webhook_{'sign' if what == 'sign' else 'verify_reason'} | {' / '.join(map(str, n))} | "
          f"{' / '.join(map(str, p))} | {statistics.median(p) / statistics.median(n):.2f} |")
PY
