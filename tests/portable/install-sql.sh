#!/usr/bin/env bash
# Until `hookseal install` lands: the portable signing functions into
# schema hookseal of URL, as whoever URL names, with pgcrypto's schema
# written where `@pgcrypto@` stands.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
url=$1
psql -qX -v ON_ERROR_STOP=1 "$url" -c "CREATE EXTENSION IF NOT EXISTS pgcrypto" -c "CREATE SCHEMA IF NOT EXISTS hookseal"
schema=$(psql -qAtX "$url" -c "SELECT quote_ident(n.nspname) FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname = 'pgcrypto'")
{
  echo "BEGIN; SET LOCAL search_path = hookseal; SET LOCAL check_function_bodies = off;"
  cat "$root/sql/portable/core.sql" "$root/sql/portable/signing.sql" "$root/sql/portable/verify.sql"
  echo "COMMIT;"
} | sed "s/@pgcrypto@/$schema/g" | psql -qX -v ON_ERROR_STOP=1 "$url"
