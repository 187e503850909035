#!/usr/bin/env bash
# The portable flavour, on a cluster with no hookseal library at all
# (nothing preloaded), installed by `hookseal install` as a database owner
# that is not a superuser, against a cluster with the native extension:
#  1. the installer: a fresh install; again (nothing changes: the schema's
#     dump is the same); two at once; --print-sql through psql leaves the
#     same schema; refusals (the native extension present, a schema it did
#     not make, a role that may not create, an owner without CREATEROLE
#     while the roles do not exist), each leaving nothing behind;
#  2. tests/portable/signing.py: both flavours on every preset, described
#     schemes and misuse, and the portable one against the vectors;
#  3. one schema: tests/portable/catalog.sql gives the same lines on both;
#  4. secrets at rest: sealed, and no secret (whole or without its prefix)
#     in a pg_dump or a superuser's read of the table.
# Expects the native extension installed (scripts/pg-test.sh does it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
cd "$root"
cargo build -q -p hookseal-cli
bin=$root/target/debug/hookseal
work=$(mktemp -d /tmp/hsp.XXXX)
chown postgres:postgres "$work"
trap 'stop_cluster "$work/native"; stop_cluster "$work/portable"; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start_cluster "$work/native"
native_port=$PGPORT
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE EXTENSION hookseal"

start_cluster "$work/portable" "shared_preload_libraries = ''"
port=$PGPORT
su() { psql -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
su -d postgres -c "CREATE ROLE app_owner LOGIN CREATEROLE" -c "CREATE ROLE stranger LOGIN" \
   -c "CREATE ROLE plain_owner LOGIN" -c "CREATE DATABASE plain OWNER plain_owner" \
   -c "CREATE DATABASE app OWNER app_owner" -c "CREATE DATABASE printed OWNER app_owner" \
   -c "CREATE DATABASE twice OWNER app_owner" -c "CREATE DATABASE foreign_schema OWNER app_owner"
# Nothing of hookseal in this server: no preload, and (checked below) no
# function whose library is ours.
[ -z "$(su -d app -c "SHOW shared_preload_libraries")" ] || fail "a library is preloaded"
url() { echo "postgres://$1@127.0.0.1:$port/$2"; }
dump() { runuser -u postgres -- "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$port" -U postgres --schema-only -n hookseal "$1" |
         grep -v '^-- Dumped\|^\\restrict\|^\\unrestrict'; }

echo "-- the first install in a cluster makes the three roles: an owner without CREATEROLE is refused, by name"
if out=$("$bin" install --database-url "$(url plain_owner plain)" 2>&1); then fail "installed without CREATEROLE"; fi
echo "$out"; [[ $out == *"may not create roles"*"CREATEROLE"* ]] || fail "no CREATEROLE: $out"
[ "$(su -d plain -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'hookseal'")" = 0 ] || fail "left a schema"
[ "$(su -d plain -c "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'hookseal\_%'")" = 0 ] || fail "left a role"

echo "-- install as the database owner (CREATEROLE, as on RDS, Cloud SQL, Supabase, Neon; not a superuser)"
[ "$(su -d app -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'")" = f ]
out=$("$bin" install --database-url "$(url app_owner app)")
echo "$out"
[[ $out == "installed hookseal "*" (portable flavour) in schema hookseal" ]] || fail "fresh install said: $out"
[ "$(su -d app -c "SELECT count(*) FROM pg_proc WHERE probin LIKE '%hookseal%'")" = 0 ] || fail "a function names a hookseal library"
[ "$(su -d app -c "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension")" = "pgcrypto,plpgsql" ] ||
  fail "extensions other than pgcrypto"
dump app > "$work/first.sql"
[ "$(grep -c '^CREATE FUNCTION' "$work/first.sql")" -gt 30 ] || fail "the dump holds too few functions"

echo "-- once the roles exist, an owner without CREATEROLE installs in its own database"
out=$("$bin" install --database-url "$(url plain_owner plain)")
[[ $out == "installed hookseal "*" (portable flavour)"* ]] || fail "plain owner: $out"

echo "-- install again: nothing changes"
out=$("$bin" install --database-url "$(url app_owner app)")
[[ $out == *"is installed already; nothing changed" ]] || fail "second install said: $out"
dump app > "$work/second.sql"
cmp "$work/first.sql" "$work/second.sql" || fail "the second install changed the schema"
[ "$(su -d app -c "SELECT count(*) FROM hookseal.schema_versions")" = 1 ] || fail "versions recorded twice"

echo "-- two installers at once: one installs, the other finds it done"
"$bin" install --database-url "$(url app_owner twice)" > "$work/a.out" &
"$bin" install --database-url "$(url app_owner twice)" > "$work/b.out"
wait $!
cat "$work/a.out" "$work/b.out"
[ "$(grep -c 'installed hookseal' "$work/a.out" "$work/b.out" | awk -F: '{s+=$2} END {print s}')" = 1 ] ||
  fail "not exactly one installer installed"
grep -q 'nothing changed' "$work/a.out" "$work/b.out" || fail "the other installer did not find it done"

echo "-- --print-sql through psql leaves the same schema"
"$bin" install --print-sql | psql -qX -v ON_ERROR_STOP=1 "$(url app_owner printed)"
dump printed > "$work/printed.sql"
cmp "$work/first.sql" "$work/printed.sql" || fail "--print-sql differs from hookseal install"
out=$("$bin" install --database-url "$(url app_owner printed)")
[[ $out == *"nothing changed" ]] || fail "the installer did not recognise a printed install: $out"

echo "-- refusals leave nothing behind"
su -d foreign_schema -c "CREATE SCHEMA hookseal AUTHORIZATION app_owner"
if out=$("$bin" install --database-url "$(url app_owner foreign_schema)" 2>&1); then fail "installed over a foreign schema"; fi
echo "$out"; [[ $out == *"was not made by hookseal install"* ]] || fail "foreign schema: $out"
[ "$(su -d foreign_schema -c "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'")" = 0 ] ||
  fail "the refused install left pgcrypto behind"
if out=$("$bin" install --database-url "$(url stranger printed)" 2>&1); then fail "a stranger passed"; fi
echo "$out"; [[ $out == *"nothing installed"*"permission denied for schema hookseal"* ]] || fail "stranger: $out"
dump printed > "$work/printed-after.sql"
cmp "$work/printed.sql" "$work/printed-after.sql" || fail "the refused install changed the schema"
su -d postgres -c "CREATE DATABASE not_mine OWNER app_owner"
su -d not_mine -c "REVOKE CREATE ON DATABASE not_mine FROM PUBLIC"
if out=$("$bin" install --database-url "$(url stranger not_mine)" 2>&1); then fail "a role without CREATE installed"; fi
echo "$out"; [[ $out == *"nothing installed"*"pgcrypto"* ]] || fail "no rights: $out"
[ "$(su -d not_mine -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'hookseal'")" = 0 ] || fail "left a schema"
native_url="postgres://postgres@127.0.0.1:$native_port/postgres"
if out=$("$bin" install --database-url "$native_url" 2>&1); then fail "installed beside the native extension"; fi
echo "$out"; [[ $out == *"native hookseal extension"*"ALTER EXTENSION"* ]] || fail "native: $out"

echo "-- a hookseal.max_body_bytes that is not a size: refused where it is read (a custom setting takes any text)"
out=$(psql -qAtX "$(url app_owner app)" -c "SET hookseal.max_body_bytes = 'lots'" \
      -c "SELECT hookseal.webhook_verify_reason('github', ARRAY['k'], 'b', '{}')" 2>&1 || true)
echo "$out"; [[ $out == *"hookseal.max_body_bytes is 'lots', not a size"* ]] || fail "max_body_bytes: $out"

echo "-- sealing: hookseal keygen --sealing-key; a live pgcrypto seals, the core opens"
"$bin" keygen --sealing-key "$work/opening.asc" > "$work/sealing.pub.asc"
[ "$(stat -c %a "$work/opening.asc")" = 600 ] || fail "the opening key file is not owner-only"
grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$work/sealing.pub.asc" || fail "no public key printed"
grep -q 'PRIVATE' "$work/sealing.pub.asc" && fail "the private key was printed"
if "$bin" keygen --sealing-key "$work/opening.asc" > /dev/null 2>&1; then fail "overwrote an opening key"; fi
plain="whsec_live-pgcrypto-$RANDOM ü"
# pgcrypto seals with the registered public key (here the fixture key A,
# whose opening key the core's test holds) and the database never sees
# the opening key.
sealed=$(psql -qAtX -v ON_ERROR_STOP=1 "$(url app_owner app)" -v key="$(cat "$root/crates/hookseal/tests/fixtures/sealing/test-key-a.pub.asc")" -v plain="$plain" <<'SQL'
SELECT 'pgp1.' || translate(encode(pgp_pub_encrypt(:'plain', dearmor(:'key')), 'base64'), E'\n', '');
SQL
)
[[ $sealed == pgp1.* && $sealed != *live-pgcrypto* ]] || fail "pgcrypto did not seal"
HOOKSEAL_TEST_SEALED=$sealed HOOKSEAL_TEST_SEALED_PLAIN=$plain \
  cargo test -q -p hookseal --features sealing --test sealing -- --ignored opens_what_a_live_pgcrypto_sealed

echo "-- signing and verification: portable against native and the vectors"
python3 "$root/tests/portable/signing.py" -h 127.0.0.1 -p "$native_port" -U postgres -d postgres \
  -- -h 127.0.0.1 -p "$port" -U app_owner -d app

echo "-- the SQL functions work for the roles they are granted to, not only the owner"
su -d app -c "CREATE ROLE app_writer LOGIN IN ROLE hookseal_writer" -c "CREATE ROLE app_dispatcher LOGIN IN ROLE hookseal_dispatcher"
for role in app_writer app_dispatcher; do
  out=$(psql -qAtX -v ON_ERROR_STOP=1 "$(url $role app)" \
        -c "SELECT hookseal.webhook_sign('github', 'It''s a Secret to Everybody', 'Hello, World!')" \
        -c "SELECT hookseal.webhook_verify_reason('github', ARRAY['It''s a Secret to Everybody'], 'Hello, World!',
              '{\"x-hub-signature-256\": \"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\"}')" 2>&1) ||
    fail "$role: $out"
  [[ $out == *757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17*ok ]] || fail "$role signs and verifies: $out"
  if out=$(psql -qAtX "$(url $role app)" -c "SELECT hookseal._encrypt_secret('x')" 2>&1); then fail "$role sealed"; fi
  [[ $out == *"permission denied"* ]] || fail "$role: $out"
done

echo "-- one schema: the portable catalog equals the native one (tables, columns, constraints, indexes,"
echo "   triggers, views, every public function and every grant), but for what differs by design"
psql -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$native_port" -U postgres -d postgres -f tests/portable/catalog.sql > "$work/native.cat"
psql -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d app -f tests/portable/catalog.sql > "$work/portable.cat"
[ "$(wc -l < "$work/native.cat")" -gt 300 ] || fail "the native catalog is too short to compare"
# What differs, each for a reason: the portable installer's version table
# (the native flavour has pg_extension).
diff <(grep -v 'schema_versions' "$work/native.cat") <(grep -v 'schema_versions' "$work/portable.cat") > "$work/cat.diff" && same=1 || same=0
if [ "$same" = 0 ]; then cat "$work/cat.diff"; fail "the flavours' catalogs differ"; fi
grep -q 'column schema_versions.version' "$work/portable.cat" || fail "no schema_versions in the portable catalog"
# The comparison can fail: one changed default is found.
su -d app -c "ALTER TABLE hookseal.outbox ALTER COLUMN attempts SET DEFAULT 1"
psql -qAtX -h 127.0.0.1 -p "$port" -U postgres -d app -f tests/portable/catalog.sql | grep -v schema_versions |
  diff -q - <(grep -v schema_versions "$work/native.cat") > /dev/null && fail "the catalog comparison missed a changed default"
su -d app -c "ALTER TABLE hookseal.outbox ALTER COLUMN attempts SET DEFAULT 0"
echo "catalogs equal: $(wc -l < "$work/portable.cat") lines"

echo "-- secrets at rest: sealed; neither a dump nor a superuser's read of the table holds one"
key=$(cat "$root/crates/hookseal/tests/fixtures/sealing/test-key-a.pub.asc")
psql -qAtX -v ON_ERROR_STOP=1 "$(url app_owner app)" -v key="$key" > "$work/secrets.txt" <<'SQL'
SELECT hookseal.register_sealing_key(:'key') \g /dev/null
SELECT hookseal.create_app('rest') AS app \gset
SELECT e.endpoint_id AS ep, e.secret FROM hookseal.create_endpoint(:'app', 'https://example.com/a', 'standard') e \gset
SELECT :'secret';
SELECT secret FROM hookseal.rotate_secret(:'ep', '1 hour');
SELECT e.secret FROM hookseal.create_endpoint(:'app', 'https://example.com/b', 'github') e;
SELECT e.secret FROM hookseal.create_endpoint(:'app', 'https://example.com/c', 'shopify') e;
SQL
[ "$(grep -c . "$work/secrets.txt")" = 4 ] || fail "expected four secrets, got $(cat "$work/secrets.txt" | wc -l)"
[ "$(su -d app -c "SELECT count(*) FROM hookseal.secrets WHERE secret LIKE 'pgp1.%'")" = 4 ] || fail "not every secret is sealed"
leaks() {  # every secret, whole and without its prefix, in file $1
  local n=0 s
  while read -r s; do
    grep -qF -- "$s" "$1" && n=$((n + 1))
    grep -qF -- "${s#whsec_}" "$1" && n=$((n + 1))
  done < "$work/secrets.txt"
  echo "$n"
}
at_rest() {
  runuser -u postgres -- "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$port" -U postgres app > "$work/dump.sql"
  su -d app -c "SELECT * FROM hookseal.secrets" >> "$work/dump.sql"
  [ "$(grep -c 'pgp1\.' "$work/dump.sql")" -ge 4 ] || fail "the dump does not hold the sealed secrets"
}
# The search can fail: a secret planted in a table of the app's is found.
su -d app -c "CREATE TABLE public.planted AS SELECT '$(sed -n 3p "$work/secrets.txt")'::text AS t"
at_rest
[ "$(leaks "$work/dump.sql")" = 2 ] || fail "the planted secret was not found whole and without its prefix"
su -d app -c "DROP TABLE public.planted"
at_rest
[ "$(leaks "$work/dump.sql")" = 0 ] || fail "a secret is in the clear in a dump or a superuser's read"
echo "no secret in a dump or a superuser's read (4 secrets, a planted one found)"

echo "-- v1a key pairs: made outside the database by hookseal keypair (pgcrypto has no ed25519),"
echo "   the signing key sealed (pgp1k.) and stored by add_sealed_keypair, which refuses what is not one"
app_sql() { psql -qAtX -v ON_ERROR_STOP=1 "$(url app_owner app)" "$@"; }
ep=$(app_sql -c "SELECT endpoint_id FROM hookseal.create_endpoint(hookseal.create_app('v1a'), 'https://example.com/v', 'standard')")
out=$("$bin" keypair --database-url "$(url app_owner app)" --endpoint "$ep" --grace 0)
echo "$out" | sed 's/\(whpk_.\{8\}\).*/\1.../'
[[ $out == *"public_key: whpk_"* && $out != *whsk_* ]] || fail "keypair printed: $out"
[ "$(app_sql -c "SELECT count(*) FILTER (WHERE secret LIKE 'pgp1k.%') || ' ' || count(*) FILTER (WHERE expires_at <= now())
                 FROM hookseal.secrets WHERE webhook_id = '$ep'")" = "1 1" ] || fail "not one sealed key pair and the HMAC secret expired"
out=$(app_sql -c "SELECT hookseal.rotate_secret('$ep')" 2>&1) && fail "rotate_secret made a key pair in SQL"
[[ $out == *"hookseal keypair"* ]] || fail "rotate_secret of a v1a endpoint: $out"
before=$(su -d app -c "SELECT count(*) FROM hookseal.secrets")
other=$(psql -qAtX -v ON_ERROR_STOP=1 "$(url app_owner app)" -v key="$(cat "$root/crates/hookseal/tests/fixtures/sealing/test-key-b.pub.asc")" <<'SQL'
SELECT 'pgp1k.' || translate(encode(pgp_pub_encrypt('whsk_x', dearmor(:'key')), 'base64'), E'\n', '');
SQL
)
good=$(su -d app -c "SELECT secret FROM hookseal.secrets WHERE webhook_id = '$ep' AND secret LIKE 'pgp1k.%'")
gh=$(app_sql -c "SELECT endpoint_id FROM hookseal.create_endpoint(hookseal.create_app('v1a-gh'), 'https://example.com/g', 'github')")
before=$(su -d app -c "SELECT count(*) FROM hookseal.secrets")
hash=$(printf '%064d' 0)
refused() {  # refused "what" "expected words" sealed hash grace endpoint
  local out
  if out=$(app_sql -v s="$3" -v h="$4" -v g="$5" -v e="$6" <<<"SELECT hookseal.add_sealed_keypair(:'e', :'s', :'h', NULLIF(:'g', '')::interval)" 2>&1); then
    fail "add_sealed_keypair took $1"
  fi
  [[ $out == *"$2"* ]] || fail "$1: $out"
  echo "refused ($1): ${out%%$'\n'*}"
}
refused "an HMAC form (pgp1.)" "not a sealed signing key" "pgp1.${good#pgp1k.}" "$hash" "" "$ep"
refused "a value in the clear" "not a sealed signing key" "whsk_AAAA" "$hash" "" "$ep"
refused "NULL" "not a sealed signing key" "" "$hash" "" "$ep"
refused "a key sealed to an unregistered key" "not to the newest registered sealing key" "$other" "$hash" "" "$ep"
refused "a hash that is not SHA-256 hex" "64 lower-case hex digits" "$good" "ABC" "" "$ep"
refused "a negative grace" "grace period of 0 or more" "$good" "$hash" "-1 hour" "$ep"
refused "a github endpoint" "scheme has no v1a key pairs" "$good" "$hash" "" "$gh"
refused "an unknown endpoint" "no endpoint" "$good" "$hash" "" "ep_nope"
if out=$("$bin" keypair --database-url "$(url app_owner app)" --endpoint ep_nope 2>&1); then fail "keypair for no endpoint"; fi
[[ $out == *"no endpoint ep_nope"* ]] || fail "keypair, unknown endpoint: $out"
if out=$("$bin" keypair --database-url "$(url app_owner app)" --endpoint "$ep" --grace soon 2>&1); then fail "keypair took grace 'soon'"; fi
[[ $out == *"interval"* && $out != *whsk_* ]] || fail "keypair, bad grace: $out"
[ "$(su -d app -c "SELECT count(*) FROM hookseal.secrets")" = "$before" ] || fail "a refused key pair changed hookseal.secrets"
out=$(psql -qAtX -h 127.0.0.1 -p "$native_port" -U postgres -d postgres \
      -c "SELECT hookseal.add_sealed_keypair('ep', 'pgp1k.x', '$hash')" 2>&1) && fail "native took a sealed key pair"
[[ $out == *"native flavour makes key pairs itself"* ]] || fail "native add_sealed_keypair: $out"
echo "v1a key pairs: one made and sealed, 8 misuses refused with nothing stored, native refuses by name"


echo "-- pg_regress on the portable flavour: the suites that apply (flow, history, privileges),"
echo "   the same SQL files; expected/<suite>_1.out where the answers differ by design"
echo "   (history: rows are signed at claim, so resigned; privileges: the portable helpers and"
echo "   schema_versions in the matrix, and the same invariant query returning no row)"
su -d postgres -c "CREATE DATABASE regress OWNER app_owner"
"$bin" install --database-url "$(url app_owner regress)" >/dev/null
psql -qAtX -v ON_ERROR_STOP=1 "$(url app_owner regress)" -v key="$key" <<<"SELECT hookseal.register_sealing_key(:'key')" >/dev/null
install -d -o postgres "$work/regress"
regress="$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress"
if ! runuser -u postgres -- "$regress" --use-existing --inputdir=crates/hookseal-pg/tests/pg_regress \
    --outputdir="$work/regress" --host=127.0.0.1 --port="$port" --user=postgres --dbname=regress \
    flow history privileges; then
  cat "$work/regress/regression.diffs" >&2 || true
  fail "pg_regress on the portable flavour"
fi
