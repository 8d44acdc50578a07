#!/usr/bin/env bash
# Refresh-token rotation under load, beside the same server's GET /healthz in
# the same run (alternating rounds). Before each refresh round one user opens
# as many sessions as wrk has connections (fresh ones: the last refresh of a
# round may have rotated a token wrk never saw); then every request refreshes
# one of them with its latest refresh token, one request in flight per
# session. Every answer must be 200: a 400 means a chain broke (a token
# presented twice revokes its family).
#   bench/refresh.sh                     (SQLite; BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNECTIONS to tune)
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tessera_bench_refresh bench/refresh.sh
#                                        (PostgreSQL: the database is created for the run and dropped after)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sessions.sh"
need_wrk
build
bench_database
ADMIN=$(admin_token)
start_server
create_user "$ADMIN"
if [ "$DB_LABEL" = PostgreSQL ]; then
  CHECKS="rps>=1000;p99<50"
else
  CHECKS="rps>=800;p99<150"
fi
: >"$WORK/base.txt"; : >"$WORK/target.txt"
for i in $(seq 1 "$ROUNDS"); do
  login_sessions "$CONNECTIONS" "$WORK/tokens.txt"
  run_wrk /healthz >>"$WORK/base.txt"
  # A slow refresh is still a refresh: keep it in the percentiles.
  WRK_TIMEOUT=30s run_wrk /v1/auth/refresh "$(refresh_script "$WORK/tokens.txt")" >>"$WORK/target.txt"
  echo "round $i/$ROUNDS done" >&2
done
python3 "$ROOT/bench/table.py" Database \
  "$DB_LABEL|GET /healthz|$WORK/base.txt" \
  "$DB_LABEL|POST /v1/auth/refresh|$WORK/target.txt|$CHECKS"
