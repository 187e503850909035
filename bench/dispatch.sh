#!/usr/bin/env bash
# Dispatcher benchmark, one run on a throwaway cluster (fsync on):
#  1. sustained deliveries/s draining a backlog of N events with 1, 2 and 4
#     `hookseal dispatch` workers into a verifying loopback receiver
#     (`hookseal receive`), against the same receiver's ceiling measured with
#     wrk POSTing one signed request over 32 keep-alive connections;
#  2. commit-to-receipt latency at 1,000 events/s offered by pgbench, one worker.
# Usage: bash bench/dispatch.sh [backlog events (default 40000)] [latency seconds (default 20)]
#
# Comparison with an older commit (same run, both built here):
#   bash bench/dispatch.sh --compare REV [events (default 40000)] [rounds (default 2)]
# drains N events to one endpoint and N events spread over 100 endpoints,
# one worker, with the code at REV and with the current tree, alternating
# (old, new, old, new, ...) on one cluster, and prints deliveries/s and
# the new/old ratio of the medians.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
if [ "${1:-}" = --compare ]; then
  exec bash "$root/bench/dispatch-compare.sh" "${@:2}"
fi
apt_need wrk
n=${1:-40000}
secs=${2:-20}
cd "$root"
cargo build -q --release -p hookseal-cli
(cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
bin=$root/target/release/hookseal
work=$(mktemp -d /tmp/hdb.XXXX)
chown postgres:postgres "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  stop_cluster "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
start_cluster "$work/pg" "fsync = on" "shared_buffers = '256MB'" "max_wal_size = '2GB'"
export PGDATABASE=postgres
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE EXTENSION hookseal" -c "CREATE ROLE bench_dispatcher LOGIN IN ROLE hookseal_dispatcher"
rport=$(free_port)
app=$(sql -c "SELECT hookseal.create_app('bench')")
read -r _ secret < <(sql -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', 'http://127.0.0.1:$rport/hook', 'native')")
export WH_SECRET=$secret
url="postgres://bench_dispatcher@127.0.0.1:$PGPORT/postgres"

start_receiver() { # log file
  "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$rport" --log "$1" 2>/dev/null &
  rpid=$!
  pids+=($rpid)
  wait_port "$rport"
}
stop_receiver() { kill -TERM "$rpid"; wait "$rpid" 2>/dev/null || true; }

# Receiver ceiling: one signed request replayed by wrk.
start_receiver /dev/null
body='{"id":"evt_bench","type":"bench","timestamp":1,"data":{"n":1}}'
mapfile -t hdrs < <(printf '%s' "$body" | "$bin" sign --scheme native --secret-env WH_SECRET --id evt_bench)
{
  echo 'wrk.method = "POST"'
  echo "wrk.body = '$body'"
  echo 'wrk.headers["Content-Type"] = "application/json"'
  for h in "${hdrs[@]}"; do echo "wrk.headers[\"${h%%: *}\"] = \"${h#*: }\""; done
} > "$work/post.lua"
wrk -t 1 -c 32 -d 5s -s "$work/post.lua" "http://127.0.0.1:$rport/hook" > "$work/wrk.txt"
ceiling=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
[ -z "$non2xx" ] || { echo "wrk got non-2xx answers: the signed request did not verify" >&2; exit 1; }
stop_receiver
echo "receiver ceiling (wrk, 32 connections): $ceiling req/s"

results=()
# "1r": one worker with every row re-signed at claim time (the retry path:
# decrypt the secret and sign again), by back-dating the trigger's signature.
for workers in 1 2 4 1r; do
  sql -c "TRUNCATE hookseal.outbox, hookseal.events"
  sql -c "SELECT count(hookseal.webhook_send('$app', 'order.created', jsonb_build_object('n', g))) FROM generate_series(1, $n) g" >/dev/null
  if [ "$workers" = 1r ]; then
    sql -c "UPDATE hookseal.outbox SET signed_at = signed_at - interval '1 hour'"
  fi
  start_receiver "$work/drain-$workers.jsonl"
  t0=$(date +%s.%N)
  wp=()
  for _ in $(seq "${workers%r}"); do
    RUST_LOG=warn "$bin" dispatch --database-url "$url" --allow 127.0.0.0/8 --batch 200 &
    wp+=($!); pids+=($!)
  done
  while [ "$(sql -c "SELECT count(*) FROM hookseal.outbox WHERE status IN ('pending', 'delivering')")" != 0 ]; do sleep 0.05; done
  t1=$(date +%s.%N)
  for p in "${wp[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
  stop_receiver
  ok=$(grep -c '"ok":true' "$work/drain-$workers.jsonl")
  [ "$ok" -ge "$n" ] || { echo "only $ok of $n deliveries verified" >&2; exit 1; }
  rate=$(python3 -c "print(round($n / ($t1 - $t0)))")
  echo "$workers worker(s): $n deliveries in $(python3 -c "print(round($t1 - $t0, 2))") s = $rate deliveries/s"
  results+=("$workers:$rate")
done

# Latency: pgbench offers 1,000 events/s; one worker; commit -> receipt.
sql -c "TRUNCATE hookseal.outbox, hookseal.events"
start_receiver "$work/latency.jsonl"
RUST_LOG=warn "$bin" dispatch --database-url "$url" --allow 127.0.0.0/8 &
lp=$!; pids+=($lp)
echo "SELECT hookseal.webhook_send('$app', 'order.created', '{\"n\": 1}');" > "$work/send.sql"
"$PG_BIN/pgbench" -n -f "$work/send.sql" -R 1000 -T "$secs" -c 4 -j 2 postgres > "$work/pgbench.txt" 2>&1
sleep 2
kill -TERM "$lp"; wait "$lp" 2>/dev/null || true
stop_receiver
sql -c "SELECT id || ' ' || created_at FROM hookseal.events" > "$work/created.txt"
python3 - "$work" "$ceiling" "${results[@]}" <<'PY'
import json, sys
work, ceiling, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
created = dict(l.split() for l in open(f"{work}/created.txt") if l.strip())
lat = sorted(l["t_ms"] - int(created[l["id"]]) for l in map(json.loads, open(f"{work}/latency.jsonl"))
             if l["ok"] and l["id"] in created)
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print()
print("| workers | deliveries/s | receiver ceiling (wrk), same run | ratio | vs pg_net's stated ~400 req/s |")
print("|---|---|---|---|---|")
for r in runs:
    w, rate = r.split(":")
    w = w.replace("1r", "1, every row re-signed at claim")
    print(f"| {w} | {rate} | {ceiling:.0f} req/s | {int(rate) / ceiling:.2f} | {int(rate) / 400:.0f}x |")
print()
print(f"latency at 1000 events/s offered: {len(lat)} of {len(created)} events received; "
      f"p50 {pct(50)} ms, p99 {pct(99)} ms, max {lat[-1]} ms")
PY
grep -E "tps|latency average" "$work/pgbench.txt" | sed 's/^/pgbench: /'
