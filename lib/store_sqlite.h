/* Internal: the built-in SQLite store (integ_store_sqlite_new in store.h).
 * Exposes its tunables and one diagnostic hook for the tests. */
#ifndef IG_STORE_SQLITE_H
#define IG_STORE_SQLITE_H

#include <sqlite3.h>
#include <stdint.h>

#include "integrations/store.h"
#include "store_inbox.h"

/* The schema version PRAGMA user_version holds after open(). */
#define IG_SQLITE_SCHEMA_VERSION 4

/* How long a transaction waits for the database or a pooled connection
 * before giving up with INTEG_ECONFLICT ("database is busy"). */
#define IG_SQLITE_BUSY_TIMEOUT_MS 5000

/* Pool size for a file database (":memory:" always has exactly one). */
#define IG_SQLITE_MAX_CONNS 8

/* A commit that leaves this many frames in the WAL (4 KiB pages) wakes
 * the store's checkpointer thread (SQLite's own default threshold). At
 * the second figure the committer checkpoints itself, keeping the WAL
 * bounded when the checkpointer can't keep up. */
#define IG_SQLITE_CHECKPOINT_FRAMES 1000
#define IG_SQLITE_CHECKPOINT_FRAMES_MAX 8000

/* Checkpoints the background thread of a file store has completed (tests). */
uint64_t ig_sqlite_checkpoints(void *store_data);

/* The connection behind a transaction handle from the SQLite store's
 * begin(), lent while the transaction lasts. For tests and diagnostics
 * (checking pragmas); NULL when tx is NULL. */
sqlite3 *ig_sqlite_tx_db(void *tx);

/* 1 when `store` is the built-in SQLite store (or a copy of its vtable
 * with some functions wrapped): its store_data is then the SQLite store's. */
int ig_sqlite_owns(const integ_store *store);

/* options.durability: full (1) makes every connection PRAGMA
 * synchronous=FULL, normal (0) NORMAL. Before open(); on an open store
 * only the durability it already has is accepted (INTEG_EINVAL
 * otherwise). */
int ig_sqlite_set_durability(void *store_data, int full);

/* The inbox received webhook events go through (store_inbox.h), when
 * `store` is exactly the built-in SQLite store's vtable on an open file
 * database; NULL otherwise (":memory:", a host store, a wrapped vtable:
 * events are inserted in a transaction of their own). *commit (may be
 * NULL): 1 under durability "full", where events are committed through it
 * (ig_inbox_put commit 1) rather than appended. Owned by the store. */
ig_inbox *ig_sqlite_inbox(const integ_store *store, void *store_data, int *commit);

#endif
