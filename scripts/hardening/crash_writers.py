#!/usr/bin/env python3
"""kill -9 under concurrent writers: ROUNDS times, a server on one store takes writes from four
threads (create a key with an alias, rotate it, encrypt under it) and is killed with SIGKILL in
the middle of them. After every kill, `keyward verify` must find the store intact; after the
last round a fresh server must still hold every acknowledged write: each acknowledged key
resolves by its alias, has at least the acknowledged version, and decrypts every acknowledged
ciphertext; every key in the store describes without an integrity error.
Usage: crash_writers.py KEYWARD_BINARY [ROUNDS]
"""
import base64, os, random, signal, subprocess, sys, threading, time, urllib.request
from keyward_process import client, fail as failed, start as launch, stop, workdir
binary = os.path.abspath(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
work = workdir("keyward-crash-")
dev = os.path.join(work, "dev")
token = "crash-root-token-" + os.urandom(12).hex()
rng = random.Random(20261204)
acknowledged = {"keys": {}, "versions": {}, "ciphertexts": []}
lock = threading.Lock()


def fail(message):
    failed("crash", message)


def start():
    server, url = launch([binary, "serve", "--dev", "--dev-dir", dev, "--port", "0", "--dev-root-token", token],
                         os.path.join(work, "server.log"), cwd=work)
    if server is None:
        fail("the server did not start:\n" + url)
    return server, url


def writer(call, name, halt):
    n = 0
    while not halt.is_set():
        n += 1
        alias = "crash/%s/%d" % (name, n)
        try:
            status, key = call("POST", "/v1/keys", {"spec": "AES-256-GCM", "aliases": [alias]})
            if status != 201:
                continue
            with lock:
                acknowledged["keys"][alias] = key["id"]
            status, rotated = call("POST", "/v1/keys/%s/rotate" % key["id"])
            if status == 200:
                with lock:
                    acknowledged["versions"][key["id"]] = rotated["currentVersion"]
            plaintext = os.urandom(16).hex()
            status, sealed = call("POST", "/v1/keys/%s/encrypt" % key["id"], {"plaintext": _b64(plaintext)})
            if status == 200:
                with lock:
                    acknowledged["ciphertexts"].append((key["id"], sealed["ciphertext"], plaintext))
        except Exception:
            return  # the server is gone: the round is over for this thread


def _b64(text):
    return base64.b64encode(text.encode()).decode()


for round_number in range(1, rounds + 1):
    server, url = start()
    call = client(url, token, cafile=os.path.join(dev, "ca.pem"))
    halt = threading.Event()
    threads = [threading.Thread(target=writer, args=(call, "r%d-t%d" % (round_number, t), halt)) for t in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(rng.uniform(0.3, 1.5))
    server.send_signal(signal.SIGKILL)
    server.wait()
    halt.set()
    for thread in threads:
        thread.join(timeout=15)
    verify = subprocess.run([binary, "verify", "--store", os.path.join(dev, "keyward.db"), "--key-file", os.path.join(dev, "root.key")],
                            capture_output=True, text=True, timeout=120, cwd=work)
    if verify.returncode != 0:
        fail("round %d: keyward verify after kill -9:\n%s%s" % (round_number, verify.stdout, verify.stderr))
    print("crash: round %d: killed with %d keys, %d ciphertexts acknowledged so far; verify: intact"
          % (round_number, len(acknowledged["keys"]), len(acknowledged["ciphertexts"])))

server, url = start()
call = client(url, token, cafile=os.path.join(dev, "ca.pem"))
try:
    for alias, key_id in acknowledged["keys"].items():
        status, key = call("GET", "/v1/keys/" + urllib.request.quote(alias, safe=""))
        if status != 200 or key["id"] != key_id:
            fail("acknowledged key %s (%s) is lost: %d %s" % (alias, key_id, status, key))
        if key["currentVersion"] < acknowledged["versions"].get(key_id, 1):
            fail("key %s lost its acknowledged rotation: version %d" % (key_id, key["currentVersion"]))
    for key_id, ciphertext, plaintext in acknowledged["ciphertexts"]:
        status, opened = call("POST", "/v1/keys/%s/decrypt" % key_id, {"ciphertext": ciphertext})
        if status != 200 or base64.b64decode(opened["plaintext"]).decode() != plaintext:
            fail("an acknowledged ciphertext under %s no longer decrypts: %d %s" % (key_id, status, opened))
    described, after = 0, None
    while True:
        status, page = call("GET", "/v1/keys?limit=1000" + ("&after=" + after if after else ""))
        if status != 200:
            fail("listing keys: %d %s" % (status, page))
        for key in page["keys"]:
            status, body = call("GET", "/v1/keys/" + key["id"])
            if status != 200:
                fail("key %s does not describe after the crashes: %d %s" % (key["id"], status, body))
            described += 1
        after = page.get("nextCursor")
        if not after:
            break
    if len(acknowledged["keys"]) < rounds:
        fail("only %d writes were acknowledged in %d rounds; the workload did not run" % (len(acknowledged["keys"]), rounds))
    print("crash: passed: %d rounds; %d acknowledged keys, %d rotations, %d ciphertexts all intact; %d keys describe"
          % (rounds, len(acknowledged["keys"]), len(acknowledged["versions"]), len(acknowledged["ciphertexts"]), described))
finally:
    stop(server)
