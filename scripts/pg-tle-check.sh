#!/usr/bin/env bash
# The portable flavour through pg_tle (Trusted Language Extensions), as on
# RDS, Aurora and Supabase: not in CI (no package has pg_tle here), run by
# hand against pg_tle built from its public source:
#   git clone https://github.com/aws/pg_tle /path/to/pg_tle
#   PG_TLE_SRC=/path/to/pg_tle bash scripts/pg-tle-check.sh
# It builds and installs pg_tle with PGXS (flex, bison and libkrb5-dev from
# Debian), starts a cluster with shared_preload_libraries = 'pg_tle', and as
# a role that owns the database, holds pgtle_admin and is not a superuser:
# `hookseal install --pg-tle` (twice: the second changes nothing),
# CREATE EXTENSION hookseal CASCADE (pgcrypto with it), a published vector
# signed and verified, then an update path registered for a check version
# (0.3.0 -> 0.3.0-tlecheck, a comment only: the next release's script does
# not exist yet) and ALTER EXTENSION hookseal UPDATE to it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
src=${PG_TLE_SRC:?set PG_TLE_SRC to a checkout of https://github.com/aws/pg_tle}
apt_need flex bison libkrb5-dev postgresql-server-dev-15
make -C "$src" USE_PGXS=1 PG_CONFIG=/usr/bin/pg_config -j2 >/dev/null
make -C "$src" USE_PGXS=1 PG_CONFIG=/usr/bin/pg_config install >/dev/null
cd "$root"
cargo build -q -p hookseal-cli
bin=$root/target/debug/hookseal
work=$(mktemp -d /tmp/hst.XXXX)
chown postgres:postgres "$work"
# pg_tle refuses a name whose native control file exists (a managed server
# has none): the native extension's is set aside for the run, then put back.
control=$(pg_config --sharedir)/extension/hookseal.control
[ ! -e "$control" ] || mv "$control" "$work/hookseal.control.native"
trap 'stop_cluster "$work/pg"; [ ! -e "$work/hookseal.control.native" ] || mv "$work/hookseal.control.native" "$control"; rm -rf "$work"' EXIT
start_cluster "$work/pg" "shared_preload_libraries = 'pg_tle'"
su() { psql -qAtX -v ON_ERROR_STOP=1 -U postgres "$@"; }
as_owner() { psql -qAtX -v ON_ERROR_STOP=1 "postgres://app_owner@127.0.0.1:$PGPORT/app" "$@"; }
# The provider's master user: CREATEROLE (the install makes the three
# hookseal roles), not a superuser, owner of the database.
su -d postgres -c "CREATE ROLE app_owner LOGIN CREATEROLE" -c "CREATE DATABASE app OWNER app_owner"
# What the provider does (rds_superuser on RDS): pg_tle in the database, and
# pgtle_admin for the application's owner.
su -d app -c "CREATE EXTENSION pg_tle" -c "GRANT pgtle_admin TO app_owner"
[ "$(su -d app -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'")" = f ]
echo "pg_tle $(su -d app -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_tle'") from $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "$src"), $(su -d app -c 'SELECT version()' | cut -d, -f1)"

"$bin" install --pg-tle --database-url "postgres://app_owner@127.0.0.1:$PGPORT/app"
out=$("$bin" install --pg-tle --database-url "postgres://app_owner@127.0.0.1:$PGPORT/app")
echo "$out"; [[ $out == *"nothing changed" ]]
as_owner -c "CREATE EXTENSION hookseal CASCADE"
as_owner -c "SELECT extname || ' ' || extversion FROM pg_extension ORDER BY 1"
[ "$(as_owner -c "SELECT count(*) FROM pg_proc WHERE probin LIKE '%hookseal%'")" = 0 ]
# GitHub's documented vector, signed and verified by the extension's functions.
sig=$(as_owner -c "SELECT hookseal.webhook_sign('github', 'It''s a Secret to Everybody', 'Hello, World!') ->> 'X-Hub-Signature-256'")
echo "$sig"; [ "$sig" = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" ]
[ "$(as_owner -c "SELECT hookseal.webhook_verify_reason('github', ARRAY['It''s a Secret to Everybody'], 'Hello, World!', jsonb_build_object('X-Hub-Signature-256', '$sig'))")" = ok ]
# The outbox under pg_tle: a sealing key registered, an endpoint whose
# secret is stored sealed, an event fanned out to an unsigned row.
"$bin" keygen --sealing-key "$work/sealing.asc" > "$work/sealing.pub.asc"
echo "SELECT hookseal.register_sealing_key(:'key')" | as_owner -v key="$(cat "$work/sealing.pub.asc")" >/dev/null
app=$(as_owner -c "SELECT hookseal.create_app('tle')")
as_owner -c "SELECT 1 FROM hookseal.create_endpoint('$app', 'https://example.com/hook', 'standard')" >/dev/null
[ "$(as_owner -c "SELECT count(*) FROM hookseal.secrets WHERE secret LIKE 'pgp1.%'")" = 1 ]
as_owner -c "SELECT hookseal.webhook_send('$app', 'order.created', '{\"n\": 1}')" >/dev/null
[ "$(as_owner -c "SELECT count(*) FROM hookseal.outbox")" = 1 ]
echo "pg_tle: a sealed secret stored and an event fanned out into the outbox"

# An update path, registered the way the installer registers the next
# release's, and ALTER EXTENSION UPDATE through it.
as_owner -c "SELECT pgtle.install_update_path('hookseal', '0.3.0', '0.3.0-tlecheck', \$u\$COMMENT ON FUNCTION webhook_sign(text, text, text, text, timestamptz) IS 'updated through pg_tle'\$u\$)"
as_owner -c "SELECT pgtle.set_default_version('hookseal', '0.3.0-tlecheck')"
as_owner -c "ALTER EXTENSION hookseal UPDATE"
[ "$(as_owner -c "SELECT extversion FROM pg_extension WHERE extname = 'hookseal'")" = 0.3.0-tlecheck ]
[ "$(as_owner -c "SELECT obj_description('hookseal.webhook_sign(text, text, text, text, timestamptz)'::regprocedure)")" = "updated through pg_tle" ]
[ "$(as_owner -c "SELECT hookseal.webhook_sign('github', 'It''s a Secret to Everybody', 'Hello, World!') ->> 'X-Hub-Signature-256'")" = "$sig" ]
echo "pg_tle: installed as a non-superuser, CREATE EXTENSION and ALTER EXTENSION UPDATE done"
