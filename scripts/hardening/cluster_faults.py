#!/usr/bin/env python3
"""Faults on two nodes sharing one PostgreSQL store, under load from four writer threads (create
a key with an alias, rotate it, encrypt under it), each sending to one node and, when that node
fails, to the other:

1. kill -9 of one node: the other keeps serving (writes acknowledged after the kill);
2. `pg_ctl restart -m immediate` of the database: both nodes answer 503 meanwhile and serve
   again on their own once it is back.

After each fault every acknowledged write must be there: each acknowledged key resolves by its
alias with at least the acknowledged version, every acknowledged ciphertext decrypts; every key
in the store describes without an integrity error (a create in flight is absent or complete);
and `keyward verify` and `keyward audit verify` find the store and the cluster's one audit chain
intact.
Usage: cluster_faults.py KEYWARD_BINARY   (needs KEYWARD_TEST_POSTGRES_URL, KEYWARD_TEST_PGDATA,
KEYWARD_TEST_PGBIN from scripts/postgres.sh)
"""
import base64, os, subprocess, sys, tempfile, threading, time
from keyward_process import client, fail as failed, start as launch, stop

binary = os.path.abspath(sys.argv[1])
admin = os.environ["KEYWARD_TEST_POSTGRES_URL"]
pgdata = os.environ["KEYWARD_TEST_PGDATA"]
pgbin = os.environ["KEYWARD_TEST_PGBIN"]
work = tempfile.mkdtemp(prefix="keyward-cluster-")
database = "kw_cluster_" + os.urandom(6).hex()
store = admin.rsplit("/", 1)[0] + "/" + database
key_file = os.path.join(work, "root.key")
env = dict(os.environ, KEYWARD_STORE=store, KEYWARD_KEY_FILE=key_file)
acknowledged = {"keys": {}, "versions": {}, "ciphertexts": []}
lock = threading.Lock()
counts = {"acked_after_kill": 0}


def fail(message):
    failed("cluster", message)


def run(*arguments):
    done = subprocess.run([binary] + list(arguments), env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        fail("keyward %s: exit %d: %s" % (" ".join(arguments), done.returncode, done.stderr.strip()[-400:]))
    return done.stdout


def as_postgres(arguments):
    """Runs a PostgreSQL tool as the cluster's owner. Its output goes to a file: a pipe would be
    inherited by the server pg_ctl starts and never reach end of file."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    with open(os.path.join(work, "pg_ctl.log"), "a") as log:
        return subprocess.run(prefix + arguments, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120)


def start_node(name):
    server, url = launch([binary, "serve", "--store", store, "--key-file", key_file, "--insecure-http", "--port", "0", "--rate-limit", "0"],
                         os.path.join(work, name + ".log"), env=env, cwd=work)
    if server is None:
        fail("node %s did not start:\n%s" % (name, url))
    return server, url


def b64(text):
    return base64.b64encode(text.encode()).decode()


def writer(calls, name, halt, phase):
    n = 0
    order = list(calls)
    while not halt.is_set():
        n += 1
        alias = "cluster-%s-%s-%d" % (phase, name, n)
        for call in order:
            try:
                status, key = call("POST", "/v1/keys", {"spec": "AES-256-GCM", "aliases": [alias]})
            except Exception:
                status = 0
            if status == 201:
                break
            if status == 409:  # an earlier attempt at this create committed: the alias is taken
                key = None
                break
        else:
            time.sleep(0.05)
            continue
        if key is None:
            continue
        with lock:
            acknowledged["keys"][alias] = key["id"]
            if phase == "kill" and halt_kill.is_set():
                counts["acked_after_kill"] += 1
        try:
            status, rotated = order[0]("POST", "/v1/keys/%s/rotate" % key["id"])
            if status == 200:
                with lock:
                    acknowledged["versions"][key["id"]] = rotated["currentVersion"]
            plaintext = os.urandom(12).hex()
            status, sealed = order[0]("POST", "/v1/keys/%s/encrypt" % key["id"], {"plaintext": b64(plaintext)})
            if status == 200:
                with lock:
                    acknowledged["ciphertexts"].append((key["id"], sealed["ciphertext"], plaintext))
        except Exception:
            order = order[1:] + order[:1]  # this node is gone: go on with the other


def check(call, phase):
    for alias, key_id in acknowledged["keys"].items():
        status, described = call("GET", "/v1/keys/%s" % alias)
        if status != 200 or described.get("id") != key_id:
            fail("%s: acknowledged key %s (%s) is lost: %s %s" % (phase, alias, key_id, status, described))
        if described["currentVersion"] < acknowledged["versions"].get(key_id, 1):
            fail("%s: key %s lost its acknowledged rotation" % (phase, key_id))
    for key_id, ciphertext, plaintext in acknowledged["ciphertexts"]:
        status, opened = call("POST", "/v1/keys/%s/decrypt" % key_id, {"ciphertext": ciphertext})
        if status != 200 or base64.b64decode(opened["plaintext"]).decode() != plaintext:
            fail("%s: an acknowledged ciphertext under %s no longer decrypts: %s %s" % (phase, key_id, status, opened))
    cursor, listed = None, 0
    while True:
        status, page = call("GET", "/v1/keys?limit=1000" + ("&after=" + cursor if cursor else ""))
        if status != 200:
            fail("%s: listing keys failed: %s %s" % (phase, status, page))
        for key in page["keys"]:
            listed += 1
            status, described = call("GET", "/v1/keys/%s" % key["id"])
            if status != 200 or described["currentVersion"] < 1:
                fail("%s: key %s in the store is incomplete: %s %s" % (phase, key["id"], status, described))
        cursor = page.get("nextCursor")
        if not cursor:
            break
    verify = run("verify")
    audit = run("audit", "verify")
    if "store intact" not in verify or "audit chain intact" not in audit:
        fail("%s: verification: %s / %s" % (phase, verify.strip(), audit.strip()))
    return listed


halt_kill = threading.Event()
restarted = threading.Event()

if subprocess.run(["psql", admin, "-Xqc", "CREATE DATABASE " + database], capture_output=True).returncode != 0:
    fail("could not create the database")
run("init", "--with-key-file", key_file, "--generate-key-file")
token = run("token", "create", "--principal", "cluster-root", "--allow", "*:*").strip().splitlines()[-1]

a, url_a = start_node("a")
b, url_b = start_node("b")
call_a, call_b = client(url_a, token), client(url_b, token)

# 1. kill -9 of node a under load.
halt = threading.Event()
threads = [threading.Thread(target=writer, args=([call_a, call_b] if i % 2 == 0 else [call_b, call_a], "w%d" % i, halt, "kill"), daemon=True) for i in range(4)]
for thread in threads:
    thread.start()
time.sleep(3)
a.kill()
a.wait()
halt_kill.set()
time.sleep(3)
halt.set()
for thread in threads:
    thread.join(60)
if counts["acked_after_kill"] == 0:
    fail("after node a was killed, node b acknowledged no write")
listed = check(call_b, "kill -9 of one node")
print("cluster: kill -9 of one node of two under load: %d keys acknowledged (%d after the kill, by the other node), %d rotations, %d ciphertexts; "
      "all present, %d keys in the store all complete; store and audit chain verify"
      % (len(acknowledged["keys"]), counts["acked_after_kill"], len(acknowledged["versions"]), len(acknowledged["ciphertexts"]), listed))

# 2. PostgreSQL restarted (immediate: no checkpoint, crash recovery) under load.
a, url_a = start_node("a")
call_a = client(url_a, token)
halt = threading.Event()
threads = [threading.Thread(target=writer, args=([call_a, call_b] if i % 2 == 0 else [call_b, call_a], "w%d" % i, halt, "restart"), daemon=True) for i in range(4)]
for thread in threads:
    thread.start()
time.sleep(3)
before = len(acknowledged["keys"])
restart = as_postgres([os.path.join(pgbin, "pg_ctl"), "-D", os.path.join(pgdata, "data"), "-l", os.path.join(pgdata, "server.log"),
                       "-m", "immediate", "-w", "-t", "60", "restart"])
if restart.returncode != 0:
    fail("pg_ctl restart failed: see " + os.path.join(work, "pg_ctl.log"))
restarted.set()
back = time.time()
recovery = {}
# Both nodes serve again on their own.
for name, call in (("a", call_a), ("b", call_b)):
    deadline = time.time() + 30
    while True:
        try:
            status, _ = call("POST", "/v1/keys", {"spec": "AES-256-GCM"})
        except Exception:
            status = 0
        if status == 201:
            recovery[name] = time.time() - back
            break
        if time.time() > deadline:
            fail("node %s did not serve again within 30 s of the database's restart (last status %s)" % (name, status))
        time.sleep(0.2)
time.sleep(2)
halt.set()
for thread in threads:
    thread.join(60)
listed = check(call_a, "PostgreSQL restart")
print("cluster: pg_ctl restart -m immediate under load: both nodes served again on their own (%.1f s and %.1f s after the database was back); "
      "%d keys acknowledged in all (%d in this phase), all present with their rotations and ciphertexts; %d keys in the store all complete; "
      "store and audit chain verify" % (recovery["a"], recovery["b"], len(acknowledged["keys"]), len(acknowledged["keys"]) - before, listed))
stop(a)
stop(b)
subprocess.run(["psql", admin, "-Xqc", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % database], capture_output=True)
