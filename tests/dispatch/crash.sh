#!/usr/bin/env bash
# Crash test: 3 `hookseal dispatch` workers deliver events to a verifying
# receiver while this script SIGKILLs a random worker at random moments (and
# restarts it), and/or restarts PostgreSQL mid-flow. At the end every event
# must have been received and verified at least once, every duplicate must
# carry its event's message id, and no outbox row may be dead or stuck.
#   bash tests/dispatch/crash.sh --events 10000 --kills 20
#   bash tests/dispatch/crash.sh --events 10000 --pg-restarts 3
#   HOOKSEAL_FLAVOUR=portable bash tests/dispatch/crash.sh ...   # on the portable
#     flavour (no library; the workers sign at claim with the sealing key)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
events=10000 kills=0 restarts=0 workers=3
while [ $# -gt 0 ]; do
  case $1 in
    --events) events=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    --pg-restarts) restarts=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
need_rust
cd "$root"
cargo build -q -p hookseal-cli
bin=$root/target/debug/hookseal

work=$(mktemp -d /tmp/hc.XXXX)
chown postgres:postgres "$work"
pids=()
rpid=
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "$rpid" ] && kill -9 "$rpid" 2>/dev/null || true
  stop_cluster "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
flavour_cluster "$work/pg"
flavour_install crash
export PGDATABASE=crash
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
# psql that waits out a PostgreSQL restart.
sql_retry() {
  for _ in $(seq 1 100); do
    if sql "$@" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  sql "$@"
}
sql -c "CREATE ROLE crash_dispatcher LOGIN IN ROLE hookseal_dispatcher"
rport=$(free_port)
app=$(sql -c "SELECT hookseal.create_app('crash')")
read -r endpoint secret < <(sql -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', 'http://127.0.0.1:$rport/hook', 'native')")
# Retry quickly and never dead-letter within the test.
sql -c "UPDATE hookseal.endpoints SET retry_schedule = array_fill('1 second'::interval, ARRAY[100]), retry_jitter = 0"

WH_SECRET=$secret "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$rport" \
  --delay-ms 30 --log "$work/received.jsonl" 2>"$work/receiver.err" &
rpid=$!
wait_port "$rport"

url="postgres://crash_dispatcher@127.0.0.1:$PGPORT/crash"
start_worker() {
  RUST_LOG=warn "$bin" dispatch --database-url "$url" --allow 127.0.0.0/8 --lease 3 --timeout 2 \
    --connect-timeout 1 --poll-ms 200 --concurrency 8 --per-endpoint 8 --batch 50 \
    >>"$work/workers.log" 2>&1 &
  echo $!
}
for i in $(seq 0 $((workers - 1))); do pids[$i]=$(start_worker); done

# Feed events in as many chunks as there are disruptions (at least 10), so
# every kill or restart lands while work is in flight.
steps=$(( kills + restarts )); [ $steps -lt 10 ] && steps=10
chunk=$(( (events + steps - 1) / steps ))
sent=0 killed=0 restarted=0
restart_at=()
for r in $(seq 1 "$restarts"); do restart_at+=( $(( r * steps / (restarts + 1) )) ); done
start=$(date +%s.%N)
for step in $(seq 0 $((steps - 1))); do
  n=$(( events - sent < chunk ? events - sent : chunk ))
  if [ $n -gt 0 ]; then
    sql_retry -c "SELECT count(hookseal.webhook_send('$app', 'order.created', jsonb_build_object('n', g))) FROM generate_series($sent + 1, $sent + $n) g" >/dev/null
    sent=$(( sent + n ))
  fi
  sleep "0.$(( RANDOM % 4 + 1 ))"
  if [ $killed -lt "$kills" ]; then
    i=$(( RANDOM % workers ))
    kill -9 "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
    pids[$i]=$(start_worker)
    killed=$(( killed + 1 ))
  fi
  for at in "${restart_at[@]}"; do
    if [ "$at" = "$step" ]; then
      mode=fast; [ $(( restarted % 2 )) = 1 ] && mode=immediate
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg/data" -m $mode -w restart -l "$work/pg/server.log" >/dev/null
      restarted=$(( restarted + 1 ))
    fi
  done
done

echo "$flavour flavour: sent $sent events; $killed worker kills, $restarted PostgreSQL restarts; waiting for the outbox to empty"
deadline=$(( $(date +%s) + 180 ))
while :; do
  left=$(sql_retry -c "SELECT count(*) FROM hookseal.outbox WHERE status <> 'delivered'")
  total=$(sql_retry -c "SELECT count(*) FROM hookseal.outbox")
  [ "$left" = 0 ] && [ "$total" = "$events" ] && break
  if [ "$(date +%s)" -gt $deadline ]; then
    sql -c "SELECT status, count(*), max(attempts), max(last_error) FROM hookseal.outbox GROUP BY 1"
    echo "FAIL: $left rows not delivered after 180 s" >&2; exit 1
  fi
  sleep 0.5
done
elapsed=$(python3 -c "import time; print(round(time.time() - $start, 1))")
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
kill -TERM "$rpid"; wait "$rpid" || true; rpid=

echo "worker log: $(grep -c 'database connection ended\|claim failed\|cannot connect\|recording results failed' "$work/workers.log" || true) database errors survived, $(grep -c 'lease had passed' "$work/workers.log" || true) late acks"
sql -c "SELECT id FROM hookseal.events" > "$work/events.txt"
sql -c "SELECT status || ' ' || count(*) FROM hookseal.outbox GROUP BY status" > "$work/status.txt"
python3 - "$work" "$events" "$killed" "$restarted" "$elapsed" <<'PY'
import json, sys
work, events, killed, restarted, elapsed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ids = set(open(f"{work}/events.txt").read().split())
status = dict(l.split() for l in open(f"{work}/status.txt") if l.strip())
lines = [json.loads(l) for l in open(f"{work}/received.jsonl")]
bad = [l for l in lines if not l["ok"]]
mismatched = [l for l in lines if l["ok"] and l["id"] != l["event"]]
got = {l["id"] for l in lines if l["ok"]}
missing = ids - got
strangers = got - ids
dups = len([l for l in lines if l["ok"]]) - len(got)
print(f"events {len(ids)}, deliveries {len(lines)}, duplicates {dups}, "
      f"kills {killed}, restarts {restarted}, {elapsed} s; outbox {status}")
ok = True
def fail(msg):
    global ok; ok = False; print("FAIL:", msg)
if len(ids) != events: fail(f"{len(ids)} events in the database, expected {events}")
if missing: fail(f"{len(missing)} events never received, e.g. {sorted(missing)[:3]}")
if strangers: fail(f"received unknown ids {sorted(strangers)[:3]}")
if bad: fail(f"{len(bad)} deliveries failed verification, e.g. {bad[:2]}")
if mismatched: fail(f"{len(mismatched)} deliveries whose message id differs from the event id")
if status != {"delivered": str(events)}: fail(f"outbox not all delivered: {status}")
sys.exit(0 if ok else 1)
PY
