#ifndef KEYWARD_CBORINGSSLDIRECT_H
#define KEYWARD_CBORINGSSLDIRECT_H

#include <stddef.h>
#include <stdint.h>

/// Ed25519 signature of `message` with the 32-byte seed and its 32-byte public key, without
/// deriving the public key again (swift-crypto's API derives it on every signature). Writes 64
/// bytes to `signature`. Returns 1 on success, 0 on failure.
int keyward_ed25519_sign(uint8_t signature[64], const uint8_t *message, size_t message_length,
                         const uint8_t seed[32], const uint8_t public_key[32]);

/// ECDSA P-256 signature (DER, at most 72 bytes) of a SHA-256 `digest` with the 32-byte private
/// scalar, without computing the public point. Returns 1 on success, 0 on failure.
int keyward_p256_sign_digest(uint8_t signature[72], size_t *signature_length,
                             const uint8_t digest[32], const uint8_t scalar[32]);

/// SHA-256 of `length` bytes at `data` into `digest`.
void keyward_sha256(uint8_t digest[32], const uint8_t *data, size_t length);

/// HMAC with SHA-`bits` (256, 384 or 512) of `message` under `key`, into `tag` (room for 64
/// bytes); its length in `tag_length`. BoringSSL wipes its context (the key's pads). Returns 1 on
/// success, 0 on failure (another `bits`).
int keyward_hmac(int bits, uint8_t *tag, size_t *tag_length, const uint8_t *key, size_t key_length,
                 const uint8_t *message, size_t message_length);

#endif
