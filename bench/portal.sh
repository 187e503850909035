#!/usr/bin/env bash
# The portal's server time beside a long history: E endpoints (10 apps),
# A attempts over 30 days (5 per outbox row, one row per event, every hour
# alike, so the last 24 hours hold 1/30 of them; durations 5-405 ms), then a
# release-build `hookseal portal` signed in as an operator, and R requests
# each of
#  - the console's endpoint list (GET /: its first page of 50, those that
#    need the operator first, with endpoint_health over 24 hours),
#  - the event page of a random event (GET /events?id=..: event_attempts),
#  - an endpoint's page (GET /endpoints/ID: its chart and newest attempts),
#  - an owner's endpoints page (GET /o/: one app's 100 endpoints with their
#    health, and its 50 newest deliveries),
# one client on 127.0.0.1 with keep-alive. Server time is each answer's
# Server-Timing `total` (the portal's own clock); its `db` part, the time
# the page's queries took in the same request, is the named baseline: the
# ratio total/db says what the portal adds over its SQL. Prints p50/p99.
# Usage: bash bench/portal.sh [attempts (10000000)] [endpoints (1000)] [requests (300)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
attempts=${1:-10000000}
endpoints=${2:-1000}
requests=${3:-300}
cd "$root"
bench_prepare hsportal
start_cluster "$work/pg" "shared_buffers = '1GB'" "max_wal_size = '8GB'" "work_mem = '32MB'"
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -qX -v ON_ERROR_STOP=1 -d bench <<'SQL'
CREATE EXTENSION hookseal;
CREATE ROLE bench_admin LOGIN IN ROLE hookseal_admin;
SQL
echo "== fill: $endpoints endpoints, $attempts attempts over 30 days" >&2
t0=$(date +%s)
psql -qX -v ON_ERROR_STOP=1 -d bench -v endpoints="$endpoints" -v attempts="$attempts" <<'SQL'
SET search_path = hookseal;
SELECT count(create_app('app ' || a)) AS apps FROM generate_series(1, 10) a \gset
SELECT count(create_endpoint(a.id, format('https://hooks%s.example.com/in', g))) AS made
FROM generate_series(1, :endpoints) g
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM apps) a ON a.n = g % 10 \gset
-- History as the dispatchers would have left it, written directly (the
-- fan-out trigger off while filling: one row per event, not one per
-- endpoint of its app).
CREATE TEMP TABLE eps AS SELECT id, app_id, row_number() OVER (ORDER BY id) - 1 AS n FROM endpoints;
ALTER TABLE events DISABLE TRIGGER events_fan_out;
CREATE TEMP TABLE spread AS
SELECT g AS i, now() - interval '30 days' + (g::float8 / (:attempts / 5)) * interval '30 days' AS at
FROM generate_series(1, :attempts / 5) g;
INSERT INTO events (id, type, app_id, created_at, data)
SELECT 'evt_bench' || s.i, 'order.created', e.app_id, (extract(epoch FROM s.at) * 1000)::bigint, '{"n": 1}'
FROM spread s JOIN eps e ON e.n = s.i % :endpoints;
INSERT INTO outbox (event_id, app_id, endpoint_id, body, headers, status, attempts, created_at,
                    next_attempt_at, delivered_at, signed_at)
SELECT 'evt_bench' || s.i, e.app_id, e.id, '{"n": 1}', '{}', 'delivered', 5, s.at, s.at, s.at + interval '5 minutes', s.at
FROM spread s JOIN eps e ON e.n = s.i % :endpoints
ORDER BY s.i;
ALTER TABLE events ENABLE TRIGGER events_fan_out;
INSERT INTO attempts (outbox_id, attempt, endpoint_id, worker, started_at, finished_at, http_status,
                      error_class, error, response_body)
SELECT o.id, k, o.endpoint_id, 'w1', o.created_at + k * interval '1 minute',
       o.created_at + k * interval '1 minute' + (5 + (o.id * 7 + k * 13) % 400) * interval '1 ms',
       CASE WHEN k = 5 THEN 200 ELSE 503 END, CASE WHEN k = 5 THEN 'ok' ELSE 'http' END,
       CASE WHEN k < 5 THEN 'HTTP 503' END, CASE WHEN k < 5 THEN 'upstream unavailable' ELSE '{"ok":true}' END
FROM outbox o CROSS JOIN generate_series(1, 5) k
ORDER BY o.id, k;
VACUUM ANALYZE;
SQL
echo "filled in $(( $(date +%s) - t0 )) s: $(psql -qAtX -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")" >&2

"$bin" portal-token --new-key --key-file "$work/portal.key" 2>/dev/null
port=$(free_port)
"$bin" portal --database-url "postgres://bench_admin@127.0.0.1:$PGPORT/bench" --key-file "$work/portal.key" \
  --listen "127.0.0.1:$port" 2>"$work/portal.log" &
pids+=($!)
wait_port "$port"
token=$("$bin" portal-token --operator --key-file "$work/portal.key")
app=$(psql -qAtX -d bench -c "SELECT id FROM hookseal.apps ORDER BY id LIMIT 1")
owner_link=$(psql -qAtX -d bench -c "SELECT hookseal.portal_link('$app', '1 hour')")
psql -qAtX -d bench -c "SELECT id || ' ' || app_id FROM hookseal.events TABLESAMPLE BERNOULLI (1) LIMIT $requests" > "$work/events"
psql -qAtX -d bench -c "SELECT id FROM hookseal.endpoints ORDER BY random() LIMIT $requests" > "$work/events.endpoints"

python3 - "$port" "$token" "$owner_link" "$requests" "$work/events" <<'PY'
import http.client, random, sys, urllib.parse

port, token, owner_link, n, events = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", int(port))

def call(method, path, body=None, cookie=None):
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    return r

r = call("POST", "/login", urllib.parse.urlencode({"token": token}))
assert r.status == 303, r.status
operator = r.getheader("Set-Cookie").split(";")[0]
r = call("GET", owner_link)
assert r.status == 303, r.status
owner = r.getheader("Set-Cookie").split(";")[0]
ids = [l.split() for l in open(events) if l.strip()]
eps = [l.strip() for l in open(events + ".endpoints") if l.strip()]

def timing(r):
    parts = dict(p.strip().split(";dur=") for p in r.getheader("Server-Timing").split(","))
    return float(parts["total"]), float(parts["db"])

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

pages = {
    "console endpoint list (GET /)": lambda i: ("/", operator),
    "event page (GET /events?id=..)": lambda i: ("/events?" + urllib.parse.urlencode(
        {"id": ids[i % len(ids)][0], "app": ids[i % len(ids)][1]}), operator),
    "endpoint page (GET /endpoints/ID)": lambda i: ("/endpoints/" + eps[i % len(eps)], operator),
    "owner endpoints and deliveries (GET /o/)": lambda i: ("/o/", owner),
}
print(f"| page | requests | server p50 ms | server p99 ms | its SQL p99 ms | server/SQL (p99) |")
print(f"|---|---|---|---|---|---|")
for name, path in pages.items():
    for i in range(5):  # warm-up
        p, c = path(i)
        call("GET", p, cookie=c)
    totals, dbs = [], []
    for i in range(n):
        p, c = path(i)
        r = call("GET", p, cookie=c)
        assert r.status == 200, (p, r.status)
        t, d = timing(r)
        totals.append(t)
        dbs.append(d)
    print(f"| {name} | {n} | {pct(totals, 50):.1f} | {pct(totals, 99):.1f} | {pct(dbs, 99):.1f} | "
          f"{pct(totals, 99) / max(pct(dbs, 99), 0.001):.2f} |")
PY
