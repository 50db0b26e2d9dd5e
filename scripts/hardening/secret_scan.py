#!/usr/bin/env python3
"""Secret scan: runs a workload whose secrets carry unique markers (the store passphrase, API
tokens, plaintexts, data keys, MAC messages, a backup), with the server logging at trace level,
then searches every file the CLI and the server wrote (store, WAL, SHM, logs, backup bundle)
and the metrics page for each secret, raw, in base64 and in hex. Any hit fails.
Usage: secret_scan.py KEYWARD_BINARY
"""
import base64, json, os, subprocess, sys, urllib.request
from keyward_process import client, fail as failed, start, stop, text, workdir
binary = os.path.abspath(sys.argv[1])
work = workdir("keyward-scan-")
store_dir = os.path.join(work, "store")
os.mkdir(store_dir, 0o700)
marker = "KWSCAN" + os.urandom(6).hex()
passphrase = marker + "-passphrase-correct-horse"
env = dict(os.environ, KEYWARD_STORE=os.path.join(store_dir, "keyward.db"), KEYWARD_PASSPHRASE=passphrase)
secrets = {"passphrase": passphrase.encode()}
logs = open(os.path.join(work, "server.log"), "a+")


def fail(message):
    failed("scan", message)


def cli(*arguments, stdin=None):
    result = subprocess.run([binary, *arguments], env=env, input=stdin, capture_output=True, timeout=120, cwd=work)
    if result.returncode != 0:
        fail("keyward %s: %s" % (" ".join(arguments), result.stderr.decode(errors="replace")))
    logs.write(result.stderr.decode(errors="replace"))  # what the CLI printed to stderr is scanned too
    return result.stdout


cli("init")
for spec, alias in [("AES-256-GCM", "scan/aes"), ("HMAC-SHA256", "scan/mac"), ("ED25519", "scan/sign")]:
    cli("key", "create", "--spec", spec, "--alias", alias)
token = json.loads(cli("token", "create", "--principal", "scan", "--allow", "*:*", "--json"))["token"]
secrets["token"] = token.encode()
plaintext = (marker + "-plaintext-via-cli").encode()
sealed = cli("encrypt", "--key", "scan/aes", stdin=plaintext)
secrets["cli plaintext"] = plaintext
if cli("decrypt", stdin=sealed) != plaintext:
    fail("the CLI round trip did not return the plaintext")

logs.flush()
server, url = start([binary, "serve", "--insecure-http", "--port", "0", "--log-level", "trace"], logs.name, env=env, cwd=work)
if server is None:
    fail("the server did not start:\n" + url)
try:
    call = client(url, token)

    api_plaintext = (marker + "-plaintext-via-api").encode()
    secrets["api plaintext"] = api_plaintext
    status, sealed = call("POST", "/v1/keys/scan%2Faes/encrypt", {"plaintext": base64.b64encode(api_plaintext).decode(),
                                                                  "context": {"tenant": "scan"}})
    assert status == 200, sealed
    status, opened = call("POST", "/v1/keys/scan%2Faes/decrypt", {"ciphertext": sealed["ciphertext"], "context": {"tenant": "scan"}})
    assert status == 200 and base64.b64decode(opened["plaintext"]) == api_plaintext, opened
    batch = [(marker + "-batch-%d" % n).encode() for n in range(3)]
    secrets.update({"batch plaintext %d" % n: item for n, item in enumerate(batch)})
    status, sealed_batch = call("POST", "/v1/keys/scan%2Faes/encrypt/batch", {"items": [{"plaintext": base64.b64encode(b).decode()} for b in batch]})
    assert status == 200, sealed_batch
    status, data_key = call("POST", "/v1/keys/scan%2Faes/data-key", {})
    assert status == 200, data_key
    secrets["data key"] = base64.b64decode(data_key["plaintext"])
    message = (marker + "-mac-message").encode()
    secrets["mac message"] = message
    status, tag = call("POST", "/v1/keys/scan%2Fmac/mac", {"message": base64.b64encode(message).decode()})
    assert status == 200, tag
    signed = (marker + "-signed-message").encode()
    secrets["signed message"] = signed
    assert call("POST", "/v1/keys/scan%2Fsign/sign", {"message": base64.b64encode(signed).decode()})[0] == 200
    status, random = call("POST", "/v1/random", {"count": 32})
    secrets["random bytes"] = base64.b64decode(random["random"])
    # Failed logins: a wrong token that looks real, and the real one sent with a typo appended.
    wrong = marker + "-not-a-token-0123456789abcdef"
    secrets["wrong token"] = wrong.encode()
    assert call("POST", "/v1/keys/scan%2Faes/encrypt", {"plaintext": "AA=="}, bearer=wrong)[0] == 401
    assert call("POST", "/v1/keys/scan%2Faes/encrypt", {"plaintext": "AA=="}, bearer=token + "x")[0] == 401
    with open(os.path.join(work, "metrics.txt"), "w") as saved:
        saved.write(text(url, "/metrics", token))
finally:
    stop(server)
logs.flush()

backup_passphrase = marker + "-backup-passphrase"
secrets["backup passphrase"] = backup_passphrase.encode()
env["KEYWARD_BACKUP_PASSPHRASE"] = backup_passphrase
cli("backup", "create", "--out", os.path.join(work, "backup.kwb"))

def scan():
    files, hits = [], []
    for root, _, names in os.walk(work):
        files += [os.path.join(root, name) for name in names]
    for path in files:
        with open(path, "rb") as handle:
            content = handle.read()
        for name, secret in secrets.items():
            forms = {"raw": secret, "base64": base64.b64encode(secret), "hex": secret.hex().encode(), "HEX": secret.hex().upper().encode()}
            for form, needle in forms.items():
                if needle in content:
                    hits.append("%s (%s) in %s" % (name, form, os.path.relpath(path, work)))
        if marker.encode() in content:
            hits.append("the marker %s in %s" % (marker, os.path.relpath(path, work)))
    return files, hits


# The scan must be able to fail: a planted copy of the token (base64) is found.
control = os.path.join(work, "control.txt")
with open(control, "wb") as planted:
    planted.write(b"x" + base64.b64encode(token.encode()) + b"x")
if not any("control.txt" in hit for hit in scan()[1]):
    fail("the scan did not find a planted token")
os.remove(control)
with open(logs.name) as text:
    lines = text.read().count("\n")
if lines < 10:
    fail("the server logged only %d lines; the scan would prove nothing" % lines)

files, hits = scan()
if hits:
    fail("secrets found:\n  " + "\n  ".join(sorted(set(hits))))
print("scan: passed: %d secrets in 4 forms each, none in %d files (%s; the log has %d lines at trace level)"
      % (len(secrets), len(files), ", ".join(sorted(os.path.relpath(p, work) for p in files)), lines))
