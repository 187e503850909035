#!/usr/bin/env bash
# Soak benchmark: a year of operation, compressed. Events offered at a fixed
# rate (pgbench -R) for a long run, with a short retention and `hookseal
# dispatch --maintain-every` deleting what is old and delivered, to show that
# table sizes level off instead of growing, that latency does not drift, that
# nothing is lost, and that retention makes writers wait on no lock.
#   - one app, one endpoint, one verifying `hookseal receive`, one worker;
#   - every 10 s the script copies new events' (id, created_at) out of the
#     database (retention deletes them later), every 60 s it records the
#     size of events, outbox and attempts with their indexes;
#   - the cluster runs with log_lock_waits = on and deadlock_timeout = 1 s,
#     so every lock wait longer than 1 s is in the server log.
# Reports per minute: deliveries, p50/p99 commit-to-receipt (receiver arrival
# minus events.created_at), table sizes; then lost events and lock waits.
# Usage: bash bench/soak.sh [events/s (1000)] [seconds (1800)] [retention (5 minutes)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
rate=${1:-1000}
secs=${2:-1800}
retention=${3:-5 minutes}
cd "$root"
bench_prepare hsk
start_cluster "$work/pg" "fsync = on" "shared_buffers = '256MB'" "max_wal_size = '2GB'" \
  "log_lock_waits = on" "deadlock_timeout = '1s'"
export PGDATABASE=postgres
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE DATABASE soak"
dsql="psql -qAtX -v ON_ERROR_STOP=1 -d soak"
$dsql -c "CREATE EXTENSION hookseal" -c "CREATE ROLE soak_dispatcher LOGIN IN ROLE hookseal_dispatcher"
app=$($dsql -c "SELECT hookseal.create_app('soak')")
$dsql -c "UPDATE hookseal.apps SET retention = '$retention'"
port=$(free_port)
read -r _ secret < <($dsql -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', 'http://127.0.0.1:$port/hook', 'native')")
WH_SECRET=$secret "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$port" \
  --log "$work/received.jsonl" 2>/dev/null &
pids+=($!)
wait_port "$port"
RUST_LOG=info "$bin" dispatch --database-url "postgres://soak_dispatcher@127.0.0.1:$PGPORT/soak" \
  --allow 127.0.0.0/8 --maintain-every 5 2>"$work/worker.log" &
pids+=($!)
echo "SELECT hookseal.webhook_send('$app', 'order.created', '{\"order\": 1, \"amount\": 2.5}');" > "$work/send.sql"

start_ms=$(date +%s%3N)
: > "$work/created.txt"
: > "$work/sizes.txt"
sizes() {
  $dsql -F' ' -c "SELECT $1, pg_total_relation_size('hookseal.events'), pg_total_relation_size('hookseal.outbox'),
                         pg_total_relation_size('hookseal.attempts'),
                         (SELECT count(*) FROM hookseal.events), (SELECT count(*) FROM hookseal.attempts)" >> "$work/sizes.txt"
}
"$PG_BIN/pgbench" -n -f "$work/send.sql" -R "$rate" -T "$secs" -c 4 -j 2 soak > "$work/pgbench.txt" 2>&1 &
bench=$!
last=0
tick=0
sizes 0
while kill -0 "$bench" 2>/dev/null; do
  sleep 10
  tick=$((tick + 10))
  # New events since the last copy (by created_at; the index serves it).
  $dsql -F' ' -c "SELECT id, created_at FROM hookseal.events WHERE app_id = '$app' AND created_at >= $last ORDER BY created_at" >> "$work/created.txt"
  last=$(tail -1 "$work/created.txt" | cut -d' ' -f2)
  last=${last:-0}
  if [ $((tick % 60)) = 0 ]; then sizes $((tick / 60)); fi
done
wait "$bench" || true
# Drain: every event delivered (or 120 s).
for _ in $(seq 1200); do
  [ "$($dsql -c "SELECT count(*) FROM hookseal.outbox WHERE status IN ('pending', 'delivering')")" = 0 ] && break
  sleep 0.1
done
$dsql -F' ' -c "SELECT id, created_at FROM hookseal.events WHERE app_id = '$app' AND created_at >= $last ORDER BY created_at" >> "$work/created.txt"
sleep 1
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
sleep 1
lockwaits=$(grep -c "still waiting for" "$work/pg/server.log" || true)
maintains=$(grep -c "maintain" "$work/worker.log" || true)
cp "$work/pgbench.txt" "$work/sizes.txt" /tmp/ 2>/dev/null || true

python3 - "$work" "$start_ms" "$rate" "$secs" "$retention" "$lockwaits" "$maintains" <<'PY'
import json, sys
work, start_ms, rate, secs, retention, lockwaits, maintains = sys.argv[1:]
start_ms = int(start_ms)
created = {}
for l in open(f"{work}/created.txt"):
    p = l.split()
    if len(p) == 2:
        created[p[0]] = int(p[1])
first, bad = {}, 0
for l in open(f"{work}/received.jsonl"):
    r = json.loads(l)
    if not r.get("ok"):
        bad += 1
        continue
    first[r["id"]] = min(first.get(r["id"], 1 << 62), r["t_ms"])
lost = [i for i in created if i not in first]
by_min = {}
for i, t in first.items():
    if i in created:
        m = (created[i] - start_ms) // 60000 + 1
        by_min.setdefault(m, []).append(t - created[i])
sizes = [l.split() for l in open(f"{work}/sizes.txt") if l.strip()]
mb = lambda b: f"{int(b) / 1e6:.1f}"
print(f"\n{rate} events/s offered for {secs} s, retention {retention}, maintain() every 5 s by the dispatcher flag\n")
print("| minute | delivered | p50 ms | p99 ms | events MB | outbox MB | attempts MB | events rows | attempts rows |")
print("|---|---|---|---|---|---|---|---|---|")
size_at = {int(s[0]): s for s in sizes}
p99s = {}
for m in sorted(by_min):
    lat = sorted(by_min[m])
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    p99s[m] = pct(99)
    s = size_at.get(m)
    sz = f"{mb(s[1])} | {mb(s[2])} | {mb(s[3])} | {s[4]} | {s[5]}" if s else "| | | |"
    print(f"| {m} | {len(lat)} | {pct(50)} | {pct(99)} | {sz} |")
full = [m for m in sorted(p99s) if len(by_min[m]) >= int(rate) * 50]
if full:
    a, b = full[0], full[-1]
    print(f"\np99 minute {b} / minute {a}: {p99s[b]} / {p99s[a]} ms = {p99s[b] / max(p99s[a], 1):.2f}x")
print(f"events written {len(created)}, received and verified {len([i for i in created if i in first])}, "
      f"lost {len(lost)}, unverified requests {bad}")
print(f"lock waits longer than 1 s in the server log: {lockwaits}; maintain() calls logged: {maintains}")
# Failures (CI runs a short version): a lost or unverified event, a lock wait, no retention.
sys.exit(1 if lost or bad or int(lockwaits) or not int(maintains) else 0)
PY
