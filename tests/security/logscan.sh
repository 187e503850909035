#!/usr/bin/env bash
# A full end-to-end run with every log at debug level, then a scan of every
# log for the secrets and keys it used. Needs a cluster with the extension
# and hookseal_template (scripts/dispatch-test.sh starts one):
#   PGPORT=<port> PGDATA_DIR=<cluster dir> bash tests/security/logscan.sh
# Runs: the CLI (keygen, sign, verify good and bad, encrypt, a bad scheme),
# the extension (endpoints with HMAC secrets and a v1a key pair, events),
# the dispatcher (deliveries, a refused destination, a dead port, a wrong
# database password), the Lambda bootstrap as a local server (verified,
# forged, wrong dispatch token, a dispatch run) and `hookseal receive`.
# Scanned: their stdout/stderr (except the outputs whose job is to print a
# secret: keygen, encrypt's key, create_endpoint's answer) and the
# PostgreSQL server log. Looked for: every endpoint secret and signing key
# (decrypted from the table by the superuser), the server key, the inbound
# secret, the dispatch token and the database password; each whole and,
# for prefixed keys, their key material without the prefix. On the portable
# flavour (HOOKSEAL_FLAVOUR=portable, a cluster dispatch-test.sh made with
# flavour_install) the stored secrets are the ones create_endpoint handed
# out (the database cannot open them), and the dispatcher's opening key
# ($HOOKSEAL_SEALING_KEY_FILE) is looked for too; no v1a endpoint there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
cd "$root"
flavour_check
: "${PGPORT:?PGPORT of a cluster with hookseal_template}" "${PGDATA_DIR:?the cluster directory (data/, server.log)}"
export PGHOST=127.0.0.1 PGUSER=postgres
cargo build -q -p hookseal-cli -p hookseal-lambda
hs=$root/target/debug/hookseal
boot=$root/target/debug/bootstrap
work=$(mktemp -d /tmp/hls.XXXX)
logs=$work/logs
mkdir -p "$logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export RUST_LOG=debug
db=logscan_$$
psql -qX -d postgres -c "CREATE DATABASE $db TEMPLATE hookseal_template"
password=pw-logscan-$(openssl rand -hex 8)
dburl="postgres://hookseal_test_lambda:$password@127.0.0.1:$PGPORT/$db"
disp_url="postgres://hookseal_test_dispatcher:$password@127.0.0.1:$PGPORT/$db"
token=tok-logscan-$(openssl rand -hex 12)
inbound=$("$hs" keygen --scheme standard)          # printed: its job
server_key=$(head -1 "$PGDATA_DIR/server.key")

echo "== CLI"
{
  body='{"type":"order.paid","n":1}'
  hdrs=$(printf '%s' "$body" | S=$inbound "$hs" sign --scheme standard --secret-env S)
  args=(); while IFS= read -r h; do args+=(-H "$h"); done <<<"$hdrs"
  printf '%s' "$body" | S=$inbound "$hs" verify --scheme standard --secret-env S "${args[@]}"
  printf '%s' "$body" | S=whsec_d3JvbmctYnV0LXZhbGlkLXNlY3JldA== "$hs" verify --scheme standard --secret-env S "${args[@]}" || true
  printf '%s' "$body" | S=$inbound "$hs" sign --scheme no-such-scheme --secret-env S || true
  printf '%s' "$body" | S=$inbound "$hs" verify --scheme standard --secret-env S -H 'webhook-signature: v1,@@@' || true
} >"$logs/cli.out" 2>"$logs/cli.err"

echo "== extension and receivers"
rport=$(free_port)
psql -qXAt -d "$db" -v ON_ERROR_STOP=1 -v flavour="$flavour" >"$work/endpoints.txt" <<SQL
SELECT hookseal.create_app('logscan') AS app \gset
SELECT secret FROM hookseal.create_endpoint(:'app', 'http://127.0.0.1:$rport/hook', 'native');
SELECT secret FROM hookseal.create_endpoint(:'app', 'http://127.0.0.1:1/dead', 'standard');
SELECT secret FROM hookseal.create_endpoint(:'app', 'http://169.254.169.254/latest', 'github');
SELECT :'flavour' = 'native' AS native \gset
\if :native
SELECT secret FROM hookseal.create_endpoint(:'app', 'http://127.0.0.1:$rport/hook', 'standard',
    options => '{"asymmetric": true}');
\endif
SELECT count(*) AS sent FROM (SELECT hookseal.webhook_send(:'app', 'order.paid', jsonb_build_object('n', g))
                      FROM generate_series(1, 20) g) s \gset
SQL
ep_secret=$(sed -n 1p "$work/endpoints.txt")
S=$ep_secret "$hs" receive --scheme native --secret-env S --listen "127.0.0.1:$rport" \
  >"$logs/receive.out" 2>"$logs/receive.err" &
pids+=($!)
wait_port "$rport"

echo "== dispatcher"
"$hs" dispatch --database-url "$disp_url" --allow 127.0.0.1/32 --drain \
  >"$logs/dispatch.out" 2>"$logs/dispatch.err" || true
"$hs" dispatch --database-url "postgres://nobody:$password@127.0.0.1:$PGPORT/$db" --drain \
  >"$logs/dispatch-badrole.out" 2>"$logs/dispatch-badrole.err" || true

echo "== lambda (local server)"
lport=$(free_port)
sealing=()
[ "$flavour" = native ] || sealing=(SEALING_KEY="$(cat "$HOOKSEAL_SEALING_KEY_FILE")")
env "${sealing[@]}" INBOUND_SCHEME=github INBOUND_SECRET=$inbound DATABASE_URL=$dburl HOOKSEAL_APP=$(psql -qXAt -d "$db" -c "SELECT id FROM hookseal.apps") \
DISPATCH_TOKEN=$token LISTEN_ADDR=127.0.0.1:$lport HOOKSEAL_ALLOW=127.0.0.1/32 \
  "$boot" >"$logs/lambda.out" 2>"$logs/lambda.err" &
pids+=($!)
wait_port "$lport"
gh_body='{"id":"gh_logscan_1","type":"push"}'
gh_sig=$(printf '%s' "$gh_body" | S=$inbound "$hs" sign --scheme github --secret-env S)
curl -s -o /dev/null -X POST "http://127.0.0.1:$lport/webhook" -H "$gh_sig" --data "$gh_body"
curl -s -o /dev/null -X POST "http://127.0.0.1:$lport/webhook" -H 'X-Hub-Signature-256: sha256=00' --data "$gh_body"
curl -s -o /dev/null -X POST "http://127.0.0.1:$lport/dispatch" -H "Authorization: Bearer wrong-$token"
curl -s -o /dev/null -X POST "http://127.0.0.1:$lport/dispatch" -H "Authorization: Bearer $token"
sleep 0.5

echo "== scan"
if [ "$flavour" = native ]; then
  mapfile -t stored < <(psql -qXAt -d "$db" -c "SELECT hookseal._decrypt_secret(secret) FROM hookseal.secrets")
  keys=()
else
  mapfile -t stored < "$work/endpoints.txt"
  [ "${#stored[@]}" = "$(psql -qXAt -d "$db" -c "SELECT count(*) FROM hookseal.secrets")" ] ||
    { echo "endpoints.txt does not hold every stored secret" >&2; exit 1; }
  # The opening key's armored lines (64 characters of key material each).
  mapfile -t keys < <(grep -E '^[A-Za-z0-9+/]{64}$' "${HOOKSEAL_SEALING_KEY_FILE:?}")
  [ "${#keys[@]}" -ge 20 ] || { echo "the opening key file has no armored lines" >&2; exit 1; }
fi
needles=("$server_key" "$inbound" "$token" "$password" "${stored[@]}" "${keys[@]}")
# Key material without its prefix (whsec_/whsk_/whpk_ ...), when long enough to be telling.
for n in "${needles[@]}"; do
  bare=${n#*_}
  [ "$bare" != "$n" ] && [ ${#bare} -ge 16 ] && needles+=("$bare")
done
cp "$PGDATA_DIR/server.log" "$logs/postgres.log"
# Outputs whose job is to print a secret are not scanned: keygen's stdout
# (captured above into a variable, never logged) and create_endpoint's
# answer (endpoints.txt, outside $logs).
# The scan itself must be able to fail: a planted copy is found.
mkdir -p "$work/canary" && printf 'x %s y\n' "${stored[0]#*_}" >"$work/canary/log"
grep -rlF -- "${stored[0]#*_}" "$work/canary" >/dev/null || { echo "the scan misses a planted secret" >&2; exit 1; }
lines=$(cat "$logs"/* | wc -l)
found=0
for n in "${needles[@]}"; do
  [ -n "$n" ] || continue
  if grep -rlF -- "$n" "$logs" >/dev/null; then
    echo "FOUND a secret (${#n} chars, starts ${n:0:4}) in: $(grep -rlF -- "$n" "$logs" | xargs -n1 basename | tr '\n' ' ')" >&2
    found=$((found + 1))
  fi
done
delivered=$(grep -c '"ok":true' "$logs/receive.out" || true)
echo "log scan ($flavour): ${#needles[@]} secrets/keys looked for in $lines lines of $(ls "$logs" | wc -l) logs; found $found; receiver verified $delivered deliveries"
psql -qX -d postgres -c "DROP DATABASE $db WITH (FORCE)"
[ "$found" -eq 0 ] && [ "$delivered" -ge 20 ]
