#!/usr/bin/env bash
# The main job on a self-contained default: build the CLI, then for each of
# the ten schemes make a secret, sign one message, verify it, and show that a
# tampered body is refused; finally encrypt a secret at rest and decrypt it.
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
echo "demo: every scheme signed, verified and refused a tampered body"
