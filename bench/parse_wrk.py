"""Reads wrk output (with our Lua `done` line) on stdin; prints
'rps p50_ms p95_ms p99_ms errors', and a sixth field 'codes=200:n,503:m'
when the script counted status codes itself (a `CODES 200=n 503=m` line)."""
import re
import sys

text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50, p95, p99 = (int(x) / 1000 for x in re.search(r"^PCT (\d+) (\d+) (\d+)$", text, re.M).groups())
errors = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m:
    errors += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    errors += sum(int(g) for g in m.groups())
codes = re.search(r"^CODES ?(.*)$", text, re.M)
extra = ""
if codes:
    pairs = sorted((int(k), int(v)) for k, v in (kv.split("=") for kv in codes.group(1).split()))
    extra = " codes=" + ",".join(f"{k}:{v}" for k, v in pairs)
print(f"{rps:.0f} {p50:.3f} {p95:.3f} {p99:.3f} {errors}{extra}")
