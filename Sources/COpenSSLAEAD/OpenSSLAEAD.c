#include "COpenSSLAEAD.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* Ciphers are fetched from the default provider once: an implicit fetch on every
   EVP_EncryptInit_ex costs more than sealing 32 bytes. */
static EVP_CIPHER *aes_256_gcm;
static EVP_CIPHER *aes_128_gcm;
static EVP_CIPHER *chacha20_poly1305;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void) {
    aes_256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    aes_128_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    chacha20_poly1305 = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static const EVP_CIPHER *cipher_for(int algorithm) {
    pthread_once(&fetch_once, fetch_ciphers);
    switch (algorithm) {
    case KEYWARD_AEAD_AES_256_GCM: return aes_256_gcm;
    case KEYWARD_AEAD_AES_128_GCM: return aes_128_gcm;
    case KEYWARD_AEAD_CHACHA20_POLY1305: return chacha20_poly1305;
    default: return NULL;
    }
}

static int lengths_ok(size_t a, size_t b, size_t c) {
    return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX;
}

static int feed_aad(EVP_CIPHER_CTX *ctx, int encrypt, const uint8_t *aad, size_t len) {
    int out_len = 0;
    if (len == 0) return 1;
    return encrypt ? EVP_EncryptUpdate(ctx, NULL, &out_len, aad, (int)len)
                   : EVP_DecryptUpdate(ctx, NULL, &out_len, aad, (int)len);
}

int keyward_aead_seal(int algorithm, const uint8_t *key, const uint8_t *nonce,
                      const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                      const uint8_t *in, size_t in_len, uint8_t *out, uint8_t *tag) {
    const EVP_CIPHER *cipher = cipher_for(algorithm);
    if (cipher == NULL || !lengths_ok(aad1_len, aad2_len, in_len)) return 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return 0;
    int ok = 0, len = 0;
    /* 12-byte IVs are both ciphers' default length. */
    if (EVP_EncryptInit_ex2(ctx, cipher, key, nonce, NULL) != 1) goto done;
    if (!feed_aad(ctx, 1, aad1, aad1_len) || !feed_aad(ctx, 1, aad2, aad2_len)) goto done;
    if (in_len > 0 && EVP_EncryptUpdate(ctx, out, &len, in, (int)in_len) != 1) goto done;
    if (EVP_EncryptFinal_ex(ctx, out + len, &len) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1) goto done;
    ok = 1;
done:
    EVP_CIPHER_CTX_free(ctx); /* cleanses the expanded key */
    return ok;
}

int keyward_aead_open(int algorithm, const uint8_t *key, const uint8_t *nonce,
                      const uint8_t *aad1, size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                      const uint8_t *in, size_t in_len, const uint8_t *tag, uint8_t *out) {
    const EVP_CIPHER *cipher = cipher_for(algorithm);
    if (cipher == NULL || !lengths_ok(aad1_len, aad2_len, in_len)) return 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return 0;
    int ok = 0, len = 0;
    uint8_t tag_copy[16];
    memcpy(tag_copy, tag, 16);
    if (EVP_DecryptInit_ex2(ctx, cipher, key, nonce, NULL) != 1) goto done;
    if (!feed_aad(ctx, 0, aad1, aad1_len) || !feed_aad(ctx, 0, aad2, aad2_len)) goto done;
    if (in_len > 0 && EVP_DecryptUpdate(ctx, out, &len, in, (int)in_len) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag_copy) != 1) goto done;
    if (EVP_DecryptFinal_ex(ctx, out + len, &len) != 1) goto done; /* constant-time tag check */
    ok = 1;
done:
    EVP_CIPHER_CTX_free(ctx);
    if (!ok && in_len > 0) OPENSSL_cleanse(out, in_len);
    return ok;
}

int keyward_aead_random(uint8_t *buffer, size_t length) {
    if (length > INT_MAX) return 0;
    return RAND_bytes(buffer, (int)length) == 1;
}

/* ---- Nonces ----
   A random 96-bit nonce per seal. getrandom(2) costs ~0.5 us and OpenSSL 3's RAND_bytes ~1.7 us
   per call, more than sealing 32 bytes; so each thread draws 4 KiB from getrandom at a time
   into its own page and hands out 12 bytes per seal, zeroing what it hands out.
   Fork safety: the page is MADV_WIPEONFORK, so a child process sees it zeroed, which reads as
   "empty", and refills from getrandom: parent and child never share nonces. */

#define NONCE_POOL_BYTES 4080

struct nonce_pool {
    uint32_t remaining;              /* 0 after a fork (page wiped) or when used up */
    uint8_t bytes[NONCE_POOL_BYTES];
};

static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;

static void pool_release(void *pool) {
    if (pool != NULL) munmap(pool, 4096);
}

static void pool_key_create(void) {
    pthread_key_create(&pool_key, pool_release);
}

static struct nonce_pool *thread_pool(void) {
    pthread_once(&pool_key_once, pool_key_create);
    struct nonce_pool *pool = pthread_getspecific(pool_key);
    if (pool != NULL) return pool;
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return NULL;
    if (madvise(page, 4096, MADV_WIPEONFORK) != 0) { munmap(page, 4096); return NULL; }
    pthread_setspecific(pool_key, page);
    return page;
}

static int fill_from_os(uint8_t *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t n = getrandom(buffer + done, length - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        done += (size_t)n;
    }
    return 1;
}

int keyward_aead_nonce(uint8_t *nonce) {
    struct nonce_pool *pool = thread_pool();
    if (pool == NULL) return fill_from_os(nonce, 12);
    if (pool->remaining < 12 || pool->remaining > NONCE_POOL_BYTES) {
        if (!fill_from_os(pool->bytes, NONCE_POOL_BYTES)) { pool->remaining = 0; return 0; }
        pool->remaining = NONCE_POOL_BYTES;
    }
    pool->remaining -= 12;
    memcpy(nonce, pool->bytes + pool->remaining, 12);
    memset(pool->bytes + pool->remaining, 0, 12);
    return 1;
}
