#!/usr/bin/env python3
"""Existing Vault/OpenBao Transit clients against Keyward's Transit front end (/v1/transit/),
unchanged but for the address, over HTTPS with the dev server's CA:

1. hvac drives the endpoints Keyward serves: keys (create, read, list, rotate), encrypt and
   decrypt (single and batch_input, associated_data), data keys, HMAC and its verification,
   signing and verification, random bytes;
2. the real OpenBao CLI (`bao`, BAO_ADDR and BAO_TOKEN) writes and reads keys, encrypts,
   decrypts and rotates;
3. a Transit ciphertext is Keyward's: the native API decrypts it;
4. refusals in Transit's shape: an unknown key (404), a bad token and a policy that does not
   cover the call (403 "permission denied"), a namespace (400: Keyward has none).

Usage: vault_transit.py KEYWARD_BINARY
"""
import base64, hashlib, hmac, json, os, ssl, subprocess, sys, urllib.error, urllib.request, uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hardening"))
from keyward_process import client, fail as failed, start, stop, workdir  # noqa: E402

import hvac  # noqa: E402

binary = os.path.abspath(sys.argv[1])
work = workdir("keyward-transit-")
root = "transit-root-token-" + uuid.uuid4().hex
results = []


def fail(message):
    failed("transit", message)


def check(condition, message):
    if not condition:
        fail(message)


def b64(data):
    return base64.b64encode(data).decode()


# A recovery site's recipient key pair: this server seals Transit backups to it.
site_identity, site_public = os.path.join(work, "site.identity"), os.path.join(work, "site.pub")
subprocess.run([binary, "backup", "keygen", "--spec", "X25519", "--identity", site_identity, "--public-out", site_public],
               check=True, capture_output=True)
server, url = start([binary, "serve", "--dev", "--dev-dir", os.path.join(work, "dev"), "--port", "0", "--dev-root-token", root],
                    os.path.join(work, "serve.log"), env=dict(os.environ, KEYWARD_BACKUP_RECIPIENTS=site_public))
if server is None:
    fail("the server did not start:\n" + url)
ca = os.path.join(work, "dev", "ca.pem")
native = client(url, root, cafile=ca)

try:
    vault = hvac.Client(url=url, token=root, verify=ca)
    transit = vault.secrets.transit
    name = "orders-" + uuid.uuid4().hex[:6]
    transit.create_key(name=name, key_type="aes256-gcm96")
    transit.create_key(name=name, key_type="aes256-gcm96")  # idempotent, as in Transit
    key = transit.read_key(name=name)["data"]
    check(key["type"] == "aes256-gcm96" and key["latest_version"] == 1 and key["supports_encryption"], "read_key: %s" % key)
    # hvac's create_key checks key_type against a list without aes128-gcm96; its adapter sends it as is.
    vault.adapter.post("/v1/transit/keys/" + name + "-128", json={"type": "aes128-gcm96"})
    check(transit.read_key(name=name + "-128")["data"]["type"] == "aes128-gcm96", "aes128-gcm96 read")
    sealed128 = transit.encrypt_data(name=name + "-128", plaintext=b64(b"short key"))["data"]["ciphertext"]
    check(base64.b64decode(transit.decrypt_data(name=name + "-128", ciphertext=sealed128)["data"]["plaintext"]) == b"short key", "aes128-gcm96 round trip")
    sealed = transit.encrypt_data(name=name, plaintext=b64(b"ledger entry"))["data"]["ciphertext"]
    check(sealed.startswith("vault:v1:"), "ciphertext: %s" % sealed)
    check(base64.b64decode(transit.decrypt_data(name=name, ciphertext=sealed)["data"]["plaintext"]) == b"ledger entry", "decrypt")
    bound = transit.encrypt_data(name=name, plaintext=b64(b"bound"), associated_data=b64(b"row 7"))["data"]["ciphertext"]
    check(base64.b64decode(transit.decrypt_data(name=name, ciphertext=bound, associated_data=b64(b"row 7"))["data"]["plaintext"]) == b"bound",
          "associated_data round trip")
    try:
        transit.decrypt_data(name=name, ciphertext=bound, associated_data=b64(b"row 8"))
        fail("decrypt with other associated_data succeeded")
    except hvac.exceptions.InvalidRequest:
        pass
    # A derived key: context on every use, each ciphertext bound to its context.
    derived = name + "-derived"
    transit.create_key(name=derived, key_type="aes256-gcm96", derived=True)
    check(transit.read_key(name=derived)["data"]["derived"] is True, "read_key derived")
    tenant_a = transit.encrypt_data(name=derived, plaintext=b64(b"tenant a"), context=b64(b"tenant-a"))["data"]["ciphertext"]
    check(base64.b64decode(transit.decrypt_data(name=derived, ciphertext=tenant_a, context=b64(b"tenant-a"))["data"]["plaintext"]) == b"tenant a",
          "derived round trip")
    for attempt, call in (("decrypt with another context", lambda: transit.decrypt_data(name=derived, ciphertext=tenant_a, context=b64(b"tenant-b"))),
                          ("encrypt without context", lambda: transit.encrypt_data(name=derived, plaintext=b64(b"x"))),
                          ("decrypt without context", lambda: transit.decrypt_data(name=derived, ciphertext=tenant_a)),
                          ("a convergent key", lambda: transit.create_key(name=name + "-convergent", key_type="aes256-gcm96", derived=True,
                                                                          convergent_encryption=True)),
                          ("a derived signing key", lambda: transit.create_key(name=name + "-derived-ed", key_type="ed25519", derived=True))):
        try:
            call()
            fail(attempt + " succeeded")
        except hvac.exceptions.InvalidRequest:
            pass
    # Encrypting to a key that does not exist creates it (Transit's upsert), for a token that may create.
    upserted = "upserted-" + uuid.uuid4().hex[:8]
    first_use = transit.encrypt_data(name=upserted, plaintext=b64(b"first use"))["data"]["ciphertext"]
    check(transit.read_key(name=upserted)["data"]["type"] == "aes256-gcm96", "encrypt upserts an aes256-gcm96 key")
    check(base64.b64decode(transit.decrypt_data(name=upserted, ciphertext=first_use)["data"]["plaintext"]) == b"first use", "decrypt with the upserted key")
    # A batch with a failed item is a 400, as OpenBao answers it: hvac raises, and the results ride with the error.
    try:
        transit.encrypt_data(name=name, plaintext="", batch_input=[{"plaintext": b64(b"a"), "reference": "a"}, {"plaintext": b64(b"b")}, {"plaintext": "%%%", "reference": "bad"}])
        fail("a batch with a failed item was answered as a success")
    except hvac.exceptions.InvalidRequest as error:
        items = error.json["data"]["batch_results"]
    check(len(items) == 3 and items[0]["ciphertext"].startswith("vault:v1:") and "error" in items[2], "batch encrypt: %s" % items)
    check([i["reference"] for i in items] == ["a", "", "bad"], "batch references: %s" % items)
    opened = transit.decrypt_data(name=name, ciphertext="", batch_input=[{"ciphertext": items[0]["ciphertext"]}, {"ciphertext": items[1]["ciphertext"]}])
    check([base64.b64decode(i["plaintext"]) for i in opened["data"]["batch_results"]] == [b"a", b"b"], "batch decrypt")
    transit.rotate_key(name=name)
    check(transit.read_key(name=name)["data"]["latest_version"] == 2, "rotate")
    check(transit.encrypt_data(name=name, plaintext=b64(b"x"))["data"]["ciphertext"].startswith("vault:v2:"), "encrypt after rotation")
    check(base64.b64decode(transit.decrypt_data(name=name, ciphertext=sealed)["data"]["plaintext"]) == b"ledger entry", "old ciphertext after rotation")
    data_key = transit.generate_data_key(name=name, key_type="plaintext")["data"]
    check(len(base64.b64decode(data_key["plaintext"])) == 32 and
          transit.decrypt_data(name=name, ciphertext=data_key["ciphertext"])["data"]["plaintext"] == data_key["plaintext"], "datakey/plaintext")
    check("plaintext" not in transit.generate_data_key(name=name, key_type="wrapped")["data"], "datakey/wrapped")
    rewrapped = transit.rewrap_data(name=name, ciphertext=sealed)["data"]["ciphertext"]
    check(rewrapped.startswith("vault:v2:") and base64.b64decode(transit.decrypt_data(name=name, ciphertext=rewrapped)["data"]["plaintext"]) == b"ledger entry",
          "rewrap to the latest version")
    transit.update_key_configuration(name=name, min_decryption_version=2)
    check(transit.read_key(name=name)["data"]["min_decryption_version"] == 2, "config min_decryption_version")
    try:
        transit.decrypt_data(name=name, ciphertext=sealed)
        fail("a v1 ciphertext decrypted below the minimum decryption version")
    except hvac.exceptions.InvalidRequest:
        pass
    # min_encryption_version is kept and reported (Keyward encrypts with the latest version);
    # trim destroys the versions below min_available_version, only those already refused.
    transit.update_key_configuration(name=name, min_encryption_version=2)
    check(transit.read_key(name=name)["data"]["min_encryption_version"] == 2, "config min_encryption_version")
    try:
        transit.update_key_configuration(name=name, min_encryption_version=5)
        fail("min_encryption_version above the latest version was accepted")
    except hvac.exceptions.InvalidRequest:
        pass
    try:
        transit.trim_key(name=name, min_version=3)
        fail("trim above min_decryption_version was accepted")
    except hvac.exceptions.InvalidRequest:
        pass
    transit.trim_key(name=name, min_version=2)
    trimmed = transit.read_key(name=name)["data"]
    check(trimmed["min_available_version"] == 2 and sorted(trimmed["keys"]) == ["2"], "trim: %s" % trimmed)
    check(base64.b64decode(transit.decrypt_data(name=name, ciphertext=rewrapped)["data"]["plaintext"]) == b"ledger entry", "v2 decrypts after trim")
    try:
        transit.update_key_configuration(name=name, min_decryption_version=1)
        fail("min_decryption_version went below the trimmed versions")
    except hvac.exceptions.InvalidRequest:
        pass
    check(transit.hash_data(hash_input=b64(b"abc"), algorithm="sha2-256")["data"]["sum"] ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "hash sha2-256")
    # hvac lists with the LIST method over HTTP/1.1; `bao list` sends GET ?list=true.
    listed = transit.list_keys()["data"]["keys"]
    check(name in listed, "list_keys: %s" % listed)
    check(vault.adapter.get("/v1/transit/keys", params={"list": "true"})["data"]["keys"] == listed, "GET ?list=true: %s" % listed)

    mac_name = name + "-mac"
    # hvac's create_key checks key_type against a list without "hmac"; its adapter sends it as is.
    vault.adapter.post("/v1/transit/keys/" + mac_name, json={"type": "hmac"})
    tag = transit.generate_hmac(name=mac_name, hash_input=b64(b"message"))["data"]["hmac"]
    check(transit.verify_signed_data(name=mac_name, hash_input=b64(b"message"), hmac=tag)["data"]["valid"], "verify hmac")
    check(not transit.verify_signed_data(name=mac_name, hash_input=b64(b"other"), hmac=tag)["data"]["valid"], "verify a wrong hmac")
    for key_type in ("ed25519", "ecdsa-p256", "rsa-2048"):
        signer = name + "-" + key_type
        transit.create_key(name=signer, key_type=key_type)
        signature = transit.sign_data(name=signer, hash_input=b64(b"release 1.0"))["data"]["signature"]
        check(transit.verify_signed_data(name=signer, hash_input=b64(b"release 1.0"), signature=signature)["data"]["valid"], "verify %s" % key_type)
        check(not transit.verify_signed_data(name=signer, hash_input=b64(b"release 2.0"), signature=signature)["data"]["valid"], "a bad %s signature" % key_type)
        check(transit.read_key(name=signer)["data"]["keys"]["1"]["public_key"].startswith("-----BEGIN PUBLIC KEY-----"), "%s public key" % key_type)
    # Keyward's post-quantum types, under names of their own (hvac's create_key knows only Vault's
    # types; its adapter sends them as they are). ML-DSA signs through Transit; a KEM key's
    # public key (base64: there is no PEM for them) is read and exported, with its FIPS 203 or
    # X-Wing length, and its Transit operations are refused.
    for key_type, public_length in (("ml-dsa-65", 1952), ("ml-kem-768", 1184), ("ml-kem-1024", 1568), ("x-wing", 1216)):
        pq = name + "-" + key_type
        vault.adapter.post("/v1/transit/keys/" + pq, json={"type": key_type})
        read = transit.read_key(name=pq)["data"]
        public = base64.b64decode(read["keys"]["1"]["public_key"])
        check(read["type"] == key_type and len(public) == public_length, "%s read: type %s, a %d-byte public key" % (key_type, read["type"], len(public)))
        check(vault.adapter.get("/v1/transit/export/public-key/" + pq)["data"]["keys"]["1"] == read["keys"]["1"]["public_key"], "%s public-key export" % key_type)
        if key_type.startswith("ml-dsa"):
            signature = transit.sign_data(name=pq, hash_input=b64(b"release 1.0"))["data"]["signature"]
            check(transit.verify_signed_data(name=pq, hash_input=b64(b"release 1.0"), signature=signature)["data"]["valid"], "verify %s" % key_type)
        else:
            try:
                transit.encrypt_data(name=pq, plaintext=b64(b"x"))
                fail("%s encrypted through Transit" % key_type)
            except hvac.exceptions.InvalidRequest:
                pass
    # JWS marshaling (raw r || s, base64url), checked with Python cryptography against the public key.
    jws_signer = name + "-ecdsa-p256"
    jws = transit.sign_data(name=jws_signer, hash_input=b64(b"jws payload"), marshaling_algorithm="jws")["data"]["signature"]
    raw = base64.urlsafe_b64decode(jws.split(":", 2)[2] + "==")
    check(len(raw) == 64 and "=" not in jws, "a jws signature is 64 raw bytes, unpadded base64url: %s" % jws)
    check(transit.verify_signed_data(name=jws_signer, hash_input=b64(b"jws payload"), signature=jws, marshaling_algorithm="jws")["data"]["valid"], "verify jws")
    from cryptography.hazmat.primitives import hashes, hmac as chmac, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    public = serialization.load_pem_public_key(transit.read_key(name=jws_signer)["data"]["keys"]["1"]["public_key"].encode())
    public.verify(utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")), b"jws payload", ec.ECDSA(hashes.SHA256()))
    # A batch of digests, prehashed beside batch_input as hvac sends it: each signature is over the digest.
    digests = [hashlib.sha256(m).digest() for m in (b"batch one", b"batch two")]
    signed = transit.sign_data(name=jws_signer, batch_input=[{"input": b64(d)} for d in digests], prehashed=True, hash_algorithm="sha2-256")["data"]["batch_results"]
    for item, digest in zip(signed, digests):
        public.verify(base64.b64decode(item["signature"].split(":", 2)[2]), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    try:
        transit.sign_data(name=name + "-rsa-2048", hash_input=b64(b"x"), signature_algorithm="pkcs1v15")
        fail("pkcs1v15 was accepted for a PSS key")
    except hvac.exceptions.InvalidRequest:
        pass
    check(transit.verify_signed_data(name=name + "-rsa-2048", hash_input=b64(b"release 1.0"), signature_algorithm="pss",
                                     signature=transit.sign_data(name=name + "-rsa-2048", hash_input=b64(b"release 1.0"), signature_algorithm="pss")["data"]["signature"])["data"]["valid"],
          "rsa pss named explicitly")
    # One key, one algorithm: a hash that is not the key's is refused, never ignored.
    for key_type, wrong in (("rsa-2048", "sha2-384"), ("ecdsa-p256", "sha2-512")):
        try:
            transit.sign_data(name=name + "-" + key_type, hash_input=b64(b"x"), hash_algorithm=wrong)
            fail("%s signed with %s" % (key_type, wrong))
        except hvac.exceptions.InvalidRequest:
            pass
    check(transit.verify_signed_data(name=name + "-ecdsa-p256", hash_input=b64(b"h"), hash_algorithm="sha2-256",
                                     signature=transit.sign_data(name=name + "-ecdsa-p256", hash_input=b64(b"h"), hash_algorithm="sha2-256")["data"]["signature"])["data"]["valid"],
          "the key's own hash named explicitly")
    # PKCS #1 v1.5 and SHA-384 RSA keys, created through the native API under a transit/ alias,
    # sign through Transit with their algorithm named; Python cryptography checks the signatures.
    from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
    for spec, algorithm, hash_name, pad in (("RSA-2048-PKCS1-SHA256", "pkcs1v15", "sha2-256", lambda h: rsa_padding.PKCS1v15()),
                                            ("RSA-3072-PSS-SHA384", "pss", "sha2-384",
                                             lambda h: rsa_padding.PSS(mgf=rsa_padding.MGF1(h), salt_length=rsa_padding.PSS.DIGEST_LENGTH))):
        signer = name + "-" + spec.lower()
        status, created = native("POST", "/v1/keys", {"spec": spec, "aliases": ["transit/" + signer]})
        check(status == 201, "native create %s: %s %s" % (spec, status, created))
        read = transit.read_key(name=signer)["data"]
        check(read["type"] == "rsa-" + spec.split("-")[1], "read %s: %s" % (spec, read["type"]))
        signature = transit.sign_data(name=signer, hash_input=b64(b"release 2.0"), hash_algorithm=hash_name, signature_algorithm=algorithm)["data"]["signature"]
        check(transit.verify_signed_data(name=signer, hash_input=b64(b"release 2.0"), hash_algorithm=hash_name, signature_algorithm=algorithm,
                                         signature=signature)["data"]["valid"], "verify %s" % spec)
        digest = hashes.SHA256() if hash_name == "sha2-256" else hashes.SHA384()
        public = serialization.load_pem_public_key(read["keys"]["1"]["public_key"].encode())
        public.verify(base64.b64decode(signature.split(":", 2)[2]), b"release 2.0", pad(digest), digest)
        other = "pss" if algorithm == "pkcs1v15" else "pkcs1v15"
        try:
            transit.sign_data(name=signer, hash_input=b64(b"x"), signature_algorithm=other)
            fail("a %s key signed with %s" % (spec, other))
        except hvac.exceptions.InvalidRequest:
            pass
    # The same through Transit alone: hash_algorithm and signature_algorithm at creation (a
    # Keyward extension; Vault ignores them there) choose the key's one scheme.
    rs256 = name + "-rs256"
    vault.adapter.post("/v1/transit/keys/" + rs256, json={"type": "rsa-2048", "signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-256"})
    signature = transit.sign_data(name=rs256, hash_input=b64(b"release 3.0"), signature_algorithm="pkcs1v15")["data"]["signature"]
    public = serialization.load_pem_public_key(transit.read_key(name=rs256)["data"]["keys"]["1"]["public_key"].encode())
    public.verify(base64.b64decode(signature.split(":", 2)[2]), b"release 3.0", rsa_padding.PKCS1v15(), hashes.SHA256())
    mac512 = name + "-hmac512"
    vault.adapter.post("/v1/transit/keys/" + mac512, json={"type": "hmac", "hash_algorithm": "sha2-512", "exportable": True})
    tag = transit.generate_hmac(name=mac512, hash_input=b64(b"ledger"), algorithm="sha2-512")["data"]["hmac"]
    exported = list(transit.export_key(name=mac512, key_type="hmac-key")["data"]["keys"].values())[0]
    check(base64.b64decode(tag.split(":", 2)[2]) == hmac.new(base64.b64decode(exported), b"ledger", hashlib.sha512).digest(),
          "an hmac key created with hash_algorithm sha2-512 computes HMAC-SHA-512")
    try:
        vault.adapter.post("/v1/transit/keys/" + name + "-bad-choice", json={"type": "ed25519", "signature_algorithm": "pkcs1v15"})
        fail("an Ed25519 key took a signature_algorithm")
    except hvac.exceptions.InvalidRequest:
        pass
    # Export: only exportable keys, never a private signing key. The exported HMAC key computes
    # the tags Transit returns.
    exportable = name + "-export"
    vault.adapter.post("/v1/transit/keys/" + exportable, json={"type": "hmac", "exportable": True})
    exported = transit.export_key(name=exportable, key_type="hmac-key")["data"]["keys"]["1"]
    tag = transit.generate_hmac(name=exportable, hash_input=b64(b"exported"))["data"]["hmac"]
    mac = chmac.HMAC(base64.b64decode(exported), hashes.SHA256())
    mac.update(b"exported")
    check(base64.b64decode(tag.split(":", 2)[2]) == mac.finalize(), "the exported hmac key computes Transit's tag")
    transit.rotate_key(name=exportable)
    check(sorted(transit.export_key(name=exportable, key_type="hmac-key")["data"]["keys"]) == ["1", "2"], "export lists every version")
    check(list(transit.export_key(name=exportable, key_type="hmac-key", version="latest")["data"]["keys"]) == ["2"], "export latest")
    for key_name, key_type in ((mac_name, "hmac-key"), (jws_signer, "signing-key"), (exportable, "encryption-key")):
        try:
            transit.export_key(name=key_name, key_type=key_type)
            fail("export of %s as %s was allowed" % (key_name, key_type))
        except hvac.exceptions.InvalidRequest:
            pass
    # hvac's export_key knows only the three older types; public-key through its adapter.
    check(vault.adapter.get("/v1/transit/export/public-key/" + jws_signer)["data"]["keys"]["1"].startswith("-----BEGIN PUBLIC KEY-----"),
          "public-key export")
    check(len(base64.b64decode(transit.generate_random_bytes(n_bytes=48)["data"]["random_bytes"])) == 48, "random")
    doomed = name + "-doomed"
    transit.create_key(name=doomed)
    try:
        transit.delete_key(name=doomed)
        fail("a key without deletion_allowed was deleted")
    except hvac.exceptions.InvalidRequest:
        pass
    transit.update_key_configuration(name=doomed, deletion_allowed=True)
    check(transit.read_key(name=doomed)["data"]["deletion_allowed"], "deletion_allowed")
    check(transit.read_key(name=doomed)["data"]["keyward_state"] == "active", "keyward_state of a live key")
    transit.delete_key(name=doomed)
    waiting = transit.read_key(name=doomed)["data"]
    check(waiting["keyward_state"] == "pending-destruction" and waiting.get("keyward_destruction_date"),
          "a deleted key reads as pending destruction, with its date: %s" % waiting)
    status, reply = native("GET", "/v1/keys/transit%2F" + doomed)
    check(status == 200 and reply.get("state") == "pending-destruction", "delete schedules destruction: %s %s" % (status, reply))
    results.append("hvac: keys create (aes256-gcm96, aes128-gcm96, ...)/read/list/rotate/config/delete, encrypt/decrypt single and batch (per-item errors, references, 400 for a failed item as OpenBao), encrypt's upsert, associated_data, derived keys (context required and bound; convergent refused), "
                   "rewrap, min_decryption_version enforced, min_encryption_version, trim, hash, data keys, HMAC, sign/verify for ed25519, ecdsa-p256, rsa-2048 and ml-dsa-65, ml-kem-768, ml-kem-1024 and x-wing keys (read and exported public keys, Transit's operations refused), "
                   "jws marshaling (checked with Python cryptography), a prehashed sign batch (each signature over its digest, checked with Python cryptography), pss named and pkcs1v15 refused on a PSS key, a hash that is not the key's refused, PKCS #1 v1.5 and SHA-384 RSA keys under transit/ signing with their algorithm (checked with Python cryptography), an rsa-2048 pkcs1v15 and an hmac sha2-512 key created through Transit with the scheme chosen at creation, export (the exported HMAC key "
                   "recomputes Transit's tag; non-exportable and signing keys refused; public-key), random")

    # A Transit ciphertext is Keyward's: the native API opens it.
    status, reply = native("POST", "/v1/decrypt", {"ciphertext": rewrapped.split(":", 2)[2]})
    check(status == 200 and base64.b64decode(reply["plaintext"]) == b"ledger entry", "native decrypt of a Transit ciphertext: %s %s" % (status, reply))
    results.append("a vault:vN: ciphertext decrypts through the native API (the same key, the same bytes)")

    # The real OpenBao CLI.
    env = dict(os.environ, BAO_ADDR=url, BAO_TOKEN=root, BAO_CACERT=ca)

    def bao(*arguments):
        done = subprocess.run(["bao"] + list(arguments), env=env, capture_output=True, text=True, timeout=60)
        check(done.returncode == 0, "bao %s: %s" % (" ".join(arguments), done.stderr.strip()[-300:]))
        return done.stdout.strip()

    cli_key = "cli-" + uuid.uuid4().hex[:6]
    bao("write", "transit/keys/" + cli_key, "type=ed25519")
    bao("write", "transit/keys/" + cli_key + "-aes", "type=aes256-gcm96")
    ciphertext = bao("write", "-field=ciphertext", "transit/encrypt/" + cli_key + "-aes", "plaintext=" + b64(b"from bao"))
    check(base64.b64decode(bao("write", "-field=plaintext", "transit/decrypt/" + cli_key + "-aes", "ciphertext=" + ciphertext)) == b"from bao", "bao decrypt")
    check("ed25519" in bao("read", "transit/keys/" + cli_key), "bao read")
    bao("write", "-f", "transit/keys/" + cli_key + "/rotate")
    check(bao("read", "-field=latest_version", "transit/keys/" + cli_key) == "2", "bao rotate")
    check(cli_key in bao("list", "transit/keys"), "bao list")
    # The hash in the path, as Vault's docs write it; another hash than the key's is refused.
    bao("write", "transit/keys/" + cli_key + "-p256", "type=ecdsa-p256")
    signature = bao("write", "-field=signature", "transit/sign/" + cli_key + "-p256/sha2-256", "input=" + b64(b"from bao"))
    check(bao("write", "-field=valid", "transit/verify/" + cli_key + "-p256/sha2-256", "input=" + b64(b"from bao"), "signature=" + signature) == "true",
          "bao verify with the hash in the path")
    refused = subprocess.run(["bao", "write", "transit/sign/" + cli_key + "-p256/sha2-512", "input=" + b64(b"x")], env=env, capture_output=True, text=True, timeout=60)
    check(refused.returncode != 0 and "is not this key's" in refused.stderr, "bao sign with another hash in the path: %s" % refused.stderr.strip()[-300:])
    results.append("bao: write transit/keys (ed25519, aes256-gcm96, ecdsa-p256), encrypt, decrypt, read, write -f rotate, list, "
                   "sign and verify with the hash in the path (transit/sign/k/sha2-256), another hash refused")

    # Refusals in Transit's shape.
    try:
        transit.read_key(name="no-such-key")
        fail("an unknown key was read")
    except hvac.exceptions.InvalidPath:
        pass
    try:
        hvac.Client(url=url, token="not-a-token", verify=ca).secrets.transit.read_key(name=name)
        fail("a bad token was accepted")
    except hvac.exceptions.Forbidden as error:
        check("permission denied" in str(error), "bad token message: %s" % error)
    status, issued = native("POST", "/v1/admin/tokens", {"principal": "transit-encrypt-only", "rules": ["encrypt:alias=transit/*"]})
    check(status == 201, "token: %s %s" % (status, issued))
    narrow = hvac.Client(url=url, token=issued["token"], verify=ca).secrets.transit
    narrow.encrypt_data(name=name, plaintext=b64(b"allowed"))
    try:
        narrow.decrypt_data(name=name, ciphertext=rewrapped)
        fail("a token without decrypt decrypted")
    except hvac.exceptions.Forbidden:
        pass
    request = urllib.request.Request(url + "/v1/transit/keys/" + name, headers={"X-Vault-Token": "nope"})
    try:
        urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca), timeout=30)
        fail("a bad token was accepted")
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
        check(error.code == 403 and isinstance(body.get("errors"), list), "Transit error shape: %s %s" % (error.code, body))
    # A client in a namespace (hvac's namespace=, BAO_NAMESPACE) is refused, not served the root's keys.
    try:
        hvac.Client(url=url, token=root, verify=ca, namespace="team-a").secrets.transit.read_key(name=name)
        fail("a request in namespace team-a was served")
    except hvac.exceptions.InvalidRequest as error:
        check("namespace" in str(error), "namespace refusal: %s" % error)
    results.append("refusals: unknown key 404, bad token 403 permission denied, policy without decrypt 403, a namespace 400, errors as {\"errors\": [...]}")

    # Backup and restore of one key, encrypted: hvac takes the backup here and restores it into
    # a second server (another store, holding a key of its own) that trusts this store's signer.
    moving = "moving-" + uuid.uuid4().hex[:8]
    transit.create_key(name=moving)
    moved_ciphertext = transit.encrypt_data(name=moving, plaintext=b64(b"carried"))["data"]["ciphertext"]
    backup = transit.backup_key(name=moving)["data"]["backup"]
    # Not Transit's plaintext JSON: a Keyward bundle, sealed to the site and signed by the store.
    check(not base64.b64decode(backup).lstrip().startswith(b"{"), "the backup is not Transit's plaintext JSON")
    try:
        narrow.backup_key(name=moving)
        fail("a Transit-scoped token took a backup")
    except hvac.exceptions.Forbidden:
        pass
    signer = os.path.join(work, "source-signer.pem")
    subprocess.run([binary, "backup", "signer", "--store", os.path.join(work, "dev", "keyward.db"),
                    "--key-file", os.path.join(work, "dev", "root.key"), "--out", signer], check=True, capture_output=True)
    bundle_file = os.path.join(work, "moving.kwb")
    with open(bundle_file, "wb") as handle:
        handle.write(base64.b64decode(backup))
    verified = subprocess.run([binary, "backup", "verify", "--in", bundle_file, "--identity", site_identity, "--signer", signer], capture_output=True, text=True)
    check(verified.returncode == 0 and "backup intact: 1 keys" in verified.stdout, "the backup opens with the site identity: %s %s" % (verified.stdout, verified.stderr))
    second_root = "transit-recovery-token-" + uuid.uuid4().hex
    second, second_url = start([binary, "serve", "--dev", "--dev-dir", os.path.join(work, "dev2"), "--port", "0", "--dev-root-token", second_root],
                               os.path.join(work, "serve2.log"), env=dict(os.environ, KEYWARD_BACKUP_IDENTITY=site_identity, KEYWARD_BACKUP_SIGNERS=signer))
    if second is None:
        fail("the second server did not start:\n" + second_url)
    try:
        recovery = hvac.Client(url=second_url, token=second_root, verify=os.path.join(work, "dev2", "ca.pem")).secrets.transit
        recovery.create_key(name="resident")
        recovery.restore_key(backup=backup, name="carried")
        check(base64.b64decode(recovery.decrypt_data(name="carried", ciphertext=moved_ciphertext)["data"]["plaintext"]) == b"carried",
              "the restored key decrypts the source's ciphertext")
        for attempt, arguments in [("a second restore", {"backup": backup, "name": "carried"}), ("force", {"backup": backup, "name": "other", "force": True})]:
            try:
                recovery.restore_key(**arguments)
                fail(attempt + " was accepted")
            except hvac.exceptions.InvalidRequest:
                pass
        check(recovery.read_key(name="resident")["data"]["latest_version"] == 1, "the second store's own key is untouched")
    finally:
        stop(second)
    results.append("backup/restore: hvac backup_key (a bundle of the one key sealed to the pinned recipient, checked with keyward backup verify; a Transit-scoped token refused) and restore_key "
                   "under a new name into a second server holding its own key, which then decrypts the source's ciphertext; a second restore and force refused")
finally:
    stop(server)

for line in results:
    print("transit: " + line)
