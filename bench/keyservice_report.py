"""bench/out/keyservice.tsv -> the KeyService table in BENCHMARKS.md (figures, no assertions)."""
import datetime
import re
import statistics
import sys

tsv, markdown = sys.argv[1:3]
rows = []
for line in open(tsv):
    fields = line.strip().split("\t")
    rows.append((fields[0], dict(f.split("=", 1) for f in fields[1:])))

out = [f"Measured {datetime.date.today()} (`bench/keyservice.sh`), release build, SQLite store on local disk, "
       "`synchronous = FULL` (every acknowledged write durable).\n",
       "| figure | measured |", "|---|---|"]
encrypts = {}
for kind, values in rows:
    if kind == "encrypt":
        encrypts.setdefault(values["concurrency"], []).append(int(values["ops_per_second"]))
for concurrency, rates in encrypts.items():
    out.append(f"| audited 32-byte encrypt, one core (`taskset -c 0`), {concurrency} concurrent callers, {len(rates)} runs | "
               f"median {statistics.median(rates):,.0f} ops/s (range {min(rates):,}–{max(rates):,}) |")
for kind, values in rows:
    if kind == "create":
        out.append(f"| create {int(values['keys']):,} AES-256-GCM keys ({values['concurrency']} concurrent callers) | "
                   f"{int(values['keys_per_second']):,} keys/s, RSS {int(values['rss_kib']) // 1024} MiB |")
    elif kind == "open":
        out.append(f"| open a store of {int(values['keys']):,} keys | {float(values['open_seconds']) * 1000:.0f} ms "
                   f"(RSS {int(values['rss_after_open_kib']) // 1024} MiB; file {values['file_mib']} MiB) |")
        out.append(f"| …then use {values['touched']} keys (cache bound 10,000) | RSS {int(values['rss_after_touch_kib']) // 1024} MiB |")
table = "\n".join(out) + "\n"
text = open(markdown).read()
text = re.sub(r"(<!-- keyservice:begin -->\n).*?(<!-- keyservice:end -->)", lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
open(markdown, "w").write(text)
print(table)
