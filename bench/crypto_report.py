"""Turns bench/out/{openssl,crypto}.tsv into the KeywardCrypto table in BENCHMARKS.md and prints
the target checks (figures, not assertions)."""
import datetime
import platform
import re
import subprocess
import sys

openssl_path, crypto_path, markdown_path = sys.argv[1:4]

openssl = {}
for line in open(openssl_path):
    name, size, rate = line.rstrip("\n").split("\t")
    openssl[int(size)] = float(rate) / 1e6  # bytes/s -> MB/s

rows = {}
for line in open(crypto_path):
    name, size, ops, mbps = line.rstrip("\n").split("\t")
    rows[(name, int(size))] = (float(ops), float(mbps))

cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
out = []
out.append(f"Measured {datetime.date.today()} on {cpu}, {platform.machine()}, one core, release build, "
           "best of interleaved rounds (`bench/crypto.sh`).\n")
out.append("### Seal / open (AES-256-GCM, ChaCha20-Poly1305), with header and a 2-pair context\n")
out.append("| case | 32 B | 1 KiB | 16 KiB | 64 KiB |")
out.append("|---|---|---|---|---|")
def cell(name, size):
    if (name, size) not in rows:
        return "-"
    ops, mbps = rows[(name, size)]
    return f"{ops:,.0f}/s ({mbps:,.0f} MB/s)"
for name in ["keyward.seal.AES-256-GCM", "keyward.open.AES-256-GCM", "swiftcrypto.AES.GCM.seal",
             "keyward.seal.CHACHA20-POLY1305", "keyward.open.CHACHA20-POLY1305"]:
    out.append(f"| `{name}` | " + " | ".join(cell(name, s) for s in [32, 1024, 16384, 65536]) + " |")
out.append("| `openssl speed -evp aes-256-gcm` | " + " | ".join(
    f"{openssl[s] * 1e6 / s:,.0f}/s ({openssl[s]:,.0f} MB/s)" if s in openssl else "-" for s in [32, 1024, 16384, 65536]) + " |")
out.append("")
out.append("### Sign / verify (32-byte message), MAC\n")
out.append("| spec | sign/s | verify/s |")
out.append("|---|---|---|")
for (name, size), (ops, _) in rows.items():
    if name.startswith("keyward.sign."):
        spec = name[len("keyward.sign."):]
        verify = rows.get((f"keyward.verify.{spec}", size), (0, 0))[0]
        out.append(f"| {spec} | {ops:,.0f} | {verify:,.0f} |")
for (name, size), (ops, _) in rows.items():
    if name.startswith("keyward.mac."):
        out.append(f"| {name[len('keyward.mac.'):]} (MAC) | {ops:,.0f} | - |")
out.append("")

checks = []
seal16 = rows[("keyward.seal.AES-256-GCM", 16384)][1]
ratio16 = seal16 / openssl[16384]
checks.append(("AES-256-GCM seal at 16 KiB >= 80% of openssl", ratio16, ratio16 >= 0.80))
seal32 = rows[("keyward.seal.AES-256-GCM", 32)][0]
raw32 = rows[("swiftcrypto.AES.GCM.seal", 32)][0]
ratio32 = seal32 / raw32
checks.append(("32-byte Keyward seal >= 85% of raw swift-crypto AES.GCM.seal", ratio32, ratio32 >= 0.85))
out.append("### Targets\n")
out.append("| target | measured | met |")
out.append("|---|---|---|")
for label, value, ok in checks:
    out.append(f"| {label} | {value:.0%} | {'yes' if ok else 'NO'} |")
table = "\n".join(out) + "\n"

text = open(markdown_path).read()
text = re.sub(r"(<!-- crypto:begin -->\n).*?(<!-- crypto:end -->)", lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
open(markdown_path, "w").write(text)
print(table)
for label, value, ok in checks:
    print(f"{'PASS' if ok else 'MISS'} {label}: {value:.0%}")
