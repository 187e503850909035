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

# need_proxy: Debian's tinyproxy, the real CONNECT proxy of the dispatcher's
# egress tests.
need_proxy() {
  apt_need tinyproxy
}

# need_base: C toolchain, pkg-config and OpenSSL headers (the svix baseline
# in the benchmarks links OpenSSL), Python with venv (interop test).
need_base() {
  apt_need build-essential pkg-config libssl-dev ca-certificates openssl curl
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_need python3 python3-venv
  fi
}

# need_pg: PostgreSQL 15 server and headers, clang for bindgen, sudo for
# `cargo pgrx test --runas`, and cargo-pgrx 0.18.1 registered with the
# system PostgreSQL (pgrx 0.19 needs rustc 1.96).
PGRX_VERSION=0.18.1
PG_BIN=/usr/lib/postgresql/15/bin
need_pg() {
  apt_need postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo
  if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
    echo "== installing cargo-pgrx $PGRX_VERSION (debug build, ~3 min)" >&2
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --debug --no-default-features >&2
  fi
  if ! grep -q '^pg15' "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    cargo pgrx init --pg15 /usr/bin/pg_config >&2
  fi
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_cluster DIR [extra postgresql.conf lines...]: a throwaway cluster
# owned by `postgres` on a free loopback port with hookseal preloaded and a
# throwaway server key; sets PGPORT/PGHOST/PGUSER. stop_cluster DIR ends it.
start_cluster() {
  local dir=$1; shift
  rm -rf "$dir"
  install -d -o postgres -g postgres "$dir"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  PGPORT=$(free_port)
  # The server key in a file only the server reads (an inline key in
  # postgresql.conf is refused: PostgreSQL would log it at every reload).
  openssl rand -hex 32 > "$dir/server.key"
  chown postgres:postgres "$dir/server.key"
  chmod 600 "$dir/server.key"
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $PGPORT"
    echo "unix_socket_directories = '$dir'"
    echo "shared_preload_libraries = 'hookseal'"
    echo "hookseal.server_key_file = '$dir/server.key'"
    echo "fsync = off"
    for line in "$@"; do echo "$line"; done
  } >> "$dir/data/postgresql.conf"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
  export PGPORT PGHOST=127.0.0.1 PGUSER=postgres
}
stop_cluster() {
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

# wait_port PORT: until something accepts connections on 127.0.0.1:PORT (5 s).
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# need_lambda_tools: cargo-lambda (prebuilt, brings zig) and cfn-lint from PyPI
# in a venv outside the repo; its bin goes first on PATH so cargo-lambda finds zig.
LAMBDA_TOOLS=${HOOKSEAL_TOOLS_VENV:-$HOME/.cache/hookseal-tools}
need_lambda_tools() {
  if [ ! -x "$LAMBDA_TOOLS/bin/cargo-lambda" ] || [ ! -x "$LAMBDA_TOOLS/bin/cfn-lint" ]; then
    echo "== installing cargo-lambda and cfn-lint into $LAMBDA_TOOLS" >&2
    python3 -m venv "$LAMBDA_TOOLS"
    "$LAMBDA_TOOLS/bin/pip" install -q cargo-lambda cfn-lint >&2
  fi
  export PATH="$LAMBDA_TOOLS/bin:$PATH"
}

# need_node: Node.js and npm (Debian's packages when missing), and Express in
# a folder outside the repo; exports NODE_PATH so `node` finds it. Used by the
# differential JSON test and the reference-receiver test.
NODE_TOOLS=${HOOKSEAL_NODE_TOOLS:-$HOME/.cache/hookseal-node}
need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_need nodejs npm
  fi
  if [ ! -f "$NODE_TOOLS/node_modules/express/package.json" ]; then
    echo "== installing express into $NODE_TOOLS" >&2
    mkdir -p "$NODE_TOOLS"
    npm install --prefix "$NODE_TOOLS" --no-audit --no-fund --silent express@4 >&2
  fi
  export NODE_PATH="$NODE_TOOLS/node_modules"
}

# bench_prepare NAME: for benchmark scripts (run from the repo root, with
# $root set): the release CLI and extension built and installed; sets bin
# (the CLI), work (a scratch folder the postgres user owns, /tmp/NAME.XXXX)
# and pids (background processes); on exit they are killed, the cluster in
# $work/pg stopped and $work removed. HOOKSEAL_BENCH_DEBUG=1 uses the debug
# builds instead: for CI's short runs of a benchmark, which check what it
# asserts (nothing lost, retention ran), not its speed, and so need not
# build the workspace a second time in release.
bench_prepare() {
  if [ -n "${HOOKSEAL_BENCH_DEBUG:-}" ]; then
    cargo build -q -p hookseal-cli
    (cd crates/hookseal-pg && cargo pgrx install --pg-config /usr/bin/pg_config >/dev/null)
    bin=$root/target/debug/hookseal
  else
    cargo build -q --release -p hookseal-cli
    (cd crates/hookseal-pg && cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null)
    bin=$root/target/release/hookseal
  fi
  work=$(mktemp -d "/tmp/$1.XXXX")
  chown postgres:postgres "$work"
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  stop_cluster "$work/pg"
  rm -rf "$work"
}

# need_browser: Debian's chromium and chromedriver, for the portal's browser
# tests (headless; root needs --no-sandbox, which the tests pass).
need_browser() {
  apt_need chromium chromium-driver
}

# need_fuzz: cargo-fuzz (libFuzzer) from crates.io. Fuzz builds use the
# stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags).
need_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    cargo install --quiet --locked cargo-fuzz --version 0.13.2 >&2
  fi
}

# compare_build REV: for same-run comparisons (bench/dispatch-compare.sh,
# bench/fairness.sh --compare), with $root and $work set and $old_tree a
# path inside $work: builds the CLI and the extension of REV (a worktree at
# $old_tree, target directory target/bench-old) and of the current tree,
# keeping each side's binary and extension files in $work/old and $work/new;
# sets old_name. The old tree gets its own target directory: cargo names
# workspace artifacts by their path relative to the workspace, so two trees
# sharing one target directory would reuse each other's stale libraries.
# compare_use old|new puts that side's extension files in place.
compare_build() {
  local rev=$1
  libdir=$(pg_config --pkglibdir)
  extdir=$(pg_config --sharedir)/extension
  git -C "$root" worktree add --detach "$old_tree" "$rev" >/dev/null 2>&1
  old_name="old ($(git -C "$root" rev-parse --short "$rev"))"
  compare_build_one "$old_tree" old "$root/target/bench-old"
  compare_build_one "$root" new "$root/target"
}
compare_build_one() { # tree name target-dir
  (cd "$1" && CARGO_TARGET_DIR=$3 cargo build -q --release -p hookseal-cli)
  install -D -m 755 "$3/release/hookseal" "$work/$2/hookseal"
  (cd "$1/crates/hookseal-pg" && CARGO_TARGET_DIR=$3 \
     cargo pgrx install --release --pg-config /usr/bin/pg_config >/dev/null 2>&1)
  cp "$libdir/hookseal.so" "$work/$2/"
  cp "$extdir"/hookseal.control "$extdir"/hookseal--*.sql "$work/$2/"
}
compare_use() { # old|new
  install -m 755 "$work/$1/hookseal.so" "$libdir/hookseal.so"
  rm -f "$extdir"/hookseal--*.sql
  install -m 644 "$work/$1"/hookseal.control "$work/$1"/hookseal--*.sql "$extdir/"
}

# install_extension: the extension (debug build) into the server, with the
# released install scripts (0.1.0, 0.2.0) that tests start from (pgrx
# installs only the current version's script and the upgrade scripts).
install_extension() {
  (cd "$root/crates/hookseal-pg" && cargo pgrx install --pg-config /usr/bin/pg_config >/dev/null)
  install -m 644 "$root/sql/hookseal--0.1.0.sql" "$root/sql/hookseal--0.2.0.sql" "$(pg_config --sharedir)/extension/"
}

# The flavour a test runs on: HOOKSEAL_FLAVOUR, native (the default) or
# portable. flavour_check sets $flavour (and exits on another value);
# flavour_cluster DIR [lines...] is start_cluster with the flavour's preload
# (portable: nothing preloaded); flavour_install DB creates DB and installs
# hookseal of the flavour in it:
#   native    CREATE EXTENSION hookseal, as postgres;
#   portable  `hookseal install` as hookseal_owner (LOGIN CREATEROLE, not a
#             superuser, the database's owner: a managed provider's owner),
#             then a fresh sealing key pair (DIR/sealing.asc, made once per
#             cluster directory) registered, and HOOKSEAL_SEALING_KEY_FILE
#             exported for every dispatcher the test starts.
# Needs $root and the CLI built (target/debug/hookseal) for portable.
flavour_check() {
  flavour=${HOOKSEAL_FLAVOUR:-native}
  case $flavour in
    native|portable) ;;
    *) echo "HOOKSEAL_FLAVOUR: native or portable, not $flavour" >&2; exit 2 ;;
  esac
  export HOOKSEAL_TEST_FLAVOUR=$flavour
}
flavour_cluster() {
  local dir=$1; shift
  flavour_check
  if [ "$flavour" = portable ]; then
    start_cluster "$dir" "$@" "shared_preload_libraries = ''"
  else
    start_cluster "$dir" "$@"
  fi
  FLAVOUR_DIR=$dir
}
flavour_install() {
  local db=$1
  flavour_check
  if [ "$flavour" = native ]; then
    psql -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db"
    psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION hookseal"
    return
  fi
  local hs=$root/target/debug/hookseal key=${FLAVOUR_DIR:?flavour_cluster first}/sealing.asc
  psql -qX -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
SELECT 'CREATE ROLE hookseal_owner LOGIN CREATEROLE'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hookseal_owner') \gexec
CREATE DATABASE $db OWNER hookseal_owner;
SQL
  "$hs" install --database-url "postgres://hookseal_owner@127.0.0.1:$PGPORT/$db" >/dev/null
  [ -f "$key" ] || "$hs" keygen --sealing-key "$key" > "$key.pub"
  echo "SELECT hookseal.register_sealing_key(:'key')" |
    psql -qX -v ON_ERROR_STOP=1 -U hookseal_owner -d "$db" -v key="$(cat "$key.pub")" >/dev/null
  # No library of ours behind any function.
  [ "$(psql -qAtX -d "$db" -c "SELECT count(*) FROM pg_proc WHERE probin LIKE '%hookseal%'")" = 0 ]
  export HOOKSEAL_SEALING_KEY_FILE=$key
}
