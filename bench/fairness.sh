#!/usr/bin/env bash
# Fairness benchmark: does one bad endpoint stall the others?
# One `hookseal dispatch` worker with default settings, a throwaway cluster,
# receivers on 127.0.0.1, pgbench offering events at a fixed rate. Reports
# the healthy endpoints' commit-to-receipt latency (receiver arrival time
# minus events.created_at) with and without hanging endpoints whose
# receivers answer only after 40 s (every attempt hits the 30 s timeout),
# and checks that every healthy delivery arrived and verified.
#   5 endpoints:     one app, 5 endpoints (each its own `hookseal receive`),
#                    every event fanned out to all 5; hanging: one endpoint of
#                    another app with a 5,000-event backlog written first.
#   1,000 endpoints: 990 healthy endpoints (one app each, one receiver,
#                    paths /e/N), each event to one at random; hanging: 10
#                    endpoints of their own apps, 500 backlog events each.
# Usage: bash bench/fairness.sh [events/s (200)] [seconds (20)]
#        bash bench/fairness.sh --compare REV [rounds (3)] [events/s (200)] [seconds (10)]
# The second runs the cases for REV and for this tree in alternating rounds
# on one cluster (as bench/dispatch.sh --compare does for drains) and ends
# with each case's median p99 on both sides. HOOKSEAL_BENCH_CASES picks the
# layouts ("five thousand" by default; "five" for the 5-endpoint cases only).
# HOOKSEAL_BENCH_PROFILE=1 also loads pg_stat_statements and track_functions
# and ends with each side's server time per call of the hookseal functions
# and the top statements, summed over the rounds (the same overhead on both
# sides; the latencies of a profiled run are not comparable with others).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
rev=""
if [ "${1:-}" = --compare ]; then
  rev=${2:?usage: bench/fairness.sh --compare REV [rounds] [events/s] [seconds]}
  rounds=${3:-3}
  rate=${4:-200}
  secs=${5:-10}
else
  rate=${1:-200}
  secs=${2:-20}
fi
layouts=${HOOKSEAL_BENCH_CASES:-five thousand}
cd "$root"
work=$(mktemp -d /tmp/hfb.XXXX)
chown postgres:postgres "$work"
old_tree=$work/old-tree
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  stop_cluster "$work/pg"
  [ -z "$rev" ] || git -C "$root" worktree remove --force "$old_tree" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -n "$rev" ]; then
  compare_build "$rev"
  bin=$work/new/hookseal
else
  cargo build -q --release -p hookseal-cli
  (cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
  bin=$root/target/release/hookseal
fi
profile=()
if [ "${HOOKSEAL_BENCH_PROFILE:-0}" = 1 ]; then
  profile=("shared_preload_libraries = 'hookseal,pg_stat_statements'"
           "pg_stat_statements.track = all" "track_functions = all")
fi
start_cluster "$work/pg" "fsync = on" "shared_buffers = '256MB'" "max_wal_size = '2GB'" "${profile[@]}"
export PGDATABASE=postgres
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE ROLE bench_dispatcher LOGIN IN ROLE hookseal_dispatcher" 2>/dev/null ||
  sql -c "CREATE EXTENSION hookseal" -c "DROP EXTENSION hookseal" \
      -c "CREATE ROLE bench_dispatcher LOGIN IN ROLE hookseal_dispatcher"

receiver() { # port secret log [delay ms]
  WH_SECRET=$2 "$bin" receive --scheme native --secret-env WH_SECRET --listen "127.0.0.1:$1" \
    --log "$3" --delay-ms "${4:-0}" 2>/dev/null &
  pids+=($!)
  wait_port "$1"
}

# One case: $1 name, $2 layout (five|thousand), $3 hanging (0/1).
run_case() {
  local name=$1 layout=$2 hanging=$3 db
  db=b_${name//[^a-z0-9]/_}
  sql -c "CREATE DATABASE $db"
  local dsql="psql -qAtX -v ON_ERROR_STOP=1 -d $db"
  $dsql -c "CREATE EXTENSION hookseal"
  local out=$work/$db
  mkdir -p "$out"
  local hport
  hport=$(free_port)
  if [ "$layout" = five ]; then
    local app
    app=$($dsql -c "SELECT hookseal.create_app('healthy')")
    for i in 1 2 3 4 5; do
      local port secret
      port=$(free_port)
      read -r _ secret < <($dsql -F' ' -c "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', 'http://127.0.0.1:$port/hook', 'native')")
      receiver "$port" "$secret" "$out/healthy-$i.jsonl"
    done
    echo "SELECT hookseal.webhook_send('$app', 'order.created', '{\"n\": 1}');" > "$out/send.sql"
    if [ "$hanging" = 1 ]; then
      local happ
      happ=$($dsql -c "SELECT hookseal.create_app('hanging')")
      $dsql -c "SELECT endpoint_id FROM hookseal.create_endpoint('$happ', 'http://127.0.0.1:$hport/hook', 'native')" >/dev/null
      $dsql -c "SELECT count(hookseal.webhook_send('$happ', 'order.created', jsonb_build_object('n', g))) FROM generate_series(1, 5000) g" >/dev/null
    fi
  else
    local port secret
    port=$(free_port)
    $dsql -c "CREATE TABLE bench_eps (n int PRIMARY KEY, app text, endpoint text, secret text)"
    $dsql -c "INSERT INTO bench_eps SELECT g, a.app, e.endpoint_id, e.secret
              FROM generate_series(1, 990) g,
                   LATERAL (SELECT hookseal.create_app('h' || g) AS app) a,
                   LATERAL hookseal.create_endpoint(a.app, 'http://127.0.0.1:$port/e/' || g, 'native') e"
    # Benchmark shortcut: every healthy endpoint signs with endpoint 1's
    # secret, so one receiver verifies them all (hashes made unique).
    $dsql -c "UPDATE hookseal.secrets s SET secret = (SELECT secret FROM hookseal.secrets WHERE webhook_id = (SELECT endpoint FROM bench_eps WHERE n = 1)),
                     hash = encode(sha256(convert_to(s.id, 'UTF8')), 'hex')
              WHERE s.webhook_id IN (SELECT endpoint FROM bench_eps WHERE n > 1)"
    secret=$($dsql -c "SELECT secret FROM bench_eps WHERE n = 1")
    receiver "$port" "$secret" "$out/healthy-1.jsonl"
    printf '%s\n' '\set a random(1, 990)' \
      "SELECT hookseal.webhook_send(app, 'order.created', '{\"n\": 1}') FROM bench_eps WHERE n = :a;" > "$out/send.sql"
    if [ "$hanging" = 1 ]; then
      $dsql -c "SELECT count(*) FROM generate_series(1, 10) g,
                  LATERAL (SELECT hookseal.create_app('hang' || g) AS app) a,
                  LATERAL hookseal.create_endpoint(a.app, 'http://127.0.0.1:$hport/h/' || g, 'native') e,
                  LATERAL (SELECT count(hookseal.webhook_send(a.app, 'order.created', jsonb_build_object('n', k)))
                           FROM generate_series(1, 500) k) s" >/dev/null
    fi
  fi
  if [ "$hanging" = 1 ]; then
    receiver "$hport" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "$out/hanging.jsonl" 40000
  fi
  local backlog
  backlog=$($dsql -c "SELECT count(*) FROM hookseal.outbox")
  if [ ${#profile[@]} -gt 0 ]; then
    $dsql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
          -c "SELECT pg_stat_reset()" -c "SELECT pg_stat_statements_reset()" >/dev/null
  fi
  RUST_LOG=warn "$bin" dispatch --database-url "postgres://bench_dispatcher@127.0.0.1:$PGPORT/$db" \
    --allow 127.0.0.0/8 2>"$out/worker.log" &
  local wp=$!
  pids+=($wp)
  "$PG_BIN/pgbench" -n -f "$out/send.sql" -R "$rate" -T "$secs" -c 4 -j 2 "$db" > "$out/pgbench.txt" 2>&1
  # Every healthy row delivered (or 90 s).
  local healthy_left="SELECT count(*) FROM hookseal.outbox o JOIN hookseal.endpoints e ON e.id = o.endpoint_id
                      WHERE o.status <> 'delivered' AND e.url NOT LIKE 'http://127.0.0.1:$hport/%'"
  for _ in $(seq 900); do
    [ "$($dsql -c "$healthy_left")" = 0 ] && break
    sleep 0.1
  done
  local left
  left=$($dsql -c "$healthy_left")
  $dsql -c "SELECT id || ' ' || created_at FROM hookseal.events" > "$out/created.txt"
  $dsql -c "SELECT count(*) FROM hookseal.outbox o JOIN hookseal.endpoints e ON e.id = o.endpoint_id
            WHERE e.url NOT LIKE 'http://127.0.0.1:$hport/%'" > "$out/expected.txt"
  kill -TERM "$wp"; wait "$wp" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  if [ ${#profile[@]} -gt 0 ]; then
    sleep 1  # backends flush their function counts at most once a second
    $dsql -F$'\t' -c "SELECT 'fn', funcname, calls, total_time, self_time FROM pg_stat_user_functions
                    WHERE schemaname = 'hookseal'" > "$out/profile.txt"
    $dsql -F$'\t' -c "SELECT 'st', regexp_replace(left(query, 70), '\s+', ' ', 'g'), calls, total_exec_time, 0
                    FROM pg_stat_statements
                    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND query NOT LIKE '%pg_stat%'" >> "$out/profile.txt"
  fi
  pids=()
  echo "$name|$layout|$hanging|$backlog|$left|$out" >> "$work/cases.txt"
}

: > "$work/cases.txt"
all_cases() { # prefix
  for layout in $layouts; do
    case $layout in
      five)
        run_case "${1}5 endpoints" five 0
        run_case "${1}5 endpoints + 1 hanging (5,000 backlog)" five 1 ;;
      thousand)
        run_case "${1}1,000 endpoints" thousand 0
        run_case "${1}1,000 endpoints, 10 hanging (500 backlog each)" thousand 1 ;;
    esac
  done
}
if [ -n "$rev" ]; then
  for r in $(seq "$rounds"); do
    for v in old new; do
      compare_use "$v"
      bin=$work/$v/hookseal
      all_cases "$v r$r: "
    done
  done
  compare_use new
  if [ ${#profile[@]} -gt 0 ]; then
    python3 - "$work/cases.txt" "$old_name" <<'PY'
import collections, sys
cases, old_name = sys.argv[1], sys.argv[2]
# (case, kind, name) -> side -> [calls, total ms, self ms]
t = collections.defaultdict(lambda: {"old": [0, 0.0, 0.0], "new": [0, 0.0, 0.0]})
for line in open(cases):
    name, layout, hanging, backlog, left, out = line.strip().split("|")
    side, case = name.split(" ", 1)[0], name.split(": ", 1)[1]
    for l in open(f"{out}/profile.txt"):
        kind, rest = l.rstrip("\n").split("\t", 1)
        what, calls, total, self_ = rest.rsplit("\t", 3)
        acc = t[(case, kind, what)][side]
        acc[0] += int(calls); acc[1] += float(total); acc[2] += float(self_)
for case in dict.fromkeys(k[0] for k in t):
    print(f"\n{case}: server ms per call, summed over the rounds ({old_name} vs new)\n")
    print("| function or statement | old calls | old ms/call (self) | new calls | new ms/call (self) |")
    print("|---|---|---|---|---|")
    rows = [(k, v) for k, v in t.items() if k[0] == case]
    rows.sort(key=lambda kv: -max(kv[1]["old"][1], kv[1]["new"][1]))
    for (c, kind, what), v in rows[:20]:
        cell = lambda a: (f"{a[0]}", f"{a[1] / a[0]:.4f} ({a[2] / a[0]:.4f})" if a[0] else "-")
        o, n = cell(v["old"]), cell(v["new"])
        print(f"| {'' if kind == 'fn' else 'stmt: '}{what} | {o[0]} | {o[1]} | {n[0]} | {n[1]} |")
PY
  fi
else
  all_cases ""
fi

python3 - "$work/cases.txt" "$rate" "$secs" <<'PY'
import glob, json, sys
cases, rate, secs = sys.argv[1], sys.argv[2], sys.argv[3]
print(f"\n{rate} events/s offered for {secs} s; one worker, default settings\n")
print("| case | healthy deliveries expected | received + verified | lost | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|")
base = {}
for line in open(cases):
    name, layout, hanging, backlog, left, out = line.strip().split("|")
    created = dict(l.split() for l in open(f"{out}/created.txt") if l.strip())
    expected = int(open(f"{out}/expected.txt").read())
    first = {}
    bad = 0
    for f in sorted(glob.glob(f"{out}/healthy-*.jsonl")):
        for l in open(f):
            r = json.loads(l)
            if not r.get("ok"):
                bad += 1
                continue
            key = (f, r["id"])
            first[key] = min(first.get(key, 1 << 62), r["t_ms"])
    lat = sorted(t - int(created[k[1]]) for k, t in first.items() if k[1] in created)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    lost = expected - len(first)
    print(f"| {name} | {expected} | {len(first)} | {lost} | {pct(50)} | {pct(99)} | {lat[-1]} |")
    if bad:
        print(f"|   ({bad} unverified requests) |||||||")
    base.setdefault(layout, {})[hanging] = pct(99)
print()
for layout, d in base.items():
    if "0" in d and "1" in d:
        print(f"{layout}: p99 with hanging / without = {d['1']} / {d['0']} ms = {d['1'] / max(d['0'], 1):.2f}x")
PY
if [ -n "$rev" ]; then
  # The same cases side by side: each side's median p99 over its rounds.
  python3 - "$work/cases.txt" "$old_name" <<'PY'
import glob, json, statistics, sys
cases, old_name = sys.argv[1], sys.argv[2]
p99 = {}
order = []
for line in open(cases):
    name, layout, hanging, backlog, left, out = line.strip().split("|")
    side, case = name.split(" ", 1)[0], name.split(": ", 1)[1]
    created = dict(l.split() for l in open(f"{out}/created.txt") if l.strip())
    first = {}
    for f in sorted(glob.glob(f"{out}/healthy-*.jsonl")):
        for l in open(f):
            r = json.loads(l)
            if r.get("ok"):
                key = (f, r["id"])
                first[key] = min(first.get(key, 1 << 62), r["t_ms"])
    lat = sorted(t - int(created[k[1]]) for k, t in first.items() if k[1] in created)
    p99.setdefault((side, case), []).append(lat[min(len(lat) - 1, int(0.99 * len(lat)))])
    if case not in order:
        order.append(case)
print(f"| case | {old_name} p99 ms | new p99 ms | old / new (medians) |")
print("|---|---|---|---|")
for case in order:
    o, n = p99[("old", case)], p99[("new", case)]
    ratio = statistics.median(o) / max(statistics.median(n), 1)
    print(f"| {case} | {' / '.join(map(str, o))} | {' / '.join(map(str, n))} | {ratio:.2f} |")
PY
fi
