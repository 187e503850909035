#!/usr/bin/env bash
# The seeds' reference receivers as real Express processes (tests/receivers/
# hedera.js: HMAC-SHA256 of JSON.stringify(req.body); fincra.js: HMAC-SHA512
# of JSON.stringify({event, data})) must accept every generated body that
# hookseal delivers, by each of the three senders:
#   1. the CLI (`hookseal sign --body-out`, then a POST of what it says to send)
#   2. the outbox: webhook_send() into PostgreSQL, `hookseal dispatch --drain`
#   3. the Lambda adapter's relay under the cargo-lambda emulator (`cargo
#      lambda watch`, Function URL events): a provider signs the raw body with
#      `github`, bootstrap verifies it and relays it re-signed with
#      x-signature / fincra
#   bash tests/receivers/run.sh [COUNT]      (default 200 bodies)
# HOOKSEAL_FLAVOUR=portable runs the outbox on the portable flavour (no
# library: rows stored unsigned, the dispatcher opens the sealed secret and
# writes the JSON.stringify form itself where SQL cannot prove it) and leaves
# out 3, which never touches the database.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_pg
need_node
need_lambda_tools
cd "$root"
count=${1:-200}
here=$root/tests/receivers

flavour_check
cargo build -q -p hookseal-cli -p hookseal-lambda
hs=$root/target/debug/hookseal
[ "$flavour" = portable ] || install_extension

work=$(mktemp -d /tmp/hr.XXXX)
chown postgres:postgres "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  stop_cluster "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

python3 "$here/bodies.py" "$count" "$work/bodies"
flavour_cluster "$work/pg"
flavour_install receivers
hport=$(free_port)
fport=$(free_port)
hedera=http://127.0.0.1:$hport/api/webhook
fincra=http://127.0.0.1:$fport/webhook
psql -qXAt -v ON_ERROR_STOP=1 -d receivers > "$work/setup" <<SQL
CREATE ROLE receivers_dispatcher LOGIN IN ROLE hookseal_dispatcher;
SELECT hookseal.create_app('receivers') AS app \gset
SELECT :'app';
SELECT secret FROM hookseal.create_endpoint(:'app', '$hedera', 'x-signature');
SELECT secret FROM hookseal.create_endpoint(:'app', '$fincra', 'fincra');
SQL
{ read -r app; read -r hedera_secret; read -r fincra_secret; } < "$work/setup"

API_SECRET_KEY=$hedera_secret PORT=$hport node "$here/hedera.js" & pids+=($!)
WEBHOOK_SECRET=$fincra_secret PORT=$fport node "$here/fincra.js" & pids+=($!)
wait_port "$hport"
wait_port "$fport"

echo "== 1. hookseal sign -> POST"
S=$hedera_secret python3 "$here/drive.py" cli "$hs" "$work/bodies" x-signature "$hedera"
S=$fincra_secret python3 "$here/drive.py" cli "$hs" "$work/bodies" fincra "$fincra"
python3 "$here/drive.py" stats "http://127.0.0.1:$hport/stats" "$count"
python3 "$here/drive.py" stats "http://127.0.0.1:$fport/stats" "$count"

echo "== 2. webhook_send -> outbox -> hookseal dispatch ($flavour flavour)"
python3 "$here/drive.py" sql "$app" "$work/bodies" | psql -qX -v ON_ERROR_STOP=1 -d receivers >/dev/null
RUST_LOG=warn "$hs" dispatch --database-url "postgres://receivers_dispatcher@127.0.0.1:$PGPORT/receivers" \
  --allow 127.0.0.0/8 --drain
psql -qXAt -d receivers -c "SELECT e.scheme || ': ' || count(*) FILTER (WHERE o.status = 'delivered')
  || ' of ' || count(*) || ' delivered' FROM hookseal.outbox o JOIN hookseal.endpoints e ON e.id = o.endpoint_id
  GROUP BY e.scheme ORDER BY 1"
python3 "$here/drive.py" stats "http://127.0.0.1:$hport/stats" $((2 * count))
python3 "$here/drive.py" stats "http://127.0.0.1:$fport/stats" $((2 * count))

if [ "$flavour" = portable ]; then
  echo "reference receivers ($flavour flavour): every one of $count bodies accepted from the CLI and the outbox, under x-signature and fincra"
  exit 0
fi

echo "== 3. provider -> cargo lambda watch (bootstrap: verify github, relay re-signed) -> receiver"
inbound=$("$hs" keygen)
for target in "x-signature $hedera $hedera_secret" "fincra $fincra $fincra_secret"; do
  set -- $target
  lport=$(free_port)
  cat > "$work/env-$1" <<ENV
INBOUND_SCHEME='github'
INBOUND_SECRET='$inbound'
OUTBOUND_SCHEME='$1'
WEBHOOK_URL='$2'
WEBHOOK_SECRET='$3'
RUST_LOG='warn'
ENV
  setsid cargo lambda watch -p hookseal-lambda --bin bootstrap -A 127.0.0.1 -P "$lport" \
    --env-file "$work/env-$1" >"$work/watch-$1.log" 2>&1 & pids+=($!)
  url="http://127.0.0.1:$lport/lambda-url/bootstrap/webhook"
  # Ready when the function answers (405 to a GET); the first call builds it.
  for _ in $(seq 1 600); do
    code=$(python3 -c 'import sys, urllib.request, urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=120); print(200)
except urllib.error.HTTPError as e: print(e.code)
except Exception: print(0)' "$url")
    [ "$code" = 405 ] && break
    sleep 1
  done
  [ "$code" = 405 ] || { tail -20 "$work/watch-$1.log" >&2; echo "the emulated function never answered" >&2; exit 1; }
  INBOUND=$inbound python3 "$here/drive.py" lambda "$hs" "$work/bodies" "$url"
done
python3 "$here/drive.py" stats "http://127.0.0.1:$hport/stats" $((3 * count))
python3 "$here/drive.py" stats "http://127.0.0.1:$fport/stats" $((3 * count))
echo "reference receivers: every one of $count bodies accepted from the CLI, the outbox and the Lambda relay (cargo-lambda emulator), under x-signature and fincra"
