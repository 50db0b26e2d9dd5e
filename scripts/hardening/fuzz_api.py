#!/usr/bin/env python3
"""Fuzzes the served API with schemathesis against openapi.yaml (all phases, every check but
positive_data_acceptance; see docs/operations.md, "Hardening runs") and fails unless the server
answered at least MIN_REQUESTS requests, none with a 5xx, and schemathesis found no response the
document does not describe.

The server runs in development mode on a free loopback port, with the failed-login limiter
raised (the fuzzer is one peer sending thousands of requests). Keys of each purpose are created
first and named in a schemathesis.toml, so the operations reach their logic rather than 404.
Usage: fuzz_api.py KEYWARD_BINARY OPENAPI_YAML [MIN_REQUESTS]
"""
import json, os, re, subprocess, sys
from keyward_process import client, fail, start, stop, text, workdir
binary, document = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
minimum = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
token = "fuzz-root-token-" + os.urandom(12).hex()
work = workdir("keyward-fuzz-")
ca = os.path.join(work, "dev", "ca.pem")
env = dict(os.environ, KEYWARD_FAILED_LOGINS_PER_SECOND="1000000", KEYWARD_FAILED_LOGINS_BURST="1000000",
           KEYWARD_RATE_LIMIT_REQUESTS_PER_SECOND="0")
server, url = start([binary, "serve", "--dev", "--dev-dir", os.path.join(work, "dev"), "--port", "0", "--dev-root-token", token],
                    os.path.join(work, "server.log"), env=env, cwd=work)
if server is None:
    fail("fuzz", "the server did not start:\n" + url)
try:
    call = client(url, token, cafile=ca)
    keys = {}
    for name, spec in [("aes", "AES-256-GCM"), ("ed", "ED25519"), ("hmac", "HMAC-SHA256"), ("x", "X25519"),
                       ("kem", "ML-KEM-768"), ("life", "AES-256-GCM")]:
        status, key = call("POST", "/v1/keys", {"spec": spec, "aliases": ["fuzz-" + name]})
        if status != 201:
            fail("fuzz", "creating the %s key: %d %s" % (spec, status, key))
        keys[name] = key["id"]
    routes = [
        ("aes", r"^/v1/keys/\{key\}/(encrypt|decrypt|re-encrypt|data-key|data-key-pair)(/batch)?$"),
        ("ed", r"^/v1/keys/\{key\}/(sign|sign/batch|verify|public-key)$"),
        ("hmac", r"^/v1/keys/\{key\}/(mac|verify-mac)$"),
        ("x", r"^/v1/keys/\{key\}/derive-shared-secret$"),
        ("kem", r"^/v1/keys/\{key\}/decapsulate$"),
        ("life", r"^/v1/keys/\{key\}(/(rotate|enable|disable|deactivate|mark-compromised|schedule-destruction|cancel-destruction))?$"),
    ]
    with open(os.path.join(work, "schemathesis.toml"), "w") as config:
        for name, pattern in routes:
            config.write('[[operations]]\ninclude-path-regex = %s\nparameters = { key = "%s" }\n\n' % (json.dumps(pattern), keys[name]))

    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
              "response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,"
              "allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth")
    def counted():
        """(requests, 5xx) as the server's own metrics count them."""
        total, errors = 0, 0
        for line in text(url, "/metrics", token, cafile=ca).splitlines():
            found = re.match(r'keyward_http_requests_total\{.*status="(\d+)".*\} (\d+)', line)
            if found:
                total += int(found.group(2))
                if found.group(1).startswith("5"):
                    errors += int(found.group(2))
        return total, errors

    # Runs of schemathesis (each every phase, a new seed each time) until the server has answered
    # `minimum` requests, so a slower machine runs longer instead of testing less; bounded at 4 runs.
    seed = int(os.environ.get("FUZZ_SEED", "20261204"))
    for run in range(4):
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", os.path.join(work, "schemathesis.toml"), "run", document,
                   "--url", url, "--tls-verify", ca, "-H", "Authorization: Bearer " + token,
                   "--checks", checks, "--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "70"),
                   # POST / is the AWS KMS protocol (SigV4, AWS's own errors): scripts/clients/aws_kms.py
                   # drives it with the AWS clients themselves.
                   "--exclude-path", "/",
                   # Transit (/v1/transit/) answers in Vault's shapes; scripts/clients/vault_transit.py
                   # drives it with hvac and the bao CLI.
                   "--exclude-path-regex", "^/v1/transit/",
                   # One worker: CPython 3.11's ast.parse is not thread-safe (hypothesis calls it to
                   # describe filters; with two workers it fails with "AST constructor recursion
                   # depth mismatch", a fault of the tool, not of the server).
                   "-w", "1", "--seed", str(seed + run),
                   # Fuzzing and stateful testing repeat until the budget is spent (about 7,000
                   # requests on the development machine).
                   "--max-time", os.environ.get("FUZZ_SECONDS", "210")]
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=900)
        output = result.stdout + result.stderr
        saved = os.path.join(work, "schemathesis-%d.txt" % (run + 1))
        with open(saved, "w") as handle:
            handle.write(output)
        summary = [line[:300] for line in output.splitlines() if re.search(r"❌|🚫|generated|ST\d{3}|passed|failures?\b", line)]
        print("\n".join(summary[-30:]))
        if result.returncode != 0:
            fail("fuzz", "schemathesis reported failures or errors (exit %d, seed %d); see %s" % (result.returncode, seed + run, saved))
        total, errors = counted()
        print("fuzz: after run %d the server has answered %d requests, %d of them 5xx" % (run + 1, total, errors))
        if errors:
            fail("fuzz", "%d responses were 5xx" % errors)
        if total >= minimum:
            break
    if total < minimum:
        fail("fuzz", "only %d requests in 4 runs; at least %d are required" % (total, minimum))
    print("fuzz: passed")
finally:
    stop(server)
