#!/usr/bin/env bash
# The portable flavour's SQL signing, differential: one cluster with the
# native extension, one with no hookseal library at all (nothing preloaded),
# where a database owner that is not a superuser creates pgcrypto and the
# portable functions. tests/portable/signing.py compares the two on every
# preset, described schemes and misuse, and the portable one with the
# vectors. Expects the native extension installed (scripts/pg-test.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
need_base
work=$(mktemp -d /tmp/hsp.XXXX)
chown postgres:postgres "$work"
trap 'stop_cluster "$work/native"; stop_cluster "$work/portable"; rm -rf "$work"' EXIT

start_cluster "$work/native"
native_port=$PGPORT
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE EXTENSION hookseal"

start_cluster "$work/portable" "shared_preload_libraries = ''"
portable_port=$PGPORT
psql -qX -v ON_ERROR_STOP=1 -d postgres \
  -c "CREATE ROLE app_owner LOGIN" -c "CREATE DATABASE app OWNER app_owner"
# Nothing of hookseal in the server: no preload, no library file loaded.
[ -z "$(psql -qAtX -d app -c "SHOW shared_preload_libraries")" ]
# As the owner (not a superuser): pgcrypto is trusted, the rest is plain SQL.
bash "$root/tests/portable/install-sql.sh" "postgres://app_owner@127.0.0.1:$portable_port/app"
[ "$(psql -qAtX -d app -c "SELECT count(*) FROM pg_proc WHERE probin LIKE '%hookseal%'")" = 0 ]

python3 "$root/tests/portable/signing.py" -h 127.0.0.1 -p "$native_port" -U postgres -d postgres \
  -- -h 127.0.0.1 -p "$portable_port" -U app_owner -d app
