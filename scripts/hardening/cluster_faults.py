#!/usr/bin/env python3
"""Faults on two nodes sharing one PostgreSQL store, under load from four writer threads (create
a key with an alias, rotate it, encrypt under it), each sending to one node and, when that node
fails, to the other:

1. kill -9 of one node: the other keeps serving (writes acknowledged after the kill);
2. `pg_ctl restart -m immediate` of the database: both nodes answer 503 meanwhile and serve
   again on their own once it is back;
3. the database cut from one node (a relay dropped): its /v1/ready turns 503 within 2 s, its
   requests get 503, and it serves again on its own when the relay is back.
4. SIGSTOP of the node holding the maintenance lease: the other takes the background work over
   within the lease (3 s here) plus a renewal, with a larger fencing token; woken, the paused
   node stands down.
5. Requests on the node without the lease: their audit entries, written to the intake, are
   chained by the holder's sequencer within a second (decision 0034).

After each fault every acknowledged write must be there: each acknowledged key resolves by its
alias with at least the acknowledged version, every acknowledged ciphertext decrypts; every key
in the store describes without an integrity error (a create in flight is absent or complete);
and `keyward verify` and `keyward audit verify` find the store and the cluster's one audit chain
intact.
Usage: cluster_faults.py KEYWARD_BINARY   (needs KEYWARD_TEST_POSTGRES_URL, KEYWARD_TEST_PGDATA,
KEYWARD_TEST_PGBIN from scripts/postgres.sh)
"""
import base64, os, signal, socket, subprocess, sys, threading, time, urllib.error, urllib.request
from keyward_process import client, fail as failed, start as launch, stop, workdir
binary = os.path.abspath(sys.argv[1])
admin = os.environ["KEYWARD_TEST_POSTGRES_URL"]
pgdata = os.environ["KEYWARD_TEST_PGDATA"]
pgbin = os.environ["KEYWARD_TEST_PGBIN"]
work = workdir("keyward-cluster-")
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


def start_node(name, location=None):
    server, url = launch([binary, "serve", "--store", location or store, "--key-file", key_file, "--insecure-http", "--port", "0", "--rate-limit", "0"],
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


class Proxy:
    """A TCP relay to the database that can be cut (every connection dropped, new ones refused)
    and restored on the same port: the database 'going away' for one node only."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.port = None
        self.connections = []
        self.listener = None
        self.lock = threading.Lock()
        self.listen()

    def listen(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        self.port = listener.getsockname()[1]
        listener.listen(64)
        with self.lock:
            self.listener = listener
        threading.Thread(target=self.accept, args=(listener,), daemon=True).start()

    def accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                # A connection accepted just as the relay was cut is dropped, not kept alive.
                if self.listener is not listener:
                    for end in (client, upstream):
                        end.close()
                    return
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.listener.close()
            self.listener = None
            for connection in self.connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                    connection.close()
                except OSError:
                    pass
            self.connections = []


# 3. The database unreachable from one node: /v1/ready turns 503 within 2 s, requests get 503
#    with the reason and no answer goes out unaudited, and the node serves again on its own.
proxy = Proxy(int(admin.rsplit(":", 1)[1].split("/")[0]))
c, url_c = start_node("c", "postgres://%s@127.0.0.1:%d/%s" % (admin.split("://", 1)[1].split("@")[0], proxy.port, database))
call_c = client(url_c, token)
if call_c("POST", "/v1/keys", {"spec": "AES-256-GCM"})[0] != 201:
    fail("node c (through the relay) does not serve")


def ready(url):
    try:
        with urllib.request.urlopen(url + "/v1/ready", timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code
    except Exception:
        return 0


before_cut = len(call_c("GET", "/v1/keys?limit=1000")[1].get("keys", []))
proxy.cut()
cut_at = time.time()
while ready(url_c) != 503:
    if time.time() - cut_at > 10:
        fail("node c still reports ready 10 s after losing its database")
    time.sleep(0.05)
not_ready_after = time.time() - cut_at
status, refused = call_c("POST", "/v1/keys", {"spec": "AES-256-GCM"})
if status != 503 or "unavailable" not in str(refused):
    fail("a request without the database got %s %s, not 503 unavailable" % (status, refused))
proxy.listen()
back = time.time()
while True:
    status, _ = call_c("POST", "/v1/keys", {"spec": "AES-256-GCM"})
    if status == 201:
        break
    if time.time() - back > 30:
        fail("node c did not serve again within 30 s of its database coming back (last %s)" % status)
    time.sleep(0.1)
resumed_after = time.time() - back
if ready(url_c) != 200:
    fail("node c is not ready again")
stop(c)
check(call_b, "database unreachable from one node")
print("cluster: database cut from one node: /v1/ready 503 after %.2f s, requests 503 unavailable, served again %.1f s after it came back; "
      "store and audit chain verify" % (not_ready_after, resumed_after))
if not_ready_after > 2.0:
    fail("readiness took %.2f s to report the lost database (at most 2 s)" % not_ready_after)
stop(b)

# 4. The maintenance lease: one node of two holds it; SIGSTOP that node past its lease and the
# other takes the work over with a larger fencing token; woken, the paused node does not take
# it back (its writes under the old token would be refused inside their transactions).
lease_env = dict(env, KEYWARD_LEASE_SECONDS="3", KEYWARD_MAINTENANCE_INTERVAL_SECONDS="1")
nodes = {}
for name in ("e", "f"):
    server, url = launch([binary, "serve", "--store", store, "--key-file", key_file, "--insecure-http", "--port", "0", "--rate-limit", "0"],
                         os.path.join(work, name + ".log"), env=lease_env, cwd=work)
    if server is None:
        fail("node %s did not start:\n%s" % (name, url))
    nodes[name] = (server, client(url, token))


def cluster(name):
    status, body = nodes[name][1]("GET", "/v1/admin/cluster")
    if status != 200:
        fail("GET /v1/admin/cluster on node %s: %s %s" % (name, status, body))
    lease = (body.get("leases") or [{}])[0]
    return body.get("node"), lease.get("holder"), lease.get("token"), lease.get("expiresAt")


ids = {name: cluster(name)[0] for name in nodes}
began = time.time()
while True:
    _, holder, token_before, _ = cluster("e")
    if holder in ids.values():
        break
    if time.time() - began > 20:
        fail("neither node took the maintenance lease within 20 s (holder %s)" % holder)
    time.sleep(0.2)
leader = [name for name in nodes if ids[name] == holder][0]
follower = [name for name in nodes if name != leader][0]
nodes[leader][0].send_signal(signal.SIGSTOP)
paused = time.time()
while True:
    _, holder, token_after, _ = cluster(follower)
    if holder == ids[follower]:
        break
    if time.time() - paused > 15:
        fail("node %s did not take the lease within 15 s of the holder's pause" % follower)
    time.sleep(0.1)
failover = time.time() - paused
if not token_after > token_before:
    fail("the new holder's fencing token %s is not larger than the old %s" % (token_after, token_before))
nodes[leader][0].send_signal(signal.SIGCONT)
time.sleep(4)
_, holder_seen_by_woken, token_seen, _ = cluster(leader)
if holder_seen_by_woken != ids[follower] or token_seen != token_after:
    fail("after waking, the paused node took the lease back (holder %s, token %s)" % (holder_seen_by_woken, token_seen))
with open(os.path.join(work, leader + ".log")) as log:
    if "lost the maintenance lease" not in log.read():
        fail("the woken node did not notice it had lost the lease")
# 5. The audit intake (decision 0034): the woken node, no longer the lease holder, writes its
# entries to the intake; the holder chains them within a second, and the chain verifies.
def sql(query):
    return subprocess.run(["psql", store, "-XAtqc", query], capture_output=True, text=True, check=True).stdout.strip()
chained_before = int(sql("SELECT count(*) FROM audit"))
status, key = nodes[leader][1]("POST", "/v1/keys", {"spec": "AES-256-GCM"})
if status != 201:
    fail("creating a key on the woken node: %s %s" % (status, key))
for _ in range(50):
    status, _ = nodes[leader][1]("POST", "/v1/keys/%s/encrypt" % key["id"], {"plaintext": b64("intake")})
    if status != 200:
        fail("encrypting on the woken node: %s" % status)
written = time.time()
while int(sql("SELECT count(*) FROM audit_intake")) > 0:
    if time.time() - written > 3:
        fail("the sequencer left %s intake entries unchained for 3 s" % sql("SELECT count(*) FROM audit_intake"))
    time.sleep(0.05)
drained = time.time() - written
chained = int(sql("SELECT count(*) FROM audit")) - chained_before
if chained < 51:
    fail("the chain grew by %d entries for 51 audited requests" % chained)
audit = run("audit", "verify")
if "audit chain intact" not in audit:
    fail("audit intake: %s" % audit.strip())
for name in nodes:
    stop(nodes[name][0])
print("cluster: audit intake: 51 requests on the node without the lease, chained by the holder within %.2f s of the last; chain verifies" % drained)
print("cluster: maintenance lease (3 s) held by one node of two; SIGSTOP of the holder: the other took it over after %.1f s with fencing token %s (was %s); "
      "the woken node stood down" % (failover, token_after, token_before))
if failover > 3 + 1 + 2:
    fail("the lease took %.1f s to move (at most lease 3 s + renewal 1 s + 2 s)" % failover)
subprocess.run(["psql", admin, "-Xqc", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % database], capture_output=True)
