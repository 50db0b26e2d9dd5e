#!/usr/bin/env python3
"""Summarises bench/compare-openbao.sh: medians per point, the table in BENCHMARKS.md, a PNG
plot, and one `OP c=16 ratio X` line per workload (printed last)."""
import csv
import statistics
import sys
from collections import defaultdict

results, bao_version, cpus, duration, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
points = defaultdict(list)
order = []
with open(results) as handle:
    for row in csv.DictReader(handle, delimiter="\t"):
        key = (row["op"], int(row["conc"]), row["system"])
        if key not in points:
            order.append(key)
        points[key].append(row)


def median(rows, field):
    return statistics.median(float(r[field]) for r in rows)


def throughput(op, rows):
    return median(rows, "items" if op.startswith("batch") else "rps")


ops = []
for op, conc, _ in order:
    if (op, conc) not in ops:
        ops.append((op, conc))

lines = [
    f"OpenBao {bao_version} (`bao server -dev`, file audit device, service token with only a transit policy) vs "
    f"`keyward serve` (audit on, token covering only the benchmark keys), plain HTTP on loopback; "
    f"`keyward-tls`: the same over TLS 1.3. wrk closed loop, {duration} s per point, median of {runs} interleaved passes (the order of OpenBao, Keyward and Keyward Transit turning each pass), "
    f"{cpus} cores shared by server and wrk. Throughput is requests/s (items/s for batch100); CPU is % of one core; "
    "RSS is the server's peak during the point.",
    "",
    "| workload | c | OpenBao /s | Keyward /s | ratio | Keyward Transit /s | Transit ratio | Keyward TLS /s | p50 ms (bao / kw) | p99 ms (bao / kw) | CPU % (bao / kw) | peak RSS MiB (bao / kw) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|",
]
ratios = {}
for op, conc in ops:
    bao = points.get((op, conc, "openbao"))
    kw = points.get((op, conc, "keyward"))
    tls = points.get((op, conc, "keyward-tls"))
    if not bao or not kw:
        continue
    b, k = throughput(op, bao), throughput(op, kw)
    ratio = k / b if b else float("inf")
    ratios[(op, conc)] = ratio
    t = f"{throughput(op, tls):,.0f}" if tls else "-"
    transit = points.get((op, conc, "keyward-transit"))
    tr = f"{throughput(op, transit):,.0f}" if transit else "-"
    trr = f"**{throughput(op, transit) / b:.1f}x**" if transit and b else "-"
    lines.append(
        f"| {op} | {conc} | {b:,.0f} | {k:,.0f} | **{ratio:.1f}x** | {tr} | {trr} | {t} | "
        f"{median(bao, 'p50_ms'):.2f} / {median(kw, 'p50_ms'):.2f} | {median(bao, 'p99_ms'):.2f} / {median(kw, 'p99_ms'):.2f} | "
        f"{median(bao, 'cpu_pct'):.0f} / {median(kw, 'cpu_pct'):.0f} | {max(float(r['rss_peak_mb']) for r in bao):.0f} / "
        f"{max(float(r['rss_peak_mb']) for r in kw):.0f} |")
# The issue-5 targets at c=16: 3x throughput for single operations (2x for batches), p99 and
# peak RSS no higher than OpenBao's. One line per workload, met or not and by how much.
transit_ratios = {}
for system, label in (("keyward", "Keyward's API"), ("keyward-transit", "Keyward's Transit endpoint")):
    targets = []
    for op, conc in ops:
        bao, kw = points.get((op, conc, "openbao")), points.get((op, conc, system))
        if conc != 16 or not bao or not kw:
            continue
        want = 2.0 if op.startswith("batch") else 3.0
        ratio = throughput(op, kw) / throughput(op, bao)
        if system == "keyward-transit":
            transit_ratios[op] = ratio
        p99_b, p99_k = median(bao, "p99_ms"), median(kw, "p99_ms")
        rss_b, rss_k = max(float(r["rss_peak_mb"]) for r in bao), max(float(r["rss_peak_mb"]) for r in kw)
        checks = [ratio >= want, p99_k <= p99_b, rss_k <= rss_b]
        targets.append(
            f"| {op} | {ratio:.1f}x (target {want:.0f}x) | {p99_k:.2f} vs {p99_b:.2f} ms | {rss_k:.0f} vs {rss_b:.0f} MiB | "
            f"{'**met**' if all(checks) else 'not met'} |")
    if targets:
        lines += ["", f"Targets at c=16 ({label} vs OpenBao):", "",
                  "| workload | throughput ratio | p99 | peak RSS | all three |", "|---|---|---|---|---|"] + targets
lines += ["", "![Keyward vs OpenBao Transit](bench/compare-openbao.png)"]
table = "\n".join(lines)

start, end = "<!-- compare-openbao:start -->", "<!-- compare-openbao:end -->"
with open("BENCHMARKS.md") as handle:
    text = handle.read()
if start in text and end in text:
    text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):]
else:
    text += f"\n## Keyward vs OpenBao Transit (bench/compare-openbao.sh)\n\n{start}\n{table}\n{end}\n"
with open("BENCHMARKS.md", "w") as handle:
    handle.write(text)

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({op for op, _ in ops}, key=[op for op, _ in ops].index)
    concs = sorted({c for _, c in ops})
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        for system, colour in (("openbao", "#999999"), ("keyward", "#d95f02"), ("keyward-transit", "#1b9e77"), ("keyward-tls", "#7570b3")):
            ys = [throughput(name, points[(name, c, system)]) if (name, c, system) in points else 0 for c in concs]
            if any(ys):
                axis.plot([str(c) for c in concs], ys, marker="o", label=system, color=colour)
        axis.set_title(name)
        axis.set_xlabel("concurrency")
        axis.set_ylabel("items/s" if name.startswith("batch") else "requests/s")
        axis.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig("bench/compare-openbao.png", dpi=110)
except ImportError:
    print("matplotlib missing: no plot", file=sys.stderr)

print(table)
print()
for (op, conc), ratio in ratios.items():
    if conc == 16:
        print(f"{op} c=16 ratio {ratio:.1f}")
for op, ratio in transit_ratios.items():
    print(f"{op} c=16 transit ratio {ratio:.1f}")
