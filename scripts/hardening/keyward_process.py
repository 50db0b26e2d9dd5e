"""What the hardening scripts share: start `keyward serve` and wait for its URL, send JSON
requests with a bearer token, stop the server, and fail with one line."""
import atexit, json, re, shutil, signal, ssl, subprocess, sys, tempfile, time, urllib.error, urllib.request


# Every server started here, so that a failure (which exits at once) leaves none running.
started = []
# Working directories made here, removed when the script ends well; kept (and named) after a
# failure, for its logs and stores.
workdirs = []
failed_run = [False]


def workdir(prefix):
    """A new temporary directory for this run (stores, logs, certificates): removed at exit unless
    the run failed, so a passing run leaves nothing behind in /tmp."""
    path = tempfile.mkdtemp(prefix=prefix)
    workdirs.append(path)
    return path


_excepthook = sys.excepthook


def _note_failure(kind, value, trace):
    failed_run[0] = True
    _excepthook(kind, value, trace)


sys.excepthook = _note_failure


@atexit.register
def _remove_workdirs():
    if failed_run[0]:
        for path in workdirs:
            print("kept for inspection: %s" % path)
        return
    for path in workdirs:
        shutil.rmtree(path, ignore_errors=True)


def fail(name, message):
    """Prints `name: FAILED: message`, kills every server started here, and exits 1."""
    failed_run[0] = True
    print("%s: FAILED: %s" % (name, message))
    for server in started:
        if server.poll() is None:
            server.kill()
    sys.exit(1)


def start(arguments, log_path, env=None, cwd=None, seconds=60):
    """Runs `keyward serve ...` (the full argument list) with its output appended to log_path;
    returns (process, url) once it prints its URL, or None (with the log) when it does not."""
    log = open(log_path, "a+")
    mark = log.seek(0, 2)
    server = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    started.append(server)
    deadline = time.time() + seconds
    while time.time() < deadline:
        log.flush()
        log.seek(mark)
        found = re.search(r"listening on (https?://127\.0\.0\.1:\d+)", log.read())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(mark)
    return None, log.read()


def stop(server):
    """SIGTERM, then SIGKILL after 20 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def client(url, token, cafile=None):
    """call(method, path, body=None, bearer=token) -> (status, JSON reply), errors included."""
    tls = ssl.create_default_context(cafile=cafile) if cafile else None

    def call(method, path, body=None, bearer=token):
        request = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer " + bearer, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=tls, timeout=30) as reply:
                return reply.status, json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
    return call


def text(url, path, token, cafile=None):
    """GET path as text (the metrics page)."""
    tls = ssl.create_default_context(cafile=cafile) if cafile else None
    request = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, context=tls, timeout=30) as reply:
        return reply.read().decode()
