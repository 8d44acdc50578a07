# shellcheck shell=bash
# Helpers for the session benches (bench/refresh.sh, bench/login_storm.sh):
# a person to log in as, sessions opened over HTTP, and wrk Lua scripts that
# count status codes. Sourced after lib.sh, not run.

BENCH_EMAIL="load@bench.example"
# Meets the password policy (12+ characters, not common, not from the e-mail).
BENCH_PASSWORD="Orbit-Walnut-Lantern-4821"

# Logins from 127.0.0.1 all share one IP and one account; the benches use
# right passwords, so nothing should be throttled, but reservations are taken
# before the hash is checked: keep the limits far above the concurrency.
export TESSERA_LOGIN_MAX_FAILURES="${TESSERA_LOGIN_MAX_FAILURES:-10000}"
export TESSERA_LOGIN_IP_MAX_FAILURES="${TESSERA_LOGIN_IP_MAX_FAILURES:-1000000}"
# No scheduled jobs in the figures (as bench/totp.sh).
export TESSERA_JOBS_ENABLED=false

json_field() {
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# admin_token: an API token with scope admin, from the CLI (no server needed).
admin_token() {
  tessera token create --name bench-admin --scopes admin --json | json_field secret
}

# create_user ADMIN_SECRET: the person the benches log in as.
create_user() {
  curl -fsS -XPOST "$BASE/v1/users" -H "authorization: Bearer $1" -H 'content-type: application/json' \
    -d "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\",\"email_verified\":true}" >/dev/null
}

login_body() {
  echo "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}"
}

# login_sessions N FILE: opens N sessions (N logins), writes their refresh
# tokens to FILE, one a line.
login_sessions() {
  local n="$1" file="$2" i
  : >"$WORK/logins.json"
  for i in $(seq 1 "$n"); do
    curl -fsS -XPOST "$BASE/v1/auth/login" -H 'content-type: application/json' -d "$(login_body)" \
      >>"$WORK/logins.json" || { echo "login $i failed" >&2; exit 1; }
    echo >>"$WORK/logins.json"
  done
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.strip():
        print(json.loads(line)["refresh_token"])' "$WORK/logins.json" >"$file"
  [ "$(wc -l <"$file")" -eq "$n" ]
}

# Lua shared by the scripts below: keeps each thread (for done) and counts
# status codes per thread; done prints `CODES 200=n …` and the percentiles.
CODES_LUA='
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("index", #threads)
end
codes = {}
count = function(status) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  local all, parts = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
  end
  for k, v in pairs(all) do table.insert(parts, k .. "=" .. v) end
  io.write("CODES " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("PCT %d %d %d\n", latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end'

# login_script: every request logs in with the right password.
login_script() {
  local file
  file="$(mktemp -p "$WORK" login-XXXX.lua)"
  cat >"$file" <<LUA
wrk.method = "POST"
wrk.body = '$(login_body)'
wrk.headers["Content-Type"] = "application/json"
$CODES_LUA
response = function(status, headers, body) count(status) end
LUA
  echo "$file"
}

# refresh_script TOKENS_FILE: every request refreshes a session with that
# session's latest refresh token.
#
# wrk's Lua has no per-connection state, and the connection whose response
# just arrived is not necessarily the next to call request(). So each thread
# keeps a queue of its sessions' current tokens: request() takes the oldest,
# response() appends the new one from the body. Without pipelining each
# connection has one request in flight, so a thread with as many sessions as
# connections always has a token ready, and each session's refreshes are
# strictly sequential (its token is in the queue or in exactly one request,
# never both). Thread i of T gets lines i, i+T, … of TOKENS_FILE.
#
# A non-200 loses that session's chain; a request that then finds the queue
# empty sends a refresh token that cannot exist, so a broken chain keeps
# showing as 400s rather than silently lowering the rate.
refresh_script() {
  local tokens="$1" file
  file="$(mktemp -p "$WORK" refresh-XXXX.lua)"
  cat >"$file" <<LUA
local tokens_file, nthreads = "$tokens", $THREADS
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
$CODES_LUA
init = function(args)
  queue, head, tail = {}, 1, 1
  local n = 0
  for line in io.lines(tokens_file) do
    if n % nthreads == index - 1 then queue[tail] = line; tail = tail + 1 end
    n = n + 1
  end
  -- wrk 4 calls request() once in the first thread to check the script and
  -- discards the result: that call must not use up a token.
  checking = (index == 1)
end
request = function()
  local token
  if checking then
    checking = false
    token = queue[head]
  elseif head < tail then
    token = queue[head]; queue[head] = nil; head = head + 1
  else
    token = "tsr_rt_broken_chain"
  end
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end
response = function(status, headers, body)
  count(status)
  if status == 200 then
    local t = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if t then queue[tail] = t; tail = tail + 1 end
  end
end
LUA
  echo "$file"
}
