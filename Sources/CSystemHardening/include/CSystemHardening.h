#ifndef C_SYSTEM_HARDENING_H
#define C_SYSTEM_HARDENING_H

#include <stddef.h>

/// Maps `length` bytes (rounded up to whole pages) of anonymous, private memory, locks it in RAM
/// (mlock), excludes it from core dumps (MADV_DONTDUMP) and wipes it in forked children
/// (MADV_WIPEONFORK). Returns NULL and sets `*failed_step` (1 mmap, 2 mlock, 3 dontdump,
/// 4 wipeonfork) and `*error_number` on failure; nothing stays mapped then.
void *keyward_secure_alloc(size_t length, size_t *mapped_length, int *failed_step, int *error_number);

/// Zeroes the region with explicit_bzero (never optimised away), unlocks and unmaps it.
void keyward_secure_free(void *base, size_t mapped_length);

/// For secrets up to 2 KiB: a zeroed chunk of a shared locked, non-dumpable, wipe-on-fork arena
/// (size classes 32 B to 2 KiB). NULL with `*failed_step`/`*error_number` set when an arena
/// cannot be mapped or locked, or `length` is above 2 KiB.
void *keyward_secure_chunk_alloc(size_t length, int *failed_step, int *error_number);

/// Zeroes a chunk from keyward_secure_chunk_alloc (the whole size class) and returns it.
void keyward_secure_chunk_free(void *base, size_t length);

/// The chunk size serving `length` bytes, or 0 when `length` needs its own mapping.
size_t keyward_secure_chunk_size(size_t length);

/// Zeroes `length` bytes with explicit_bzero.
void keyward_zeroize(void *base, size_t length);

/// Turns off core dumps for this process: PR_SET_DUMPABLE 0 and RLIMIT_CORE 0.
/// Returns 0, or the errno of the first call that failed.
int keyward_disable_core_dumps(void);

/// 1 if the process is dumpable (prctl PR_GET_DUMPABLE), 0 if not, -1 on error.
int keyward_is_dumpable(void);

/// The system page size.
size_t keyward_page_size(void);

/// Constant-time comparison of two buffers of equal length: 1 if equal, 0 if not. The time taken
/// depends only on `length`.
int keyward_constant_time_equal(const void *a, const void *b, size_t length);

/// Names the calling thread as `top -H`, `perf` and debuggers show it (at most 15 bytes are
/// kept; the caller cuts the name). 0 on success, else an errno value.
int keyward_set_thread_name(const char *name);

#endif
