#!/usr/bin/env bash
# The Lambda adapter beyond `cargo test`: the SAM template through cfn-lint,
# the end-to-end test through `cargo lambda watch`, and the release zip
# (built with cargo-lambda's zig toolchain) with its size and the newest
# glibc symbol it needs (provided.al2023 has glibc 2.34).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
need_rust
need_base
need_lambda_tools
cd "$root"

echo "== cfn-lint deploy/template.yaml"
cfn-lint deploy/template.yaml
echo "template passes cfn-lint $(cfn-lint --version | awk '{print $2}')"

echo "== end to end through cargo lambda watch"
bash tests/lambda/e2e.sh

echo "== cargo lambda build --release --output-format zip"
cargo lambda build --release --output-format zip -p hookseal-lambda
zip=target/lambda/bootstrap/bootstrap.zip
work=$(mktemp -d /tmp/hlz.XXXX)
trap 'rm -rf "$work"' EXIT
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$zip" "$work"
glibc=$(objdump -T "$work/bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
echo "zip $(stat -c %s "$zip") bytes; bootstrap $(stat -c %s "$work/bootstrap") bytes; newest glibc symbol: $glibc"
if [ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -1)" != 2.34 ]; then
  echo "bootstrap needs glibc $glibc, newer than provided.al2023's 2.34" >&2
  exit 1
fi
