/* Internal: ids and time. */
#ifndef IG_UTIL_H
#define IG_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* 1 if s (may be NULL: 0) equals a string of the NULL-terminated list. */
int ig_in_list(const char *s, const char *const *list);

/* Current wall-clock time in unix milliseconds. */
int64_t ig_now_ms(void);

/* *ts = CLOCK_MONOTONIC now + us microseconds: the deadline of a
 * pthread_cond_timedwait on a condition variable set to that clock. */
void ig_deadline_after_us(struct timespec *ts, int64_t us);

/* The same on another clock (CLOCK_REALTIME for pthread_mutex_timedlock). */
void ig_deadline_on(clockid_t clock, struct timespec *ts, int64_t us);

/* A UUIDv7 string (36 chars + NUL) for time `ms`, all other bits random:
 * ordered against other milliseconds only. */
void ig_uuid7(char out[37], int64_t ms);

/* A UUIDv7 that sorts after every id made before it from the same `state`
 * (RFC 9562 section 6.2, method 1: a 12-bit counter in rand_a, and the
 * timestamp runs ahead by a millisecond when the counter overflows). The
 * state and `key` (32 random bytes) live in the context; thread-safe. The
 * 62 random bits are ChaCha20 of the key with the unique (time, counter)
 * value as nonce: as unpredictable as the system generator's without a
 * system call per id, which a sync makes two of per record. */
void ig_uuid7_next(_Atomic uint64_t *state, const unsigned char key[32], char out[37], int64_t now_ms);

/* RFC 3339 UTC text for unix ms: "2025-01-23T10:00:00Z" (seconds precision)
 * or with milliseconds when `with_ms` ("2025-01-23T10:00:00.123Z"). */
void ig_rfc3339(char out[32], int64_t ms, int with_ms);

/* Parse RFC 3339 (any offset, optional fraction) into unix ms. -1 if invalid. */
int ig_parse_rfc3339(const char *s, int64_t *out_ms);

/* strdup that returns NULL only when s is NULL or memory is out. */
char *ig_strdup(const char *s);

/* 1 if s is 1..max bytes of printable ASCII without spaces. */
int ig_valid_token(const char *s, size_t max);

#endif
