#define _GNU_SOURCE
#include "CSystemHardening.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#endif

size_t keyward_page_size(void) {
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? (size_t)size : 4096;
}

void *keyward_secure_alloc(size_t length, size_t *mapped_length, int *failed_step, int *error_number) {
    size_t page = keyward_page_size();
    size_t rounded = length == 0 ? page : ((length + page - 1) / page) * page;
    *mapped_length = 0;
    void *base = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        *failed_step = 1;
        *error_number = errno;
        return NULL;
    }
    if (mlock(base, rounded) != 0) {
        *failed_step = 2;
        *error_number = errno;
        munmap(base, rounded);
        return NULL;
    }
    if (madvise(base, rounded, MADV_DONTDUMP) != 0) {
        *failed_step = 3;
        *error_number = errno;
        munlock(base, rounded);
        munmap(base, rounded);
        return NULL;
    }
    if (madvise(base, rounded, MADV_WIPEONFORK) != 0) {
        *failed_step = 4;
        *error_number = errno;
        munlock(base, rounded);
        munmap(base, rounded);
        return NULL;
    }
    *mapped_length = rounded;
    return base;
}

void keyward_zeroize(void *base, size_t length) {
    if (base != NULL && length > 0) {
        explicit_bzero(base, length);
    }
}

void keyward_secure_free(void *base, size_t mapped_length) {
    if (base == NULL) return;
    explicit_bzero(base, mapped_length);
    munlock(base, mapped_length);
    munmap(base, mapped_length);
}

int keyward_disable_core_dumps(void) {
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return errno;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return errno;
    return 0;
}

int keyward_is_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

int keyward_constant_time_equal(const void *a, const void *b, size_t length) {
    const volatile unsigned char *x = (const volatile unsigned char *)a;
    const volatile unsigned char *y = (const volatile unsigned char *)b;
    unsigned char diff = 0;
    for (size_t i = 0; i < length; i++) {
        diff |= (unsigned char)(x[i] ^ y[i]);
    }
    return diff == 0;
}

/* ---- Small secrets share locked pages ----
   One mapping per secret costs a page (4 KiB) of locked memory per key, and RLIMIT_MEMLOCK is
   8 MiB for ordinary users: about 2,000 cached keys. Secrets up to 2 KiB are carved from
   64 KiB locked, non-dumpable, wipe-on-fork arenas in power-of-two size classes (32 B to 2 KiB);
   a freed chunk is zeroed before it goes back on its class's free list. */

#define ARENA_BYTES (64 * 1024)
#define CLASS_COUNT 7 /* 32, 64, ..., 2048 */

struct free_chunk { struct free_chunk *next; };

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_chunk *free_lists[CLASS_COUNT];

static int class_for(size_t length) {
    size_t size = 32;
    for (int index = 0; index < CLASS_COUNT; index++, size <<= 1) {
        if (length <= size) return index;
    }
    return -1;
}

size_t keyward_secure_chunk_size(size_t length) {
    int index = class_for(length);
    return index < 0 ? 0 : ((size_t)32 << index);
}

void *keyward_secure_chunk_alloc(size_t length, int *failed_step, int *error_number) {
    int index = class_for(length);
    if (index < 0) { *failed_step = 1; *error_number = EINVAL; return NULL; }
    size_t size = (size_t)32 << index;
    pthread_mutex_lock(&arena_lock);
    if (free_lists[index] == NULL) {
        size_t mapped = 0;
        uint8_t *arena = keyward_secure_alloc(ARENA_BYTES, &mapped, failed_step, error_number);
        if (arena == NULL) { pthread_mutex_unlock(&arena_lock); return NULL; }
        for (size_t offset = 0; offset + size <= mapped; offset += size) {
            struct free_chunk *chunk = (struct free_chunk *)(arena + offset);
            chunk->next = free_lists[index];
            free_lists[index] = chunk;
        }
    }
    struct free_chunk *chunk = free_lists[index];
    free_lists[index] = chunk->next;
    pthread_mutex_unlock(&arena_lock);
    explicit_bzero(chunk, size);
    return chunk;
}

void keyward_secure_chunk_free(void *base, size_t length) {
    int index = class_for(length);
    if (base == NULL || index < 0) return;
    explicit_bzero(base, (size_t)32 << index);
    pthread_mutex_lock(&arena_lock);
    struct free_chunk *chunk = base;
    chunk->next = free_lists[index];
    free_lists[index] = chunk;
    pthread_mutex_unlock(&arena_lock);
}

int keyward_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
