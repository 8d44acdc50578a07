#!/usr/bin/env bash
# Webhook delivery throughput: N events are written straight into the outbox
# of a stopped server, then the server starts and delivers them (fan-out,
# signing, POST, recording each attempt) to a local receiver. Prints events
# delivered per second, median of rounds. Target: >= 1,000/s.
#   bench/webhooks.sh        (BENCH_EVENTS, default 5000; BENCH_ROUNDS, default 3)
source "$(dirname "$0")/lib.sh"
EVENTS="${BENCH_EVENTS:-5000}"
SINK_ADDR="127.0.0.1:18182"
build
(cd "$ROOT" && cargo build --release -q -p tessera-server --example webhook_sink)
"$ROOT/target/release/examples/webhook_sink" "$SINK_ADDR" &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null || true; cleanup' EXIT
rates=()
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/db" && mkdir -p "$WORK/db"
  export TESSERA_DATA_DIR="$WORK/db" TESSERA_LOG=warn TESSERA_JOBS_ENABLED=false TESSERA_WEBHOOK_POLL_INTERVAL=20ms
  "$BIN" webhooks endpoints create --url "http://$SINK_ADDR/hook" --json >/dev/null 2>&1
  before=$(curl -fs "http://$SINK_ADDR/count")
  python3 - "$WORK/db/tessera.db" "$EVENTS" <<'PY'
import json, sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
now = int(time.time() * 1000)
rows = []
for i in range(n):
    eid = str(uuid.uuid4())
    rows.append((eid, "revoked", json.dumps({"event": "revoked", "id": eid}), now))
con.executemany("INSERT INTO outbox_events (id, event_type, payload, payload_sealed, created_at) VALUES (?, ?, ?, 0, ?)", rows)
con.commit()
PY
  start=$(date +%s.%N)
  "$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  target=$((before + EVENTS))
  while [ "$(curl -fs "http://$SINK_ADDR/count")" -lt "$target" ]; do sleep 0.05; done
  end=$(date +%s.%N)
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  rate=$(python3 -c "print(round($EVENTS / ($end - $start)))")
  echo "round $round/$ROUNDS: $EVENTS events in $(python3 -c "print(round($end - $start, 2))") s = $rate events/s" >&2
  rates+=("$rate")
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "webhook delivery: median $median events/s over ${#rates[@]} rounds of $EVENTS events (includes server start-up)"
