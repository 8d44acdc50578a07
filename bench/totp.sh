#!/usr/bin/env bash
# TOTP verification over HTTP, against the same server's /healthz in the same
# run. Each round enrols fresh subjects (a code is accepted once per step per
# subject, so every request is a first, valid verification: one device read,
# an attempt reservation and the atomic replay check + audit + event write).
#   bench/totp.sh   (BENCH_SUBJECTS per round, default 2000; BENCH_ROUNDS, 3; BENCH_CONNECTIONS, 32)
#   DATABASE_URL=postgres://postgres@127.0.0.1/tessera_bench bench/totp.sh   (on PostgreSQL)
source "$(dirname "$0")/lib.sh"
SUBJECTS="${BENCH_SUBJECTS:-2000}"
build
(cd "$ROOT" && cargo build --release -q -p tessera-server --example totp_load)
export TOTP_ENC_KEY="bench-totp-key-0123456789abcdef0123456789"
export TESSERA_JOBS_ENABLED=false
# DATABASE_URL=postgres://… runs the same load on PostgreSQL (use an empty database).
if [ -n "${DATABASE_URL:-}" ]; then
  export TESSERA_ENC_KEY="${TESSERA_ENC_KEY:-bench-encryption-key-0123456789abcdef}"
  tessera migrate >/dev/null
fi
token=$(tessera token create --name bench --scopes mfa --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
start_server
"$TARGET_DIR/release/examples/totp_load" "$BASE" "$token" "$SUBJECTS" "$ROUNDS" "$CONNECTIONS" >"$WORK/rounds.txt"
python3 - "$WORK/rounds.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    name = " ".join(parts[2:-4])
    rows.setdefault(name, []).append([float(x) for x in parts[-4:]])
med = {k: [statistics.median(c) for c in zip(*v)] for k, v in rows.items()}
base = med["GET /healthz"][0]
print("| endpoint | req/s | p50 | p95 | p99 | ratio to /healthz |")
print("|---|---|---|---|---|---|")
for name, (rps, p50, p95, p99) in med.items():
    ratio = "" if name == "GET /healthz" else f"**{rps / base:.2f}**"
    print(f"| `{name}` | {rps:,.0f} | {p50:.2f} ms | {p95:.2f} ms | {p99:.2f} ms | {ratio} |")
print(f"(medians of {len(next(iter(rows.values())))} rounds; every verification is a fresh subject's first valid code)")
PY
