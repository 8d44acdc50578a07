#!/usr/bin/env bash
# Load POST /v1/invites/validate with a valid code, beside the same server's
# GET /healthz in the same run; print req/s, p50/p95/p99 and the ratio.
# The target is p95 < 5 ms at 1,000 req/s: wrk runs closed-loop at full
# speed, so a p95 under 5 ms at a higher rate meets it with room to spare.
#   bench/invites.sh            (BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS to tune)
source "$(dirname "$0")/lib.sh"
need_wrk
build
CODE=$(tessera invite create --role member --max-uses 1000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
start_server
SCRIPT=$(wrk_post_script "{\"code\":\"$CODE\"}")
curl -fs -XPOST "$BASE/v1/invites/validate" -H 'content-type: application/json' -d "{\"code\":\"$CODE\"}" | grep -q '"valid":true'
compare "POST /v1/invites/validate" /v1/invites/validate "$SCRIPT"
