// Calls into the BoringSSL that swift-crypto vendors, under its prefixed symbol names: signing
// without re-deriving the public key (decision 0012), one-shot SHA-256 and HMAC (decision 0042).
// swift-crypto links that library (CCryptoBoringSSL) into every binary that uses Crypto, but
// does not export its headers, so the few functions used here are declared by hand. The
// swift-crypto version is pinned exactly in Package.swift; a renamed symbol fails the link, not
// a signature or a digest.
#include "CBoringSSLDirect.h"
#include <string.h>

typedef struct ec_key_st EC_KEY;
typedef struct bignum_st BIGNUM;

extern int CCryptoBoringSSL_ED25519_sign(uint8_t out_sig[64], const uint8_t *message, size_t message_len,
                                         const uint8_t private_key[64]);
extern EC_KEY *CCryptoBoringSSL_EC_KEY_new_by_curve_name(int nid);
extern void CCryptoBoringSSL_EC_KEY_free(EC_KEY *key);
extern int CCryptoBoringSSL_EC_KEY_set_private_key(EC_KEY *key, const BIGNUM *priv);
extern BIGNUM *CCryptoBoringSSL_BN_bin2bn(const uint8_t *in, size_t len, BIGNUM *ret);
extern void CCryptoBoringSSL_BN_clear_free(BIGNUM *bn);
extern int CCryptoBoringSSL_ECDSA_sign(int type, const uint8_t *digest, size_t digest_len, uint8_t *sig,
                                       unsigned int *sig_len, const EC_KEY *key);
extern void CCryptoBoringSSL_OPENSSL_cleanse(void *ptr, size_t len);

#define KEYWARD_NID_X9_62_prime256v1 415

int keyward_ed25519_sign(uint8_t signature[64], const uint8_t *message, size_t message_length,
                         const uint8_t seed[32], const uint8_t public_key[32]) {
    uint8_t private_key[64];
    memcpy(private_key, seed, 32);
    memcpy(private_key + 32, public_key, 32);
    int ok = CCryptoBoringSSL_ED25519_sign(signature, message, message_length, private_key);
    CCryptoBoringSSL_OPENSSL_cleanse(private_key, sizeof(private_key));
    return ok;
}

int keyward_p256_sign_digest(uint8_t signature[72], size_t *signature_length,
                             const uint8_t digest[32], const uint8_t scalar[32]) {
    int ok = 0;
    unsigned int length = 0;
    EC_KEY *key = CCryptoBoringSSL_EC_KEY_new_by_curve_name(KEYWARD_NID_X9_62_prime256v1);
    BIGNUM *priv = CCryptoBoringSSL_BN_bin2bn(scalar, 32, NULL);
    if (key != NULL && priv != NULL && CCryptoBoringSSL_EC_KEY_set_private_key(key, priv) == 1 &&
        CCryptoBoringSSL_ECDSA_sign(0, digest, 32, signature, &length, key) == 1 && length <= 72) {
        *signature_length = length;
        ok = 1;
    }
    if (priv != NULL) CCryptoBoringSSL_BN_clear_free(priv);
    if (key != NULL) CCryptoBoringSSL_EC_KEY_free(key);
    return ok;
}

typedef struct env_md_st EVP_MD;
extern uint8_t *CCryptoBoringSSL_SHA256(const uint8_t *data, size_t length, uint8_t out[32]);
extern const EVP_MD *CCryptoBoringSSL_EVP_sha256(void);
extern const EVP_MD *CCryptoBoringSSL_EVP_sha384(void);
extern const EVP_MD *CCryptoBoringSSL_EVP_sha512(void);
extern uint8_t *CCryptoBoringSSL_HMAC(const EVP_MD *md, const void *key, size_t key_length, const uint8_t *data,
                                      size_t data_length, uint8_t *out, unsigned int *out_length);

void keyward_sha256(uint8_t digest[32], const uint8_t *data, size_t length) {
    CCryptoBoringSSL_SHA256(data, length, digest);
}

int keyward_hmac(int bits, uint8_t *tag, size_t *tag_length, const uint8_t *key, size_t key_length,
                 const uint8_t *message, size_t message_length) {
    const EVP_MD *md = bits == 512 ? CCryptoBoringSSL_EVP_sha512() : bits == 384 ? CCryptoBoringSSL_EVP_sha384()
                     : bits == 256 ? CCryptoBoringSSL_EVP_sha256() : NULL;
    unsigned int length = 0;
    if (md == NULL || CCryptoBoringSSL_HMAC(md, key, key_length, message, message_length, tag, &length) == NULL) return 0;
    *tag_length = length;
    return 1;
}
