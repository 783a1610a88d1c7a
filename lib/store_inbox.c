/*
 * The SQLite store's inbox for received webhook events; see store_inbox.h.
 *
 * File format: records back to back, each a 24-byte header (magic, the
 * record's JSON length, its body length, a checksum of both lengths and
 * bytes) followed by the JSON and the body. A record a crash cut short (or
 * a power loss left as garbage) fails its magic, lengths or checksum: it
 * and anything after it were never acknowledged (an appender truncates its
 * own failed write, and every appender reads the file up to its end before
 * it writes, cutting such a tail off first), so a drain moves the records
 * before it and truncates the rest.
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
#include "json.h"
#include "store_inbox.h"
#include "util.h"

#define MAGIC 0x31424749u /* "IGB1" little-endian */
#define HDR 24

/* The key of a record in the file (as far as this inbox has read it). */
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
    /* How far this inbox has read the file: records [0, known) have their
     * keys in `keys`, whoever appended them; the last of them starts at
     * last_off with header last_hdr. The file only grows by appends or
     * shrinks to nothing (a move), so when that header is still there the
     * prefix is the same; the header holds the checksum of a record with a
     * fresh event id, so a file moved and refilled to the same length shows. */
    off_t known, last_off;
    unsigned char last_hdr[HDR];
    size_t nrecs; /* records in [0, known) */
    struct key *keys;
    size_t nkeys, capkeys;
    /* A move found the database busy: moves that need not wait (readers,
     * the appender past the line) skip until then (monotonic ms). */
    int64_t retry_at_ms;
    /* The database file's mode and owner: the inbox's and the rejected
     * file's, as SQLite gives its -wal (have_db: known). */
    int have_db;
    mode_t db_mode;
    uid_t db_uid;
    gid_t db_gid;
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

static int key_add(ig_inbox *b, char *text, size_t len, uint64_t h)
{
    if (b->nkeys == b->capkeys) {
        size_t cap = b->capkeys ? 2 * b->capkeys : 64;
        struct key *g = realloc(b->keys, cap * sizeof *g);
        if (!g)
            return ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
        b->keys = g;
        b->capkeys = cap;
    }
    b->keys[b->nkeys++] = (struct key){h, text, len};
    return INTEG_OK;
}

static void forget(ig_inbox *b)
{
    keys_clear(b);
    b->known = 0;
    b->last_off = 0;
}

/* The record at buf[off..size) when it is whole; 0 otherwise. */
static int rec_at(const unsigned char *buf, size_t size, size_t off, ig_inbox_rec *r, size_t *next)
{
    if (size - off < HDR)
        return 0;
    uint32_t magic, jl, bl;
    uint64_t sum;
    memcpy(&magic, buf + off, 4);
    memcpy(&jl, buf + off + 4, 4);
    memcpy(&bl, buf + off + 8, 4);
    memcpy(&sum, buf + off + 16, 8);
    size_t room = size - off - HDR;
    if (magic != MAGIC || jl > room || bl > room - jl ||
        rec_sum(jl, bl, buf + off + HDR, buf + off + HDR + jl) != sum)
        return 0;
    *r = (ig_inbox_rec){.json = (const char *)buf + off + HDR,
                        .json_len = jl,
                        .blob = buf + off + HDR + jl,
                        .blob_len = bl};
    *next = off + HDR + (size_t)jl + bl;
    return 1;
}

/* ---- the file --------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open `path` (flags plus O_CLOEXEC), creating it with the database
 * file's mode and owner (the umask must not narrow it; root hands it to
 * the database's owner): whoever may open the database may open it. */
static int open_like_db(ig_inbox *b, const char *path, int flags)
{
    mode_t mode = b->have_db ? b->db_mode : 0600;
    int fd = open(path, flags | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST)
        return open(path, flags | O_CLOEXEC);
    if (fd >= 0 && b->have_db) {
        if (fchmod(fd, mode) != 0) {
            /* best effort, as SQLite's own -wal */
        }
        if (geteuid() == 0 && fchown(fd, b->db_uid, b->db_gid) != 0) {
        }
    }
    return fd;
}

/* The last store to close an empty inbox removes the file (under its
 * lock); a holder of the old file must then open the new one. The file's
 * identity, not its link count, tells: a path another file took over is
 * not this one. Under mu. */
static int reopen_if_replaced(ig_inbox *b, int *reopened, off_t *size)
{
    struct stat fs, ps;
    *reopened = 0;
    if (fstat(b->fd, &fs) != 0)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: stat: %s", b->path, strerror(errno));
    *size = fs.st_size;
    if (stat(b->path, &ps) == 0 && ps.st_dev == fs.st_dev && ps.st_ino == fs.st_ino)
        return INTEG_OK;
    int fd = open_like_db(b, b->path, O_RDWR | O_APPEND);
    if (fd < 0)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: open: %s", b->path, strerror(errno));
    close(b->fd);
    b->fd = fd;
    forget(b); /* whatever the new file holds, this inbox has not read */
    *reopened = 1;
    return INTEG_OK;
}

/* Lock the file that is at the path now; *size: its size (locked, so it
 * changes only by this holder). */
static int file_lock(ig_inbox *b, int timeout_ms, off_t *size)
{
    long waited_us = 0, step_us = 20;
    for (;;) {
        if (flock(b->fd, LOCK_EX | LOCK_NB) == 0) {
            int reopened = 0, rc = reopen_if_replaced(b, &reopened, size);
            if (rc != INTEG_OK)
                flock(b->fd, LOCK_UN);
            if (rc != INTEG_OK || !reopened)
                return rc;
            continue; /* lock the file that is there now */
        }
        if (errno != EWOULDBLOCK && errno != EINTR)
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: lock: %s", b->path, strerror(errno));
        if (waited_us >= timeout_ms * 1000L)
            return ig_err(INTEG_ECONFLICT, "sqlite inbox: %s: busy (locked by another context for %d ms)", b->path,
                          timeout_ms);
        struct timespec ts = {0, step_us * 1000L};
        nanosleep(&ts, NULL);
        waited_us += step_us;
        if (step_us < 1000)
            step_us *= 2;
    }
}

static void file_unlock(ig_inbox *b) { flock(b->fd, LOCK_UN); }

static int file_truncate(ig_inbox *b, off_t size)
{
    while (ftruncate(b->fd, size) != 0)
        if (errno != EINTR)
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: truncate: %s", b->path, strerror(errno));
    return INTEG_OK;
}

/* bytes [off, off + len) of the file into a new buffer. */
static int file_read(ig_inbox *b, off_t off, size_t len, unsigned char **out)
{
    *out = NULL;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory reading %zu bytes", len);
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(b->fd, buf + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            free(buf);
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: read: %s", b->path, strerror(err));
        }
        got += (size_t)r;
    }
    *out = buf;
    return INTEG_OK;
}

/* writev all of iov[0..n), whatever the kernel takes per call. */
static int write_all(int fd, const char *path, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ig_err(INTEG_ESTORE, "sqlite inbox: %s: write: %s", path, strerror(w < 0 ? errno : EIO));
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

static void rec_header(unsigned char h[HDR], const ig_inbox_rec *r)
{
    uint32_t magic = MAGIC, jl = (uint32_t)r->json_len, bl = (uint32_t)r->blob_len, zero = 0;
    uint64_t sum = rec_sum(jl, bl, r->json, r->blob ? r->blob : (const unsigned char *)"");
    memcpy(h, &magic, 4);
    memcpy(h + 4, &jl, 4);
    memcpy(h + 8, &bl, 4);
    memcpy(h + 12, &zero, 4);
    memcpy(h + 16, &sum, 8);
}

/* ---- reading what others appended -------------------------------------------------------- */

/* Bring the keys up to the file's end (locked, under mu): forget them when
 * the file was moved since, read the records appended since, and cut off a
 * torn tail (never answered: see the top). *size: the file's size, as
 * file_lock found it, and after. */
static int catch_up(ig_inbox *b, off_t *size)
{
    int rc = INTEG_OK;
    if (b->known > 0) {
        unsigned char h[HDR];
        if (*size < b->known || pread(b->fd, h, HDR, b->last_off) != HDR || memcmp(h, b->last_hdr, HDR))
            forget(b);
    }
    if (*size == b->known)
        return INTEG_OK;
    unsigned char *buf = NULL;
    size_t len = (size_t)(*size - b->known);
    if ((rc = file_read(b, b->known, len, &buf)) != INTEG_OK)
        return rc;
    size_t off = 0, next = 0;
    ig_inbox_rec r;
    while (rc == INTEG_OK && rec_at(buf, len, off, &r, &next)) {
        /* Another appender's record: its key from its JSON. A record
         * without one (or unreadable) is still counted. */
        json_object *o = ig_json_parse_len(r.json, r.json_len);
        const char *ep = ig_json_str(o, "endpoint_id"), *ev = ig_json_str(o, "event_id");
        if (ep && ev) {
            size_t kl = 0;
            char *k = key_text(ep, ev, &kl);
            rc = k ? key_add(b, k, kl, key_hash(k, kl)) : ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
            if (rc != INTEG_OK)
                free(k);
        }
        json_object_put(o);
        if (rc == INTEG_OK) {
            b->last_off = b->known + (off_t)off;
            memcpy(b->last_hdr, buf + off, HDR);
            b->nrecs++;
            off = next;
        }
    }
    if (rc == INTEG_OK && off < len) {
        rc = file_truncate(b, b->known + (off_t)off);
        if (rc == INTEG_OK)
            *size = b->known + (off_t)off;
    }
    if (rc == INTEG_OK)
        b->known = *size;
    else
        forget(b); /* read again from the start next time */
    free(buf);
    return rc;
}

/* ---- moving ------------------------------------------------------------------------------ */

/* Append the records the store refused for good to <path>-rejected,
 * synced; on a failure the file is cut back to what it was. */
static int set_aside(ig_inbox *b, const ig_inbox_rec *recs, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += recs[i].rejected != 0;
    if (!m)
        return INTEG_OK;
    size_t plen = strlen(b->path) + sizeof "-rejected";
    char *path = malloc(plen);
    unsigned char *hdrs = malloc(m * HDR);
    struct iovec *iov = malloc(3 * m * sizeof *iov);
    int rc = INTEG_OK, fd = -1;
    struct stat st;
    if (!path || !hdrs || !iov) {
        rc = ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
        goto out;
    }
    snprintf(path, plen, "%s-rejected", b->path);
    fd = open_like_db(b, path, O_WRONLY | O_APPEND);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = ig_err(INTEG_ESTORE, "sqlite inbox: %s: open: %s", path, strerror(errno));
        goto out;
    }
    int niov = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        if (!recs[i].rejected)
            continue;
        rec_header(hdrs + k * HDR, &recs[i]);
        iov[niov++] = (struct iovec){hdrs + k * HDR, HDR};
        iov[niov++] = (struct iovec){(void *)recs[i].json, recs[i].json_len};
        iov[niov++] = (struct iovec){(void *)recs[i].blob, recs[i].blob_len};
        k++;
    }
    rc = write_all(fd, path, iov, niov);
    if (rc == INTEG_OK && fdatasync(fd) != 0)
        rc = ig_err(INTEG_ESTORE, "sqlite inbox: %s: sync: %s", path, strerror(errno));
    if (rc != INTEG_OK && ftruncate(fd, st.st_size) != 0) {
        /* a torn tail there stops a reader of the format, nothing else */
    }
out:
    if (fd >= 0)
        close(fd);
    free(iov);
    free(hdrs);
    free(path);
    return rc;
}

/* Insert the file's records in tx (locked, under mu): the whole records up
 * to the first that isn't, and the refused ones set aside. Nothing is
 * committed here; after the caller's commit the file is truncated. */
static int insert_file(ig_inbox *b, void *tx, off_t size)
{
    if ((uintmax_t)size > SIZE_MAX)
        return ig_err(INTEG_ESTORE, "sqlite inbox: %s: too large to read", b->path);
    unsigned char *buf = NULL;
    int rc = file_read(b, 0, (size_t)size, &buf);
    if (rc != INTEG_OK)
        return rc;
    size_t n = 0, cap = 64, off = 0, next = 0;
    ig_inbox_rec *recs = malloc(cap * sizeof *recs), r;
    while (recs && rec_at(buf, (size_t)size, off, &r, &next)) {
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
        recs[n++] = r;
        off = next;
    }
    rc = recs ? INTEG_OK : ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
    if (rc == INTEG_OK && n)
        rc = b->ops.insert(b->ops.arg, tx, recs, n, 0);
    /* Before the commit: a record the table refused is safe elsewhere
     * before the file that holds it goes. Accepted is never lost. */
    if (rc == INTEG_OK)
        rc = set_aside(b, recs, n);
    free(recs);
    free(buf);
    return rc;
}

/* Move the file into the store. The database comes first (a write
 * transaction, waiting at most timeout_ms), the inbox's locks after it:
 * whoever holds those never waits for the database, so receiving goes on
 * while the database is busy. Not under mu. */
static int move_file(ig_inbox *b, int timeout_ms)
{
    void *tx = NULL;
    int rc = b->ops.begin(b->ops.arg, timeout_ms, &tx);
    struct timespec until;
    ig_deadline_on(CLOCK_REALTIME, &until, timeout_ms * 1000LL);
    if (rc == INTEG_OK && pthread_mutex_timedlock(&b->mu, &until) != 0) {
        b->ops.end(b->ops.arg, tx, 0);
        return ig_err(INTEG_ECONFLICT, "sqlite inbox: %s: busy (another thread holds it)", b->path);
    }
    if (rc != INTEG_OK) {
        pthread_mutex_lock(&b->mu);
        b->retry_at_ms = mono_ms() + IG_INBOX_RETRY_MS;
        pthread_mutex_unlock(&b->mu);
        return rc;
    }
    off_t size = 0;
    int locked = (rc = file_lock(b, timeout_ms, &size)) == INTEG_OK;
    if (rc == INTEG_OK && size > 0)
        rc = insert_file(b, tx, size);
    int end = b->ops.end(b->ops.arg, tx, rc == INTEG_OK && size > 0);
    if (rc == INTEG_OK)
        rc = end;
    /* Committed: the records are in the table, so the file can go (a
     * crash before the truncate makes the next move skip them all). */
    if (rc == INTEG_OK && size > 0)
        rc = file_truncate(b, 0);
    if (rc == INTEG_OK)
        forget(b);
    if (locked)
        file_unlock(b);
    b->retry_at_ms = rc == INTEG_OK ? 0 : mono_ms() + IG_INBOX_RETRY_MS;
    pthread_mutex_unlock(&b->mu);
    return rc;
}

void ig_inbox_drain(ig_inbox *b, int patient)
{
    /* Its begin would wait for this thread's own write transaction. */
    if (!b || b->ops.self_writing(b->ops.arg))
        return;
    int timeout_ms = patient ? b->ops.timeout_ms : IG_INBOX_READ_PATIENCE_MS;
    struct timespec until;
    ig_deadline_on(CLOCK_REALTIME, &until, timeout_ms * 1000LL);
    if (pthread_mutex_timedlock(&b->mu, &until) != 0)
        return; /* another thread holds it: moving, most likely */
    /* The common case costs one fstat: this file, still linked, empty (a
     * replaced file is found by file_lock). */
    struct stat st;
    int move = fstat(b->fd, &st) != 0 || st.st_size != 0 || st.st_nlink == 0;
    if (!move)
        forget(b);
    /* The database was busy a moment ago: one who need not wait skips. */
    if (!patient && b->retry_at_ms && mono_ms() < b->retry_at_ms)
        move = 0;
    pthread_mutex_unlock(&b->mu);
    if (!move)
        return;
    /* Best effort: the caller's message stays whatever the move says. */
    ig_err_saved saved;
    ig_err_save(&saved);
    move_file(b, timeout_ms);
    ig_err_restore(&saved);
}

/* ---- appending --------------------------------------------------------------------------- */

/* More than the store takes: SQLite's length limit holds for each value
 * and for the row (the record, the body and the indexed fields). */
static int r_too_big(const ig_inbox_rec *r, long long max_bytes)
{
    if (r->json_len > UINT32_MAX || r->blob_len > UINT32_MAX - r->json_len)
        return 1;
    return max_bytes > 0 && (long long)(r->json_len + r->blob_len) > max_bytes - 4096;
}

/* Decide duplicates, then append, or insert in tx (locked, under mu).
 * *size: the file's size as file_lock found it. */
static int put_locked(ig_inbox *b, ig_inbox_rec *recs, size_t n, void *tx, off_t *sizep)
{
    int rc = catch_up(b, sizep);
    off_t size = *sizep;
    if (rc == INTEG_OK && !tx && size >= (off_t)IG_INBOX_MAX_BYTES)
        rc = ig_err(INTEG_ESTORE, "sqlite inbox: %s: full (%lld bytes): the database has not taken its events "
                                  "(busy or failing)", b->path, (long long)size);
    if (rc != INTEG_OK)
        return rc;
    /* Per record: its key, header and place. A receive puts one record, so
     * a few live on the stack; a batch takes one allocation. */
    enum { SMALL = 8 };
    struct item {
        uint64_t h;
        size_t klen, of;
        char *ktext;
        unsigned char hdr[HDR];
    } small_it[SMALL], *it = small_it;
    struct iovec small_iov[3 * SMALL], *iov = small_iov;
    ig_inbox_rec small_fresh[SMALL], *fresh = small_fresh;
    void *heap = NULL;
    if (n > SMALL) {
        heap = malloc(n * (sizeof *it + 3 * sizeof *iov + sizeof *fresh));
        if (!heap)
            return ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
        it = heap;
        iov = (struct iovec *)(it + n);
        fresh = (ig_inbox_rec *)(iov + 3 * n);
    }
    memset(it, 0, n * sizeof *it);
    int niov = 0;
    size_t bytes = 0, m = 0, last = 0, last_at = 0;
    for (size_t i = 0; i < n && rc == INTEG_OK; i++) {
        ig_inbox_rec *r = &recs[i];
        if (r->endpoint_id && r->event_id) {
            if (!(it[i].ktext = key_text(r->endpoint_id, r->event_id, &it[i].klen))) {
                rc = ig_err(INTEG_ENOMEM, "sqlite inbox: out of memory");
                break;
            }
            it[i].h = key_hash(it[i].ktext, it[i].klen);
            if (key_held(b, it[i].ktext, it[i].klen, it[i].h)) {
                r->duplicate = 1;
                continue;
            }
            /* Committing, the insert itself tells a stored one (the unique
             * index, below); appending, the table is asked. */
            int found = 0;
            if (!tx && (rc = b->ops.stored(b->ops.arg, r->endpoint_id, r->event_id, &found)) != INTEG_OK)
                break;
            if (found) {
                r->duplicate = 1;
                continue;
            }
        }
        it[m].of = i;
        fresh[m++] = *r;
        if (tx)
            continue;
        rec_header(it[i].hdr, r);
        last = i;
        last_at = bytes;
        iov[niov++] = (struct iovec){it[i].hdr, HDR};
        iov[niov++] = (struct iovec){(void *)r->json, r->json_len};
        if (r->blob_len)
            iov[niov++] = (struct iovec){(void *)r->blob, r->blob_len};
        bytes += HDR + r->json_len + r->blob_len;
    }
    if (rc != INTEG_OK || m == 0)
        goto out;
    if (tx) {
        /* Strict: all or nothing (the caller commits or rolls back); a key
         * the table holds is a duplicate, not an error. */
        rc = b->ops.insert(b->ops.arg, tx, fresh, m, 1);
        for (size_t j = 0; j < m; j++) {
            recs[it[j].of].duplicate = fresh[j].duplicate;
            recs[it[j].of].rejected = fresh[j].rejected;
        }
        goto out;
    }
    rc = write_all(b->fd, b->path, iov, niov);
    if (rc != INTEG_OK) {
        /* Nothing of this batch is acknowledged: cut it off again, so the
         * file holds only whole, answered records (failing that, the next
         * appender reads up to the torn record and cuts it off). */
        if (ftruncate(b->fd, size) != 0)
            forget(b);
        goto out;
    }
    b->known = size + (off_t)bytes;
    b->last_off = size + (off_t)last_at;
    memcpy(b->last_hdr, it[last].hdr, HDR);
    b->nrecs += m;
    for (size_t j = 0; j < m; j++) {
        struct item *x = &it[it[j].of];
        if (!x->ktext)
            continue;
        if (key_add(b, x->ktext, x->klen, x->h) != INTEG_OK) {
            /* The record is in the file but its key is not in memory:
             * read the file again from the start next time. */
            forget(b);
            ig_err_clear();
            break;
        }
        x->ktext = NULL;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(it[i].ktext);
    free(heap);
    return rc;
}

int ig_inbox_put(ig_inbox *b, ig_inbox_rec *recs, size_t n, int commit)
{
    for (size_t i = 0; i < n; i++) {
        recs[i].duplicate = 0;
        recs[i].rejected = 0;
        /* What a move would refuse for good is refused now, before a 202. */
        if (r_too_big(&recs[i], b->ops.max_bytes)) {
            recs[i].rejected = 1;
            return ig_err(INTEG_EINVAL, "webhook: the event is too large for the SQLite store (%zu bytes of body and "
                                        "record; the most is %lld)",
                          recs[i].json_len + recs[i].blob_len, b->ops.max_bytes);
        }
    }
    if (n == 0)
        return INTEG_OK;
    /* Committing: the database first, then the inbox's locks (as a move). */
    void *tx = NULL;
    int rc = commit ? b->ops.begin(b->ops.arg, b->ops.timeout_ms, &tx) : INTEG_OK;
    if (rc != INTEG_OK)
        return rc;
    pthread_mutex_lock(&b->mu);
    off_t size = 0;
    rc = file_lock(b, b->ops.timeout_ms, &size);
    if (rc == INTEG_OK) {
        rc = put_locked(b, recs, n, tx, &size);
        if (tx) {
            int end = b->ops.end(b->ops.arg, tx, rc == INTEG_OK);
            if (rc == INTEG_OK)
                rc = end;
            tx = NULL;
        }
        file_unlock(b);
    }
    if (tx)
        b->ops.end(b->ops.arg, tx, 0);
    int full = !commit && rc == INTEG_OK && (b->nrecs >= IG_INBOX_MOVE_EVENTS || b->known >= (off_t)IG_INBOX_MOVE_BYTES);
    pthread_mutex_unlock(&b->mu);
    /* Past the line, the appender moves the file (the events are already
     * safe: a busy database only leaves them for the next, so it waits no
     * longer than a reader would, and not again for a while). */
    if (full)
        ig_inbox_drain(b, 0);
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
    struct stat db;
    if (stat(db_path, &db) == 0) {
        b->have_db = 1;
        b->db_mode = db.st_mode & 0666;
        b->db_uid = db.st_uid;
        b->db_gid = db.st_gid;
    }
    b->fd = open_like_db(b, b->path, O_RDWR | O_APPEND);
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
    *out = b;
    return INTEG_OK;
}

void ig_inbox_close(ig_inbox *b)
{
    if (!b)
        return;
    /* An empty inbox goes, as SQLite's -wal does: under the lock, so an
     * appender holding the old file finds it replaced and opens a new one;
     * file_lock has checked that the path is still this file. */
    ig_err_saved saved;
    ig_err_save(&saved);
    pthread_mutex_lock(&b->mu);
    off_t size = -1;
    if (file_lock(b, b->ops.timeout_ms, &size) == INTEG_OK) {
        if (size == 0)
            unlink(b->path);
        file_unlock(b);
    }
    pthread_mutex_unlock(&b->mu);
    ig_err_restore(&saved);
    keys_clear(b);
    free(b->keys);
    close(b->fd);
    pthread_mutex_destroy(&b->mu);
    free(b->path);
    free(b);
}
