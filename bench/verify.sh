#!/usr/bin/env bash
# Load POST /v1/tokens/verify with a valid token, beside the same server's
# GET /healthz in the same run, and print req/s, p50/p99 and the ratio.
#   bench/verify.sh            (BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS to tune)
source "$(dirname "$0")/lib.sh"
need_wrk
build
SECRET=$(tessera token create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
start_server
SCRIPT=$(wrk_post_script "{\"token\":\"$SECRET\"}")
curl -fs -XPOST "$BASE/v1/tokens/verify" -H 'content-type: application/json' -d "{\"token\":\"$SECRET\"}" | grep -q '"valid":true'
compare "POST /v1/tokens/verify" /v1/tokens/verify "$SCRIPT"
