#!/usr/bin/env bash
# Token verification (POST /v1/tokens/verify) beside the same server's
# GET /healthz in the same run (alternating rounds), in the shapes of issue
# 16's acceptance, on one SQLite database and two servers in turn:
#   in process (no REDIS_URI)
#     - a token without controls, unauthenticated caller (target >= 0.6 x /healthz);
#     - the same token, verified by an authenticated caller (an admin token as
#       bearer): what the caller's own authentication costs (no target);
#     - a token with a rate limit, authenticated caller (controls are honoured
#       only for one), on the in-process limiter (target >= 0.5 x);
#   with REDIS_URI (BENCH_REDIS_URI, default redis://127.0.0.1:6379)
#     - a token with a rate limit, authenticated caller, on the Redis-backed
#       limiter (target >= 0.25 x);
#     - the token without controls, unauthenticated: its failure limit per
#       client address is then in Redis too (no target of its own).
# The limit (1,000,000,000 per 366 days) never refuses during a run, but
# counts: after each limited row, one more verify shows how many uses the
# limit counted, which must be the valid answers wrk received (less the
# limit's refill meanwhile).
# Every answer must be 200 with "valid":true: any other answer (a
# RATE_LIMITED one included) is counted as the pseudo status 520 and fails
# the run. The targets are reported (PASS/FAIL), and enforced (exit 3) only
# with BENCH_ENFORCE=1: the machines are shared and noisy.
#   bench/verify.sh          (BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS to tune;
#                             BENCH_REDIS_URI for another Redis)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sessions.sh"
REDIS="${BENCH_REDIS_URI:-redis://127.0.0.1:6379}"
LIMIT=1000000000
RATELIMIT="bench:$LIMIT/366d"
need_wrk
build
bench_database
unset REDIS_URI TESSERA_REDIS_URI
ADMIN=$(admin_token)
new_token() {
  tessera token create --name "bench-$1" "${@:2}" --json | json_field secret
}
PLAIN=$(new_token plain)
LIMITED_MEMORY=$(new_token limited-memory --ratelimit "$RATELIMIT")
# Its own token, so the Redis key (the token's id) is new in every run.
LIMITED_REDIS=$(new_token limited-redis --ratelimit "$RATELIMIT")

# verify_script SECRET [BEARER]: every request verifies SECRET (as BEARER's
# holder when given); a 200 that is not "valid":true counts as status 520.
verify_script() {
  local secret="$1" auth="" file
  [ -z "${2:-}" ] || auth="wrk.headers[\"Authorization\"] = \"Bearer $2\""
  file="$(mktemp -p "$WORK" verify-XXXX.lua)"
  cat >"$file" <<LUA
wrk.method = "POST"
wrk.body = '{"token":"$secret"}'
wrk.headers["Content-Type"] = "application/json"
$auth
$CODES_LUA
response = function(status, headers, body)
  if status == 200 and not body:find('"valid":true', 1, true) then status = 520 end
  count(status)
end
LUA
  echo "$file"
}

# verify_once SECRET [BEARER]: one verification's answer (JSON).
verify_once() {
  curl -fsS -XPOST "$BASE/v1/tokens/verify" -H 'content-type: application/json' \
    ${2:+-H "authorization: Bearer $2"} -d "{\"token\":\"$1\"}"
}

# expect_valid LABEL SECRET [BEARER]: one verification must be valid.
expect_valid() {
  local answer
  answer=$(verify_once "${@:2}")
  grep -q '"valid":true' <<<"$answer" || { echo "$1: not valid: $answer" >&2; exit 1; }
}

# limit_counted LABEL SECRET OUT SINCE: after a limited row, one more verify
# must be valid, and the limit must have counted the valid answers that wrk
# received (OUT: the row's rounds) since SINCE (epoch seconds), less what it
# refilled meanwhile (its 1,000,000,000 per 366 days are about 32 a second);
# prints both. Uses in flight when wrk stopped are counted, not received.
limit_counted() {
  local answer
  answer=$(verify_once "$2" "$ADMIN")
  python3 - "$1" "$LIMIT" "$3" "$4" "$answer" <<'PY'
import json, sys, time
label, limit, out, since, answer = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), json.loads(sys.argv[5])
valid = sum(int(kv.split(":")[1]) for line in open(out) for part in line.split()
            if part.startswith("codes=") for kv in part[6:].split(",") if kv.startswith("200:"))
state = answer.get("ratelimit") or {}
if not answer.get("valid") or state.get("limit") != limit:
    sys.exit(f"{label}: after the run the token did not verify with its limit: {answer}")
counted = limit - state["remaining"]
elapsed = time.time() - since
refilled = limit / (366 * 86400) * elapsed
print(f"{label}: the limit counted {counted:,} uses (and refilled {refilled:,.0f} in {elapsed:.0f} s) "
      f"for {valid:,} valid answers")
if counted + refilled < valid * 0.999:
    sys.exit(f"{label}: the limit counted fewer uses than were answered")
PY
}

# rounds OUT_PREFIX NAME...: BENCH_ROUNDS rounds of /healthz and then each
# named row (its wrk script: SCRIPTS[NAME]), into OUT_PREFIX.healthz and
# OUT_PREFIX.NAME. A round during which the server answered rate-limit
# checks in its own memory because Redis failed (a reply slower than its
# 100 ms budget, as on an overloaded machine; Redis is then skipped until a
# probe every 2 s finds it again) measured neither store: it is dropped and
# run again once Redis is back, at most MAX_REDONE times in a run.
MAX_REDONE=3
REDONE=0
rounds() {
  local prefix="$1" name done=0 before
  shift
  for name in healthz "$@"; do : >"$prefix.$name"; done
  while [ "$done" -lt "$ROUNDS" ]; do
    before=$(metric tokens_rate_limiter_fallback_total)
    run_wrk /healthz >"$WORK/round.healthz"
    for name in "$@"; do
      run_wrk /v1/tokens/verify "${SCRIPTS[$name]}" >"$WORK/round.$name"
    done
    if [ "$(metric tokens_rate_limiter_fallback_total)" != "$before" ]; then
      REDONE=$((REDONE + 1))
      [ "$REDONE" -le "$MAX_REDONE" ] ||
        { echo "Redis failed in more than $MAX_REDONE rounds; is $REDIS up?" >&2; exit 1; }
      echo "$prefix: Redis failed during the round (see the server's log); running it again" >&2
      wait_for_redis
      continue
    fi
    for name in healthz "$@"; do cat "$WORK/round.$name" >>"$prefix.$name"; done
    done=$((done + 1))
    echo "$prefix: round $done/$ROUNDS done" >&2
  done
}

# wait_for_redis: until the server uses Redis again (at most 10 s).
wait_for_redis() {
  for _ in $(seq 1 100); do
    [ "$(metric tokens_rate_limiter_fallback)" = 0 ] && return 0
    sleep 0.1
  done
  echo "the server did not get Redis back within 10 s" >&2
  exit 1
}

declare -A SCRIPTS=(
  [plain]="$(verify_script "$PLAIN")"
  [plain_auth]="$(verify_script "$PLAIN" "$ADMIN")"
  [memory]="$(verify_script "$LIMITED_MEMORY" "$ADMIN")"
  [redis]="$(verify_script "$LIMITED_REDIS" "$ADMIN")"
)

# 1. In process.
start_server
expect_valid "no controls" "$PLAIN"
expect_valid "no controls, authenticated" "$PLAIN" "$ADMIN"
expect_valid "rate limit (in process)" "$LIMITED_MEMORY" "$ADMIN"
verify_once "$LIMITED_MEMORY" | grep -q CALLER_NOT_AUTHORIZED ||
  { echo "a token with a rate limit verified for an unauthenticated caller" >&2; exit 1; }
SINCE=$(date +%s.%N)
rounds "$WORK/memory" plain plain_auth memory
MEMORY_COUNT=$(limit_counted "rate limit (in process)" "$LIMITED_MEMORY" "$WORK/memory.memory" "$SINCE")
stop_server

# 2. With Redis. A key prefix of its own keeps this run's failure-limit
# buckets apart from any earlier run's.
export REDIS_URI="$REDIS"
TESSERA_RATE_LIMIT_REDIS_PREFIX="tessera-bench-$(date +%s)-$$:"
export TESSERA_RATE_LIMIT_REDIS_PREFIX
start_server
expect_valid "rate limit (Redis)" "$LIMITED_REDIS" "$ADMIN"
expect_valid "no controls (Redis)" "$PLAIN"
[ "$(metric tokens_rate_limiter_fallback_total)" = 0 ] ||
  { echo "the server could not use Redis at $REDIS (see its log)" >&2; exit 1; }
SINCE=$(date +%s.%N)
rounds "$WORK/redis" redis plain
REDIS_COUNT=$(limit_counted "rate limit (Redis)" "$LIMITED_REDIS" "$WORK/redis.redis" "$SINCE")

echo "$MEMORY_COUNT"
echo "$REDIS_COUNT"
echo "rounds run again because Redis failed during them: $REDONE"
IN_PROCESS="in process"
SHARED="REDIS_URI"
python3 "$ROOT/bench/table.py" Limiter \
  "$IN_PROCESS|GET /healthz|$WORK/memory.healthz" \
  "$IN_PROCESS|POST /v1/tokens/verify (no controls)|$WORK/memory.plain|ratio>=0.6" \
  "$IN_PROCESS|POST /v1/tokens/verify (no controls, admin bearer)|$WORK/memory.plain_auth" \
  "$IN_PROCESS|POST /v1/tokens/verify (rate limit, admin bearer)|$WORK/memory.memory|ratio>=0.5" \
  "$SHARED|GET /healthz|$WORK/redis.healthz" \
  "$SHARED|POST /v1/tokens/verify (rate limit, admin bearer)|$WORK/redis.redis|ratio>=0.25" \
  "$SHARED|POST /v1/tokens/verify (no controls)|$WORK/redis.plain"
