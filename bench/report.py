"""Medians of rounds for /healthz and a target endpoint, and their ratio."""
import statistics
import sys

label, base_file, target_file = sys.argv[1:4]


def load(path):
    rows = [list(map(float, line.split()[:5])) for line in open(path) if line.strip()]
    return {
        "rps": statistics.median(r[0] for r in rows),
        "p50": statistics.median(r[1] for r in rows),
        "p95": statistics.median(r[2] for r in rows),
        "p99": statistics.median(r[3] for r in rows),
        "errors": sum(r[4] for r in rows),
        "rounds": len(rows),
    }


base, target = load(base_file), load(target_file)
print(f"{'endpoint':<30} {'req/s (median)':>15} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
for name, r in (("GET /healthz", base), (label, target)):
    print(f"{name:<30} {r['rps']:>15.0f} {r['p50']:>8.3f} {r['p95']:>8.3f} {r['p99']:>8.3f} {r['errors']:>8.0f}")
ratio = target["rps"] / base["rps"] if base["rps"] else float("nan")
print(f"ratio {label} / healthz: {ratio:.2f} (median of {target['rounds']} rounds)")
if target["errors"] or base["errors"]:
    print("WARNING: some responses were not 2xx", file=sys.stderr)
    sys.exit(1)
