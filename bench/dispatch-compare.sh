#!/usr/bin/env bash
# The comparison half of bench/dispatch.sh (run it as
# `bash bench/dispatch.sh --compare REV [events] [rounds]`): drain throughput
# of the code at REV against the current tree, in one run on one cluster.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
rev=${1:?usage: bench/dispatch.sh --compare REV [events] [rounds]}
n=${2:-40000}
rounds=${3:-2}
ordered_n=${HOOKSEAL_BENCH_ORDERED:-2000}   # events of the ordered case
cd "$root"
work=$(mktemp -d /tmp/hdc.XXXX)
chown postgres:postgres "$work"
old_tree=$work/old-tree
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  stop_cluster "$work/pg"
  git -C "$root" worktree remove --force "$old_tree" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
compare_build "$rev"
start_cluster "$work/pg" "fsync = on" "shared_buffers = '256MB'" "max_wal_size = '2GB'"
export PGDATABASE=postgres
sql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE EXTENSION hookseal" -c "CREATE ROLE bench_dispatcher LOGIN IN ROLE hookseal_dispatcher" \
    -c "DROP EXTENSION hookseal"
rport=$(free_port)

# One drain: $1 variant, $2 endpoints ("1o": one ordered endpoint, which
# takes one delivery at a time, so a round trip's every statement shows);
# prints deliveries/s.
drain() {
  local v=$1 eps=${2%o} db=bench_$1_$2 opts='{}' n=$n
  if [ "$2" != "$eps" ]; then opts='{"ordered": true}'; n=$ordered_n; fi
  sql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  local dsql="psql -qAtX -v ON_ERROR_STOP=1 -d $db"
  $dsql -c "CREATE EXTENSION hookseal"
  $dsql -c "CREATE TABLE eps (n int PRIMARY KEY, app text, endpoint text, secret text)"
  $dsql -c "INSERT INTO eps SELECT g, a.app, e.endpoint_id, e.secret FROM generate_series(1, $eps) g,
            LATERAL (SELECT hookseal.create_app('b' || g) AS app) a,
            LATERAL hookseal.create_endpoint(a.app, 'http://127.0.0.1:$rport/e/' || g, 'native',
                                             options => '$opts') e"
  # Every endpoint signs with endpoint 1's secret, so one receiver verifies
  # them all (benchmark shortcut; hashes kept unique).
  $dsql -c "UPDATE hookseal.secrets s SET secret = (SELECT secret FROM hookseal.secrets WHERE webhook_id = (SELECT endpoint FROM eps WHERE n = 1)),
                   hash = encode(sha256(convert_to(s.id, 'UTF8')), 'hex')
            WHERE s.webhook_id IN (SELECT endpoint FROM eps WHERE n > 1)"
  $dsql -c "SELECT count(hookseal.webhook_send(e.app, 'order.created', jsonb_build_object('n', g)))
            FROM generate_series(1, $n) g JOIN eps e ON e.n = 1 + g % $eps" >/dev/null
  local log=$work/$db.jsonl
  WH_SECRET=$($dsql -c "SELECT secret FROM eps WHERE n = 1") "$work/new/hookseal" receive --scheme native \
    --secret-env WH_SECRET --listen "127.0.0.1:$rport" --log "$log" 2>/dev/null &
  local rp=$!
  pids+=($rp)
  wait_port "$rport"
  # Clock: worker start to the receiver's arrival time of the last delivery
  # (its log's t_ms), so polling adds no load while the drain runs.
  local t0
  t0=$(date +%s%3N)
  RUST_LOG=warn "$work/$v/hookseal" dispatch --database-url "postgres://bench_dispatcher@127.0.0.1:$PGPORT/$db" \
    --allow 127.0.0.0/8 --batch 200 2>>"$work/worker.log" &
  local wp=$!
  pids+=($wp)
  while [ "$(grep -c '"ok":true' "$log" 2>/dev/null || true)" -lt "$n" ]; do sleep 0.25; done
  while [ "$($dsql -c "SELECT count(*) FROM hookseal.outbox WHERE status IN ('pending', 'delivering')")" != 0 ]; do sleep 0.1; done
  kill -TERM "$wp"; wait "$wp" 2>/dev/null || true
  kill -TERM "$rp"; wait "$rp" 2>/dev/null || true
  local ok t1
  ok=$(grep -c '"ok":true' "$log")
  [ "$ok" -ge "$n" ] || { echo "$v/$eps: only $ok of $n deliveries verified" >&2; exit 1; }
  t1=$(python3 -c "import json; print(max(json.loads(l)['t_ms'] for l in open('$log')))")
  python3 -c "print(round($n * 1000 / ($t1 - $t0)))"
}

: > "$work/results.txt"
for r in $(seq "$rounds"); do
  for v in old new; do
    compare_use "$v"
    for eps in 1 100 1o; do
      rate=$(drain "$v" "$eps")
      echo "round $r: $v, $eps endpoint(s): $rate deliveries/s"
      echo "$v $eps $rate" >> "$work/results.txt"
    done
  done
done
compare_use new
python3 - "$work/results.txt" "$n" "$old_name" "$ordered_n" <<'PY'
import statistics, sys
res, n, old_name, ordered_n = {}, sys.argv[2], sys.argv[3], sys.argv[4]
for line in open(sys.argv[1]):
    v, eps, rate = line.split()
    res.setdefault((v, eps), []).append(int(rate))
print()
print(f"| drain, 1 worker | {old_name} deliveries/s | new deliveries/s | new / old (medians) |")
print("|---|---|---|---|")
for eps in ("1", "100", "1o"):
    o, w = res[("old", eps)], res[("new", eps)]
    what = (f"{ordered_n} events, 1 ordered endpoint" if eps == "1o"
            else f"{n} events, {eps} endpoint(s)")
    print(f"| {what} | {' / '.join(map(str, o))} | {' / '.join(map(str, w))} | "
          f"{statistics.median(w) / statistics.median(o):.2f} |")
PY
