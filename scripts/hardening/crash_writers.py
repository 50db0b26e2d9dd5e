#!/usr/bin/env python3
"""kill -9 under concurrent writers: ROUNDS times, a server on one store takes writes from four
threads (create a key with an alias, rotate it, encrypt under it) and is killed with SIGKILL in
the middle of them. After every kill, `keyward verify` must find the store intact; after the
last round a fresh server must still hold every acknowledged write: each acknowledged key
resolves by its alias, has at least the acknowledged version, and decrypts every acknowledged
ciphertext; every key in the store describes without an integrity error.
Usage: crash_writers.py KEYWARD_BINARY [ROUNDS]
"""
import json, os, random, re, signal, ssl, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

binary = os.path.abspath(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
work = tempfile.mkdtemp(prefix="keyward-crash-")
dev = os.path.join(work, "dev")
token = "crash-root-token-" + os.urandom(12).hex()
rng = random.Random(20261204)
acknowledged = {"keys": {}, "versions": {}, "ciphertexts": []}
lock = threading.Lock()


def fail(message):
    print("crash: FAILED: " + message)
    sys.exit(1)


def start():
    log = open(os.path.join(work, "server.log"), "a+")
    mark = log.seek(0, 2)
    server = subprocess.Popen([binary, "serve", "--dev", "--dev-dir", dev, "--port", "0", "--dev-root-token", token],
                              stdout=log, stderr=subprocess.STDOUT, cwd=work)
    for _ in range(600):
        log.seek(mark)
        found = re.search(r"listening on (https://127\.0\.0\.1:\d+)", log.read())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(mark)
    fail("the server did not start:\n" + log.read())


def client(url):
    tls = ssl.create_default_context(cafile=os.path.join(dev, "ca.pem"))

    def call(method, path, body=None):
        request = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=tls, timeout=10) as reply:
                return reply.status, json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
    return call


def writer(call, name, stop):
    n = 0
    while not stop.is_set():
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
    import base64
    return base64.b64encode(text.encode()).decode()


for round_number in range(1, rounds + 1):
    server, url = start()
    call = client(url)
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(call, "r%d-t%d" % (round_number, t), stop)) for t in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(rng.uniform(0.3, 1.5))
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    verify = subprocess.run([binary, "verify", "--store", os.path.join(dev, "keyward.db"), "--key-file", os.path.join(dev, "root.key")],
                            capture_output=True, text=True, timeout=120, cwd=work)
    if verify.returncode != 0:
        fail("round %d: keyward verify after kill -9:\n%s%s" % (round_number, verify.stdout, verify.stderr))
    print("crash: round %d: killed with %d keys, %d ciphertexts acknowledged so far; verify: intact"
          % (round_number, len(acknowledged["keys"]), len(acknowledged["ciphertexts"])))

server, url = start()
call = client(url)
try:
    for alias, key_id in acknowledged["keys"].items():
        status, key = call("GET", "/v1/keys/" + urllib.request.quote(alias, safe=""))
        if status != 200 or key["id"] != key_id:
            fail("acknowledged key %s (%s) is lost: %d %s" % (alias, key_id, status, key))
        if key["currentVersion"] < acknowledged["versions"].get(key_id, 1):
            fail("key %s lost its acknowledged rotation: version %d" % (key_id, key["currentVersion"]))
    import base64
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
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
