#!/usr/bin/env bash
# Growth benchmark: does history slow the hot path? webhook_send throughput
# and drain throughput with 0, 1M and 10M delivered events of history
# (events + outbox + attempt log, spread over the last 29 days, inside the
# default 30-day retention), each as a ratio of the empty figure, same run;
# and the bytes one delivered event costs with its attempt log.
#   - history is written in bulk (INSERT ... SELECT, the fan-out trigger off
#     for the fill only) from a real delivered row: same body, same signed
#     headers, one attempt-log line with the same answer; its ids
#     (evt_00 + 19 digits) sort before the new events' time-ordered ids, as
#     older events' ids do;
#   - send: pgbench, 4 clients, unthrottled, webhook_send with one endpoint
#     (signed by the trigger), for S seconds; the rows it wrote are deleted
#     after (they are not history);
#   - drain: D events written, then one `hookseal dispatch` worker delivers
#     them into a verifying `hookseal receive`; deliveries/s until the last
#     is recorded;
#   - R rounds of both at each size; the median is reported, with what
#     pg_stat_statements saw of claim() and ack_many() per row during the
#     drains and the WAL written per drained event (send + claim + ack + log);
#   - at size 0, after the rounds, the cost of retention: maintain() deleting
#     every drained event (with its outbox row and attempt), ms and WAL per event.
# Usage: bash bench/growth.sh [sizes (0,1000000,10000000)] [D (20000)] [S (15)] [R (3)]
#   GROWTH_SHARED_BUFFERS=2GB bash bench/growth.sh ...   (default 256MB)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
IFS=, read -r -a sizes <<< "${1:-0,1000000,10000000}"
drain_n=${2:-20000}
send_secs=${3:-15}
rounds=${4:-3}
cd "$root"
bench_prepare hgb
start_cluster "$work/pg" "fsync = on" "shared_buffers = '${GROWTH_SHARED_BUFFERS:-256MB}'" "max_wal_size = '4GB'" \
  "shared_preload_libraries = 'hookseal,pg_stat_statements'" "pg_stat_statements.track = 'top'" \
  "log_autovacuum_min_duration = 0" "log_checkpoints = on"
export PGDATABASE=postgres
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE EXTENSION hookseal" -c "CREATE EXTENSION pg_stat_statements" \
  -c "CREATE ROLE growth_dispatcher LOGIN IN ROLE hookseal_dispatcher"
app=$(sql -c "SELECT hookseal.create_app('growth')")
port=$(free_port)
read -r ep secret < <(sql -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', 'http://127.0.0.1:$port/hook', 'native')")
url="postgres://growth_dispatcher@127.0.0.1:$PGPORT/postgres"
start_receiver() {
  WH_SECRET=$secret "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$port" \
    --log "$1" 2>/dev/null &
  rp=$!; pids+=($rp)
  wait_port "$port"
}
stop_receiver() { kill -TERM "$rp"; wait "$rp" 2>/dev/null || true; }
tables="pg_total_relation_size('hookseal.events') + pg_total_relation_size('hookseal.outbox') + pg_total_relation_size('hookseal.attempts')"

# Drain D events with one worker; prints deliveries/s; adds the WAL bytes
# (send to last ack) to $work/wal.txt.
drain() {
  local lsn0
  lsn0=$(sql -c "SELECT pg_current_wal_lsn()")
  sql -c "SELECT count(hookseal.webhook_send('$app', 'order.created', '{\"order\": 1, \"amount\": 2.5}')) FROM generate_series(1, $drain_n)" >/dev/null
  start_receiver "$work/drain.jsonl"
  local t0 t1 wp
  t0=$(date +%s.%N)
  RUST_LOG=warn "$bin" dispatch --database-url "$url" --allow 127.0.0.0/8 --batch 200 &
  wp=$!; pids+=($wp)
  # The poll must not cost in proportion to history: `status <> 'delivered'`
  # is a sequential scan of the whole outbox (seconds at 10M rows, every 50 ms,
  # on the cores the drain needs: runs A-D measured that); this predicate is
  # the scheduling index's own (outbox_endpoint_due), an index-only scan.
  while [ "$(sql -c "SELECT count(*) FROM hookseal.outbox WHERE status IN ('pending', 'delivering')")" != 0 ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  sql -c "SELECT pg_current_wal_lsn() - '$lsn0'::pg_lsn" >> "$work/wal.txt"
  kill -TERM "$wp"; wait "$wp" 2>/dev/null || true
  stop_receiver
  local ok
  ok=$(grep -c '"ok":true' "$work/drain.jsonl")
  [ "$ok" -ge "$drain_n" ] || { echo "only $ok of $drain_n deliveries verified" >&2; exit 1; }
  python3 -c "print(round($drain_n / ($t1 - $t0)))"
}

# webhook_send for S seconds, 4 clients; prints events/s; deletes what it wrote.
send() {
  local mark
  mark=$(sql -c "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
  echo "SELECT hookseal.webhook_send('$app', 'order.created', '{\"order\": 1, \"amount\": 2.5}');" > "$work/send.sql"
  "$PG_BIN/pgbench" -n -f "$work/send.sql" -T "$send_secs" -c 4 -j 2 postgres > "$work/pgbench.txt" 2>&1
  awk '/^tps/ {print int($3); exit}' "$work/pgbench.txt"
  sql -c "DELETE FROM hookseal.events WHERE created_at >= $mark" >/dev/null
}

# The first real delivery: its body, headers and answer are the template.
start_receiver "$work/first.jsonl"
RUST_LOG=warn "$bin" dispatch --database-url "$url" --allow 127.0.0.0/8 &
fp=$!; pids+=($fp)
sql -c "SELECT hookseal.webhook_send('$app', 'order.created', '{\"order\": 1, \"amount\": 2.5}')" >/dev/null
while [ "$(sql -c "SELECT count(*) FROM hookseal.attempts")" = 0 ]; do sleep 0.05; done
kill -TERM "$fp"; wait "$fp" 2>/dev/null || true
stop_receiver
sql -c "CREATE TABLE public.growth_template AS
        SELECT o.body, o.headers, t.response_type, t.response_body
        FROM hookseal.outbox o JOIN hookseal.attempts t ON t.outbox_id = o.id LIMIT 1"

# Fill history up to $1 events (cumulative), 1M per statement.
have=0
fill_to() {
  local want=$1
  while [ "$have" -lt "$want" ]; do
    local n=$(( want - have < 1000000 ? want - have : 1000000 ))
    local from=$((have + 1)) to=$((have + n))
    sql <<SQL
ALTER TABLE hookseal.events DISABLE TRIGGER events_fan_out;
INSERT INTO hookseal.events (id, type, app_id, created_at, data)
SELECT 'evt_00' || lpad(g::text, 19, '0'), 'order.created', '$app',
       (extract(epoch FROM now() - interval '29 days' + (g::float8 / 20000000) * interval '28 days') * 1000)::bigint,
       '{"order": 1, "amount": 2.5}'
FROM generate_series($from, $to) g;
ALTER TABLE hookseal.events ENABLE TRIGGER events_fan_out;
CREATE TEMP TABLE mark AS SELECT coalesce(max(id), 0) AS id FROM hookseal.outbox;
INSERT INTO hookseal.outbox (event_id, endpoint_id, body, headers, status, attempts, next_attempt_at,
                             last_status, created_at, signed_at, delivered_at)
SELECT 'evt_00' || lpad(g::text, 19, '0'), '$ep', t.body, t.headers, 'delivered', 1, ts, 200, ts, ts, ts
FROM generate_series($from, $to) g, public.growth_template t,
     LATERAL (SELECT now() - interval '29 days' + (g::float8 / 20000000) * interval '28 days' AS ts) x;
INSERT INTO hookseal.attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at,
                               http_status, error_class, response_type, response_body, resigned)
SELECT o.id, 1, o.endpoint_id, 'w-history', o.delivered_at, o.delivered_at + interval '2 ms', 200, 'ok',
       t.response_type, t.response_body, false
FROM hookseal.outbox o, public.growth_template t WHERE o.id > (SELECT id FROM mark);
SQL
    have=$to
    echo "history: $have events" >&2
  done
  sql -c "VACUUM ANALYZE hookseal.events, hookseal.outbox, hookseal.attempts" -c "CHECKPOINT"
}

: > "$work/results.txt"
for size in "${sizes[@]}"; do
  fill_to "$size"
  s=(); d=()
  : > "$work/wal.txt"
  sql -c "SELECT pg_stat_statements_reset()" >/dev/null
  for _ in $(seq "$rounds"); do
    s+=("$(send)")
    d+=("$(drain)")
  done
  bytes=$(sql -c "SELECT $tables")
  events=$(sql -c "SELECT count(*) FROM hookseal.events")
  # µs per row of claim() and ack_many() over every drain at this size.
  stmts=$(sql -F' ' -c "SELECT coalesce(round((sum(total_exec_time) FILTER (WHERE query LIKE '%hookseal.claim(%') * 1000
                                      / nullif(sum(rows) FILTER (WHERE query LIKE '%hookseal.claim(%'), 0))::numeric, 1), -1),
                               coalesce(round((sum(total_exec_time) FILTER (WHERE query LIKE '%hookseal.ack_many(%') * 1000
                                      / nullif(sum(rows) FILTER (WHERE query LIKE '%hookseal.ack_many(%'), 0))::numeric, 1), -1)
                        FROM pg_stat_statements")
  wal=$(python3 -c "import statistics; print(round(statistics.median([int(l) for l in open('$work/wal.txt')]) / $drain_n))")
  echo "$size ${s[*]} | ${d[*]} | $bytes $events $stmts $wal" | tee -a "$work/results.txt"
  # What autovacuum did meanwhile (it competes with the drains for the 2 cores).
  grep -o 'automatic vacuum of table "[^"]*"' "$work/pg/server.log" | sort | uniq -c | sed "s/^/  after $size: /" >&2 || true
  grep -A6 'automatic vacuum of table "postgres.hookseal.outbox"' "$work/pg/server.log" | grep -o 'system usage: .*' | tail -3 | sed "s/^/  outbox vacuum /" >&2 || true
  if [ "$size" = 0 ]; then
    # Retention's cost: every drained event is old now; one maintain() call.
    sql -c "UPDATE hookseal.apps SET retention = '1 second'" -c "SELECT pg_sleep(1.1)" >/dev/null
    lsn0=$(sql -c "SELECT pg_current_wal_lsn()")
    report=$(sql -c "SELECT hookseal.maintain(1000000)")
    mwal=$(sql -c "SELECT pg_current_wal_lsn() - '$lsn0'::pg_lsn")
    sql -c "UPDATE hookseal.apps SET retention = '30 days'" >/dev/null
    echo "maintain $report $mwal" | tee "$work/maintain.txt"
  fi
done

python3 - "$work/results.txt" "$drain_n" "$send_secs" "$rounds" "$work/maintain.txt" <<'PY'
import json, statistics, sys
path, drain_n, secs, rounds, maint = sys.argv[1:]
rows = []
for l in open(path):
    head, d, tail = l.split("|")
    size, *s = head.split()
    by, ev, claim_us, ack_us, wal = tail.split()
    rows.append((int(size), [int(x) for x in s], [int(x) for x in d.split()], int(by), int(ev),
                 claim_us, ack_us, int(wal)))
print(f"\nwebhook_send: pgbench 4 clients, {secs} s, 1 endpoint; drain: {drain_n} events, 1 worker; median of {rounds}\n")
print("| history (delivered events) | send events/s | vs empty | drain deliveries/s | vs empty | claim µs/row | ack_many µs/row | WAL bytes/event | tables (events+outbox+attempts) | bytes per event kept |")
print("|---|---|---|---|---|---|---|---|---|---|")
base_s = statistics.median(rows[0][1]); base_d = statistics.median(rows[0][2])
for size, s, d, by, ev, cu, au, wal in rows:
    ms, md = statistics.median(s), statistics.median(d)
    print(f"| {size:,} | {ms:,.0f} ({', '.join(map(str, s))}) | {ms / base_s:.2f}x | {md:,.0f} ({', '.join(map(str, d))}) | {md / base_d:.2f}x | {cu} | {au} | {wal:,} | {by / 1e6:,.0f} MB | {by / max(ev, 1):,.0f} |")
m = open(maint).read().split(maxsplit=1)[1].rsplit(maxsplit=1)
rep, mwal = json.loads(m[0]), int(m[1])
n = max(rep["events"], 1)
print(f"\nretention: maintain() deleted {rep['events']:,} events, {rep['outbox']:,} outbox rows, {rep['attempts']:,} attempts "
      f"in {rep['ms']} ms = {rep['ms'] * 1000 / n:.1f} µs and {mwal / n:,.0f} WAL bytes per event")
PY
