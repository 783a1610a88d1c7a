/* Internal: the SQLite store's inbox for received webhook events.
 *
 * A 202 must mean "durable", and on SQLite that used to mean one commit
 * per event: a WAL frame for the row and for each of the queue table's
 * indexes (random webhook ids land on random index pages), which bounds one
 * caller near 13,000 events/s on this kind of machine (bench/RESULTS.md).
 * The inbox is a file next to the database (`<db>-inbox`): receiving
 * appends the record with one write(), which survives the process exactly
 * as a WAL commit under synchronous=NORMAL does (both sit in the page
 * cache); the records are moved into webhook_events in batches, in one
 * transaction each, and the inbox is then truncated. Under durability
 * "full" a 202 needs an fsync either way, and SQLite's group commit shares
 * one among concurrent receivers: nothing is appended then, the batch is
 * committed under the inbox's lock (ig_inbox_put commit 1).
 *
 * Nothing reads from the inbox itself: every transaction of the store
 * begins by moving what is there (so a read after a 202 sees its event,
 * in any process), and so does closing the store. Duplicates stay exact:
 * every insert of a received event, appended or committed, holds the
 * file's lock from its duplicate check to its write, and checks the keys of
 * every record in the file (read from it: this inbox's own, and those
 * another context or process appended) and the table.
 *
 * Locks: a write transaction of the store when one is needed (a move, a
 * commit under "full"), then the inbox's mutex (this process), then the
 * file's flock (other processes and other contexts on the same file); under
 * those only a read connection of the store's pool (the duplicate check).
 * Whoever holds the inbox's locks never waits for the database, so
 * receiving goes on while it is busy. Owned by the SQLite store. */
#ifndef IG_STORE_INBOX_H
#define IG_STORE_INBOX_H

#include <stddef.h>

/* Moved once this many events or bytes are waiting (by the appender that
 * crosses the line): bounds the work a later read may have to do first. */
#define IG_INBOX_MOVE_EVENTS 1024
#define IG_INBOX_MOVE_BYTES (2u << 20)

/* Past this size an append refuses (with the reason the inbox could not be
 * moved) instead of growing the file further. */
#define IG_INBOX_MAX_BYTES (64u << 20)

/* How long a drain for a reader waits for the file's lock and for the
 * database's write lock before leaving the records for the next
 * transaction: a read must not stall behind another process's long
 * write (reads never wait for writers in WAL mode). Appends and drains
 * for writers wait as long as the store does (ig_inbox_ops.timeout_ms). */
#define IG_INBOX_READ_PATIENCE_MS 100

/* After a move found the database busy, moves that need not wait (for a
 * reader's begin, or the appender past the line) skip this long rather
 * than each wait IG_INBOX_READ_PATIENCE_MS again. */
#define IG_INBOX_RETRY_MS 1000

typedef struct ig_inbox ig_inbox;

typedef struct ig_inbox_rec {
    /* The duplicate key (NULL on records read back from the file). */
    const char *endpoint_id, *event_id;
    const char *json; /* the webhook_events record, json_len bytes (no NUL needed) */
    size_t json_len;
    const unsigned char *blob; /* the body */
    size_t blob_len;
    /* The record parsed, when the caller has it (a commit: the insert then
     * takes its indexed fields from it); NULL: parsed from json. */
    struct json_object *obj;
    int duplicate; /* out: the store or the inbox holds the key already */
    int rejected;  /* out of a lenient move: the table refused the record for good */
} ig_inbox_rec;

typedef struct ig_inbox_ops {
    void *arg;
    /* *out_found = 1 when the table holds (endpoint_id, event_id). */
    int (*stored)(void *arg, const char *endpoint_id, const char *event_id, int *out_found);
    /* A write transaction of the store, waiting at most timeout_ms for it
     * (this process's writer slot, then the database's lock). Always taken
     * before the inbox's own locks, never while holding them. */
    int (*begin)(void *arg, int timeout_ms, void **out_tx);
    /* Insert recs[0..n) in tx. A record the table already holds (same id or
     * key) is skipped with duplicate = 1. Strict: any other failure fails
     * the insert (a record the table refuses for good gets rejected = 1).
     * Lenient (moving the file): such a record gets rejected = 1 and the
     * others go in; a failure that may pass (busy, I/O, out of memory)
     * still fails. */
    int (*insert)(void *arg, void *tx, ig_inbox_rec *recs, size_t n, int strict);
    /* Commit (commit 1: its result) or roll back tx, and end it. */
    int (*end)(void *arg, void *tx, int commit);
    /* 1 when moving now would wait for the calling thread itself (it is
     * inside a write transaction of the store). */
    int (*self_writing)(void *arg);
    int timeout_ms;      /* the store's busy timeout: the most any step waits */
    long long max_bytes; /* the most a record's JSON and body may hold together */
} ig_inbox_ops;

/* Open (creating it with the database file's mode and owner, as SQLite
 * does its -wal) `<db_path>-inbox`; db_path is the database's canonical
 * path (sqlite3_db_filename), so every context on the file finds the same
 * inbox. *out owned by the caller (ig_inbox_close). Records left by a
 * crash are moved by the first drain. */
int ig_inbox_open(const char *db_path, const ig_inbox_ops *ops, ig_inbox **out);

/* Decide the duplicates of recs[0..n) against the inbox (every record in
 * the file, whoever appended it) and the store (duplicate = 1; the caller
 * has removed repeats within recs), then, holding the file's lock:
 *   commit 0: append the others to the file. INTEG_OK: every non-duplicate
 *             is in the file; on error nothing was appended.
 *   commit 1: insert them into the store in one transaction (strict) and
 *             commit, which a 202 under durability "full" needs; holding
 *             the lock keeps that insert and other contexts' appends from
 *             both taking one delivery. On error nothing was inserted; a
 *             record the table refused has rejected = 1.
 * INTEG_EINVAL (nothing done; that record has rejected = 1) for a record
 * larger than the store takes. Appending past IG_INBOX_MOVE_EVENTS or
 * IG_INBOX_MOVE_BYTES then moves the file (a drain that need not wait). */
int ig_inbox_put(ig_inbox *b, ig_inbox_rec *recs, size_t n, int commit);

/* Move whatever the file holds into the store, best effort: the records
 * stay for the next drain when the calling thread is writing (its move
 * would wait for itself), when another thread holds the inbox, or when the
 * move fails; the calling thread's error message is left as it was.
 * `patient` 0 (for a reader): wait at most IG_INBOX_READ_PATIENCE_MS for
 * the locks, and skip for IG_INBOX_RETRY_MS after the database was found
 * busy. Records the store refuses for good are set aside in
 * `<db>-inbox-rejected` (same format), never dropped. */
void ig_inbox_drain(ig_inbox *b, int patient);

/* Close the file, removing it when empty (no move: the store drains
 * first). NULL is fine. */
void ig_inbox_close(ig_inbox *b);

#endif
