#!/usr/bin/env bash
# Interop test: installs the official Standard Webhooks Python library and
# `cryptography` in a venv outside the repo and runs interop.py (v1 schemes)
# and v1a.py (ed25519, Python's cryptography) against the hookseal CLI, then
# v1a.mjs (Node's crypto). HOOKSEAL_PSQL (a psql command line) adds the
# extension's webhook_sign/webhook_verify to v1a.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${HOOKSEAL_VENV:-${TMPDIR:-/tmp}/hookseal-interop-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'standardwebhooks==1.1.0' 'cryptography>=42'
bin=${HOOKSEAL_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet -p hookseal-cli)
  bin="$root/target/debug/hookseal"
fi
"$venv/bin/python" "$here/interop.py" "$bin"
"$venv/bin/python" "$here/v1a.py" "$bin"
node "$here/v1a.mjs" "$bin"
