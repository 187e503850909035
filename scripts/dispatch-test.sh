#!/usr/bin/env bash
# The dispatcher's tests against a real PostgreSQL: a throwaway cluster with
# the extension, a template database and a dispatcher-only login role; then
# the integration tests (real receivers on 127.0.0.1) and the crash test.
#   bash scripts/dispatch-test.sh            # everything, crash test shortened
#   HOOKSEAL_CRASH_FULL=1 bash scripts/dispatch-test.sh   # 10,000-event crash runs
#   HOOKSEAL_FLAVOUR=portable bash scripts/dispatch-test.sh   # the same tests on the
#     portable flavour: no library preloaded, installed by `hookseal install` as a
#     database owner that is not a superuser, secrets sealed to a key the
#     dispatchers get through HOOKSEAL_SEALING_KEY_FILE
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_proxy
need_pg
need_node   # the v1a interop receiver (Node crypto)
need_browser   # the portal's browser tests
cd "$root"

echo "== install the extension"
install_extension
work=$(mktemp -d /tmp/hd.XXXX)
chown postgres:postgres "$work"
trap 'stop_cluster "$work/pg"; rm -rf "$work"' EXIT
# A private CA and a server certificate for 127.0.0.1, so sslmode=require
# is tested with verification.
openssl req -x509 -new -nodes -days 2 -subj "/CN=hookseal test CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -new -nodes -subj "/CN=127.0.0.1" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/server.ext" -out "$work/server.crt" 2>/dev/null
chown postgres:postgres "$work/server.key" "$work/server.crt"
chmod 600 "$work/server.key"
cargo build --quiet -p hookseal-cli
flavour_check
echo "== flavour: $flavour"
flavour_cluster "$work/pg" "max_connections = 200" "ssl = on" \
  "ssl_cert_file = '$work/server.crt'" "ssl_key_file = '$work/server.key'"
export HOOKSEAL_TEST_PG_CA="$work/ca.pem"
# Portable: as a managed provider's database owner (CREATEROLE, not a
# superuser), and every dispatcher these tests start (the library's and
# `hookseal dispatch`) opens with the sealing key it exports.
flavour_install hookseal_template
if [ "$flavour" = portable ]; then
  export HOOKSEAL_TEST_SEALING_KEY_FILE=$HOOKSEAL_SEALING_KEY_FILE
fi
psql -qX -v ON_ERROR_STOP=1 -d hookseal_template <<'SQL'
CREATE ROLE hookseal_test_dispatcher LOGIN IN ROLE hookseal_dispatcher;
CREATE ROLE hookseal_test_lambda LOGIN IN ROLE hookseal_writer, hookseal_dispatcher;
CREATE ROLE hookseal_test_admin LOGIN IN ROLE hookseal_admin;
SQL

echo "== dispatcher integration tests"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" cargo test -p hookseal-dispatch --test outbox -- --ignored
echo "== lambda adapter with a database"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" cargo test -p hookseal-lambda --test database -- --ignored
echo "== receiver middleware: the PostgreSQL replay store"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" cargo test -p hookseal-axum --features postgres --test receiver -- --ignored
venv=${HOOKSEAL_VENV:-${TMPDIR:-/tmp}/hookseal-interop-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'standardwebhooks==1.1.0' 'cryptography>=42'
echo "== Standard Webhooks through the database: SQL webhook_sign/verify and dispatcher deliveries against the official library"
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE sw_interop TEMPLATE hookseal_template"
HOOKSEAL_PSQL="psql -h 127.0.0.1 -p $PGPORT -U postgres -d sw_interop" \
HOOKSEAL_DISPATCH_URL="postgres://hookseal_test_dispatcher@127.0.0.1:$PGPORT/sw_interop" \
  "$venv/bin/python" tests/interop/interop.py target/debug/hookseal
echo "== v1a across the CLI, SQL and a dispatcher delivery, verified by Python's cryptography"
# Portable: SQL refuses ed25519 by name and the key pairs come from `hookseal keypair`.
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE v1a_interop TEMPLATE hookseal_template"
HOOKSEAL_PSQL="psql -h 127.0.0.1 -p $PGPORT -U postgres -d v1a_interop" \
HOOKSEAL_DISPATCH_URL="postgres://hookseal_test_dispatcher@127.0.0.1:$PGPORT/v1a_interop" \
HOOKSEAL_ADMIN_URL="postgres://hookseal_test_admin@127.0.0.1:$PGPORT/v1a_interop" \
  "$venv/bin/python" tests/interop/v1a.py target/debug/hookseal
if [ "$flavour" = native ]; then
  HOOKSEAL_PSQL="psql -h 127.0.0.1 -p $PGPORT -U postgres -d v1a_interop" \
  HOOKSEAL_DISPATCH_URL="postgres://hookseal_test_dispatcher@127.0.0.1:$PGPORT/v1a_interop" \
    node tests/interop/v1a.mjs target/debug/hookseal
fi
echo "== hookseal status / attempts"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" cargo test -p hookseal-cli --test history -- --ignored
echo "== hookseal dispatch as a process: signals during --drain, roles without the grant"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" cargo test -p hookseal-cli --test dispatch_process -- --include-ignored
echo "== OpenTelemetry: one trace from webhook_send's transaction through hookseal dispatch to hookseal receive, over OTLP"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" cargo test -p hookseal-cli --test tracing -- --ignored
echo "== the portal (hookseal-portal): console and owner pages, links, scoping, escaping, headers, CSRF; in headless chromium with hookseal dispatch, receive and portal"
HOOKSEAL_TEST_PG="127.0.0.1:$PGPORT" HOOKSEAL_SCREENSHOTS="$root/target/screenshots-$flavour" \
  cargo test -p hookseal-portal -- --include-ignored

# The scripts below start clusters of their own, of the same flavour
# (HOOKSEAL_FLAVOUR is inherited).
echo "== log scan: an end-to-end run at debug level logs none of its secrets"
PGDATA_DIR="$work/pg" bash tests/security/logscan.sh
echo "== fault injection (tests/faults: receivers that misbehave, PostgreSQL killed, a stalled link, statement timeouts, a failing outbox insert)"
bash tests/faults/run.sh 100 "$root/target/faults-ci-$flavour.md"
if [ "$flavour" = native ]; then
  echo "== short soak (bench/soak.sh on the debug builds: nothing lost, no lock wait, retention ran)"
  HOOKSEAL_BENCH_DEBUG=1 bash bench/soak.sh 200 60 '20 seconds' | tail -4
else
  echo "== short soak: in the native pass (bench/soak.sh measures the native outbox)"
fi
echo "== one worker over three clusters: each event once, one cluster stopped and back, hookseal status over the three"
bash tests/dispatch/multi.sh 200
echo "== crash test"
if [ -n "${HOOKSEAL_CRASH_FULL:-}" ]; then
  bash tests/dispatch/crash.sh --events 10000 --kills 20
  bash tests/dispatch/crash.sh --events 10000 --pg-restarts 3
else
  bash tests/dispatch/crash.sh --events 2000 --kills 20
  bash tests/dispatch/crash.sh --events 2000 --pg-restarts 2
fi
