#!/usr/bin/env bash
# Postgres extension benchmark, all in one run on a throwaway cluster:
#  1. webhook_sign('x-signature', ...) over N rows vs pgcrypto
#     encode(hmac(body, key, 'sha256'), 'hex');
#  2. webhook_sign('standard', ...) vs the same scheme in pure SQL + pgcrypto;
#  3. events/s through webhook_send (trigger-signed outbox) with 1 and 10
#     endpoints vs plain INSERTs of the same event and outbox rows, unsigned.
# Usage: bash bench/pg.sh [rows (default 1000000)] [seconds per pgbench run (default 15)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
rows=${1:-1000000}
secs=${2:-15}
cd "$root/crates/hookseal-pg"
cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null
work=$(mktemp -d /tmp/hsb.XXXX)
trap 'stop_cluster "$work"; rm -rf "$work"' EXIT
start_cluster "$work" "shared_buffers = '512MB'" "synchronous_commit = off" "max_wal_size = '4GB'"
psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)
"${psql[@]}" -v rows="$rows" -f "$root/bench/pg/setup.sql" >/dev/null

# Best of 3 runs of one query, in milliseconds.
time_query() {
  local best=""
  for _ in 1 2 3; do
    local ms
    ms=$("${psql[@]}" -At -c "\\timing on" -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
    if [ -z "$best" ] || awk "BEGIN{exit !($ms < $best)}"; then best=$ms; fi
  done
  echo "$best"
}

key='pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg'
std='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
xs_ours=$(time_query "SELECT count(hookseal.webhook_sign('x-signature', '$key', body)) FROM bodies")
xs_pgc=$(time_query "SELECT count(encode(hmac(body, '$key', 'sha256'), 'hex')) FROM bodies")
st_ours=$(time_query "SELECT count(hookseal.webhook_sign('standard', '$std', body, id, now())) FROM bodies")
st_pgc=$(time_query "SELECT count(jsonb_build_object('webhook-id', id, 'webhook-timestamp', extract(epoch FROM now())::bigint::text,
  'webhook-signature', 'v1,' || encode(hmac(convert_to(id || '.' || extract(epoch FROM now())::bigint || '.' || body, 'UTF8'),
  decode(substr('$std', 7), 'base64'), 'sha256'), 'base64'))) FROM bodies")

tps() { # script app-name
  local app
  app=$("${psql[@]}" -At -c "SELECT id FROM apps_for_bench WHERE name = '$2'")
  "$PG_BIN/pgbench" -n -c 2 -j 2 -T "$secs" -D app="'$app'" -f "$root/bench/pg/$1" -h 127.0.0.1 -p "$PGPORT" -U postgres postgres \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
s1=$(tps send_signed.sql one); p1=$(tps send_plain.sql one)
s10=$(tps send_signed.sql ten); p10=$(tps send_plain.sql ten)

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
cat <<MD
| measurement | hookseal | baseline | ratio (hookseal / baseline) |
|---|---|---|---|
| sign \`x-signature\`, $rows rows | $xs_ours ms | pgcrypto \`encode(hmac(body, key, 'sha256'), 'hex')\`: $xs_pgc ms | **$(ratio "$xs_ours" "$xs_pgc")** (time) |
| sign \`standard\` (headers as jsonb), $rows rows | $st_ours ms | same headers in pure SQL + pgcrypto: $st_pgc ms | **$(ratio "$st_ours" "$st_pgc")** (time) |
| \`webhook_send\`, 1 endpoint | $s1 events/s | unsigned INSERT event + outbox: $p1 events/s | **$(ratio "$s1" "$p1")** (throughput) |
| \`webhook_send\`, 10 endpoints | $s10 events/s | unsigned INSERT event + 10 outbox rows: $p10 events/s | **$(ratio "$s10" "$p10")** (throughput) |
MD
