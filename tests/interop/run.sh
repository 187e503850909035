#!/usr/bin/env bash
# Interop test: installs the official Standard Webhooks Python library in a
# venv outside the repo and runs interop.py against the hookseal CLI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${HOOKSEAL_VENV:-${TMPDIR:-/tmp}/hookseal-interop-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'standardwebhooks==1.1.0'
bin=${HOOKSEAL_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet -p hookseal-cli)
  bin="$root/target/debug/hookseal"
fi
exec "$venv/bin/python" "$here/interop.py" "$bin"
