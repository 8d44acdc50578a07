#!/usr/bin/env bash
# Token introspection (RFC 7662) by a resource server with HTTP Basic client
# authentication, beside the same server's GET /healthz in the same run
# (alternating rounds), in two shapes:
#   - one access token asked about again and again (the verified-signature
#     and session-state caches answer; the session is still checked each call);
#   - 10,000 distinct access tokens of 10,000 sessions, taken in turn (the
#     first pass verifies each signature and reads each session once).
# Every answer must be 200 with "active":true: an inactive answer is counted
# as the pseudo status 520 and fails the run.
#   bench/introspect.sh                  (SQLite; BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS,
#                                         BENCH_TOKENS to tune)
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench_introspect bench/introspect.sh
#                                        (PostgreSQL: the database is created for the run and dropped after)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sessions.sh"
TOKENS="${BENCH_TOKENS:-10000}"
CLIENT_ID="bench-rs"
CLIENT_SECRET="bench-rs-secret-0123456789"
export INTROSPECTION_CLIENTS="$CLIENT_ID:$CLIENT_SECRET"
BASIC="$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
need_wrk
build
bench_database
ADMIN=$(admin_token)
start_server

# open_sessions N FILE: N sessions opened by the admin for subjects of the
# application (no password hashing), their access tokens in FILE, one a line.
open_sessions() {
  python3 - "$BASE" "$ADMIN" "$1" "$2" <<'PY'
import http.client, json, sys
from urllib.parse import urlsplit
base, admin, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
u = urlsplit(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
headers = {"authorization": "Bearer " + admin, "content-type": "application/json"}
with open(out, "w") as f:
    for i in range(n):
        conn.request("POST", "/v1/sessions", json.dumps({"subject": f"bench-{i}"}), headers)
        r = conn.getresponse()
        body = r.read()
        if r.status != 201:
            sys.exit(f"opening session {i}: {r.status} {body[:200]!r}")
        f.write(json.loads(body)["access_token"] + "\n")
PY
}

# introspect_script TOKENS_FILE: every request introspects the next token of
# the file (thread i of T takes lines i, i+T, …, round and round; with fewer
# lines than threads, every thread takes them all).
introspect_script() {
  local tokens="$1" file
  file="$(mktemp -p "$WORK" introspect-XXXX.lua)"
  cat >"$file" <<LUA
local tokens_file, nthreads = "$tokens", $THREADS
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
$CODES_LUA
init = function(args)
  tokens, all, n, next_at = {}, {}, 0, 1
  for line in io.lines(tokens_file) do
    if n % nthreads == (index or 1) - 1 then table.insert(tokens, line) end
    table.insert(all, line)
    n = n + 1
  end
  if #tokens == 0 then tokens = all end
end
request = function()
  local token = tokens[next_at]
  next_at = next_at % #tokens + 1
  return wrk.format(nil, nil, nil, "token=" .. token)
end
response = function(status, headers, body)
  if status == 200 and not body:find('"active":true', 1, true) then status = 520 end
  count(status)
end
LUA
  echo "$file"
}

open_sessions 1 "$WORK/one.txt"
open_sessions "$TOKENS" "$WORK/many.txt"
echo "opened $TOKENS sessions" >&2
ONE="$(introspect_script "$WORK/one.txt")"
MANY="$(introspect_script "$WORK/many.txt")"
: >"$WORK/base.txt"; : >"$WORK/one.out"; : >"$WORK/many.out"
for i in $(seq 1 "$ROUNDS"); do
  run_wrk /healthz >>"$WORK/base.txt"
  run_wrk /oauth2/introspect "$ONE" >>"$WORK/one.out"
  run_wrk /oauth2/introspect "$MANY" >>"$WORK/many.out"
  echo "round $i/$ROUNDS done" >&2
done
python3 "$ROOT/bench/table.py" Database \
  "$DB_LABEL|GET /healthz|$WORK/base.txt" \
  "$DB_LABEL|POST /oauth2/introspect (one token)|$WORK/one.out|ratio>=0.5;p99<5" \
  "$DB_LABEL|POST /oauth2/introspect ($TOKENS tokens)|$WORK/many.out|ratio>=0.1;p99<10"
