"""Reads wrk --latency output on stdin; prints 'rps p50_ms p99_ms errors'."""
import re
import sys

text = sys.stdin.read()


def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m:
    errors += int(m.group(1))
m = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", text)
if m:
    errors += sum(int(g) for g in m.groups())
print(f"{rps:.0f} {ms('50'):.3f} {ms('99'):.3f} {errors}")
