"""Medians of wrk rounds as a README table, with targets checked.

    table.py HEADER ROW...

HEADER names the first column (e.g. "Database"). Each ROW is
GROUP|ENDPOINT|FILE[|CHECKS]: FILE holds one `parse_wrk.py` line per round;
GROUP is printed once for consecutive rows; the group's `GET /healthz` row is
the base of the ratio column. CHECKS, separated by `;`: `rps>=N`, `p99<MS`,
`ok=200,503` (status codes that are not errors; default 200), `noratio`,
`ratio>=X` (req/s against the group's `GET /healthz`). Each check prints
PASS or FAIL.

When a round counted its status codes (the `codes=` field), req/s counts only
the 200s (refreshes or logins that succeeded), and every other code is listed
under "not 200". Exits 1 if a row had an unexpected status or socket error;
with BENCH_ENFORCE=1, exits 3 if a check failed (by default the targets are
reported, not enforced: a shared machine's figures are noisy).
"""
import os
import statistics
import sys


def load(path):
    rounds = []
    for line in open(path):
        parts = line.split()
        if not parts:
            continue
        rps, p50, p95, p99, errors = map(float, parts[:5])
        codes = {}
        for part in parts[5:]:
            if part.startswith("codes="):
                for kv in filter(None, part[6:].split(",")):
                    k, v = kv.split(":")
                    codes[int(k)] = int(v)
        if codes:
            total = sum(codes.values())
            ok_rps = rps * codes.get(200, 0) / total if total else 0.0
            # wrk's error count is its non-2xx responses plus socket errors.
            socket = errors - sum(v for k, v in codes.items() if k > 299)
        else:
            ok_rps, socket = rps, 0
        rounds.append((ok_rps, p50, p95, p99, errors, codes, max(socket, 0)))
    med = [statistics.median(r[i] for r in rounds) for i in range(4)]
    codes = {}
    for r in rounds:
        for k, v in r[5].items():
            codes[k] = codes.get(k, 0) + v
    return {
        "rps": med[0], "p50": med[1], "p95": med[2], "p99": med[3],
        "codes": codes, "counted": any(r[5] for r in rounds),
        "errors": sum(r[4] for r in rounds), "socket": sum(r[6] for r in rounds),
        "rounds": len(rounds),
    }


def ms(x):
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"


def main():
    header, specs = sys.argv[1], sys.argv[2:]
    print(f"| {header} | Endpoint | req/s | p50 | p95 | p99 | ratio to `/healthz` | not 200 |")
    print("|---|---|---|---|---|---|---|---|")
    verdicts, bad, last_group, base, nrounds = [], False, None, None, 0
    for spec in specs:
        group, endpoint, path, *rest = spec.split("|")
        checks = [c for c in (rest[0].split(";") if rest else []) if c]
        r = load(path)
        nrounds = max(nrounds, r["rounds"])
        if group != last_group:
            base = None
        if endpoint == "GET /healthz":
            base = r["rps"]
        ok = {200}
        for c in checks:
            if c.startswith("ok="):
                ok = {int(x) for x in c[3:].split(",")}
        if r["counted"]:
            others = {k: v for k, v in r["codes"].items() if k != 200}
            not200 = ", ".join(f"{k}: {v:,}" for k, v in sorted(others.items())) or "0"
            unexpected = any(k not in ok for k in others) or r["socket"] > 0
            if r["socket"]:
                not200 += f", socket errors: {r['socket']:,.0f}"
        else:
            not200 = f"{r['errors']:,.0f}"
            unexpected = r["errors"] > 0
        bad |= unexpected
        ratio = "" if endpoint == "GET /healthz" or not base or "noratio" in checks else f"{r['rps'] / base:.2f}"
        shown_group = group if group != last_group else ""
        last_group = group
        print(f"| {shown_group} | `{endpoint}` | {r['rps']:,.0f} | {ms(r['p50'])} | {ms(r['p95'])} "
              f"| {ms(r['p99'])} | {ratio} | {not200} |")
        for c in checks:
            if c.startswith("rps>="):
                want = float(c[5:])
                met = r["rps"] >= want
                verdicts.append(f"{group} {endpoint}: {r['rps']:,.0f}/s, target >= {want:,.0f}/s: "
                                f"{'PASS' if met else 'FAIL'}")
            elif c.startswith("ratio>=") and base:
                want = float(c[7:])
                got = r["rps"] / base
                verdicts.append(f"{group} {endpoint}: ratio {got:.2f}, target >= {want:g}: "
                                f"{'PASS' if got >= want else 'FAIL'}")
            elif c.startswith("p99<"):
                want = float(c[4:])
                met = r["p99"] < want
                verdicts.append(f"{group} {endpoint}: p99 {ms(r['p99'])}, target < {want:g} ms: "
                                f"{'PASS' if met else 'FAIL'}")
    print(f"\n(medians of {nrounds} rounds; req/s of a row with counted status codes is its 200s per second)")
    for v in verdicts:
        print(v)
    if bad:
        print("WARNING: unexpected status codes or socket errors (see 'not 200')", file=sys.stderr)
        sys.exit(1)
    if os.environ.get("BENCH_ENFORCE") == "1" and any(v.endswith(": FAIL") for v in verdicts):
        print("FAIL: a target was missed (BENCH_ENFORCE=1)", file=sys.stderr)
        sys.exit(3)


main()
