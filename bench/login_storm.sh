#!/usr/bin/env bash
# Does a login storm slow everything else down? Alternating rounds, on one
# server: quiet (GET /healthz, then POST /v1/tokens/verify with a valid API
# token, as bench/verify.sh), and the same two under a storm: a second wrk
# keeps BENCH_LOGIN_CLIENTS (32) clients logging in with the right password
# throughout (each login is an Argon2id hash on the bounded hashing pool).
# A 503 to a login is the pool's designed back-pressure (its queue is full),
# counted, not an error; any other non-200 is.
#   bench/login_storm.sh   (BENCH_ROUNDS, BENCH_DURATION in seconds, BENCH_CONNECTIONS of the probe,
#                           BENCH_LOGIN_CLIENTS, BENCH_LOGIN_THREADS; TESSERA_PASSWORD_HASH_THREADS/_QUEUE)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sessions.sh"
LOGIN_CLIENTS="${BENCH_LOGIN_CLIENTS:-32}"
LOGIN_THREADS="${BENCH_LOGIN_THREADS:-1}"
SECS="${DURATION%s}"
case "$SECS" in '' | *[!0-9]*) echo "BENCH_DURATION must be whole seconds (5s), got $DURATION" >&2; exit 1 ;; esac
need_wrk
build
bench_database
ADMIN=$(admin_token)
SECRET=$(tessera token create --name bench --json | json_field secret)
start_server
create_user "$ADMIN"
curl -fsS -XPOST "$BASE/v1/auth/login" -H 'content-type: application/json' -d "$(login_body)" | grep -q '"refresh_token"'
curl -fsS -XPOST "$BASE/v1/tokens/verify" -H 'content-type: application/json' -d "{\"token\":\"$SECRET\"}" | grep -q '"valid":true'
VERIFY=$(wrk_post_script "{\"token\":\"$SECRET\"}")
LOGIN=$(login_script)
for f in quiet-health quiet-verify storm-health storm-verify storm-login; do : >"$WORK/$f.txt"; done

probe() { # probe PREFIX: one round of each endpoint
  run_wrk /healthz >>"$WORK/$1-health.txt"
  run_wrk /v1/tokens/verify "$VERIFY" >>"$WORK/$1-verify.txt"
}

for i in $(seq 1 "$ROUNDS"); do
  probe quiet
  # The storm starts a second early (the hashing queue fills) and outlasts
  # both probes. A login waits its turn in the hashing queue (about two
  # seconds when 32 wait): wrk's 2 s default timeout would leave those out of
  # the percentiles and count them as socket errors.
  wrk -t"$LOGIN_THREADS" -c"$LOGIN_CLIENTS" -d"$((2 * SECS + 2))s" --timeout 30s -s "$LOGIN" \
    "$BASE/v1/auth/login" >"$WORK/storm.out" &
  BG_PIDS=("$!")
  sleep 1
  probe storm
  wait "${BG_PIDS[0]}"
  BG_PIDS=()
  python3 "$ROOT/bench/parse_wrk.py" <"$WORK/storm.out" >>"$WORK/storm-login.txt"
  echo "round $i/$ROUNDS done" >&2
done
QUIET="quiet"
STORM="$LOGIN_CLIENTS clients logging in"
python3 "$ROOT/bench/table.py" Load \
  "$QUIET|GET /healthz|$WORK/quiet-health.txt" \
  "$QUIET|POST /v1/tokens/verify|$WORK/quiet-verify.txt" \
  "$STORM|GET /healthz|$WORK/storm-health.txt|p99<10" \
  "$STORM|POST /v1/tokens/verify|$WORK/storm-verify.txt|p99<10" \
  "$STORM|POST /v1/auth/login|$WORK/storm-login.txt|ok=200,503;noratio"
