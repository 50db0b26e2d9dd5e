#ifndef C_OPENSSL_AEAD_H
#define C_OPENSSL_AEAD_H

#include <stddef.h>
#include <stdint.h>

/// AEAD algorithms, numbered as in Keyward's ciphertext header.
enum {
    KEYWARD_AEAD_AES_256_GCM = 1,
    KEYWARD_AEAD_CHACHA20_POLY1305 = 2,
    KEYWARD_AEAD_AES_128_GCM = 3,
};

/// Seals `in` (in_len bytes) under `key` (16 bytes for AES-128-GCM, else 32) and 12-byte `nonce`, authenticating
/// aad1 then aad2 (either may be empty). Writes in_len bytes to `out` and 16 to `tag`.
/// Returns 1 on success, 0 on failure (unknown algorithm, length above INT_MAX, library error).
/// The cipher context, which holds the expanded key, is cleansed and freed before returning.
int keyward_aead_seal(int algorithm, const uint8_t *key, const uint8_t *nonce,
                      const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                      const uint8_t *in, size_t in_len, uint8_t *out, uint8_t *tag);

/// Opens: verifies `tag` over aad1, aad2 and `in`, and writes the plaintext to `out`.
/// Returns 1 when the tag verifies; 0 otherwise, in which case `out` is zeroed.
int keyward_aead_open(int algorithm, const uint8_t *key, const uint8_t *nonce,
                      const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                      const uint8_t *in, size_t in_len, const uint8_t *tag, uint8_t *out);

/// Fills `buffer` from OpenSSL's per-thread DRBG (seeded from the OS). Returns 1 on success.
int keyward_aead_random(uint8_t *buffer, size_t length);

/// Writes a fresh random 12-byte nonce, from a per-thread pool refilled with getrandom(2) and
/// wiped in forked children. Returns 1 on success, 0 if the OS random source failed.
int keyward_aead_nonce(uint8_t *nonce);

#endif
