#!/usr/bin/env bash
# The portable flavour's SQL signing against the native functions, same run:
# pgbench (1 client, S seconds per round, rounds alternating) calling
# webhook_sign and webhook_verify_reason on a 1 KiB body in a database with
# the native extension and in one with `hookseal install` (no library).
# Then the outbox, same cluster, rounds alternating native / portable:
#  - webhook_send events/s (pgbench, 1 client, a small event) to an app
#    with 1 endpoint and to one with 10 (the native fan-out signs each row;
#    the portable one stores them unsigned);
#  - drain deliveries/s: N events to one endpoint, one release-build
#    `hookseal dispatch --drain --batch 200` (the portable one with the
#    sealing key, signing each attempt itself) into a verifying
#    `hookseal receive`; the run fails unless every delivery verified.
# Prints calls/s per side and portable / native (medians).
# Usage: bash bench/portable.sh [seconds per round (10)] [rounds (3)] [drain events (20000)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
secs=${1:-10}
rounds=${2:-3}
n=${3:-20000}
cd "$root"
cargo build -q --release -p hookseal-cli
(cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
work=$(mktemp -d /tmp/hsb.XXXX)
chown postgres:postgres "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; stop_cluster "$work/pg"; rm -rf "$work"' EXIT
start_cluster "$work/pg" "fsync = on" "shared_buffers = '256MB'" "max_wal_size = '2GB'"
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

# The outbox. Each database: a bench app with one endpoint at the receiver,
# a fan-out app with ten, a dispatcher role; the portable one a sealing key.
bin=$root/target/release/hookseal
rport=$(free_port)
"$bin" keygen --sealing-key "$work/sealing.asc" > "$work/sealing.pub.asc"
for db in native portable; do
  if [ "$db" = portable ]; then
    echo "SELECT hookseal.register_sealing_key(:'key')" | psql -qAtX -v ON_ERROR_STOP=1 -d portable -v key="$(cat "$work/sealing.pub.asc")" >/dev/null
  fi
  psql -qAtX -F ' ' -v ON_ERROR_STOP=1 -d "$db" > "$work/$db.ids" <<SQL
SELECT hookseal.create_app('bench') AS app \gset
SELECT secret FROM hookseal.create_endpoint(:'app', 'http://127.0.0.1:$rport/hook', 'native') \gset
SELECT hookseal.create_app('fan') AS fan \gset
SELECT count(*) FROM generate_series(1, 10) g, hookseal.create_endpoint(:'fan', 'http://127.0.0.1:$rport/f' || g, 'native') \g /dev/null
SELECT :'app', :'fan', :'secret';
SQL
done
[ -n "$(cat "$work/native.ids")" ] && [ -n "$(cat "$work/portable.ids")" ] || { echo "no bench apps" >&2; exit 1; }
psql -qX -d postgres -c "CREATE ROLE bench_dispatcher LOGIN IN ROLE hookseal_dispatcher"
for db in native portable; do
  read -r app fan secret < "$work/$db.ids"
  echo "SELECT hookseal.webhook_send('$app', 'order.created', '{\"n\": 1}');" > "$work/send1-$db.sql"
  echo "SELECT hookseal.webhook_send('$fan', 'order.created', '{\"n\": 1}');" > "$work/send10-$db.sql"
  echo "$secret" > "$work/secret-$db"
done
for r in $(seq "$rounds"); do
  for what in send1 send10; do
    for db in native portable; do
      tps=$("$PG_BIN/pgbench" -n -M prepared -f "$work/$what-$db.sql" -c 1 -T "$secs" "$db" 2>/dev/null |
            awk '/^tps/ {print int($3)}')
      echo "$what $db $tps" | tee -a "$work/results"
    done
  done
  for db in native portable; do
    read -r app fan secret < "$work/$db.ids"
    psql -qAtX -v ON_ERROR_STOP=1 -d "$db" -c "TRUNCATE hookseal.outbox, hookseal.events, hookseal.attempts" \
      -c "SELECT count(hookseal.webhook_send('$app', 'order.created', jsonb_build_object('n', g))) FROM generate_series(1, $n) g" >/dev/null
    WH_SECRET=$secret "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$rport" \
      --log "$work/drain-$db-$r.jsonl" 2>/dev/null &
    rpid=$!; pids+=($rpid)
    wait_port "$rport"
    key=(); [ "$db" = portable ] && key=(--sealing-key-file "$work/sealing.asc")
    t0=$(date +%s.%N)
    RUST_LOG=warn "$bin" dispatch --database-url "postgres://bench_dispatcher@127.0.0.1:$PGPORT/$db" \
      --allow 127.0.0.0/8 --batch 200 --drain "${key[@]}"
    t1=$(date +%s.%N)
    kill -TERM "$rpid"; wait "$rpid" 2>/dev/null || true
    ok=$(grep -c '"ok":true' "$work/drain-$db-$r.jsonl")
    [ "$ok" -ge "$n" ] || { echo "$db: only $ok of $n deliveries verified" >&2; exit 1; }
    echo "drain $db $(python3 -c "print(round($n / ($t1 - $t0)))")" | tee -a "$work/results"
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
print("\n| outbox | native /s | portable /s | portable / native (medians) |")
print("|---|---|---|---|")
names = {"send1": "webhook_send, 1 endpoint (events/s)", "send10": "webhook_send, 10 endpoints (events/s)",
         "drain": "drain, 1 endpoint, 1 worker (deliveries/s)"}
for what, name in names.items():
    n, p = d[(what, "native")], d[(what, "portable")]
    print(f"| {name} | {' / '.join(map(str, n))} | {' / '.join(map(str, p))} | "
          f"{statistics.median(p) / statistics.median(n):.2f} |")
PY
