# shellcheck shell=bash
# Shared helpers for the load scripts in bench/: build, start a throwaway
# server on SQLite, run wrk against an endpoint, and report medians of rounds.
# Sourced, not run. Loads only 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Cargo's output directory: CARGO_TARGET_DIR when set (relative to the
# checkout, as cargo takes it there), else target/.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
# BENCH_PROFILE=debug runs a script end to end on a debug build (a smoke
# test of the script; its figures mean nothing).
PROFILE="${BENCH_PROFILE:-release}"
BIN="$TARGET_DIR/$PROFILE/tessera"
PORT="${BENCH_PORT:-18181}"
BASE="http://127.0.0.1:$PORT"
DURATION="${BENCH_DURATION:-5s}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
# wrk leaves a response slower than this out of the percentiles and counts it
# as a timeout error (2s is wrk's own default).
WRK_TIMEOUT="2s"
WORK="$(mktemp -d)"
SERVER_PID=""
# Every request comes from 127.0.0.1: the request rates of the route classes
# (login, refresh, invites, auth codes) would measure the limiter, not the
# endpoint. Set one (e.g. TESSERA_RATE_LIMIT_LOGIN=60/1m) to measure it.
for class in LOGIN LOGIN_USER REFRESH REFRESH_USER INVITES AUTH_CODES; do
  export "TESSERA_RATE_LIMIT_$class=$(printenv "TESSERA_RATE_LIMIT_$class" || echo off)"
done
# Load generators started in the background (bench/login_storm.sh).
BG_PIDS=()
# The PostgreSQL database bench_database created, dropped at exit.
DB_CREATED=""
DB_ADMIN_URL=""

cleanup() {
  local rc=$? pid
  if [ "$rc" -ne 0 ] && [ -s "$WORK/server.log" ]; then
    echo "--- the server's log (last 20 lines) ---" >&2
    tail -n 20 "$WORK/server.log" >&2
  fi
  for pid in "${BG_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DB_CREATED" ] && [ -z "${BENCH_KEEP_DATABASE:-}" ]; then
    psql "$DB_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS \"$DB_CREATED\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "could not drop database $DB_CREATED; drop it by hand" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null
  fi
}

build() {
  if [ "$PROFILE" = release ]; then
    (cd "$ROOT" && cargo build --release -q -p tessera)
  else
    (cd "$ROOT" && cargo build -q -p tessera)
  fi
}

tessera() {
  TESSERA_DATA_DIR="$WORK" TESSERA_LOG=warn "$BIN" "$@"
}

start_server() {
  TESSERA_DATA_DIR="$WORK" TESSERA_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "$BASE/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2
  cat "$WORK/server.log" >&2
  exit 1
}

# stop_server: stops the server start_server started (to start another on
# the same data, e.g. with other settings).
stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# metric NAME: the server's value of a metric without labels (0 if absent).
metric() {
  curl -fsS "$BASE/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}

# bench_database: SQLite in $WORK by default (a DATABASE_URL in the caller's
# environment is ignored, so a bench never writes to a real database).
# BENCH_DATABASE_URL=postgres://user@host:port/NAME runs on PostgreSQL
# instead: the database NAME is created for the run (it must not exist yet),
# migrated, and dropped at exit (BENCH_KEEP_DATABASE=1 keeps it). Needs psql.
# Sets DB_LABEL to "SQLite" or "PostgreSQL".
bench_database() {
  unset DATABASE_URL TESSERA_DATABASE_URL DB_DRIVER DB_HOST DB_PORT DB_USERNAME DB_PASSWORD DB_DATABASE
  # shellcheck disable=SC2034 # read by the scripts
  DB_LABEL="SQLite"
  [ -n "${BENCH_DATABASE_URL:-}" ] || return 0
  command -v psql >/dev/null || { echo "BENCH_DATABASE_URL needs psql" >&2; exit 1; }
  local parsed name
  parsed=$(python3 - "$BENCH_DATABASE_URL" <<'PY'
import re, sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
name = u.path.lstrip("/")
if u.scheme not in ("postgres", "postgresql") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
    sys.exit("BENCH_DATABASE_URL: expected postgres://user@host:port/NAME (NAME: letters, digits, _)")
print(name, urlunsplit(u._replace(path="/postgres")))
PY
  ) || exit 1
  read -r name DB_ADMIN_URL <<<"$parsed"
  if [ -n "$(psql "$DB_ADMIN_URL" -qAt -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
    echo "database $name already exists; name a new one (the bench creates and drops it)" >&2
    exit 1
  fi
  psql "$DB_ADMIN_URL" -qAt -c "CREATE DATABASE \"$name\"" >/dev/null
  DB_CREATED="$name"
  export TESSERA_DATABASE_URL="$BENCH_DATABASE_URL"
  export TESSERA_ENC_KEY="${TESSERA_ENC_KEY:-bench-encryption-key-0123456789abcdef}"
  tessera migrate >/dev/null
  # shellcheck disable=SC2034
  DB_LABEL="PostgreSQL"
}

# Every script ends by printing exact percentiles (wrk's own table has no p95).
PERCENTILES_LUA='
done = function(summary, latency, requests)
  io.write(string.format("PCT %d %d %d\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end'

# wrk_post_script JSON_BODY: a Lua script that POSTs the body.
wrk_post_script() {
  local body="$1" file
  file="$(mktemp -p "$WORK" post-XXXX.lua)"
  cat >"$file" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
$PERCENTILES_LUA
LUA
  echo "$file"
}

wrk_get_script() {
  local file
  file="$(mktemp -p "$WORK" get-XXXX.lua)"
  echo "$PERCENTILES_LUA" >"$file"
  echo "$file"
}

# run_wrk PATH [LUA]: prints "rps p50_ms p95_ms p99_ms errors" for one round.
run_wrk() {
  local path="$1" script="${2:-$(wrk_get_script)}"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout "$WRK_TIMEOUT" -s "$script" "$BASE$path" |
    python3 "$ROOT/bench/parse_wrk.py"
}

# compare LABEL PATH SCRIPT: alternates rounds of /healthz and the target,
# then prints medians and the ratio target/healthz.
compare() {
  local label="$1" path="$2" script="$3"
  : >"$WORK/base.txt"; : >"$WORK/target.txt"
  for i in $(seq 1 "$ROUNDS"); do
    run_wrk /healthz >>"$WORK/base.txt"
    run_wrk "$path" "$script" >>"$WORK/target.txt"
    echo "round $i/$ROUNDS done" >&2
  done
  python3 "$ROOT/bench/report.py" "$label" "$WORK/base.txt" "$WORK/target.txt"
}
