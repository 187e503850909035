#!/usr/bin/env bash
# One `hookseal dispatch` over three PostgreSQL clusters (issue 24):
#  1. N events into each database: every one delivered, verified, once per
#     endpoint (the receiver's log, by message id);
#  2. cluster 3 stopped while it holds N rows not yet due: clusters 1 and 2
#     keep delivering N more each while it is down, the worker stays up;
#  3. cluster 3 started again: its rows deliver, none twice;
#  4. `hookseal status` with the three URLs: one table, cluster 3's rows
#     among them.
# The delivery latency (the event's insert -> delivered_at) of clusters 1
# and 2 before and during the outage is printed as p50/p99 (bench/multi.sh
# records it with larger N; here it is information, not a pass mark).
#   bash tests/dispatch/multi.sh [N]        (default 200)
#   HOOKSEAL_FLAVOUR=portable bash tests/dispatch/multi.sh
# bench/multi.sh runs it with MULTI_BENCH=1: release builds, and steps 1
# and 2 as a steady flow (10 events per database every 100 ms for
# MULTI_SECONDS, default 10) so the latencies compare, then the drain
# throughput of one worker over the three databases against one worker over
# one (MULTI_DRAIN rows per database, default 5000), in alternating rounds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
n=${1:-200}
need_rust
need_pg
cd "$root"
bench=${MULTI_BENCH:-}
seconds=${MULTI_SECONDS:-10}
if [ -n "$bench" ]; then
  cargo build -q --release -p hookseal-cli
  bin=$root/target/release/hookseal
else
  cargo build -q -p hookseal-cli
  bin=$root/target/debug/hookseal
fi
work=$(mktemp -d /tmp/hm.XXXX)
chown postgres:postgres "$work"
dpid= rpid=
cleanup() {
  for p in $dpid $rpid; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done || true
  for i in 1 2 3; do stop_cluster "$work/pg$i"; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$work/dispatch.log" >&2 || true; exit 1; }
rport=$(free_port)
declare -a port secret app
urls=() keys=()
for i in 1 2 3; do
  flavour_cluster "$work/pg$i"
  port[$i]=$PGPORT
  flavour_install multi
  [ "$flavour" = portable ] && keys+=("$HOOKSEAL_SEALING_KEY_FILE")
  psql -qAtX -v ON_ERROR_STOP=1 -d multi -c "CREATE ROLE multi_dispatcher LOGIN IN ROLE hookseal_dispatcher" \
    -c "CREATE ROLE multi_admin LOGIN IN ROLE hookseal_admin"
  app[$i]=$(psql -qAtX -d multi -c "SELECT hookseal.create_app('app$i')")
  secret[$i]=$(psql -qAtX -d multi -c "SELECT secret FROM hookseal.create_endpoint('${app[$i]}', 'http://127.0.0.1:$rport/db$i', 'native')")
  psql -qAtX -d multi -c "UPDATE hookseal.endpoints SET retry_schedule = array_fill('1 second'::interval, ARRAY[20]), retry_jitter = 0"
  urls+=("postgres://multi_dispatcher@127.0.0.1:${port[$i]}/multi")
done
sql() { local i=$1; shift; psql -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${port[$i]}" -U postgres -d multi "$@"; }
send() {  # send DB COUNT TYPE
  sql "$1" -c "SELECT count(hookseal.webhook_send('${app[$1]}', '$3', jsonb_build_object('n', g))) FROM generate_series(1, $2) g" >/dev/null
}
delivered() { sql "$1" -c "SELECT count(*) FROM hookseal.outbox WHERE status = 'delivered'"; }
flow() {  # flow DB TYPE: 10 events every 100 ms for $seconds s (bench mode), else $n at once
  if [ -z "$bench" ]; then send "$1" "$n" "$2"; return; fi
  sql "$1" -c "DO \$\$ BEGIN FOR i IN 1 .. $(( seconds * 10 )) LOOP
                 PERFORM hookseal.webhook_send('${app[$1]}', '$2', jsonb_build_object('n', g)) FROM generate_series(1, 10) g;
                 COMMIT; PERFORM pg_sleep(0.1);
               END LOOP; END \$\$"
}
wait_delivered() {  # wait_delivered DB COUNT SECONDS
  for _ in $(seq $(( $3 * 10 ))); do
    [ "$(delivered "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "database $1: $(delivered "$1") of $2 delivered"
}
latency() {  # latency DB TYPE: p50 and p99 ms of that type's deliveries, from the
             # event's insert (events.created_at is clock time; outbox.created_at is
             # the transaction's start) to the recorded delivery
  sql "$1" -F' ' -c "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
                            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1)
                     FROM (SELECT extract(epoch FROM o.delivered_at) * 1000 - e.created_at AS d
                           FROM hookseal.outbox o JOIN hookseal.events e ON e.id = o.event_id AND e.app_id = o.app_id
                           WHERE e.type = '$2' AND o.status = 'delivered') x"
}

S1=${secret[1]} S2=${secret[2]} S3=${secret[3]} "$bin" receive --scheme native \
  --secret-env S1 --secret-env S2 --secret-env S3 --listen "127.0.0.1:$rport" \
  --log "$work/received.jsonl" 2>"$work/receiver.err" &
rpid=$!
wait_port "$rport"
[ ${#keys[@]} -gt 0 ] && export HOOKSEAL_SEALING_KEY_FILE=$(IFS=,; echo "${keys[*]}")
"$bin" dispatch --database-url "${urls[0]}" --database-url "${urls[1]}" --database-url "${urls[2]}" \
  --allow 127.0.0.0/8 --worker-id multi --poll-ms 100 --db-timeout 2 2>"$work/dispatch.log" &
dpid=$!

[ -n "$bench" ] && n=$(( seconds * 100 ))
echo "-- 1. $n events into each of the three databases"
flows=()
for i in 1 2 3; do flow "$i" before & flows+=($!); done
wait "${flows[@]}"
for i in 1 2 3; do wait_delivered "$i" "$n" 60; done
echo "   delivered: $(delivered 1) / $(delivered 2) / $(delivered 3)"

echo "-- 2. cluster 3 stopped holding $n rows not yet due; $n more into each of 1 and 2"
send 3 "$n" held
sql 3 -c "UPDATE hookseal.outbox SET next_attempt_at = now() + interval '4 seconds' WHERE status = 'pending'"
stop_cluster "$work/pg3"
flows=()
for i in 1 2; do flow "$i" during & flows+=($!); done
wait "${flows[@]}"
for i in 1 2; do wait_delivered "$i" $(( 2 * n )) 60; done
kill -0 "$dpid" || fail "the worker stopped with a database down"
echo "   delivered while 3 was down: $(delivered 1) / $(delivered 2)"
for i in 1 2; do
  read -r b50 b99 < <(latency "$i" before)
  read -r d50 d99 < <(latency "$i" during)
  echo "   database $i latency ms, p50/p99: before $b50/$b99, during the outage $d50/$d99"
  echo "latency db$i $b50 $b99 $d50 $d99" >> "${MULTI_RESULTS:-/dev/null}"
done

echo "-- 3. cluster 3 back: its rows deliver"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$work/pg3/data" -l "$work/pg3/server.log" -w start >/dev/null
wait_delivered 3 $(( 2 * n )) 90
echo "   delivered: $(delivered 1) / $(delivered 2) / $(delivered 3)"

echo "-- each event once per endpoint, verified"
python3 - "$work/received.jsonl" "$(( 2 * n ))" <<'PY'
import collections, json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
bad = [l for l in lines if not l.get("ok")]
assert not bad, f"refused by the receiver: {bad[:3]}"
ids = collections.Counter(l["id"] for l in lines)
twice = [i for i, c in ids.items() if c > 1]
assert not twice, f"delivered twice: {twice[:5]}"
assert len(ids) == 3 * int(sys.argv[2]), f"{len(ids)} distinct messages, want {3 * int(sys.argv[2])}"
print(f"   {len(ids)} messages, each received and verified once")
PY
for i in 1 2 3; do
  [ "$(sql "$i" -c "SELECT count(*) FROM hookseal.outbox WHERE status <> 'delivered'")" = 0 ] || fail "database $i: rows left undelivered"
done

echo "-- 4. hookseal status over the three"
admin=()
for i in 1 2 3; do admin+=(--database-url "postgres://multi_admin@127.0.0.1:${port[$i]}/multi"); done
"$bin" status "${admin[@]}" > "$work/status.txt" 2>"$work/status.err" || fail "status: $(cat "$work/status.err")"
for i in 1 2 3; do grep -q "127.0.0.1:${port[$i]}/multi" "$work/status.txt" || fail "status lacks database $i"; done
grep -q "multi_dispatcher\|multi_admin" "$work/status.txt" "$work/dispatch.log" && fail "a role name (URL) in the output"
kill -TERM "$dpid"; wait "$dpid" || true; dpid=
echo "ok: one worker, three databases"
[ -z "$bench" ] && exit 0

n=${MULTI_DRAIN:-5000}
echo "-- throughput: one worker's drain over three databases against over one ($n per database)"
drain() {  # drain URL...: seconds one worker takes to deliver what is due
  local args=() start
  for u in "$@"; do args+=(--database-url "$u"); done
  start=$(date +%s.%N)
  "$bin" dispatch "${args[@]}" --drain --allow 127.0.0.0/8 --worker-id bench 2>>"$work/dispatch.log"
  echo "$(date +%s.%N) - $start" | bc -l
}
for round in 1 2 3; do
  send 1 "$n" one
  t1=$(drain "${urls[0]}")
  for i in 1 2 3; do send "$i" "$n" three; done
  t3=$(drain "${urls[@]}")
  r1=$(echo "$n / $t1" | bc -l); r3=$(echo "3 * $n / $t3" | bc -l)
  printf '   round %s: one database %.0f deliveries/s, three %.0f deliveries/s (%.2fx)\n' "$round" "$r1" "$r3" "$(echo "$r3 / $r1" | bc -l)"
  echo "throughput $round $r1 $r3" >> "${MULTI_RESULTS:-/dev/null}"
done
