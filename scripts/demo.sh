#!/usr/bin/env bash
# The main job on a self-contained default: build the CLI, then for each of
# the ten schemes make a secret, sign one message, verify it, and show that a
# tampered body is refused; encrypt a secret at rest and decrypt it; then
# bring up a throwaway PostgreSQL with the extension, send an event through
# the signed outbox, deliver it with `hookseal dispatch` to a local
# `hookseal receive`, which verifies it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
cd "$root"
cargo build --quiet --release -p hookseal-cli
hs="$root/target/release/hookseal"

body='{"id":"evt_demo","type":"payment.created","data":{"amount":1250,"note":"café ☃"}}'
now=$(date +%s)
echo "== schemes"
"$hs" schemes
for scheme in native standard x-signature flinks fincra stripe github shopify slack; do
  WEBHOOK_SECRET=$("$hs" keygen --scheme "$scheme")
  export WEBHOOK_SECRET
  echo
  echo "== $scheme"
  mapfile -t headers < <(printf %s "$body" | "$hs" sign --scheme "$scheme" --secret-env WEBHOOK_SECRET)
  printf '   %s\n' "${headers[@]}"
  args=()
  for h in "${headers[@]}"; do args+=(-H "$h"); done
  printf %s "$body" | "$hs" verify --scheme "$scheme" --secret-env WEBHOOK_SECRET "${args[@]}" --now "$now" \
    | sed 's/^/   verify: /'
  if printf %s "${body/1250/9999}" | "$hs" verify --scheme "$scheme" --secret-env WEBHOOK_SECRET "${args[@]}" 2>/tmp/hookseal-demo.err; then
    echo "   tampered body was accepted: this is a bug" >&2; exit 1
  fi
  echo "   tampered: $(cat /tmp/hookseal-demo.err)"
done

echo
echo "== signed-url"
WEBHOOK_SECRET=$("$hs" keygen); export WEBHOOK_SECRET
url=$("$hs" sign-url --secret-env WEBHOOK_SECRET --url https://receiver.example/callback --external-id pay_demo_1 --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
echo "   callback: $url"
printf '{"externalId":"pay_demo_1","status":"COMPLETED"}' \
  | "$hs" verify --scheme signed-url --secret-env WEBHOOK_SECRET --url "$url" | sed 's/^/   verify: /'

echo
echo "== secret at rest (AES-256-GCM under a server key)"
HOOKSEAL_SERVER_KEY=$("$hs" keygen --server-key); export HOOKSEAL_SERVER_KEY
stored=$("$hs" encrypt --secret-env WEBHOOK_SECRET --versioned)
echo "   stored: $stored"
echo "   hash:   $("$hs" hash --secret-env WEBHOOK_SECRET)"
[ "$("$hs" decrypt --stored "$stored")" = "$WEBHOOK_SECRET" ] && echo "   decrypts back to the secret: yes"
rm -f /tmp/hookseal-demo.err

echo
echo "== postgres + dispatcher: CREATE EXTENSION hookseal, webhook_send, hookseal dispatch -> hookseal receive"
need_pg
(cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/tmp/hookseal-demo-install.log 2>&1) || { cat /tmp/hookseal-demo-install.log >&2; exit 1; }
work=$(mktemp -d /tmp/hsd.XXXX)
chown postgres:postgres "$work"
rpid=
trap '[ -n "$rpid" ] && kill "$rpid" 2>/dev/null; stop_cluster "$work"; rm -rf "$work"' EXIT
start_cluster "$work"
psql=("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres)
"${psql[@]}" -c "CREATE EXTENSION hookseal" -c "CREATE ROLE demo_dispatcher LOGIN IN ROLE hookseal_dispatcher" >/dev/null
rport=$(free_port)
app=$("${psql[@]}" -c "SELECT hookseal.create_app('demo')")
IFS='|' read -r endpoint EP_SECRET < <("${psql[@]}" -c \
  "SELECT endpoint_id, secret FROM hookseal.create_endpoint('$app', 'http://127.0.0.1:$rport/hook', 'standard')")
export EP_SECRET
echo "   endpoint $endpoint (scheme standard) at http://127.0.0.1:$rport/hook; its secret was returned once and is stored encrypted"
"$hs" receive --scheme standard --secret-env EP_SECRET --listen "127.0.0.1:$rport" --log "$work/received.jsonl" 2>/dev/null &
rpid=$!
wait_port "$rport"
evt=$("${psql[@]}" -c "SELECT hookseal.webhook_send('$app', 'payment.created', '{\"amount\": 1250}')")
echo "   webhook_send -> $evt; the trigger signed one outbox row in the same transaction"
RUST_LOG=warn "$hs" dispatch --database-url "postgres://demo_dispatcher@127.0.0.1:$PGPORT/postgres" \
  --allow 127.0.0.0/8 --drain 2>&1 | sed 's/^/   dispatch: /'
kill -TERM "$rpid"; wait "$rpid" 2>/dev/null || true; rpid=
sed 's/^/   receiver: /' "$work/received.jsonl"
grep -q "\"id\":\"$evt\".*\"ok\":true\|\"ok\":true.*\"id\":\"$evt\"" "$work/received.jsonl" \
  || { echo "the receiver did not verify $evt" >&2; exit 1; }
echo "   outbox: $("${psql[@]}" -c "SELECT status || ', attempts ' || attempts || ', HTTP ' || last_status FROM hookseal.outbox")"

echo
echo "demo: every scheme signed, verified and refused a tampered body; the dispatcher delivered a signed event that the receiver verified"
