/*
 * The SQLite store's inbox for received webhook events; see store_inbox.h.
 *
 * File format: records back to back, each a 24-byte header (magic, the
 * record's JSON length, its body length, a checksum of both lengths and
 * bytes) followed by the JSON and the body. A record a crash cut short (or
 * a power loss left as garbage) fails its magic, lengths or checksum: it
 * and anything after it were never acknowledged (an appender truncates its
 * own failed write, and every append starts from a file it has checked),
 * so a drain moves the records before it and truncates the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "store_inbox.h"

#define MAGIC 0x31424749u /* "IGB1" little-endian */
#define HDR 24

/* One key this inbox appended and has not seen moved yet. */
struct key {
    uint64_t h;
    char *s; /* endpoint_id NUL event_id NUL, owned */
    size_t len;
};

struct ig_inbox {
    char *path; /* owned */
    int fd;
    ig_inbox_ops ops;
    pthread_mutex_t mu; /* everything below, and the file within this process */
    /* The file as this inbox left it: its size, and the header of the
     * last record it appended (at last_off). Another size, or another
     * record there, means another appender or mover was there since; the
     * header holds the checksum of a record with a fresh event id, so an
     * equal size with other records (a move, then appends) shows. */
    off_t mine, last_off;
    unsigned char last_hdr[HDR];
    size_t nrecs; /* records appended since the file was last empty */
    struct key *keys;
    size_t nkeys, capkeys;
};

/* A checksum against torn writes, not an adversary: 64-bit words,
 * multiply-rotate (the inbox is written by this library only). */
static uint64_t sum_update(uint64_t h, const unsigned char *p, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * k;
        h = (h << 31) | (h >> 33);
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w ^ ((uint64_t)n << 56)) * k;
    return (h << 29) | (h >> 35);
}

static uint64_t rec_sum(uint32_t json_len, uint32_t blob_len, const void *json, const void *blob)
{
    unsigned char lens[8];
    memcpy(lens, &json_len, 4);
    memcpy(lens + 4, &blob_len, 4);
    uint64_t h = sum_update(0x6a09e667f3bcc908ull, lens, sizeof lens);
    h = sum_update(h, json, json_len);
    return sum_update(h, blob, blob_len);
}

static uint64_t key_hash(const char *s, size_t len)
{
    return sum_update(0xbb67ae8584caa73bull, (const unsigned char *)s, len);
}

static void keys_clear(ig_inbox *b)
{
    for (size_t i = 0; i < b->nkeys; i++)
        free(b->keys[i].s);
    b->nkeys = 0;
    b->nrecs = 0;
}

/* "endpoint_id\0event_id", malloc'd; its length in *len. */
static char *key_text(const char *ep, const char *ev, size_t *len)
{
    size_t a = strlen(ep), c = strlen(ev);
    char *k = malloc(a + c + 2);
    if (k) {
        memcpy(k, ep, a + 1);
        memcpy(k + a + 1, ev, c + 1);
        *len = a + c + 2;
    }
    return k;
}

static int key_held(const ig_inbox *b, const char *k, size_t len, uint64_t h)
{
    for (size_t i = 0; i < b->nkeys; i++)
        if (b->keys[i].h == h && b->keys[i].len == len && !memcmp(b->keys[i].s, k, len))
            return 1;
    return 0;
}

/* ---- the file's lock --------------------------------------------------------------------- */

/* The last store to close an empty inbox removes the file (under its
 * lock); a holder of the old file must then open the new one. Under mu. */
static int reopen_if_removed(ig_inbox *b, int *reopened)
{
    struct stat st;
    *reopened = 0;
    if (fstat(b->fd, &st) != 0)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: stat: %s", b->path, strerror(errno));
    if (st.st_nlink > 0)
        return INTEG_OK;
    int fd = open(b->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: open: %s", b->path, strerror(errno));
    close(b->fd);
    b->fd = fd;
    b->mine = -1; /* whatever the new file holds is someone else's */
    *reopened = 1;
    return INTEG_OK;
}

static int file_lock(ig_inbox *b, int timeout_ms)
{
    long waited_us = 0, step_us = 20;
    for (;;) {
        if (flock(b->fd, LOCK_EX | LOCK_NB) == 0) {
            int reopened = 0, rc = reopen_if_removed(b, &reopened);
            if (rc != INTEG_OK || !reopened)
                return rc;
            continue; /* lock the file that is there now */
        }
        if (errno != EWOULDBLOCK && errno != EINTR)
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: lock: %s", b->path, strerror(errno));
        if (waited_us >= timeout_ms * 1000L)
            return ig_err(INTEG_ECONFLICT, "sqlite inbox: %s: busy (locked by another process for %d ms)", b->path,
                          timeout_ms);
        struct timespec ts = {0, step_us * 1000L};
        nanosleep(&ts, NULL);
        waited_us += step_us;
        if (step_us < 1000)
            step_us *= 2;
    }
}

static void file_unlock(ig_inbox *b) { flock(b->fd, LOCK_UN); }

static int file_size(ig_inbox *b, off_t *out)
{
    struct stat st;
    if (fstat(b->fd, &st) != 0)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: stat: %s", b->path, strerror(errno));
    *out = st.st_size;
    return INTEG_OK;
}

static int file_truncate(ig_inbox *b, off_t size)
{
    while (ftruncate(b->fd, size) != 0)
        if (errno != EINTR)
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: truncate: %s", b->path, strerror(errno));
    return INTEG_OK;
}

/* ---- moving ------------------------------------------------------------------------------ */

/* Move the file's `size` bytes (locked, under mu), waiting at most
 * timeout_ms for the database. */
static int move_locked(ig_inbox *b, off_t size, int timeout_ms)
{
    if (size == 0) {
        b->mine = 0;
        keys_clear(b);
        return INTEG_OK;
    }
    if ((uintmax_t)size > SIZE_MAX)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: too large to read", b->path);
    unsigned char *buf = malloc((size_t)size);
    if (!buf)
        return ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory reading %lld bytes", (long long)size);
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t r = pread(b->fd, buf + got, (size_t)size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            free(buf);
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: read: %s", b->path, strerror(err));
        }
        got += (size_t)r;
    }
    /* Count, then index, the well-formed records up to the first that isn't. */
    size_t n = 0, cap = 64;
    ig_inbox_rec *recs = malloc(cap * sizeof *recs);
    size_t off = 0;
    while (recs && (size_t)size - off >= HDR) {
        uint32_t magic, jl, bl;
        uint64_t sum;
        memcpy(&magic, buf + off, 4);
        memcpy(&jl, buf + off + 4, 4);
        memcpy(&bl, buf + off + 8, 4);
        memcpy(&sum, buf + off + 16, 8);
        size_t room = (size_t)size - off - HDR;
        if (magic != MAGIC || jl > room || bl > room - jl ||
            rec_sum(jl, bl, buf + off + HDR, buf + off + HDR + jl) != sum)
            break;
        if (n == cap) {
            ig_inbox_rec *g = realloc(recs, 2 * cap * sizeof *recs);
            if (!g) {
                free(recs);
                recs = NULL;
                break;
            }
            recs = g;
            cap *= 2;
        }
        recs[n++] = (ig_inbox_rec){.json = (const char *)buf + off + HDR,
                                   .json_len = jl,
                                   .blob = buf + off + HDR + jl,
                                   .blob_len = bl};
        off += HDR + (size_t)jl + bl;
    }
    int rc = recs ? INTEG_OK : ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
    if (rc == INTEG_OK && n)
        rc = b->ops.move(b->ops.arg, recs, n, timeout_ms);
    /* Committed: the records are in the table, so the file can go (a
     * crash before the truncate makes the next drain skip them all). */
    if (rc == INTEG_OK)
        rc = file_truncate(b, 0);
    if (rc == INTEG_OK) {
        b->mine = 0;
        keys_clear(b);
    }
    free(recs);
    free(buf);
    return rc;
}

int ig_inbox_drain(ig_inbox *b, int patient)
{
    if (!b)
        return INTEG_OK;
    /* Before mu: an appender holding mu may be waiting for this thread's
     * write transaction to end. */
    if (b->ops.self_writing(b->ops.arg))
        return INTEG_OK;
    int timeout_ms = patient ? b->ops.timeout_ms : IG_INBOX_READ_PATIENCE_MS;
    /* An appender moving a batch holds mu meanwhile: a reader waits for it
     * no longer than for the locks themselves. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(&b->mu, &until) != 0)
        return ig_err(INTEG_ECONFLICT, "sqlite inbox: %s: busy (another thread is moving it)", b->path);
    off_t size = 0;
    int reopened = 0;
    int rc = reopen_if_removed(b, &reopened);
    if (rc == INTEG_OK)
        rc = file_size(b, &size);
    if (rc == INTEG_OK && size == 0) {
        /* Someone moved what this inbox appended (or nothing was). */
        b->mine = 0;
        keys_clear(b);
    } else if (rc == INTEG_OK && (rc = file_lock(b, timeout_ms)) == INTEG_OK) {
        rc = file_size(b, &size);
        if (rc == INTEG_OK)
            rc = move_locked(b, size, timeout_ms);
        file_unlock(b);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* ---- appending --------------------------------------------------------------------------- */

/* writev all of iov[0..n), whatever the kernel takes per call. */
static int write_all(ig_inbox *b, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(b->fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: write: %s", b->path, strerror(w < 0 ? errno : EIO));
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return INTEG_OK;
}

/* Decide duplicates, append, remember the keys (locked, under mu). */
static int put_locked(ig_inbox *b, ig_inbox_rec *recs, size_t n)
{
    off_t size = 0;
    int rc = file_size(b, &size);
    int as_left = rc == INTEG_OK && size == b->mine;
    if (as_left && size > 0) {
        unsigned char h[HDR];
        as_left = pread(b->fd, h, HDR, b->last_off) == HDR && !memcmp(h, b->last_hdr, HDR);
    }
    /* Records another appender left would be invisible to the duplicate
     * check: move them first (and ours with them). */
    if (rc == INTEG_OK && (!as_left || size >= (off_t)IG_INBOX_MAX_BYTES)) {
        rc = move_locked(b, size, b->ops.timeout_ms);
        if (rc == INTEG_OK)
            size = 0;
    }
    if (rc != INTEG_OK)
        return rc;
    uint64_t *hashes = calloc(n, sizeof *hashes);
    size_t *klen = calloc(n, sizeof *klen);
    char **ktext = calloc(n, sizeof *ktext);
    unsigned char *hdrs = malloc(n * HDR);
    struct iovec *iov = malloc(3 * n * sizeof *iov);
    if (!hashes || !klen || !ktext || !hdrs || !iov) {
        rc = ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
        goto out;
    }
    int niov = 0;
    size_t bytes = 0, appended = 0, last = 0, last_at = 0;
    for (size_t i = 0; i < n && rc == INTEG_OK; i++) {
        ig_inbox_rec *r = &recs[i];
        r->duplicate = 0;
        if (r->json_len > UINT32_MAX || r->blob_len > UINT32_MAX - r->json_len) {
            rc = ig_err(INTEG_EINVAL, "webhook: the event is too large to queue (%zu bytes)", r->json_len + r->blob_len);
            break;
        }
        if (r->endpoint_id && r->event_id) {
            if (!(ktext[i] = key_text(r->endpoint_id, r->event_id, &klen[i]))) {
                rc = ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
                break;
            }
            hashes[i] = key_hash(ktext[i], klen[i]);
            if (key_held(b, ktext[i], klen[i], hashes[i])) {
                r->duplicate = 1;
                continue;
            }
            int found = 0;
            rc = b->ops.stored(b->ops.arg, r->endpoint_id, r->event_id, &found);
            if (rc != INTEG_OK)
                break;
            if (found) {
                r->duplicate = 1;
                continue;
            }
        }
        unsigned char *h = hdrs + i * HDR;
        uint32_t magic = MAGIC, jl = (uint32_t)r->json_len, bl = (uint32_t)r->blob_len, zero = 0;
        uint64_t sum = rec_sum(jl, bl, r->json, r->blob ? r->blob : (const unsigned char *)"");
        memcpy(h, &magic, 4);
        memcpy(h + 4, &jl, 4);
        memcpy(h + 8, &bl, 4);
        memcpy(h + 12, &zero, 4);
        memcpy(h + 16, &sum, 8);
        last = i;
        last_at = bytes;
        iov[niov++] = (struct iovec){h, HDR};
        iov[niov++] = (struct iovec){(void *)r->json, r->json_len};
        if (r->blob_len)
            iov[niov++] = (struct iovec){(void *)r->blob, r->blob_len};
        bytes += HDR + r->json_len + r->blob_len;
        appended++;
    }
    if (rc == INTEG_OK && niov) {
        rc = write_all(b, iov, niov);
        if (rc != INTEG_OK) {
            /* Nothing of this batch is acknowledged: cut it off again, so
             * the file holds only whole, answered records (failing that,
             * the next append or drain moves the whole ones and truncates). */
            b->mine = ftruncate(b->fd, size) == 0 ? size : -1;
            goto out;
        }
        b->mine = size + (off_t)bytes;
        b->last_off = size + (off_t)last_at;
        memcpy(b->last_hdr, hdrs + last * HDR, HDR);
        b->nrecs += appended;
    }
    if (rc != INTEG_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!ktext[i] || recs[i].duplicate)
            continue;
        if (b->nkeys == b->capkeys) {
            size_t cap = b->capkeys ? 2 * b->capkeys : 64;
            struct key *g = realloc(b->keys, cap * sizeof *g);
            if (!g) {
                /* The record is in the file but its key is not in memory:
                 * move now, so the store's index answers for it. */
                int mrc = move_locked(b, b->mine, b->ops.timeout_ms);
                if (mrc != INTEG_OK)
                    b->mine = -1;
                break;
            }
            b->keys = g;
            b->capkeys = cap;
        }
        b->keys[b->nkeys++] = (struct key){hashes[i], ktext[i], klen[i]};
        ktext[i] = NULL;
    }
out:
    for (size_t i = 0; ktext && i < n; i++)
        free(ktext[i]);
    free(ktext);
    free(klen);
    free(hashes);
    free(hdrs);
    free(iov);
    return rc;
}

int ig_inbox_put(ig_inbox *b, ig_inbox_rec *recs, size_t n)
{
    if (n == 0)
        return INTEG_OK;
    pthread_mutex_lock(&b->mu);
    int rc = file_lock(b, b->ops.timeout_ms);
    if (rc == INTEG_OK) {
        rc = put_locked(b, recs, n);
        /* Past the line, the appender moves the batch (the events are
         * already safe: a busy database or a failure only leaves them for
         * the next, so it waits no longer than a reader would). */
        if (rc == INTEG_OK && (b->nrecs >= IG_INBOX_MOVE_EVENTS || b->mine >= (off_t)IG_INBOX_MOVE_BYTES) &&
            !b->ops.self_writing(b->ops.arg)) {
            ig_err_saved saved;
            ig_err_save(&saved);
            if (move_locked(b, b->mine, IG_INBOX_READ_PATIENCE_MS) != INTEG_OK)
                ig_err_restore(&saved);
        }
        file_unlock(b);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

int ig_inbox_open(const char *db_path, const ig_inbox_ops *ops, ig_inbox **out)
{
    *out = NULL;
    ig_inbox *b = calloc(1, sizeof *b);
    size_t len = strlen(db_path) + sizeof "-inbox";
    if (!b || !(b->path = malloc(len))) {
        free(b);
        return ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
    }
    snprintf(b->path, len, "%s-inbox", db_path);
    b->ops = *ops;
    b->fd = open(b->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (b->fd < 0) {
        int err = ig_err(INTEG_ESTORE, "sqlite inbox: %s: open: %s", b->path, strerror(errno));
        free(b->path);
        free(b);
        return err;
    }
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        close(b->fd);
        free(b->path);
        free(b);
        return ig_err(INTEG_ENOMEM, "sqlite inbox: cannot create a mutex");
    }
    /* Anything already in the file belongs to a previous run: a size this
     * inbox did not write, so the first append or drain moves it. */
    off_t size = 0;
    b->mine = file_size(b, &size) == INTEG_OK && size == 0 ? 0 : -1;
    *out = b;
    return INTEG_OK;
}

void ig_inbox_close(ig_inbox *b)
{
    if (!b)
        return;
    /* An empty inbox goes, as SQLite's -wal does: under the lock, so an
     * appender holding the old file finds it removed and opens a new one. */
    pthread_mutex_lock(&b->mu);
    off_t size = -1;
    if (file_lock(b, b->ops.timeout_ms) == INTEG_OK) {
        if (file_size(b, &size) == INTEG_OK && size == 0)
            unlink(b->path);
        file_unlock(b);
    }
    pthread_mutex_unlock(&b->mu);
    keys_clear(b);
    free(b->keys);
    close(b->fd);
    pthread_mutex_destroy(&b->mu);
    free(b->path);
    free(b);
}
