# Shared helpers for the load scripts in bench/: build, start a throwaway
# server on SQLite, run wrk against an endpoint, and report medians of rounds.
# Sourced, not run. Loads only 127.0.0.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release/tessera"
PORT="${BENCH_PORT:-18181}"
BASE="http://127.0.0.1:$PORT"
DURATION="${BENCH_DURATION:-5s}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
WORK="$(mktemp -d)"
SERVER_PID=""

cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null
  fi
}

build() {
  (cd "$ROOT" && cargo build --release -q -p tessera)
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
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$script" "$BASE$path" | python3 "$ROOT/bench/parse_wrk.py"
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
