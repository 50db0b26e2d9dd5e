#!/usr/bin/env python3
"""Existing AWS KMS clients against Keyward's AWS front end, unchanged but for the endpoint:

Over HTTPS with the dev server's CA (boto3 verify=, aws --ca-bundle, AWS_CA_BUNDLE):

1. boto3 (real SigV4 signing) drives every supported operation, and checks signatures,
   public keys and shared secrets with Python `cryptography` as an independent peer;
2. the AWS CLI: create-key, encrypt, decrypt, generate-data-key, sign, verify, list-keys paging;
3. the AWS Encryption SDK CLI (through AWS_ENDPOINT_URL_KMS): a directory of files encrypted
   under a Keyward key and decrypted back byte-identical; a wrong encryption context fails;
4. refusals, each with AWS's error code and each in the audit log: a wrong secret, a stale
   signature, a revoked access key, a key whose policy does not cover the call, an unsigned
   request, an unknown target.

Usage: aws_kms.py KEYWARD_BINARY
"""
import base64, datetime, hashlib, hmac, json, os, ssl, subprocess, sys, time, urllib.error, urllib.request, uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hardening"))
from keyward_process import client, fail as failed, start, stop, workdir  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402

binary = os.path.abspath(sys.argv[1])
work = workdir("keyward-aws-")
root = "aws-root-token-" + uuid.uuid4().hex
REGION = "us-east-1"
results = []


def fail(message):
    failed("aws-kms", message)


def check(condition, message):
    if not condition:
        fail(message)


# Over HTTPS, as clients meet it: the dev server's CA is handed to every client.
server, url = start([binary, "serve", "--dev", "--dev-dir", os.path.join(work, "dev"), "--port", "0",
                     "--dev-root-token", root], os.path.join(work, "serve.log"))
if server is None:
    fail("the server did not start:\n" + url)
ca = os.path.join(work, "dev", "ca.pem")
check(url.startswith("https://"), "the server is not serving HTTPS: " + url)
tls = ssl.create_default_context(cafile=ca)
admin = client(url, root, cafile=ca)


def credential(principal, *rules):
    arguments = [binary, "credential", "create", "--aws", "--server", url, "--principal", principal, "--json"]
    for rule in rules:
        arguments += ["--allow", rule]
    done = subprocess.run(arguments, env=dict(os.environ, KEYWARD_TOKEN=root, KEYWARD_CACERT=ca), capture_output=True, text=True, timeout=60)
    check(done.returncode == 0, "credential create: %s" % done.stderr.strip())
    return json.loads(done.stdout)


def kms(cred, secret=None):
    return boto3.client("kms", endpoint_url=url, region_name=REGION, aws_access_key_id=cred["accessKeyId"], verify=ca,
                        aws_secret_access_key=secret or cred["secretAccessKey"], config=Config(retries={"max_attempts": 1}))


def code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


try:
    full = credential("aws-app", "*:*")
    k = kms(full)

    # --- boto3: keys and their lifecycle ---
    sym = k.create_key(Description="orders", Tags=[{"TagKey": "team", "TagValue": "pay"}])["KeyMetadata"]
    check(sym["KeySpec"] == "SYMMETRIC_DEFAULT" and sym["KeyUsage"] == "ENCRYPT_DECRYPT" and sym["KeyState"] == "Enabled"
          and sym["Arn"] == "arn:aws:kms:%s:111122223333:key/%s" % (REGION, sym["KeyId"]), "CreateKey: %s" % sym)
    alias = "alias/orders-" + uuid.uuid4().hex[:8]
    k.create_alias(AliasName=alias, TargetKeyId=sym["KeyId"])
    check(code(lambda: k.create_alias(AliasName=alias, TargetKeyId=sym["KeyId"])) == "AlreadyExistsException", "CreateAlias twice")
    crowded = k.create_key()["KeyMetadata"]["KeyId"]
    for n in range(50):
        k.create_alias(AliasName="alias/crowded-%d" % n, TargetKeyId=crowded)
    check(code(lambda: k.create_alias(AliasName="alias/crowded-50", TargetKeyId=crowded)) == "LimitExceededException", "a 51st alias on a key")
    for ref in [sym["KeyId"], sym["Arn"], alias, "arn:aws:kms:%s:111122223333:%s" % (REGION, alias)]:
        check(k.describe_key(KeyId=ref)["KeyMetadata"]["KeyId"] == sym["KeyId"], "DescribeKey by %s" % ref)
    check(code(lambda: k.describe_key(KeyId="arn:aws:kms:eu-west-1:111122223333:key/" + sym["KeyId"])) == "NotFoundException", "another region's ARN")
    check(code(lambda: k.describe_key(KeyId=str(uuid.uuid4()))) == "NotFoundException", "unknown key")
    k.update_key_description(KeyId=alias, Description="orders v2")
    k.tag_resource(KeyId=alias, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    # A tag key twice in one call (one value would win) and AWS's reserved aws: prefix are refused,
    # in TagResource and in CreateKey, and change nothing.
    for tags in ([{"TagKey": "env", "TagValue": "dev"}, {"TagKey": "env", "TagValue": "prod"}], [{"TagKey": "AWS:owner", "TagValue": "x"}]):
        check(code(lambda: k.tag_resource(KeyId=alias, Tags=tags)) == "TagException", "TagResource %s" % tags)
        check(code(lambda: k.create_key(Tags=tags)) == "TagException", "CreateKey Tags %s" % tags)
    k.untag_resource(KeyId=alias, TagKeys=["team"])
    # Callers tagging one key at once: every TagResource succeeds and keeps its tag (the tags are
    # merged inside the update, not read, changed and written back whole, and an update that
    # collides with another is reapplied by the server, not refused).
    import threading
    raced, outcomes = k.create_key()["KeyMetadata"]["KeyId"], {}
    def tag_one(n):
        try:
            kms(full).tag_resource(KeyId=raced, Tags=[{"TagKey": "race%d" % n, "TagValue": "v"}])
            outcomes[n] = "ok"
        except ClientError as error:
            outcomes[n] = error.response["Error"]["Code"]
    racers = [threading.Thread(target=tag_one, args=(n,)) for n in range(12)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    kept = {t["TagKey"] for t in k.list_resource_tags(KeyId=raced)["Tags"]}
    won = {"race%d" % n for n, outcome in outcomes.items() if outcome == "ok"}
    check(len(won) == 12 and won == kept,
          "concurrent TagResource: %d succeeded, %d tags kept, outcomes %s" % (len(won), len(kept), sorted(set(outcomes.values()))))
    tags = k.list_resource_tags(KeyId=alias)["Tags"]
    check(tags == [{"TagKey": "env", "TagValue": "prod"}], "tags: %s" % tags)
    check(k.describe_key(KeyId=alias)["KeyMetadata"]["Description"] == "orders v2", "UpdateKeyDescription")
    other = k.create_key()["KeyMetadata"]
    alias2 = alias + "-moved"
    k.create_alias(AliasName=alias2, TargetKeyId=sym["KeyId"])
    k.update_alias(AliasName=alias2, TargetKeyId=other["KeyId"])
    listed = k.list_aliases(KeyId=other["KeyId"])["Aliases"]
    check([a["AliasName"] for a in listed] == [alias2], "ListAliases KeyId filter: %s" % listed)
    k.delete_alias(AliasName=alias2)
    check(code(lambda: k.describe_key(KeyId=alias2)) == "NotFoundException", "DeleteAlias")
    # Paging: ListKeys and ListAliases one item per page, following NextMarker to the end.
    seen, marker = [], None
    for _ in range(100):
        page = k.list_keys(Limit=1, **({"Marker": marker} if marker else {}))
        seen += [key["KeyId"] for key in page["Keys"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    check(sym["KeyId"] in seen and other["KeyId"] in seen and len(seen) == len(set(seen)), "ListKeys paging: %s" % seen)
    names = [a["AliasName"] for page in k.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 1}) for a in page["Aliases"]]
    check(alias in names and len(names) == len(set(names)), "ListAliases paging: %s" % names)

    k.disable_key(KeyId=alias)
    check(k.describe_key(KeyId=alias)["KeyMetadata"]["KeyState"] == "Disabled", "DisableKey")
    check(code(lambda: k.encrypt(KeyId=alias, Plaintext=b"x")) == "DisabledException", "encrypt under a disabled key")
    k.enable_key(KeyId=alias)
    k.enable_key_rotation(KeyId=alias, RotationPeriodInDays=90)
    status = k.get_key_rotation_status(KeyId=alias)
    check(status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 90, "rotation status: %s" % status)
    k.disable_key_rotation(KeyId=alias)
    check(not k.get_key_rotation_status(KeyId=alias)["KeyRotationEnabled"], "DisableKeyRotation")
    doomed = k.create_key()["KeyMetadata"]["KeyId"]
    check(code(lambda: k.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=6)) == "ValidationException", "PendingWindowInDays 6")
    scheduled = k.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    check(scheduled["KeyState"] == "PendingDeletion" and k.describe_key(KeyId=doomed)["KeyMetadata"]["KeyState"] == "PendingDeletion", "ScheduleKeyDeletion")
    k.cancel_key_deletion(KeyId=doomed)
    check(k.describe_key(KeyId=doomed)["KeyMetadata"]["KeyState"] != "PendingDeletion", "CancelKeyDeletion")
    results.append("keys: create, describe by id/ARN/alias/alias ARN, tags, aliases, paging, enable/disable, rotation, deletion")

    # --- boto3: cryptography ---
    context = {"tenant": "acme", "purpose": "test"}
    sealed = k.encrypt(KeyId=alias, Plaintext=b"ledger entry", EncryptionContext=context)
    check(sealed["KeyId"] == sym["Arn"], "Encrypt answers the key ARN")
    opened = k.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)
    check(opened["Plaintext"] == b"ledger entry" and opened["KeyId"] == sym["Arn"], "Decrypt without KeyId")
    check(k.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context, KeyId=alias)["Plaintext"] == b"ledger entry", "Decrypt with KeyId")
    check(code(lambda: k.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={"tenant": "evil", "purpose": "test"}))
          == "InvalidCiphertextException", "a wrong encryption context")
    check(code(lambda: k.decrypt(CiphertextBlob=sealed["CiphertextBlob"])) == "InvalidCiphertextException", "a missing encryption context")
    check(code(lambda: k.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context, KeyId=other["KeyId"])) == "IncorrectKeyException",
          "Decrypt with another key's id")
    check(code(lambda: k.re_encrypt(CiphertextBlob=sealed["CiphertextBlob"], SourceEncryptionContext=context, SourceKeyId=other["KeyId"],
                                    DestinationKeyId=other["KeyId"])) == "IncorrectKeyException", "ReEncrypt with another key as SourceKeyId")
    moved = k.re_encrypt(CiphertextBlob=sealed["CiphertextBlob"], SourceEncryptionContext=context, DestinationKeyId=other["KeyId"],
                         DestinationEncryptionContext={"v": "2"})
    check(k.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"v": "2"})["KeyId"] == other["Arn"], "ReEncrypt")
    data = k.generate_data_key(KeyId=alias, KeySpec="AES_256", EncryptionContext=context)
    check(len(data["Plaintext"]) == 32 and k.decrypt(CiphertextBlob=data["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == data["Plaintext"],
          "GenerateDataKey")
    for size, request in ((32, {"NumberOfBytes": 32}), (16, {"KeySpec": "AES_128"}), (64, {"NumberOfBytes": 64})):
        made = k.generate_data_key(KeyId=alias, **request)
        check(len(made["Plaintext"]) == size and k.decrypt(CiphertextBlob=made["CiphertextBlob"])["Plaintext"] == made["Plaintext"],
              "GenerateDataKey %s" % request)
    bare = k.generate_data_key_without_plaintext(KeyId=alias, KeySpec="AES_256")
    check(len(k.decrypt(CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 32, "GenerateDataKeyWithoutPlaintext")
    # GetKeyLastUsage, from the audit log: the last Decrypt above, with its request id; a describe is not a use.
    last_decrypt = k.decrypt(CiphertextBlob=bare["CiphertextBlob"])
    k.describe_key(KeyId=alias)
    usage = k.get_key_last_usage(KeyId=alias)
    check(usage["KeyId"] == sym["Arn"] and usage["KeyLastUsage"]["Operation"] == "Decrypt"
          and usage["KeyLastUsage"]["KmsRequestId"] == last_decrypt["ResponseMetadata"]["RequestId"]
          and usage["TrackingStartDate"] <= usage["KeyLastUsage"]["Timestamp"], "GetKeyLastUsage: %s" % usage)
    unused = k.create_key(Description="never used")["KeyMetadata"]
    check("KeyLastUsage" not in k.get_key_last_usage(KeyId=unused["KeyId"]), "GetKeyLastUsage of an unused key")
    pair = k.generate_data_key_pair(KeyId=alias, KeyPairSpec="ECC_NIST_P256")
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
    public = serialization.load_der_public_key(pair["PublicKey"])
    check(private.public_key().public_numbers() == public.public_numbers(), "GenerateDataKeyPair: the private key matches the public key")
    check(k.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"] == pair["PrivateKeyPlaintext"], "the pair's private key ciphertext")
    check("PrivateKeyPlaintext" not in k.generate_data_key_pair_without_plaintext(KeyId=alias, KeyPairSpec="ECC_NIST_P256"), "WithoutPlaintext")

    signer = k.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    check(signer["SigningAlgorithms"] == ["ECDSA_SHA_256"], "signing key metadata")
    message = b"release 1.2.3"
    signature = k.sign(KeyId=signer["KeyId"], Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verifier = serialization.load_der_public_key(k.get_public_key(KeyId=signer["KeyId"])["PublicKey"])
    verifier.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises when invalid
    check(k.verify(KeyId=signer["KeyId"], Message=message, Signature=signature, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"], "Verify")
    digest = hashlib.sha256(message).digest()
    by_digest = k.sign(KeyId=signer["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verifier.verify(by_digest, message, ec.ECDSA(hashes.SHA256()))
    check(code(lambda: k.verify(KeyId=signer["KeyId"], Message=b"tampered", Signature=signature, SigningAlgorithm="ECDSA_SHA_256"))
          == "KMSInvalidSignatureException", "a bad signature")
    check(code(lambda: k.sign(KeyId=signer["KeyId"], Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")) == "InvalidKeyUsageException",
          "a signing algorithm the key does not serve")
    check(code(lambda: k.encrypt(KeyId=signer["KeyId"], Plaintext=b"x")) is not None, "encrypt with a signing key")
    # DryRun is refused, not ignored (which would sign or decrypt after all).
    for name, call in [("Encrypt", lambda: k.encrypt(KeyId=alias, Plaintext=b"x", EncryptionContext=context, DryRun=True)),
                       ("Decrypt", lambda: k.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context, DryRun=True)),
                       ("Sign", lambda: k.sign(KeyId=signer["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256", DryRun=True))]:
        check(code(call) == "UnsupportedOperationException", "%s with DryRun" % name)
    edwards = k.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    ed_signature = k.sign(KeyId=edwards["KeyId"], Message=message, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    serialization.load_der_public_key(k.get_public_key(KeyId=edwards["KeyId"])["PublicKey"]).verify(ed_signature, message)

    # RSA: a signature and an OAEP ciphertext that Python cryptography checks and opens.
    from cryptography.hazmat.primitives.asymmetric import padding
    rsa_signer = k.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    rsa_signature = k.sign(KeyId=rsa_signer["KeyId"], Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    serialization.load_der_public_key(k.get_public_key(KeyId=rsa_signer["KeyId"])["PublicKey"]).verify(
        rsa_signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    # RSASSA_PKCS1_V1_5 and PSS over SHA-384/512: Keyward keys of those specs (one key, one
    # algorithm), created with the native API, serve exactly their algorithm through AWS's API.
    for spec, algorithm, digest, pad in (
            ("RSA-2048-PKCS1-SHA256", "RSASSA_PKCS1_V1_5_SHA_256", hashes.SHA256(), padding.PKCS1v15()),
            ("RSA-3072-PKCS1-SHA512", "RSASSA_PKCS1_V1_5_SHA_512", hashes.SHA512(), padding.PKCS1v15()),
            ("RSA-2048-PSS-SHA384", "RSASSA_PSS_SHA_384", hashes.SHA384(), padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48))):
        status, made = admin("POST", "/v1/keys", {"spec": spec})
        check(status == 201, "native create %s: %s %s" % (spec, status, made))
        described = k.describe_key(KeyId=made["id"])["KeyMetadata"]
        check(described["SigningAlgorithms"] == [algorithm] and described["KeySpec"] == "RSA_" + spec.split("-")[1], "DescribeKey %s: %s" % (spec, described))
        signed = k.sign(KeyId=made["id"], Message=message, SigningAlgorithm=algorithm)["Signature"]
        serialization.load_der_public_key(k.get_public_key(KeyId=made["id"])["PublicKey"]).verify(signed, message, pad, digest)
        by_digest = k.sign(KeyId=made["id"], Message=hashlib.new(digest.name, message).digest(), MessageType="DIGEST", SigningAlgorithm=algorithm)["Signature"]
        check(k.verify(KeyId=made["id"], Message=message, Signature=by_digest, SigningAlgorithm=algorithm)["SignatureValid"], "Verify %s by digest" % algorithm)
        check(code(lambda: k.sign(KeyId=made["id"], Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")) == "InvalidKeyUsageException",
              "%s refuses another algorithm" % spec)
    # An AWS client picks the algorithm at CreateKey with the keyward:SigningAlgorithm tag.
    rs256 = k.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY",
                         Tags=[{"TagKey": "keyward:SigningAlgorithm", "TagValue": "RSASSA_PKCS1_V1_5_SHA_256"}])["KeyMetadata"]
    check(rs256["SigningAlgorithms"] == ["RSASSA_PKCS1_V1_5_SHA_256"], "CreateKey with the signing-algorithm tag: %s" % rs256)
    check(k.list_resource_tags(KeyId=rs256["KeyId"])["Tags"] == [], "the signing-algorithm tag is not stored")
    signed = k.sign(KeyId=rs256["KeyId"], Message=message, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    serialization.load_der_public_key(k.get_public_key(KeyId=rs256["KeyId"])["PublicKey"]).verify(signed, message, padding.PKCS1v15(), hashes.SHA256())
    check(code(lambda: k.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
                                    Tags=[{"TagKey": "keyward:SigningAlgorithm", "TagValue": "RSASSA_PSS_SHA_256"}])) == "ValidationException",
          "the signing-algorithm tag on a non-RSA key")
    rsa_box = k.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    rsa_public = serialization.load_der_public_key(k.get_public_key(KeyId=rsa_box["KeyId"])["PublicKey"])
    to_kms = rsa_public.encrypt(b"sealed by cryptography", oaep)
    check(k.decrypt(CiphertextBlob=to_kms, KeyId=rsa_box["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"sealed by cryptography",
          "RSAES_OAEP_SHA_256 Decrypt of cryptography's ciphertext")
    from_kms = k.encrypt(KeyId=rsa_box["KeyId"], Plaintext=b"sealed by keyward", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    check(k.decrypt(CiphertextBlob=from_kms, KeyId=rsa_box["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"sealed by keyward",
          "RSAES_OAEP_SHA_256 round trip")
    check(code(lambda: k.decrypt(CiphertextBlob=from_kms, EncryptionAlgorithm="RSAES_OAEP_SHA_256")) == "ValidationException", "RSA decrypt without KeyId")
    check(code(lambda: k.encrypt(KeyId=rsa_box["KeyId"], Plaintext=b"x")) is not None, "symmetric Encrypt with an RSA key")

    mac_key = k.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    tag = k.generate_mac(KeyId=mac_key["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    check(k.verify_mac(KeyId=mac_key["KeyId"], Message=message, Mac=tag, MacAlgorithm="HMAC_SHA_256")["MacValid"], "VerifyMac")
    check(code(lambda: k.verify_mac(KeyId=mac_key["KeyId"], Message=b"other", Mac=tag, MacAlgorithm="HMAC_SHA_256")) == "KMSInvalidMacException", "a bad MAC")
    agreement = k.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    peer = ec.generate_private_key(ec.SECP384R1())
    shared = k.derive_shared_secret(KeyId=agreement["KeyId"], KeyAgreementAlgorithm="ECDH",
                                    PublicKey=peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    theirs = serialization.load_der_public_key(k.get_public_key(KeyId=agreement["KeyId"])["PublicKey"])
    check(shared["SharedSecret"] == peer.exchange(ec.ECDH(), theirs), "DeriveSharedSecret agrees with cryptography's ECDH")
    check(len(k.generate_random(NumberOfBytes=64)["Plaintext"]) == 64, "GenerateRandom")
    # AWS rotates symmetric encryption keys only (a new signing or agreement key would change the
    # public key every holder has); GetPublicKey is for asymmetric keys. Nothing changed.
    for key_id in (signer["KeyId"], mac_key["KeyId"], agreement["KeyId"]):
        before = k.describe_key(KeyId=key_id)["KeyMetadata"]
        check(code(lambda: k.enable_key_rotation(KeyId=key_id)) == "UnsupportedOperationException", "EnableKeyRotation of %s" % before["KeySpec"])
        check(code(lambda: k.disable_key_rotation(KeyId=key_id)) == "UnsupportedOperationException", "DisableKeyRotation of %s" % before["KeySpec"])
        check(code(lambda: k.rotate_key_on_demand(KeyId=key_id)) == "UnsupportedOperationException", "RotateKeyOnDemand of %s" % before["KeySpec"])
        check(not k.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] and k.list_key_rotations(KeyId=key_id)["Rotations"] == [],
              "%s not rotated" % before["KeySpec"])
    for key_id in (sym["KeyId"], mac_key["KeyId"]):
        check(code(lambda: k.get_public_key(KeyId=key_id)) == "UnsupportedOperationException", "GetPublicKey of a symmetric key")
    k.rotate_key_on_demand(KeyId=alias)
    rotations = k.list_key_rotations(KeyId=alias)["Rotations"]
    check(len(rotations) == 1 and rotations[0]["RotationType"] == "ON_DEMAND" and rotations[0]["KeyId"] == sym["Arn"], "ListKeyRotations: %s" % rotations)
    check(k.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == b"ledger entry", "old ciphertext after rotation")

    # Importing key material (Origin EXTERNAL), wrapped by cryptography to the wrapping keys
    # GetParametersForImport hands out.
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

    def wrapped_for(key_id, algorithm, spec, blob):
        params = k.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)
        public = serialization.load_der_public_key(params["PublicKey"])
        check(public.key_size == int(spec[4:]) and params["KeyId"].endswith(key_id), "GetParametersForImport: %s" % {n: params[n] for n in ("KeyId", "ParametersValidTo")})
        if algorithm == "RSAES_OAEP_SHA_256":
            return params["ImportToken"], public.encrypt(blob, oaep)
        ephemeral = os.urandom(32)
        return params["ImportToken"], public.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, blob)

    ext = k.create_key(Origin="EXTERNAL", Description="imported")["KeyMetadata"]
    check(ext["Origin"] == "EXTERNAL" and ext["KeyState"] == "PendingImport" and not ext["Enabled"], "CreateKey Origin EXTERNAL: %s" % ext)
    check(code(lambda: k.encrypt(KeyId=ext["KeyId"], Plaintext=b"x")) == "KMSInvalidStateException", "Encrypt with a key awaiting its material")
    check(code(lambda: k.enable_key(KeyId=ext["KeyId"])) is not None, "EnableKey on a key with no material")
    material = os.urandom(32)
    token, blob = wrapped_for(ext["KeyId"], "RSAES_OAEP_SHA_256", "RSA_2048", material)
    done = k.import_key_material(KeyId=ext["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    described = k.describe_key(KeyId=ext["KeyId"])["KeyMetadata"]
    check(described["KeyState"] == "Enabled" and described["Origin"] == "EXTERNAL" and described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
          and done["KeyMaterialId"] == described["CurrentKeyMaterialId"], "DescribeKey after ImportKeyMaterial: %s %s" % (described, done))
    check(code(lambda: k.import_key_material(KeyId=ext["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob,
                                             ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")) == "InvalidImportTokenException", "an import token used twice")
    imported_sealed = k.encrypt(KeyId=ext["KeyId"], Plaintext=b"under imported material", EncryptionContext=context)["CiphertextBlob"]
    # Imported material is never rotated: a rotation period would promise rotations that never come.
    for refused in (lambda: k.enable_key_rotation(KeyId=ext["KeyId"]), lambda: k.disable_key_rotation(KeyId=ext["KeyId"]),
                    lambda: k.rotate_key_on_demand(KeyId=ext["KeyId"])):
        check(code(refused) == "UnsupportedOperationException", "rotation of imported material")
    check(not k.get_key_rotation_status(KeyId=ext["KeyId"])["KeyRotationEnabled"], "an imported key's rotation status")
    k.delete_imported_key_material(KeyId=ext["KeyId"])
    check(k.describe_key(KeyId=ext["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport", "DeleteImportedKeyMaterial leaves the key PendingImport")
    check(code(lambda: k.decrypt(CiphertextBlob=imported_sealed, EncryptionContext=context)) == "KMSInvalidStateException", "Decrypt after the material was deleted")
    token, blob = wrapped_for(ext["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072", os.urandom(32))
    check(code(lambda: k.import_key_material(KeyId=ext["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob,
                                             ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")) == "IncorrectKeyMaterialException", "other material into the key")
    other = k.create_key(Origin="EXTERNAL")["KeyMetadata"]
    token, blob = wrapped_for(other["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", material)
    check(code(lambda: k.import_key_material(KeyId=ext["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob,
                                             ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")) == "InvalidImportTokenException", "another key's import token")
    token, blob = wrapped_for(ext["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096", material)
    valid_to = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    k.import_key_material(KeyId=ext["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    described = k.describe_key(KeyId=ext["KeyId"])["KeyMetadata"]
    check(described["KeyState"] == "Enabled" and described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
          and abs(described["ValidTo"].timestamp() - valid_to.timestamp()) < 2, "the same material back, with an expiry: %s" % described)
    check(k.decrypt(CiphertextBlob=imported_sealed, EncryptionContext=context)["Plaintext"] == b"under imported material", "the old ciphertext after re-import")
    check(code(lambda: k.get_parameters_for_import(KeyId=alias, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"))
          == "UnsupportedOperationException", "GetParametersForImport for a key with Keyward's own material")
    check(code(lambda: k.get_parameters_for_import(KeyId=other["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1", WrappingKeySpec="RSA_2048"))
          == "UnsupportedOperationException", "SHA-1 wrapping")
    # The key uses exactly the imported bytes: HMAC tags match Python's, RSA signatures verify under the imported key's public half.
    mac_material = os.urandom(32)
    imported_mac = k.create_key(Origin="EXTERNAL", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    token, blob = wrapped_for(imported_mac["KeyId"], "RSAES_OAEP_SHA_256", "RSA_2048", mac_material)
    k.import_key_material(KeyId=imported_mac["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    check(k.generate_mac(KeyId=imported_mac["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"] == hmac.new(mac_material, message, hashlib.sha256).digest(),
          "an imported HMAC key's tag equals Python's")
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    imported_rsa = k.create_key(Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    token, blob = wrapped_for(imported_rsa["KeyId"], "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072",
                              rsa_private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    k.import_key_material(KeyId=imported_rsa["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    imported_signature = k.sign(KeyId=imported_rsa["KeyId"], Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    rsa_private.public_key().verify(imported_signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    # Grants: a principal whose access key grants it nothing on a key uses the key through a
    # grant, under AWS's encryption-context constraints, until the grant is retired or revoked.
    grantee_cred = credential("aws-grantee", "random:*")
    g = kms(grantee_cred)
    grant_key = k.create_key(Description="granted")["KeyMetadata"]
    for_grantee = k.encrypt(KeyId=grant_key["KeyId"], Plaintext=b"for the grantee", EncryptionContext={"tenant": "a"})["CiphertextBlob"]
    check(code(lambda: g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"})) == "AccessDeniedException", "Decrypt before any grant")
    grant_args = dict(KeyId=grant_key["KeyId"], GranteePrincipal="aws-grantee", Operations=["Decrypt", "Encrypt", "RetireGrant"],
                      Constraints={"EncryptionContextSubset": {"tenant": "a"}}, RetiringPrincipal="ops", Name="app-grant")
    # A grant of an operation the key cannot perform is refused, as AWS KMS refuses it.
    for operations in (["Sign"], ["Encrypt", "GetPublicKey"]):
        check(code(lambda: k.create_grant(KeyId=grant_key["KeyId"], GranteePrincipal="aws-grantee", Operations=operations)) == "ValidationException",
              "CreateGrant of %s on a symmetric encryption key" % operations)
    created = k.create_grant(**grant_args)
    check(g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"}, GrantTokens=[created["GrantToken"]])["Plaintext"] == b"for the grantee",
          "Decrypt through a grant, with its grant token")
    check(g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"})["Plaintext"] == b"for the grantee", "Decrypt through a grant")
    g.encrypt(KeyId=grant_key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "a", "doc": "7"})
    check(code(lambda: g.encrypt(KeyId=grant_key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "b"})) == "AccessDeniedException",
          "Encrypt outside the grant's EncryptionContextSubset")
    check(code(lambda: g.generate_data_key(KeyId=grant_key["KeyId"], KeySpec="AES_256", EncryptionContext={"tenant": "a"})) == "AccessDeniedException",
          "an operation the grant does not name")
    check(k.create_grant(**grant_args)["GrantId"] == created["GrantId"], "CreateGrant with the same Name and terms returns the same grant")
    listed = k.list_grants(KeyId=grant_key["KeyId"])["Grants"]
    check(len(listed) == 1 and listed[0]["GrantId"] == created["GrantId"] and listed[0]["GranteePrincipal"] == "aws-grantee"
          and sorted(listed[0]["Operations"]) == ["Decrypt", "Encrypt", "RetireGrant"] and listed[0]["Name"] == "app-grant"
          and listed[0]["Constraints"] == {"EncryptionContextSubset": {"tenant": "a"}} and listed[0]["KeyId"] == grant_key["Arn"], "ListGrants: %s" % listed)
    by_key_id = k.create_grant(KeyId=grant_key["KeyId"], GranteePrincipal=grantee_cred["accessKeyId"], Operations=["GenerateDataKey"])
    g.generate_data_key(KeyId=grant_key["KeyId"], KeySpec="AES_256")
    by_arn = k.create_grant(KeyId=grant_key["KeyId"], GranteePrincipal="arn:aws:iam::111122223333:user/aws-grantee", Operations=["DescribeKey"])
    check(g.describe_key(KeyId=grant_key["KeyId"])["KeyMetadata"]["KeyId"] == grant_key["KeyId"], "DescribeKey through a grant to an IAM ARN")
    pages, marker = [], None
    while True:
        page = k.list_grants(KeyId=grant_key["KeyId"], Limit=1, **({"Marker": marker} if marker else {}))
        pages += [grant["GrantId"] for grant in page["Grants"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    check(sorted(pages) == sorted([created["GrantId"], by_key_id["GrantId"], by_arn["GrantId"]]), "ListGrants paged one a page: %s" % pages)
    check([grant["GrantId"] for grant in k.list_retirable_grants(RetiringPrincipal="ops")["Grants"]] == [created["GrantId"]], "ListRetirableGrants")
    check(code(lambda: g.list_grants(KeyId=grant_key["KeyId"])) == "AccessDeniedException", "a grantee lists the key's grants")
    check(code(lambda: g.revoke_grant(KeyId=grant_key["KeyId"], GrantId=by_key_id["GrantId"])) == "AccessDeniedException", "a grantee revokes a grant")
    check(code(lambda: g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"}, GrantTokens=["not-a-grant-token"])) == "InvalidGrantTokenException",
          "a malformed grant token")
    g.retire_grant(GrantToken=created["GrantToken"])
    check(code(lambda: g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"})) == "AccessDeniedException", "Decrypt after RetireGrant")
    check(code(lambda: g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"}, GrantTokens=[created["GrantToken"]])) == "AccessDeniedException",
          "a retired grant's token")
    k.revoke_grant(KeyId=grant_key["KeyId"], GrantId=by_key_id["GrantId"])
    check(code(lambda: g.generate_data_key(KeyId=grant_key["KeyId"], KeySpec="AES_256")) == "AccessDeniedException", "GenerateDataKey after RevokeGrant")

    # Key policies: the part of the IAM language Keyward represents exactly, anything else refused.
    check(json.loads(k.get_key_policy(KeyId=grant_key["KeyId"], PolicyName="default")["Policy"])["Statement"][0]["Principal"]["AWS"].endswith(":root"),
          "GetKeyPolicy of a key without one: AWS's default policy")
    check(k.list_key_policies(KeyId=grant_key["KeyId"])["PolicyNames"] == ["default"], "ListKeyPolicies")
    account = "arn:aws:iam::%s:" % grant_key["Arn"].split(":")[4]
    # Keyward's describe is every read of a key's metadata, so a statement names all of them.
    user_actions = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:GetKeyRotationStatus",
                    "kms:ListResourceTags", "kms:ListKeyRotations", "kms:GetKeyLastUsage", "kms:GetKeyPolicy", "kms:ListKeyPolicies"]
    document = json.dumps({"Version": "2012-10-17", "Id": "keyward-test", "Statement": [
        {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": account + "root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": account + "user/aws-grantee"}, "Action": user_actions, "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "a"}}},
        {"Sid": "NoDecryptForNarrow", "Effect": "Deny", "Principal": {"AWS": "aws-encrypt-only"}, "Action": "kms:Decrypt", "Resource": grant_key["Arn"]}]})
    k.put_key_policy(KeyId=grant_key["KeyId"], PolicyName="default", Policy=document)
    check(k.get_key_policy(KeyId=grant_key["KeyId"])["Policy"] == document, "GetKeyPolicy returns the document as put")
    check(g.decrypt(CiphertextBlob=for_grantee, EncryptionContext={"tenant": "a"})["Plaintext"] == b"for the grantee", "Decrypt allowed by the key policy")
    check(code(lambda: g.encrypt(KeyId=grant_key["KeyId"], Plaintext=b"x", EncryptionContext={"tenant": "b"})) == "AccessDeniedException",
          "the key policy's kms:EncryptionContext condition")
    check(code(lambda: g.schedule_key_deletion(KeyId=grant_key["KeyId"], PendingWindowInDays=7)) == "AccessDeniedException", "an action the key policy does not allow")
    malformed = [
        ({"Effect": "Allow", "Principal": "*", "NotAction": "kms:Decrypt", "Resource": "*"}, "NotAction"),
        ({"Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*"}, "kms:DescribeKey without the other reads Keyward's describe covers"),
        ({"Effect": "Allow", "Principal": "*", "Action": "kms:GenerateDataKey", "Resource": "*"}, "kms:GenerateDataKey without its WithoutPlaintext form"),
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "kms:*", "Resource": "*"}, "another account"),
        ({"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*"}, "a service principal"),
        ({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
          "Condition": {"StringLike": {"kms:EncryptionContext:tenant": "a*"}}}, "StringLike"),
        ({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
          "Condition": {"StringEquals": {"kms:CallerAccount": "1"}}}, "another condition key"),
        ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}, "a non-kms action"),
        ({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:1:key/other"}, "another resource"),
    ]
    for statement, why in malformed:
        check(code(lambda: k.put_key_policy(KeyId=grant_key["KeyId"], PolicyName="default",
                                            Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))) == "MalformedPolicyDocumentException",
              "a policy with %s was accepted" % why)
    check(code(lambda: k.put_key_policy(KeyId=grant_key["KeyId"], Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "someone-else"}, "Action": "kms:*", "Resource": "*"}]}))) == "MalformedPolicyDocumentException",
          "a policy that locks its setter out")
    check(k.get_key_policy(KeyId=grant_key["KeyId"])["Policy"] == document, "refused policies changed nothing")
    k.put_key_policy(KeyId=grant_key["KeyId"], Policy=json.dumps(json.loads(k.get_key_policy(KeyId=grant_key["KeyId"])["Policy"])))
    restricted = k.create_key(Description="created with a policy", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": account + "root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]}))["KeyMetadata"]
    restricted_blob = k.encrypt(KeyId=restricted["KeyId"], Plaintext=b"sealed")["CiphertextBlob"]
    check(code(lambda: k.decrypt(CiphertextBlob=restricted_blob)) == "AccessDeniedException", "CreateKey's Policy: a Deny binds even the *:* access key")
    results.append("key policies: GetKeyPolicy (AWS's default for a key without one), ListKeyPolicies, PutKeyPolicy with root, user-ARN and "
                   "access-key principals, ReEncrypt*/GenerateDataKey* wildcards, a kms:EncryptionContext condition and a Deny; "
                   "CreateKey with Policy; %d unrepresentable policies and a lockout refused with MalformedPolicyDocumentException" % len(malformed))
    results.append("grants: CreateGrant (by principal name, access key id and IAM ARN; idempotent by Name), use with and without the grant token, "
                   "EncryptionContextSubset enforced, ListGrants paged, ListRetirableGrants, RetireGrant by the grantee, RevokeGrant; "
                   "grantees refused listing and revoking")
    results.append("cryptography: encrypt/decrypt with context, re-encrypt, data keys and pairs, GetKeyLastUsage, sign/verify RAW and DIGEST (checked by "
                   "cryptography), Ed25519, RSA-PSS, RSASSA_PKCS1_V1_5 and PSS over SHA-384/512 (keys of those specs, and the keyward:SigningAlgorithm tag at CreateKey), RSA-OAEP both ways with cryptography, MAC, ECDH (agrees with cryptography), random, rotation; "
                   "import of key material (Origin EXTERNAL: symmetric, HMAC and RSA PKCS#8, wrapped by cryptography with RSAES_OAEP_SHA_256 and "
                   "RSA_AES_KEY_WRAP_SHA_256 to RSA 2048/3072/4096 wrapping keys; delete and re-import of the same material; other material, "
                   "a reused and another key's import token refused)")

    # --- the AWS CLI ---
    cli_env = dict(os.environ, AWS_ACCESS_KEY_ID=full["accessKeyId"], AWS_SECRET_ACCESS_KEY=full["secretAccessKey"], AWS_DEFAULT_REGION=REGION)

    def aws(*arguments):
        done = subprocess.run(["aws", "--endpoint-url", url, "--ca-bundle", ca, "--output", "json", "kms"] + list(arguments), env=cli_env,
                              capture_output=True, text=True, timeout=120)
        check(done.returncode == 0, "aws kms %s: %s" % (arguments[0], done.stderr.strip()[-300:]))
        return json.loads(done.stdout or "{}")

    cli_key = aws("create-key", "--description", "from the aws cli")["KeyMetadata"]["KeyId"]
    plain = os.path.join(work, "plain.txt")
    with open(plain, "wb") as handle:
        handle.write(b"through the aws cli")
    blob = os.path.join(work, "blob")
    with open(blob, "wb") as handle:
        handle.write(base64.b64decode(aws("encrypt", "--key-id", cli_key, "--plaintext", "fileb://" + plain, "--encryption-context", "app=cli")["CiphertextBlob"]))
    back = aws("decrypt", "--ciphertext-blob", "fileb://" + blob, "--encryption-context", "app=cli")
    check(base64.b64decode(back["Plaintext"]) == b"through the aws cli", "aws kms decrypt")
    check(len(base64.b64decode(aws("generate-data-key", "--key-id", cli_key, "--key-spec", "AES_256")["Plaintext"])) == 32, "aws kms generate-data-key")
    cli_signed = aws("sign", "--key-id", signer["KeyId"], "--message", "fileb://" + plain, "--signing-algorithm", "ECDSA_SHA_256")["Signature"]
    with open(os.path.join(work, "sig"), "wb") as handle:
        handle.write(base64.b64decode(cli_signed))
    check(aws("verify", "--key-id", signer["KeyId"], "--message", "fileb://" + plain, "--signature", "fileb://" + os.path.join(work, "sig"),
              "--signing-algorithm", "ECDSA_SHA_256")["SignatureValid"], "aws kms verify")
    listed = aws("list-keys", "--page-size", "1")["Keys"]
    check(cli_key in [key["KeyId"] for key in listed] and len(listed) >= 8, "aws kms list-keys paging (%d keys)" % len(listed))
    results.append("aws cli: create-key, encrypt, decrypt, generate-data-key, sign, verify, list-keys paged one key a page (%d keys)" % len(listed))

    # --- the AWS Encryption SDK CLI ---
    esdk_env = dict(cli_env, AWS_ENDPOINT_URL_KMS=url, AWS_CA_BUNDLE=ca)
    source, sealed_dir, opened_dir = (os.path.join(work, name) for name in ("esdk-in", "esdk-enc", "esdk-dec"))
    for directory in (source, sealed_dir, opened_dir):
        os.makedirs(directory)
    for index in range(5):
        with open(os.path.join(source, "file%d.bin" % index), "wb") as handle:
            handle.write(os.urandom(1000 * (index + 1) + index))
    arn = sym["Arn"]

    def esdk(*arguments):
        return subprocess.run(["aws-encryption-cli"] + list(arguments) + ["--wrapping-keys", "key=" + arn, "--metadata-output", "/dev/null",
                              "--commitment-policy", "require-encrypt-require-decrypt"], env=esdk_env, capture_output=True, text=True, timeout=300)

    done = esdk("--encrypt", "--input", source, "--output", sealed_dir, "--recursive", "--encryption-context", "purpose=backup")
    check(done.returncode == 0, "aws-encryption-cli --encrypt: %s" % done.stderr.strip()[-300:])
    done = esdk("--decrypt", "--input", sealed_dir, "--output", opened_dir, "--recursive", "--encryption-context", "purpose=backup")
    check(done.returncode == 0, "aws-encryption-cli --decrypt: %s" % done.stderr.strip()[-300:])
    for index in range(5):
        with open(os.path.join(source, "file%d.bin" % index), "rb") as original, open(os.path.join(opened_dir, "file%d.bin.encrypted.decrypted" % index), "rb") as copy:
            check(original.read() == copy.read(), "ESDK round trip of file%d" % index)
    wrong_dir = os.path.join(work, "esdk-wrong")
    os.makedirs(wrong_dir)
    done = esdk("--decrypt", "--input", sealed_dir, "--output", wrong_dir, "--recursive", "--encryption-context", "purpose=other")
    # The CLI skips (and deletes) every file whose context does not hold the required pairs.
    check(not os.listdir(wrong_dir) and "did not match" in done.stderr, "ESDK decrypt with a wrong encryption context succeeded")
    results.append("aws-encryption-sdk-cli: 5 files encrypted under a Keyward key and decrypted byte-identical; a wrong context refused")

    # --- refusals, each with AWS's code, each audited ---
    check(code(lambda: kms(full, secret="x" * 40).list_keys()) == "InvalidSignatureException", "a wrong secret")
    narrow = credential("aws-encrypt-only", "encrypt:*")
    n = kms(narrow)
    n.encrypt(KeyId=alias, Plaintext=b"allowed")
    check(code(lambda: n.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)) == "AccessDeniedException",
          "a call the access key's policy does not cover")
    # Attack: a caller that may update only its own key probes other scopes' alias names. An
    # alias that exists and one that does not are refused alike, before either is looked up.
    own = k.create_key(Description="prober's own")["KeyMetadata"]["KeyId"]
    prober = kms(credential("aws-alias-prober", "encrypt,describe,update:key=" + own))
    taken, absent = alias, "alias/absent-" + uuid.uuid4().hex[:8]
    for call in ("create_alias", "update_alias"):
        replies = []
        for name in (taken, absent):
            try:
                getattr(prober, call)(AliasName=name, TargetKeyId=own)
                replies.append(("accepted", name))
            except ClientError as error:
                replies.append((error.response["Error"]["Code"], error.response["Error"]["Message"].replace(name[len("alias/"):], "NAME")))
        check(replies[0] == replies[1] and replies[0][0] == "AccessDeniedException",
              "%s tells an alias that exists from one that does not: %s" % (call, replies))
    check(code(lambda: k.update_alias(AliasName=absent, TargetKeyId=own)) == "NotFoundException", "UpdateAlias of a missing alias")
    # The same prober names a SourceKeyId (or a Decrypt KeyId) to learn whether an alias exists:
    # one that names another key and one that names none are refused alike.
    mine = prober.encrypt(KeyId=own, Plaintext=b"probe")["CiphertextBlob"]
    for call in (lambda name: prober.re_encrypt(CiphertextBlob=mine, SourceKeyId=name, DestinationKeyId=own),
                 lambda name: prober.decrypt(CiphertextBlob=mine, KeyId=name)):
        replies = []
        for name in (taken, absent):
            try:
                call(name)
                replies.append(("accepted", name))
            except ClientError as error:
                replies.append((error.response["Error"]["Code"], error.response["Error"]["Message"].replace(name[len("alias/"):], "NAME")))
        check(replies[0] == replies[1] and replies[0][0] == "IncorrectKeyException", "a source key tells an alias that exists from one that does not: %s" % replies)
    revoked = credential("aws-revoked", "*:*")
    kms(revoked).list_keys()
    status, _ = admin("POST", "/v1/admin/tokens/%s/revoke" % revoked["id"])
    check(status == 200, "revoking the access key: %s" % status)
    check(code(lambda: kms(revoked).list_keys()) == "UnrecognizedClientException", "a revoked access key")

    def signed(target, body, cred, stamp=None, secret=None, declared=None, sent=None, sign_target=True):
        """A request signed here by an independent SigV4 implementation (hmac, hashlib).
        declared: an X-Amz-Content-SHA256 value, signed in place of the body's hash; sent: a
        body to send instead of the one signed; sign_target=False leaves X-Amz-Target unsigned."""
        now = stamp or datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = url.split("//", 1)[1]
        payload = json.dumps(body).encode()
        headers = {"content-type": "application/x-amz-json-1.1", "host": host, "x-amz-date": amz_date, "x-amz-target": target}
        if declared:
            headers["x-amz-content-sha256"] = declared
        names = sorted(name for name in headers if sign_target or name != "x-amz-target")
        canonical = "\n".join(["POST", "/", "", "".join("%s:%s\n" % (name, headers[name]) for name in names), ";".join(names),
                               declared or hashlib.sha256(payload).hexdigest()])
        scope = "%s/%s/kms/aws4_request" % (day, REGION)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + (secret or cred["secretAccessKey"])).encode()
        for part in (day, REGION, "kms", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        extra = {"X-Amz-Content-SHA256": declared} if declared else {}
        request = urllib.request.Request(url + "/", data=sent or payload, method="POST", headers={
            **extra, "Content-Type": headers["content-type"], "X-Amz-Date": amz_date, "X-Amz-Target": target,
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (cred["accessKeyId"], scope, ";".join(names), signature)})
        try:
            with urllib.request.urlopen(request, timeout=30, context=tls) as reply:
                return reply.status, dict(reply.headers), json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read() or b"{}")

    status, headers, reply = signed("TrentService.ListKeys", {}, full)
    check(status == 200 and "Keys" in reply and headers.get("x-amzn-RequestId"), "an independently signed request: %s %s" % (status, reply))
    stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    status, _, reply = signed("TrentService.ListKeys", {}, full, stamp=stale)
    check(reply.get("__type") == "InvalidSignatureException" and "expired" in reply.get("message", ""), "a stale signature: %s %s" % (status, reply))
    status, headers, reply = signed("TrentService.NoSuchThing", {}, full)
    check(reply.get("__type") == "UnknownOperationException" and headers.get("Content-Type", "").startswith("application/x-amz-json"),
          "an unknown target: %s %s" % (status, reply))
    unsigned = urllib.request.Request(url + "/", data=b"{}", method="POST", headers={"X-Amz-Target": "TrentService.ListKeys",
                                                                                    "Content-Type": "application/x-amz-json-1.1"})
    try:
        urllib.request.urlopen(unsigned, timeout=30, context=tls)
        fail("an unsigned request was served")
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
        check(body.get("__type") == "MissingAuthenticationTokenException", "an unsigned request: %s" % body)
    # A signature must cover the body and the operation: a captured request cannot be replayed
    # with another body under its declared hash, nor as another operation.
    describe = {"KeyId": sym["KeyId"]}
    status, _, reply = signed("TrentService.DescribeKey", describe, full, declared="UNSIGNED-PAYLOAD")
    check(reply.get("__type") == "InvalidSignatureException", "an UNSIGNED-PAYLOAD request: %s %s" % (status, reply))
    declared = hashlib.sha256(json.dumps(describe).encode()).hexdigest()
    status, _, reply = signed("TrentService.DescribeKey", describe, full, declared=declared,
                              sent=json.dumps({"KeyId": signer["KeyId"]}).encode())
    check(reply.get("__type") == "InvalidSignatureException", "another body under a declared hash: %s %s" % (status, reply))
    check(signed("TrentService.DescribeKey", describe, full, declared=declared)[0] == 200, "a declared hash that is the body's")
    state = kms(full).describe_key(KeyId=sym["KeyId"])["KeyMetadata"]["KeyState"]
    status, _, reply = signed("TrentService.DisableKey", describe, full, sign_target=False)
    check(reply.get("__type") == "IncompleteSignature", "an unsigned X-Amz-Target: %s %s" % (status, reply))
    check(kms(full).describe_key(KeyId=sym["KeyId"])["KeyMetadata"]["KeyState"] == state, "an unsigned target changed the key")
    forged = dict(full, accessKeyId="KW" + "A" * 26)
    check(signed("TrentService.ListKeys", {}, forged)[2].get("__type") == "UnrecognizedClientException", "an unknown access key")

    # Bad input on every operation: each answered with an AWS error, never a 5xx or a hang.
    operations = ["CreateKey", "DescribeKey", "ListKeys", "EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion",
                  "UpdateKeyDescription", "TagResource", "UntagResource", "ListResourceTags", "CreateAlias", "UpdateAlias", "DeleteAlias",
                  "ListAliases", "EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus", "RotateKeyOnDemand", "ListKeyRotations",
                  "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
                  "GenerateDataKeyPairWithoutPlaintext", "Sign", "Verify", "GenerateMac", "VerifyMac", "GetPublicKey", "GenerateRandom",
                  "DeriveSharedSecret", "CreateGrant", "ListGrants", "ListRetirableGrants", "RetireGrant", "RevokeGrant", "GetKeyPolicy",
                  "GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial"]
    bodies = [{}, {"KeyId": 7}, {"KeyId": "", "Plaintext": "not base64!"}, {"KeyId": "alias/" + "x" * 300},
              {"KeyId": sym["KeyId"], "Limit": -1, "Marker": "nope"}, {"KeyId": "arn:aws:kms:::"},
              {"KeyId": sym["KeyId"], "CiphertextBlob": "AAAA", "Message": "AAAA", "Mac": "AAAA", "Signature": "AAAA",
               "EncryptionContext": {"a": 1}, "NumberOfBytes": 5000, "KeySpec": "NOPE", "Tags": "x"}]
    bad = 0
    for operation in operations:
        for body in bodies:
            status, _, reply = signed("TrentService." + operation, body, full)
            # Some of these are valid for some operations (CreateKey with no field); the rest
            # must be refused in AWS's shape, and none may fail the server.
            check(status < 500 and (status == 200 or (isinstance(reply.get("__type"), str) and reply.get("message"))),
                  "%s with %s: %s %s" % (operation, json.dumps(body)[:80], status, reply))
            bad += status != 200
    results.append("bad input: %d of %d odd requests over %d operations refused with an AWS error, none a 5xx"
                   % (bad, len(operations) * len(bodies), len(operations)))

    # Every refusal is in the audit log.
    entries, after = [], 0
    for _ in range(200):
        status, page = admin("GET", "/v1/admin/audit?after=%d&limit=1000" % after)
        check(status == 200, "reading the audit log: %s" % status)
        entries += page.get("entries", [])
        if page.get("nextAfter") is None:
            break
        after = page["nextAfter"]
    text = json.dumps(entries)
    denied = [e for e in entries if "aws-encrypt-only" in json.dumps(e) and e.get("outcome") != "ok"]
    check(denied, "the AccessDenied call is not in the audit log")
    refused = [e for e in entries if e.get("outcome") not in (None, "ok") and "unauthenticated" in json.dumps(e)]
    check(len(refused) >= 4, "the refused signatures are not all in the audit log (%d entries)" % len(refused))
    check(full["secretAccessKey"] not in text, "an audit entry holds a secret access key")
    results.append("refusals: wrong secret InvalidSignatureException, stale signature InvalidSignatureException (expired), revoked key "
                   "UnrecognizedClientException, policy AccessDeniedException, unsigned MissingAuthenticationTokenException, UNSIGNED-PAYLOAD, "
                   "another body under a declared hash and an unsigned X-Amz-Target refused, unknown "
                   "target UnknownOperationException (JSON); %d refused authentications audited" % len(refused))
finally:
    stop(server)

for line in results:
    print("aws-kms: " + line)
