# Shared by the scripts: install what a fresh Debian machine lacks.
# Needs root for apt-get (CI and the README's commands run as root).

# apt_need PKG...: installs the packages that are not installed yet.
apt_need() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}" >&2
    if [ -z "${HOOKSEAL_APT_UPDATED:-}" ]; then
      apt-get update -qq
      export HOOKSEAL_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# need_rust: a cargo on PATH (the machine's toolchain; nothing is downloaded).
need_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust 1.95 first" >&2; exit 1; }
}

# need_base: C toolchain, pkg-config and OpenSSL headers (the svix baseline
# in the benchmarks links OpenSSL), Python with venv (interop test).
need_base() {
  apt_need build-essential pkg-config libssl-dev ca-certificates
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_need python3 python3-venv
  fi
}
