#!/usr/bin/env bash
# hookseal's outbox delivery against pg_net (supabase's HTTP extension),
# measured in the same run on one throwaway cluster (fsync on, both
# extensions preloaded, the postmaster started with a raised fd limit):
#  1. pg_net tuned, pg_net.batch_size 5000 then 10000: N requests in one
#     transaction (`net.http_post`), timed from its commit;
#  2. hookseal: N events to one endpoint drained by one `hookseal dispatch`
#     worker (`--batch 200`, as bench/dispatch.sh), timed from worker start;
#     the native flavour, then the portable one (a `hookseal install`ed
#     database in the same cluster, the worker holding the sealing key).
# Every request of both goes to the same verifying receiver
# (`hookseal receive --scheme native`); the run fails unless it verified N of
# each. Prints a markdown table with the hookseal/pg_net ratio.
# Usage: bash bench/pgnet.sh [events (default 40000)]
#
# What is timed, for both systems (the same wall clock):
#  - "to last receipt": start to the receiver's arrival time (t_ms) of the
#    last verified request. The ratio is taken on this column.
#  - "to last row": start to the last delivery recorded in the database:
#    for pg_net, when all N rows are visible in net._http_response (polled
#    every 50 ms: the worker commits the responses of a whole batch at
#    once); for hookseal, the newest outbox.delivered_at (its acks commit
#    every few ms, so no polling).
# Start is the return of the committing psql for pg_net (its worker is woken
# at commit) and the worker's launch for hookseal; inserting and signing are
# outside the clock for both.
#
# Same messages: the N pg_net requests are the bodies hookseal's fan-out
# trigger stored in its outbox (N webhook_send events, then deleted), sent
# with the endpoint's secret and event ids. net.http_post takes the body as
# jsonb and sends `body::text`, which re-orders keys and adds spaces, and
# `native` signs the exact bytes, so each request is re-signed with
# hookseal.webhook_sign over exactly the bytes pg_net sends (a few bytes
# longer than hookseal's compact body). The receiver verifies both systems
# identically; nothing is sent unsigned.
#
# pg_net, as built here: the newest release (PGNET_VERSION, default v0.20.5)
# with PGXS under ~/.cache/hookseal-pgnet (PGNET_GIT: a git URL or a local
# git directory, default GitHub). Its worker takes batch_size rows, opens
# that many connections at once (hence the fd limit), commits their
# responses together, then sleeps 1 s before the next batch: N/B - 1 such
# pauses are in its time. Per-request timeout: 30 s (PGNET_TIMEOUT_MS),
# hookseal's own default, instead of pg_net's 5 s. pg_net.ttl stays 6 hours
# (nothing expires during a run).
# HOOKSEAL_BENCH_PREBUILT=1 skips the cargo builds (uses target/release/hookseal
# and the installed extension as they are).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
n=${1:-40000}
batches=(5000 10000)
pgnet_version=${PGNET_VERSION:-v0.20.5}
pgnet_git=${PGNET_GIT:-https://github.com/supabase/pg_net.git}
pgnet_timeout=${PGNET_TIMEOUT_MS:-30000}
cd "$root"
if [ -z "${HOOKSEAL_BENCH_PREBUILT:-}" ]; then
  need_rust
  need_base
  need_pg
  cargo build -q --release -p hookseal-cli
  (cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
fi
apt_need postgresql-15 postgresql-server-dev-15 build-essential libcurl4-openssl-dev git openssl python3
bin=$root/target/release/hookseal
[ -x "$bin" ] || { echo "$bin missing: build it (or run without HOOKSEAL_BENCH_PREBUILT)" >&2; exit 1; }
libdir=$(pg_config --pkglibdir)
ls "$(pg_config --sharedir)"/extension/hookseal--*.sql >/dev/null 2>&1 \
  || { echo "the hookseal extension is not installed" >&2; exit 1; }

# pg_net: build once per version outside the repo, install when the
# installed library is not this build.
pgnet_dir=${HOOKSEAL_PGNET_DIR:-$HOME/.cache/hookseal-pgnet}/pg_net-$pgnet_version
if [ ! -f "$pgnet_dir/pg_net.so" ]; then
  echo "== building pg_net $pgnet_version in $pgnet_dir" >&2
  rm -rf "$pgnet_dir"
  mkdir -p "$pgnet_dir"
  if [ -d "$pgnet_git" ]; then
    git --git-dir="$pgnet_git" archive "$pgnet_version" | tar -x -C "$pgnet_dir"
  else
    git clone -q --depth 1 --branch "$pgnet_version" "$pgnet_git" "$pgnet_dir"
  fi
  make -s -C "$pgnet_dir" PG_CONFIG=/usr/bin/pg_config >/dev/null
fi
if ! cmp -s "$pgnet_dir/pg_net.so" "$libdir/pg_net.so"; then
  make -s -C "$pgnet_dir" PG_CONFIG=/usr/bin/pg_config install >/dev/null
fi

# The fd limit the postmaster (and so pg_net's worker) inherits; the receiver
# and the dispatcher get the same. Raising the hard limit needs
# CAP_SYS_RESOURCE; without it the soft limit goes up to the hard one.
want_fds=65536
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want_fds" ]; then
  ulimit -Sn "$want_fds"
elif ! ulimit -n "$want_fds" 2>/dev/null; then
  echo "warning: cannot raise the fd limit to $want_fds (hard limit $hard); using $hard" >&2
  ulimit -Sn "$hard"
fi

work=$(mktemp -d /tmp/hpn.XXXX)
chown postgres:postgres "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  stop_cluster "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
start_cluster "$work/pg" "fsync = on" "shared_buffers = '256MB'" "max_wal_size = '2GB'" \
  "shared_preload_libraries = 'hookseal,pg_net'" "pg_net.batch_size = ${batches[0]}"
export PGDATABASE=postgres
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE EXTENSION hookseal" -c "CREATE EXTENSION pg_net" \
    -c "CREATE ROLE bench_dispatcher LOGIN IN ROLE hookseal_dispatcher"
rport=$(free_port)
hook=http://127.0.0.1:$rport/hook
app=$(sql -c "SELECT hookseal.create_app('bench')")
read -r _ secret < <(sql -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', '$hook', 'native')")
export WH_SECRET=$secret
url="postgres://bench_dispatcher@127.0.0.1:$PGPORT/postgres"

# The messages pg_net sends: what the trigger stored for N events.
sql -c "SELECT count(hookseal.webhook_send('$app', 'order.created', jsonb_build_object('n', g))) FROM generate_series(1, $n) g" >/dev/null
sql -c "CREATE TABLE bench_msgs AS SELECT o.id AS n, o.event_id, o.body FROM hookseal.outbox o" \
    -c "TRUNCATE hookseal.outbox, hookseal.events"

start_receiver() { # log file
  "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$rport" --log "$1" 2>/dev/null &
  rpid=$!
  pids+=($rpid)
  wait_port "$rport"
}
stop_receiver() { kill -TERM "$rpid"; wait "$rpid" 2>/dev/null || true; }
now_ms() { date +%s%3N; }
# "soft hard" open-file limits of a process.
fd_limit() { awk '/^Max open files/ {print $4 "/" $5}' "/proc/$1/limits"; }

# Restart PostgreSQL with the raised fd limit and check what its postmaster
# and pg_net's worker got. The limit is set inside runuser: its PAM session
# (pam_limits) puts the soft limit back to 1024, and pg_net's worker then
# fails all but ~1000 connections of a batch ("Couldn't connect to server").
restart_pg() { # least fd limit needed
  runuser -u postgres -- bash -c 'ulimit -Sn "$1" && exec "$2/pg_ctl" -D "$3" -l "$4" -w restart' \
    _ "$(ulimit -Sn)" "$PG_BIN" "$work/pg/data" "$work/pg/server.log" >/dev/null
  sql -c "SET statement_timeout = '30s'" -c "SELECT net.wait_until_running()" >/dev/null
  local pm wk
  pm=$(head -1 "$work/pg/data/postmaster.pid")
  wk=$(sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'pg_net%'")
  echo "postmaster $pm, pg_net worker $wk: fd limit (soft/hard) $(fd_limit "$pm"), $(fd_limit "$wk"); pg_net.batch_size $(sql -c 'SHOW pg_net.batch_size')" >&2
  local soft
  soft=$(awk '/^Max open files/ {print $4}' "/proc/$wk/limits")
  [ "$soft" = unlimited ] || [ "$soft" -ge "$1" ] \
    || { echo "pg_net's worker may open only $soft files, fewer than $1" >&2; exit 1; }
}

: > "$work/results.txt"
for b in "${batches[@]}"; do
  sql -c "ALTER SYSTEM SET pg_net.batch_size = $b"
  # A batch's connections plus PostgreSQL's own files (max_files_per_process 1000).
  restart_pg $(( b + 1100 ))
  sql -c "SET client_min_messages = warning" -c "TRUNCATE net.http_request_queue, net._http_response" \
      -c "DROP TABLE IF EXISTS pgnet_req"
  # Signed now, over the exact bytes pg_net will send (body::text).
  sql -c "CREATE TABLE pgnet_req AS
          SELECT n, body::jsonb AS body,
                 hookseal.webhook_sign('native', '$secret', (body::jsonb)::text, event_id)::jsonb
                   || '{\"Content-Type\": \"application/json\"}' AS headers
          FROM bench_msgs"
  log=$work/pgnet-$b.jsonl
  start_receiver "$log"
  sql -c "SELECT count(net.http_post('$hook', body, headers => headers, timeout_milliseconds => $pgnet_timeout))
          FROM pgnet_req" >/dev/null
  t0=$(now_ms)
  deadline=$(( $(date +%s) + 900 ))
  while [ "$(sql -c "SELECT count(*) FROM net._http_response")" -lt "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "pg_net batch $b: not all $n responses after 900 s" >&2; break; }
    sleep 0.05
  done
  t_row=$(now_ms)
  # pg_net finished: queue empty and its worker back to waiting.
  for _ in $(seq 100); do
    [ "$(sql -c "SELECT (SELECT count(*) FROM net.http_request_queue) = 0 AND
                        (SELECT state FROM pg_stat_activity WHERE backend_type LIKE 'pg_net%') = 'idle'")" = t ] && break
    sleep 0.1
  done
  stop_receiver
  read -r ok2xx timeouts errors < <(sql -F' ' -c "SELECT count(*) FILTER (WHERE status_code BETWEEN 200 AND 299),
      count(*) FILTER (WHERE timed_out), count(*) FILTER (WHERE status_code IS NULL AND NOT coalesce(timed_out, false))
      FROM net._http_response")
  sql -c "SELECT '  pg_net batch $b: ' || count(*) || ' x ' || what FROM (
            SELECT coalesce(status_code::text, error_msg, '?') AS what FROM net._http_response
            WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299) f
          GROUP BY what ORDER BY count(*) DESC LIMIT 5" >&2
  echo "pg_net|batch_size $b|$ok2xx|$timeouts|$errors|$t0|$t_row|$log" >> "$work/results.txt"
  echo "pg_net batch_size $b: $ok2xx of $n got a 2xx ($timeouts timed out, $errors other errors)" >&2
done

# hookseal: one worker, as bench/dispatch.sh's 1-worker drain; the native
# flavour (database postgres), then the portable one (database portable,
# made by `hookseal install` in the same cluster: rows stored unsigned, the
# dispatcher opens the sealed secret and signs each attempt).
run_hookseal() { # label database app secret [dispatch args...]
  local label=$1 db=$2 happ=$3 t0 wp ok2xx t_row deadline
  export WH_SECRET=$4
  shift 4
  sql -d "$db" -c "SELECT count(hookseal.webhook_send('$happ', 'order.created', jsonb_build_object('n', g))) FROM generate_series(1, $n) g" >/dev/null
  local log=$work/hookseal-$db.jsonl
  start_receiver "$log"
  t0=$(now_ms)
  RUST_LOG=warn "$bin" dispatch --database-url "postgres://bench_dispatcher@127.0.0.1:$PGPORT/$db" \
    --allow 127.0.0.0/8 --batch 200 "$@" 2>>"$work/worker.log" &
  wp=$!
  pids+=($wp)
  deadline=$(( $(date +%s) + 900 ))
  while [ "$(grep -c '"ok":true' "$log" 2>/dev/null || true)" -lt "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$label: not all $n deliveries after 900 s" >&2; break; }
    sleep 0.25
  done
  while [ "$(sql -d "$db" -c "SELECT count(*) FROM hookseal.outbox WHERE status IN ('pending', 'delivering')")" != 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 0.1
  done
  kill -TERM "$wp"; wait "$wp" 2>/dev/null || true
  stop_receiver
  read -r ok2xx t_row < <(sql -d "$db" -F' ' -c "SELECT count(*) FILTER (WHERE status = 'delivered'),
      (extract(epoch FROM max(delivered_at)) * 1000)::bigint FROM hookseal.outbox")
  echo "$label|1 worker, --batch 200|$ok2xx|0|$(( n - ok2xx ))|$t0|$t_row|$log" >> "$work/results.txt"
}
restart_pg 0
sql -c "TRUNCATE net.http_request_queue, net._http_response, hookseal.outbox, hookseal.events"
run_hookseal "hookseal native" postgres "$app" "$secret"

sql -c "CREATE DATABASE portable"
"$bin" install --database-url "postgres://postgres@127.0.0.1:$PGPORT/portable" >/dev/null
"$bin" keygen --sealing-key "$work/sealing.asc" > "$work/sealing.pub.asc"
echo "SELECT hookseal.register_sealing_key(:'key')" | sql -d portable -v key="$(cat "$work/sealing.pub.asc")" >/dev/null
papp=$(sql -d portable -c "SELECT hookseal.create_app('bench')")
read -r _ psecret < <(sql -d portable -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$papp', '$hook', 'native')")
run_hookseal "hookseal portable" portable "$papp" "$psecret" --sealing-key-file "$work/sealing.asc"

python3 - "$work/results.txt" "$n" <<'PY'
import json, sys
n = int(sys.argv[2])
rows, bad = [], False
for line in open(sys.argv[1]):
    system, setting, ok2xx, timeouts, errors, t0, t_row, log = line.rstrip("\n").split("|")
    lines = [json.loads(l) for l in open(log)]
    ok = [l for l in lines if l["ok"] and l.get("status", 200) == 200]
    verified = len(ok)
    t_recv = max((l["t_ms"] for l in ok), default=int(t0))
    s_recv = (t_recv - int(t0)) / 1000
    s_row = (int(t_row or t0) - int(t0)) / 1000
    rows.append(dict(system=system, setting=setting, ok2xx=int(ok2xx), verified=verified,
                     rejected=len(lines) - verified, timeouts=int(timeouts), errors=int(errors),
                     s_recv=s_recv, s_row=s_row,
                     r_recv=verified / s_recv if s_recv > 0 else 0,
                     r_row=int(ok2xx) / s_row if s_row > 0 else 0))
    if verified < n or int(ok2xx) < n:
        bad = True
# Each hookseal row against every row: hookseal's rate / that row's.
ours = [r for r in rows if r["system"].startswith("hookseal")]
print()
print(f"| system ({n} deliveries) | setting | delivered (2xx / verified) | s to last receipt | deliveries/s | "
      f"s to last row | deliveries/s (row) | "
      + " | ".join(f"{h['system']} / this (receipt; row)" for h in ours) + " |")
print("|---|---|---|---|---|---|---|" + "---|" * len(ours))
for r in rows:
    ratios = ["–" if r is h else (f"{h['r_recv'] / r['r_recv']:.2f}×; {h['r_row'] / r['r_row']:.2f}×"
                                  if r["r_recv"] and r["r_row"] else "n/a") for h in ours]
    print(f"| {r['system']} | {r['setting']} | {r['ok2xx']} / {r['verified']} | {r['s_recv']:.2f} | "
          f"{r['r_recv']:.0f} | {r['s_row']:.2f} | {r['r_row']:.0f} | " + " | ".join(ratios) + " |")
for r in rows:
    if r["rejected"] or r["timeouts"] or r["errors"]:
        print(f"\n{r['system']} {r['setting']}: receiver rejected {r['rejected']}, "
              f"{r['timeouts']} timed out, {r['errors']} other errors")
if bad:
    print("\nnot every request was delivered and verified (see above)", file=sys.stderr)
    sys.exit(1)
PY
