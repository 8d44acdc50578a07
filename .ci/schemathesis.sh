#!/usr/bin/env bash
# schemathesis against the live server's /openapi.json, once on SQLite and
# once on PostgreSQL, with every check on: any 5xx, undeclared status or
# content type, or schema mismatch fails. Run alone with `.ci/schemathesis.sh`
# (uses $TESSERA_BIN, by default target/debug/tessera, built if missing; PostgreSQL at
# $TESSERA_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test).
# SCHEMATHESIS_MAX_EXAMPLES (default 10) bounds the examples per operation;
# SCHEMATHESIS_BACKENDS (default "sqlite postgres") picks the databases;
# SCHEMATHESIS_SEED (default 1) the seed, so that CI is repeatable and other
# seeds can be tried by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-10}"
backends="${SCHEMATHESIS_BACKENDS:-sqlite postgres}"
seed="${SCHEMATHESIS_SEED:-1}"
pg_url="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
started=$SECONDS

if [ "$(schemathesis --version 2>/dev/null || true)" != "schemathesis, version $version" ]; then
  echo "installing schemathesis $version"
  python3 -m pip install -q "schemathesis==$version" >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages "schemathesis==$version"
fi
# .ci/run passes its instrumented binary; alone, target/debug/tessera is
# built if it is missing.
bin="${TESSERA_BIN:-target/debug/tessera}"
[ -x "$bin" ] || cargo build -q --bin tessera

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The only place generated webhook endpoints may point at (see
# .ci/schemathesis/hooks.py): a local receiver that accepts every delivery.
receiver_port=18942
python3 -c '
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
' "$receiver_port" &
pids+=($!)
export SCHEMATHESIS_WEBHOOK_RECEIVER="http://127.0.0.1:$receiver_port/hook"

# The server under test: limits raised (or off) so that hundreds of requests
# from one client test the API rather than the limiter; 429 is still declared
# and checked wherever it can occur.
export TESSERA_LOG=warn \
  TESSERA_ENC_KEY="schemathesis-encryption-key-0123456789abcdef" \
  TOTP_ENC_KEY="schemathesis-totp-key-0123456789abcdef0123" \
  TESSERA_INVITE_FAILURE_LIMIT=0 \
  TESSERA_INVITE_DAILY_QUOTA=0 \
  TESSERA_AUTH_CODE_LIMIT_PER_SUBJECT=10000 \
  TESSERA_AUTH_CODE_LIMIT_PER_DESTINATION=10000 \
  TESSERA_VERIFY_FAILURE_LIMIT_PER_MINUTE=0 \
  TESSERA_RATE_LIMIT_LOGIN=off \
  TESSERA_RATE_LIMIT_LOGIN_USER=off \
  TESSERA_RATE_LIMIT_REFRESH=off \
  TESSERA_RATE_LIMIT_REFRESH_USER=off \
  TESSERA_RATE_LIMIT_INVITES=off \
  TESSERA_RATE_LIMIT_AUTH_CODES=off \
  TESSERA_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true \
  TESSERA_WEBHOOK_RETRY_SCHEDULE=1s \
  SCHEMATHESIS_CLIENT_ID=schemathesis-rs \
  SCHEMATHESIS_CLIENT_SECRET=schemathesis-rs-secret-0123456789
# The resource server schemathesis authenticates as on /oauth2/*.
export INTROSPECTION_CLIENTS="$SCHEMATHESIS_CLIENT_ID:$SCHEMATHESIS_CLIENT_SECRET"
unset DATABASE_URL TESSERA_DATABASE_URL

status=0
port=18941
for backend in $backends; do
  echo "-- schemathesis on $backend"
  data="$work/$backend"
  mkdir -p "$data"
  export TESSERA_DATA_DIR="$data"
  if [ "$backend" = postgres ]; then
    admin_url="${pg_url%/*}/postgres"
    psql "$admin_url" -qAt -c "DROP DATABASE IF EXISTS tessera_schemathesis WITH (FORCE)" >/dev/null
    psql "$admin_url" -qAt -c "CREATE DATABASE tessera_schemathesis" >/dev/null
    export TESSERA_DATABASE_URL="${pg_url%/*}/tessera_schemathesis"
    "$bin" migrate >/dev/null
  else
    unset TESSERA_DATABASE_URL
  fi
  created="$("$bin" token create --name schemathesis --scopes admin,mfa,upstream:read,upstream:admin --expires-in 1d --json)"
  token="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["secret"])' "$created")"
  token_id="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["token"]["id"])' "$created")"
  "$bin" serve --listen "127.0.0.1:$port" >"$data/serve.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

  # One worker: with two, CPython 3.11's ast module (which hypothesis uses to
  # describe its strategies) races between threads and raises
  # "AST constructor recursion depth mismatch".
  if ! SCHEMATHESIS_HOOKS=hooks SCHEMATHESIS_TOKEN="$token" SCHEMATHESIS_TOKEN_ID="$token_id" PYTHONPATH=.ci/schemathesis \
    schemathesis --config-file .ci/schemathesis/schemathesis.toml run \
    "http://127.0.0.1:$port/openapi.json" \
    --checks all --max-examples "$max_examples" --seed "$seed" --workers 1 \
    --no-color --report ndjson --report-dir "$data/report"; then
    status=1
    echo "schemathesis on $backend: failures (server log follows)"
    tail -n 50 "$data/serve.log"
  fi
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if grep -q "panicked" "$data/serve.log"; then
    echo "schemathesis on $backend: the server panicked"
    grep -m5 -A3 "panicked" "$data/serve.log"
    status=1
  fi
done
if [ "$status" = 0 ]; then
  echo "schemathesis: 0 failures on: $backends ($((SECONDS - started)) s)"
else
  echo "schemathesis: FAILED ($((SECONDS - started)) s)"
fi
exit "$status"
