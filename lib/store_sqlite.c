/*
 * The built-in SQLite store: the integ_store vtable of store.h over one
 * table per kind.
 *
 * Everything about the schema comes from ig_tables (store_schema.c: kind ->
 * table, indexed columns, indexes): the DDL, the migrations and every statement are
 * generated from it, so a new kind or column is one line there.
 *
 * Threads: a pool of connections (up to IG_SQLITE_MAX_CONNS for a file, one
 * for ":memory:") guarded by a mutex and a condition variable. A transaction
 * owns one connection from begin() to end(). Write transactions of this
 * process also take an in-process writer slot before BEGIN IMMEDIATE: SQLite's
 * own busy handler sleeps with backoff and lets a hot writer starve the
 * others, while the condition variable hands the slot over at once. Other
 * processes are still kept out by SQLite's locks and busy_timeout.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "integrations/store.h"
#include "json.h"
#include "store_inbox.h"
#include "store_schema.h"
#include "store_sqlite.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* Schema                                                                   */
/* ------------------------------------------------------------------------ */


/* Hand-written SQL a schema version needs beyond the DDL generated from
 * ig_tables (data fix-ups); index = version. A new version appends one
 * entry (NULL when the generated DDL suffices) and bumps
 * IG_SQLITE_SCHEMA_VERSION. */
static const char *const ig_migration_sql[IG_SQLITE_SCHEMA_VERSION + 1] = {
    [1] = NULL,
    [2] = NULL, /* webhook_events: three indexes replaced by one (store_schema.c) */
    [3] = NULL, /* entity_links: three indexes replaced by one on local_id (store_schema.c) */
    [4] = NULL, /* the webhook inbox (store_inbox.h): a build without it must not open the file, since
                 * it would neither see the events waiting there nor insert under the inbox's lock */
};

static int since_of(int since) { return since > 0 ? since : 1; }

/* ------------------------------------------------------------------------ */
/* A growable string for generated SQL                                      */
/* ------------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1; /* only used for short fragments: treat overflow as failure */
        return;
    }
    sb_addn(b, tmp, (size_t)n);
}

/* A comma list "a,b" as "a, b" (or with a separator between names). */
static void sb_add_cols(sbuf *b, const char *cols, const char *sep)
{
    const char *p = cols;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        sb_addn(b, p, n);
        if (!e)
            break;
        sb_add(b, sep);
        p = e + 1;
    }
}

static void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------------ */
/* Connections, statements, the pool                                        */
/* ------------------------------------------------------------------------ */

enum { OP_INSERT, OP_UPDATE, OP_UPSERT, OP_GET, OP_GET_T, OP_REMOVE, OP_REMOVE_T, OP_N };
enum { TX_BEGIN_READ, TX_BEGIN_WRITE, TX_COMMIT, TX_ROLLBACK, TX_N };

#define LRU_SIZE 32

typedef struct sq_store sq_store;
typedef struct sq_conn sq_conn;

/* The transaction handle handed out by begin(): embedded in its connection,
 * so begin() allocates nothing. */
typedef struct sq_tx {
    sq_conn *conn;
    int write;
    int active;
} sq_tx;

struct sq_conn {
    sqlite3 *db;
    sq_store *store;
    int in_use; /* lent to a transaction */
    sq_tx tx;
    sqlite3_stmt *fixed[INTEG_KIND_END][OP_N];
    sqlite3_stmt *txst[TX_N];
    struct {
        char *sql; /* owned */
        sqlite3_stmt *st;
        uint64_t used;
    } lru[LRU_SIZE];
    uint64_t tick;
};

struct sq_store {
    char *path; /* owned */
    int memory;
    int sync_full; /* durability "full": every commit fsyncs (PRAGMA synchronous=FULL) */
    int max_conns;
    int opened;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sq_conn *conns[IG_SQLITE_MAX_CONNS];
    int nconns;
    int opening; /* connections being opened outside the lock */
    int writer;  /* a write transaction of this process is running */
    int writer_known; /* ...and writer_tid runs it (not the checkpointer) */
    pthread_t writer_tid;
    /* File stores: received webhook events wait here until a transaction
     * begins (store_inbox.h). Set by open(). */
    ig_inbox *inbox;
    /* The checkpointer (file stores): commits only signal it, so copying
     * WAL pages into the database and its fsync run on another thread
     * instead of inside every thousandth commit. ck_mu guards the rest. */
    pthread_mutex_t ck_mu;
    pthread_cond_t ck_cv;
    pthread_t ck_thread;
    int ck_running;
    int ck_failed; /* the thread could not open its connection: committers checkpoint */
    int ck_wanted;
    int ck_stop;
    uint64_t ck_runs;
};

/* Map a failed SQLite call to a library code with "<what>: <step>: ...". */
static int sql_fail(sqlite3 *db, int rc, const char *what, const char *step)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ig_err(INTEG_ECONFLICT, "%s: %s: database is busy (%s)", what, step, msg);
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return ig_err(INTEG_EEXISTS, "%s: %s: %s", what, step, msg);
        return ig_err(INTEG_ESTORE, "%s: %s: %s", what, step, msg);
    case SQLITE_NOMEM:
        return ig_err(INTEG_ENOMEM, "%s: %s: out of memory", what, step);
    default:
        return ig_err(INTEG_ESTORE, "%s: %s: %s (sqlite error %d)", what, step, msg, rc);
    }
}

/* sql_fail for whole-database steps: "sqlite: <path>: <step>: ...". */
static int db_fail(sq_conn *c, int rc, const char *step)
{
    return ig_err_prefix(sql_fail(c->db, rc, c->store->path, step), "sqlite");
}

static void conn_free(sq_conn *c)
{
    if (!c)
        return;
    for (int k = 0; k < INTEG_KIND_END; k++)
        for (int o = 0; o < OP_N; o++)
            sqlite3_finalize(c->fixed[k][o]);
    for (int i = 0; i < TX_N; i++)
        sqlite3_finalize(c->txst[i]);
    for (int i = 0; i < LRU_SIZE; i++) {
        sqlite3_finalize(c->lru[i].st);
        free(c->lru[i].sql);
    }
    /* close_v2: never undefined behaviour, even if a statement leaked */
    sqlite3_close_v2(c->db);
    free(c);
}

static int journal_cb(void *out, int ncols, char **vals, char **names)
{
    (void)names;
    if (ncols > 0 && vals[0])
        snprintf((char *)out, 16, "%s", vals[0]);
    return 0;
}

/* After every commit of a file connection (SQLite's wal_hook, which
 * replaces its inline auto-checkpoint). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    sq_store *s = arg;
    if (frames < IG_SQLITE_CHECKPOINT_FRAMES)
        return SQLITE_OK;
    pthread_mutex_lock(&s->ck_mu);
    int running = s->ck_running && !s->ck_failed;
    if (running && !s->ck_wanted) {
        s->ck_wanted = 1;
        pthread_cond_signal(&s->ck_cv);
    }
    pthread_mutex_unlock(&s->ck_mu);
    /* No checkpointer, or one that can't keep up (a long reader pins the
     * WAL): the committer does it, as SQLite would, so the WAL stays bounded. */
    if (!running || frames >= IG_SQLITE_CHECKPOINT_FRAMES_MAX)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

/* Take / give back the in-process writer slot outside any transaction. */
static void writer_slot_take(sq_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->writer)
        pthread_cond_wait(&s->cv, &s->mu);
    s->writer = 1;
    pthread_mutex_unlock(&s->mu);
}

static void writer_slot_give(sq_store *s)
{
    pthread_mutex_lock(&s->mu);
    s->writer = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *checkpointer_main(void *arg)
{
    sq_store *s = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        /* No connection: the committers go on checkpointing themselves
         * (wal_hook); wait to be joined. */
        sqlite3_close_v2(db);
        pthread_mutex_lock(&s->ck_mu);
        s->ck_failed = 1;
        while (!s->ck_stop)
            pthread_cond_wait(&s->ck_cv, &s->ck_mu);
        pthread_mutex_unlock(&s->ck_mu);
        return NULL;
    }
    sqlite3_busy_timeout(db, IG_SQLITE_BUSY_TIMEOUT_MS);
    sqlite3_exec(db, s->sync_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    pthread_mutex_lock(&s->ck_mu);
    for (;;) {
        while (!s->ck_wanted && !s->ck_stop)
            pthread_cond_wait(&s->ck_cv, &s->ck_mu);
        if (s->ck_stop)
            break;
        s->ck_wanted = 0;
        pthread_mutex_unlock(&s->ck_mu);
        /* 1. The bulk of the copying, next to the writers (PASSIVE never
         *    waits for anyone). */
        int n_log = 0, n_done = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &n_log, &n_done);
        /* 2. A writer only rewinds the WAL when it starts with every frame
         *    copied, which busy writers never see: copy the few frames
         *    they added meanwhile with this process's writers held back. */
        if (rc == SQLITE_OK && n_log >= IG_SQLITE_CHECKPOINT_FRAMES) {
            writer_slot_take(s);
            rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            writer_slot_give(s);
        }
        pthread_mutex_lock(&s->ck_mu);
        if (rc == SQLITE_OK)
            s->ck_runs++;
    }
    pthread_mutex_unlock(&s->ck_mu);
    sqlite3_close_v2(db);
    return NULL;
}

static void checkpointer_start(sq_store *s)
{
    pthread_mutex_lock(&s->ck_mu);
    /* Failing to start leaves the committers checkpointing (wal_hook). */
    s->ck_running = pthread_create(&s->ck_thread, NULL, checkpointer_main, s) == 0;
    pthread_mutex_unlock(&s->ck_mu);
}

static void checkpointer_stop(sq_store *s)
{
    pthread_mutex_lock(&s->ck_mu);
    int running = s->ck_running;
    s->ck_stop = 1;
    pthread_cond_broadcast(&s->ck_cv);
    pthread_mutex_unlock(&s->ck_mu);
    if (running)
        pthread_join(s->ck_thread, NULL);
}

uint64_t ig_sqlite_checkpoints(void *store_data)
{
    sq_store *s = store_data;
    pthread_mutex_lock(&s->ck_mu);
    uint64_t n = s->ck_runs;
    pthread_mutex_unlock(&s->ck_mu);
    return n;
}

/* Open and configure one connection. */
static int conn_open(sq_store *s, sq_conn **out)
{
    *out = NULL;
    sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ig_err(INTEG_ENOMEM, "sqlite: out of memory");
    c->store = s;
    c->tx.conn = c;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int err = ig_err(rc == SQLITE_NOMEM ? INTEG_ENOMEM : INTEG_ESTORE, "sqlite: %s: open: %s",
                         s->path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_free(c);
        return err;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, IG_SQLITE_BUSY_TIMEOUT_MS);
    /* secure_delete: a removed record's bytes must not stay in the file. */
    /* synchronous: NORMAL in WAL mode syncs at checkpoints only, so a
     * commit survives the process but not the OS; FULL syncs the WAL at
     * every commit (options.durability). */
    rc = sqlite3_exec(c->db,
                      s->sync_full ? "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; PRAGMA synchronous=FULL;"
                                   : "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; PRAGMA synchronous=NORMAL;",
                      NULL, NULL, NULL);
    char mode[16] = "";
    if (rc == SQLITE_OK && !s->memory) {
        /* Switching a new file to WAL needs an exclusive lock, and SQLite
         * answers BUSY at once (no busy handler) while another process or
         * context is opening the same file: retry within the busy timeout. */
        for (int waited = 0;; waited += 10) {
            rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL;", journal_cb, mode, NULL);
            if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
                break;
            if (waited >= IG_SQLITE_BUSY_TIMEOUT_MS)
                break;
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != SQLITE_OK) {
        int err = db_fail(c, rc, "configure connection");
        conn_free(c);
        return err;
    }
    if (!s->memory)
        sqlite3_wal_hook(c->db, wal_hook, s);
    *out = c;
    return INTEG_OK;
}

/* Take an idle connection (opening one if the pool may grow) and, for a
 * write transaction, the writer slot. Waits up to timeout_ms. */
static int pool_acquire(sq_store *s, int write, int timeout_ms, sq_conn **out)
{
    *out = NULL;
    struct timespec deadline;
    ig_deadline_after_us(&deadline, timeout_ms * 1000LL);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->opened) {
            pthread_mutex_unlock(&s->mu);
            return ig_err(INTEG_EINVAL, "sqlite: begin: the store is not open (call open first)");
        }
        if (!write || !s->writer) {
            for (int i = 0; i < s->nconns; i++) {
                if (!s->conns[i]->in_use) {
                    *out = s->conns[i];
                    break;
                }
            }
            if (!*out && s->nconns + s->opening < s->max_conns) {
                /* Opening touches the file: do it without holding the lock. */
                s->opening++;
                pthread_mutex_unlock(&s->mu);
                sq_conn *c = NULL;
                int rc = conn_open(s, &c);
                pthread_mutex_lock(&s->mu);
                s->opening--;
                if (rc != INTEG_OK) {
                    pthread_cond_broadcast(&s->cv);
                    pthread_mutex_unlock(&s->mu);
                    return rc;
                }
                s->conns[s->nconns++] = c;
                if (write && s->writer) {
                    /* another writer got in meanwhile: the new connection waits idle */
                    pthread_cond_broadcast(&s->cv);
                } else {
                    *out = c;
                }
            }
            if (*out)
                break;
        }
        int rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            return ig_err(INTEG_ECONFLICT,
                          "sqlite: begin: database is busy (no connection free within %d ms)", timeout_ms);
        }
    }
    (*out)->in_use = 1;
    (*out)->tx.write = write;
    if (write) {
        s->writer = 1;
        s->writer_known = 1;
        s->writer_tid = pthread_self();
    }
    pthread_mutex_unlock(&s->mu);
    return INTEG_OK;
}

/* Give a connection back. A connection stuck inside a transaction (its
 * ROLLBACK failed) is closed rather than handed to the next caller; the
 * single ":memory:" connection is the database, so it is kept. */
static void pool_release(sq_conn *c)
{
    sq_store *s = c->store;
    int broken = !s->memory && !sqlite3_get_autocommit(c->db);
    pthread_mutex_lock(&s->mu);
    if (c->tx.write) {
        s->writer = 0;
        s->writer_known = 0;
    }
    c->tx.write = 0;
    c->tx.active = 0;
    c->in_use = 0;
    if (broken) {
        for (int i = 0; i < s->nconns; i++) {
            if (s->conns[i] == c) {
                s->conns[i] = s->conns[--s->nconns];
                s->conns[s->nconns] = NULL;
                break;
            }
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (broken)
        conn_free(c);
}

/* Run one of BEGIN / BEGIN IMMEDIATE / COMMIT / ROLLBACK; SQLite result. */
static int tx_exec(sq_conn *c, int which)
{
    static const char *const sql[TX_N] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};
    if (!c->txst[which]) {
        int rc = sqlite3_prepare_v3(c->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->txst[which], NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    int rc = sqlite3_step(c->txst[which]);
    sqlite3_reset(c->txst[which]);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* A statement lent by the cache (temp = 0: reset it when done) or prepared
 * for this one use (temp = 1: finalize it). A cached statement still being
 * stepped, because a row callback re-entered the store, is never reused. */
typedef struct stmt_ref {
    sqlite3_stmt *st;
    int temp;
} stmt_ref;

static void stmt_done(stmt_ref *r)
{
    if (!r->st)
        return;
    if (r->temp) {
        sqlite3_finalize(r->st);
    } else {
        sqlite3_reset(r->st);
        sqlite3_clear_bindings(r->st);
    }
    r->st = NULL;
}

static int prepare(sq_conn *c, const char *sql, int persistent, sqlite3_stmt **out,
                   const char *table, const char *step)
{
    int rc = sqlite3_prepare_v3(c->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, out,
                                NULL);
    if (rc != SQLITE_OK) {
        int err = sql_fail(c->db, rc, table, step);
        sqlite3_finalize(*out);
        *out = NULL;
        return err;
    }
    return INTEG_OK;
}

/* Cached statement for a query built at run time, keyed by its SQL text. */
static int stmt_dynamic(sq_conn *c, const char *sql, stmt_ref *r, const char *table,
                        const char *step)
{
    r->st = NULL;
    r->temp = 1;
    c->tick++;
    int victim = -1;
    for (int i = 0; i < LRU_SIZE; i++) {
        if (c->lru[i].sql && strcmp(c->lru[i].sql, sql) == 0) {
            if (sqlite3_stmt_busy(c->lru[i].st))
                return prepare(c, sql, 0, &r->st, table, step);
            c->lru[i].used = c->tick;
            r->st = c->lru[i].st;
            r->temp = 0;
            return INTEG_OK;
        }
        if (!c->lru[i].sql) {
            if (victim < 0 || c->lru[victim].sql)
                victim = i;
        } else if (!sqlite3_stmt_busy(c->lru[i].st)) {
            if (victim < 0 || (c->lru[victim].sql && c->lru[i].used < c->lru[victim].used))
                victim = i;
        }
    }
    char *key = victim >= 0 ? strdup(sql) : NULL;
    int rc = prepare(c, sql, key != NULL, &r->st, table, step);
    if (rc != INTEG_OK || !key) {
        free(key);
        return rc;
    }
    sqlite3_finalize(c->lru[victim].st);
    free(c->lru[victim].sql);
    c->lru[victim].sql = key;
    c->lru[victim].st = r->st;
    c->lru[victim].used = c->tick;
    r->temp = 0;
    return INTEG_OK;
}

/* The SQL of a fixed operation. Parameters: ?1 id, ?2.. the other indexed
 * columns in spec order, then data, then blob (get/remove: ?2 tenant_id). */
static void fixed_sql(const table_spec *t, int op, sbuf *b)
{
    int n = ig_store_field_count(t);
    switch (op) {
    case OP_INSERT:
    case OP_UPSERT:
        sb_addf(b, "INSERT INTO %s (", t->table);
        for (int i = 0; i < n; i++)
            sb_addf(b, "%s, ", t->cols[i].name);
        sb_add(b, "data, blob) VALUES (");
        for (int i = 0; i < n + 2; i++)
            sb_addf(b, i ? ", ?%d" : "?%d", i + 1);
        sb_add(b, ")");
        if (op == OP_UPSERT) {
            sb_add(b, " ON CONFLICT(id) DO UPDATE SET ");
            for (int i = 1; i < n; i++)
                sb_addf(b, "%s = excluded.%s, ", t->cols[i].name, t->cols[i].name);
            sb_add(b, "data = excluded.data, blob = excluded.blob");
        }
        break;
    case OP_UPDATE:
        sb_addf(b, "UPDATE %s SET ", t->table);
        for (int i = 1; i < n; i++)
            sb_addf(b, "%s = ?%d, ", t->cols[i].name, i + 1);
        sb_addf(b, "data = ?%d, blob = ?%d WHERE id = ?1", n + 1, n + 2);
        break;
    case OP_GET:
    case OP_GET_T:
        sb_addf(b, "SELECT data, blob FROM %s WHERE id = ?1", t->table);
        if (op == OP_GET_T)
            sb_add(b, " AND tenant_id = ?2");
        break;
    case OP_REMOVE:
    case OP_REMOVE_T:
        sb_addf(b, "DELETE FROM %s WHERE id = ?1", t->table);
        if (op == OP_REMOVE_T)
            sb_add(b, " AND tenant_id = ?2");
        break;
    }
}

static int stmt_fixed(sq_conn *c, integ_store_kind kind, int op, stmt_ref *r, const char *step)
{
    const table_spec *t = &ig_tables[kind];
    sqlite3_stmt **slot = &c->fixed[kind][op];
    r->st = NULL;
    r->temp = 0;
    if (*slot && !sqlite3_stmt_busy(*slot)) {
        r->st = *slot;
        return INTEG_OK;
    }
    sbuf b = {0};
    fixed_sql(t, op, &b);
    if (b.oom) {
        sb_free(&b);
        return ig_err(INTEG_ENOMEM, "%s: %s: out of memory", t->table, step);
    }
    int cache = *slot == NULL;
    int rc = prepare(c, b.p, cache, &r->st, t->table, step);
    sb_free(&b);
    if (rc != INTEG_OK)
        return rc;
    if (cache)
        *slot = r->st;
    else
        r->temp = 1;
    return INTEG_OK;
}

/* ------------------------------------------------------------------------ */
/* Schema creation and migrations                                           */
/* ------------------------------------------------------------------------ */

static const char *sql_type(char type) { return type == 's' ? "TEXT" : "INTEGER"; }

/* The DDL of schema version v: tables and columns and indexes whose `since`
 * is v, and DROPs of the indexes whose `until` is v. A column added to an existing table is filled from the records'
 * JSON, since indexed fields always mirror it. */
static void migration_ddl(int v, sbuf *b)
{
    for (int k = 1; k < INTEG_KIND_END; k++) {
        const table_spec *t = &ig_tables[k];
        if (!t->table || since_of(t->since) > v)
            continue;
        if (since_of(t->since) == v) {
            sb_addf(b, "CREATE TABLE %s (id TEXT PRIMARY KEY NOT NULL", t->table);
            for (int i = 1; i < MAX_COLS && t->cols[i].name; i++)
                if (since_of(t->cols[i].since) <= v)
                    sb_addf(b, ", %s %s", t->cols[i].name, sql_type(t->cols[i].type));
            sb_add(b, ", data TEXT NOT NULL, blob BLOB);\n");
        } else {
            for (int i = 1; i < MAX_COLS && t->cols[i].name; i++) {
                const col_spec *col = &t->cols[i];
                if (since_of(col->since) != v)
                    continue;
                sb_addf(b, "ALTER TABLE %s ADD COLUMN %s %s;\n", t->table, col->name,
                        sql_type(col->type));
                sb_addf(b, "UPDATE %s SET %s = json_extract(data, '$.\"%s\"');\n", t->table,
                        col->name, col->name);
            }
        }
        for (int i = 0; i < MAX_INDEXES && t->indexes[i].cols; i++) {
            const index_spec *ix = &t->indexes[i];
            if (ix->until == v) {
                sb_addf(b, "DROP INDEX IF EXISTS %s_%s_", ix->unique ? "ux" : "ix", t->table);
                sb_add_cols(b, ix->cols, "_");
                sb_add(b, ";\n");
                continue;
            }
            if (since_of(ix->since) != v)
                continue;
            sb_addf(b, "CREATE %sINDEX %s_%s_", ix->unique ? "UNIQUE " : "",
                    ix->unique ? "ux" : "ix", t->table);
            sb_add_cols(b, ix->cols, "_");
            sb_addf(b, " ON %s (", t->table);
            sb_add_cols(b, ix->cols, ", ");
            sb_add(b, ");\n");
        }
    }
    if (ig_migration_sql[v])
        sb_add(b, ig_migration_sql[v]);
}

static int user_version(sq_conn *c, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    int err = rc == SQLITE_OK ? INTEG_OK : db_fail(c, rc, "read schema version");
    sqlite3_finalize(st);
    return err;
}

/* Bring the schema to IG_SQLITE_SCHEMA_VERSION in one write transaction,
 * so a concurrent opener sees either the old or the new schema. */
static int migrate(sq_store *s, sq_conn *c)
{
    int rc = tx_exec(c, TX_BEGIN_WRITE);
    if (rc != SQLITE_OK)
        return db_fail(c, rc, "migrate: begin");
    int v = 0;
    int err = user_version(c, &v);
    if (err == INTEG_OK && v > IG_SQLITE_SCHEMA_VERSION)
        err = ig_err(INTEG_ESTORE,
                     "sqlite: %s: schema version %d is newer than this library's (%d)", s->path,
                     v, IG_SQLITE_SCHEMA_VERSION);
    for (int step = v + 1; err == INTEG_OK && step <= IG_SQLITE_SCHEMA_VERSION; step++) {
        sbuf b = {0};
        migration_ddl(step, &b);
        sb_addf(&b, "PRAGMA user_version = %d;\n", step);
        if (b.oom) {
            err = ig_err(INTEG_ENOMEM, "sqlite: migrate: out of memory");
        } else {
            rc = sqlite3_exec(c->db, b.p, NULL, NULL, NULL);
            if (rc != SQLITE_OK) {
                char what[32];
                snprintf(what, sizeof what, "migrate to version %d", step);
                err = db_fail(c, rc, what);
            }
        }
        sb_free(&b);
    }
    if (err == INTEG_OK) {
        rc = tx_exec(c, TX_COMMIT);
        if (rc != SQLITE_OK)
            err = db_fail(c, rc, "migrate: commit");
    }
    if (!sqlite3_get_autocommit(c->db))
        tx_exec(c, TX_ROLLBACK);
    return err;
}

/* ------------------------------------------------------------------------ */
/* Binding values                                                           */
/* ------------------------------------------------------------------------ */

static int is_null(json_object *v) { return !v || json_object_is_type(v, json_type_null); }

static int bind_value(sqlite3_stmt *st, int idx, json_object *v, char type)
{
    if (is_null(v))
        return sqlite3_bind_null(st, idx);
    switch (type) {
    case 's':
        return sqlite3_bind_text(st, idx, json_object_get_string(v),
                                 json_object_get_string_len(v), SQLITE_STATIC);
    case 'b':
        return sqlite3_bind_int(st, idx, json_object_get_boolean(v) ? 1 : 0);
    default:
        return sqlite3_bind_int64(st, idx, (sqlite3_int64)json_object_get_int64(v));
    }
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct qparam {
    json_object *v; /* borrowed from query.root */
    char type;
} qparam;

typedef struct query {
    json_object *root; /* owned */
    sbuf where;        /* "" or " WHERE ... AND ..." */
    qparam *params;    /* owned */
    size_t nparams, cap;
    int order_col;
    int desc;
    int64_t limit, offset;
} query;

static void query_free(query *q)
{
    json_object_put(q->root);
    sb_free(&q->where);
    free(q->params);
    memset(q, 0, sizeof *q);
}

static void q_term(query *q, const char *col, const char *rest)
{
    sb_add(&q->where, q->where.len ? " AND " : " WHERE ");
    sb_add(&q->where, col);
    sb_add(&q->where, rest);
}

static int q_param(query *q, const table_spec *t, int col, json_object *v)
{
    const col_spec *c = &t->cols[col];
    if (is_null(v) || !ig_store_value_fits(v, c->type))
        return ig_err(INTEG_EINVAL, "%s: query.%s: value must be %s", t->table, c->name,
                      ig_store_type_words(c->type));
    if (q->nparams == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        qparam *p = realloc(q->params, cap * sizeof *p);
        if (!p)
            return ig_err(INTEG_ENOMEM, "%s: query: out of memory", t->table);
        q->params = p;
        q->cap = cap;
    }
    q->params[q->nparams].v = v;
    q->params[q->nparams].type = c->type;
    q->nparams++;
    return INTEG_OK;
}

static int q_operators(query *q, const table_spec *t, int col, json_object *ops)
{
    static const struct {
        const char *name, *sql;
    } cmp[] = {{"lt", " < ?"}, {"lte", " <= ?"}, {"gt", " > ?"}, {"gte", " >= ?"}, {"ne", " != ?"}};
    const char *name = t->cols[col].name;
    if (json_object_object_length(ops) == 0)
        return ig_err(INTEG_EINVAL, "%s: query.%s: empty operator object", t->table, name);
    json_object_object_foreach(ops, op, v)
    {
        if (strcmp(op, "in") == 0) {
            if (!json_object_is_type(v, json_type_array))
                return ig_err(INTEG_EINVAL, "%s: query.%s.in: must be an array", t->table, name);
            size_t n = json_object_array_length(v);
            if (n == 0) {
                q_term(q, "0", ""); /* in [] matches nothing */
                continue;
            }
            q_term(q, name, " IN (");
            for (size_t i = 0; i < n; i++) {
                int rc = q_param(q, t, col, json_object_array_get_idx(v, i));
                if (rc != INTEG_OK)
                    return rc;
                sb_add(&q->where, i ? ", ?" : "?");
            }
            sb_add(&q->where, ")");
            continue;
        }
        size_t i = 0;
        while (i < sizeof cmp / sizeof cmp[0] && strcmp(cmp[i].name, op) != 0)
            i++;
        if (i == sizeof cmp / sizeof cmp[0])
            return ig_err(INTEG_EINVAL,
                          "%s: query.%s: unknown operator \"%s\" (expected lt, lte, gt, gte, ne "
                          "or in)",
                          t->table, name, op);
        if (strcmp(op, "ne") == 0 && is_null(v)) {
            q_term(q, name, " IS NOT NULL");
            continue;
        }
        int rc = q_param(q, t, col, v);
        if (rc != INTEG_OK)
            return rc;
        q_term(q, name, cmp[i].sql);
    }
    return INTEG_OK;
}

static int q_nonneg(const table_spec *t, const char *key, json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return ig_err(INTEG_EINVAL, "%s: query.%s: must be a non-negative integer", t->table, key);
    *out = json_object_get_int64(v);
    return INTEG_OK;
}

/* Parse query_json (NULL: everything) into a WHERE clause and parameters. */
static int query_parse(const table_spec *t, const char *text, query *q)
{
    memset(q, 0, sizeof *q);
    q->order_col = 0;
    q->desc = 1;
    if (!text)
        return INTEG_OK;
    int rc = ig_json_parse_object(text, "query", 0, &q->root);
    if (rc != INTEG_OK)
        return ig_err_prefix(rc, t->table);
    json_object_object_foreach(q->root, key, v)
    {
        if (strcmp(key, "order") == 0) {
            const char *o = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                     : NULL;
            if (!o)
                return ig_err(INTEG_EINVAL, "%s: query.order: must be \"field\" or \"-field\"",
                              t->table);
            q->desc = o[0] == '-';
            q->order_col = ig_store_field_index(t, o + q->desc);
            if (q->order_col < 0)
                return ig_err(INTEG_EINVAL, "%s: query.order: \"%s\" is not an indexed field of %s",
                              t->table, o + q->desc, t->table);
        } else if (strcmp(key, "limit") == 0) {
            rc = q_nonneg(t, key, v, &q->limit);
        } else if (strcmp(key, "offset") == 0) {
            rc = q_nonneg(t, key, v, &q->offset);
        } else {
            int col = ig_store_field_index(t, key);
            if (col < 0)
                return ig_err(INTEG_EINVAL, "%s: query.%s: not an indexed field of %s", t->table,
                              key, t->table);
            if (is_null(v)) {
                q_term(q, t->cols[col].name, " IS NULL");
            } else if (json_object_is_type(v, json_type_object)) {
                rc = q_operators(q, t, col, v);
            } else {
                rc = q_param(q, t, col, v);
                if (rc == INTEG_OK)
                    q_term(q, t->cols[col].name, " = ?");
            }
        }
        if (rc != INTEG_OK)
            return rc;
    }
    if (q->where.oom)
        return ig_err(INTEG_ENOMEM, "%s: query: out of memory", t->table);
    return INTEG_OK;
}

static void q_order_limit(const table_spec *t, const query *q, sbuf *b)
{
    const char *dir = q->desc ? "DESC" : "ASC";
    if (q->order_col == 0)
        sb_addf(b, " ORDER BY id %s", dir);
    else
        sb_addf(b, " ORDER BY %s %s, id %s", t->cols[q->order_col].name, dir, dir);
    sb_add(b, " LIMIT ? OFFSET ?");
}

/* Bind the query's parameters from index 1, then limit/offset when asked. */
static int q_bind(const query *q, sqlite3_stmt *st, int with_limit)
{
    int idx = 1;
    for (size_t i = 0; i < q->nparams; i++) {
        int rc = bind_value(st, idx++, q->params[i].v, q->params[i].type);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (with_limit) {
        int rc = sqlite3_bind_int64(st, idx++, q->limit > 0 ? q->limit : -1);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(st, idx, q->offset);
        return rc;
    }
    return SQLITE_OK;
}

/* ------------------------------------------------------------------------ */
/* The vtable                                                               */
/* ------------------------------------------------------------------------ */

static const unsigned char empty_blob[1];

/* Common argument checks of the data operations. */
static int tx_check(void *txp, integ_store_kind kind, int writes, const char *step,
                    sq_tx **tx, const table_spec **t)
{
    *tx = txp;
    if (!txp)
        return ig_err(INTEG_EINVAL, "sqlite: %s: invalid argument: tx", step);
    if (!(*tx)->active)
        return ig_err(INTEG_EINVAL, "sqlite: %s: the transaction has ended", step);
    *t = ig_store_spec(kind);
    if (!*t)
        return ig_err(INTEG_EINVAL, "sqlite: %s: unknown store kind %d", step, (int)kind);
    if (writes && !(*tx)->write)
        return ig_err(INTEG_EINVAL, "%s: %s: the transaction is read-only", (*t)->table, step);
    return INTEG_OK;
}

static int deliver(const table_spec *t, sqlite3 *db, sqlite3_stmt *st, integ_store_row_cb cb,
                   void *payload)
{
    const unsigned char *blob = NULL;
    size_t blob_len = 0;
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
        blob = sqlite3_column_blob(st, 1);
        blob_len = (size_t)sqlite3_column_bytes(st, 1);
        if (!blob && blob_len == 0 && sqlite3_errcode(db) != SQLITE_NOMEM)
            blob = empty_blob; /* SQLite gives NULL for an empty blob; the record has one */
        if (!blob)
            return ig_err(INTEG_ENOMEM, "%s: read: out of memory", t->table);
    }
    const char *json = (const char *)sqlite3_column_text(st, 0);
    size_t json_len = (size_t)sqlite3_column_bytes(st, 0);
    if (!json)
        return ig_err(INTEG_ENOMEM, "%s: read: out of memory", t->table);
    return cb(payload, json, json_len, blob, blob_len);
}

static int inbox_open(sq_store *s);

static int sq_open(void *store_data)
{
    if (!store_data)
        return ig_err(INTEG_EINVAL, "sqlite: open: invalid argument: store_data");
    sq_store *s = store_data;
    pthread_mutex_lock(&s->mu);
    int rc = INTEG_OK;
    if (!s->opened) {
        /* Nothing can begin before open, so holding the lock here is fine. */
        if (s->nconns == 0) {
            sq_conn *c = NULL;
            rc = conn_open(s, &c);
            if (rc == INTEG_OK)
                s->conns[s->nconns++] = c;
        }
        if (rc == INTEG_OK)
            rc = migrate(s, s->conns[0]);
        if (rc == INTEG_OK && !s->memory && !s->inbox)
            rc = inbox_open(s);
        if (rc == INTEG_OK && !s->memory)
            checkpointer_start(s);
        if (rc == INTEG_OK)
            s->opened = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void sq_close(void *store_data)
{
    sq_store *s = store_data;
    if (!s)
        return;
    /* What the inbox holds goes into the table now; if that fails it stays
     * in the file, and the next open's first transaction moves it. */
    ig_inbox_drain(s->inbox, 1);
    ig_inbox_close(s->inbox);
    checkpointer_stop(s);
    for (int i = 0; i < s->nconns; i++)
        conn_free(s->conns[i]);
    pthread_cond_destroy(&s->ck_cv);
    pthread_mutex_destroy(&s->ck_mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static int sq_begin(void *store_data, int write, void **out_tx)
{
    if (!out_tx)
        return ig_err(INTEG_EINVAL, "sqlite: begin: invalid argument: out_tx");
    *out_tx = NULL;
    if (!store_data)
        return ig_err(INTEG_EINVAL, "sqlite: begin: invalid argument: store_data");
    sq_store *s = store_data;
    /* Every transaction sees the events received before it began. A move
     * that fails (busy, disk full) leaves them safe in the inbox: this
     * transaction goes on without them, and the next begin tries again. */
    if (s->inbox) {
        /* Best effort. A writer is about to wait for the database anyway,
         * so its move may too (the busy timeout; the inbox's locks are taken
         * only once the database is had). A reader, which in WAL mode never
         * waits for a writer, waits IG_INBOX_READ_PATIENCE_MS at most, and
         * while the database stays busy readers skip the move for
         * IG_INBOX_RETRY_MS. Whatever the move said, the caller's message
         * stays. */
        ig_inbox_drain(s->inbox, write != 0);
    }
    sq_conn *c = NULL;
    int rc = pool_acquire(s, write ? 1 : 0, IG_SQLITE_BUSY_TIMEOUT_MS, &c);
    if (rc != INTEG_OK)
        return rc;
    int src = tx_exec(c, write ? TX_BEGIN_WRITE : TX_BEGIN_READ);
    if (src != SQLITE_OK) {
        rc = sql_fail(c->db, src, "sqlite", "begin");
        pool_release(c);
        return rc;
    }
    c->tx.active = 1;
    *out_tx = &c->tx;
    return INTEG_OK;
}

static int sq_end(void *txp, int commit)
{
    sq_tx *tx = txp;
    if (!tx)
        return ig_err(INTEG_EINVAL, "sqlite: end: invalid argument: tx");
    if (!tx->active)
        return ig_err(INTEG_EINVAL, "sqlite: end: the transaction has already ended");
    sq_conn *c = tx->conn;
    int rc = INTEG_OK;
    if (commit) {
        int src = tx_exec(c, TX_COMMIT);
        if (src != SQLITE_OK)
            rc = sql_fail(c->db, src, "sqlite", "commit");
    }
    /* Still inside the transaction: a rollback, or a commit that failed. */
    if (!sqlite3_get_autocommit(c->db)) {
        int src = tx_exec(c, TX_ROLLBACK);
        if (src != SQLITE_OK && rc == INTEG_OK)
            rc = sql_fail(c->db, src, "sqlite", "rollback");
    }
    pool_release(c);
    return rc;
}

static const char *step_name(int m)
{
    static const char *const step_of[] = {"put", "insert", "update", "upsert"};
    return m >= 1 && m <= 3 ? step_of[m] : step_of[0];
}

/* The checks put and put_fields share; *tx and *t on success. */
static int put_check(void *txp, integ_store_kind kind, const char *json, const unsigned char *blob,
                     size_t blob_len, integ_put_mode mode, sq_tx **tx, const table_spec **t)
{
    int m = (int)mode;
    const char *step = step_name(m);
    int rc = tx_check(txp, kind, 1, step, tx, t);
    if (rc != INTEG_OK)
        return rc;
    if (m < 1 || m > 3)
        return ig_err(INTEG_EINVAL, "%s: put: unknown put mode %d", (*t)->table, m);
    if (!json)
        return ig_err(INTEG_EINVAL, "%s: %s: invalid argument: json", (*t)->table, step);
    if (!blob && blob_len)
        return ig_err(INTEG_EINVAL, "%s: %s: blob is NULL but blob_len is %zu", (*t)->table, step,
                      blob_len);
    return INTEG_OK;
}

static int bind_field(sqlite3_stmt *st, int idx, const integ_store_field *f)
{
    switch (f->type) {
    case INTEG_FIELD_STRING:
        return sqlite3_bind_text64(st, idx, f->str, f->str_len, SQLITE_STATIC, SQLITE_UTF8);
    case INTEG_FIELD_BOOL:
        return sqlite3_bind_int(st, idx, f->num ? 1 : 0);
    case INTEG_FIELD_INT:
        return sqlite3_bind_int64(st, idx, (sqlite3_int64)f->num);
    default:
        return sqlite3_bind_null(st, idx);
    }
}

/* The write itself, fields already extracted and checked. */
static int put_row(sq_tx *tx, const table_spec *t, integ_store_kind kind, const char *json, size_t json_len,
                   const integ_store_field *f, const unsigned char *blob, size_t blob_len, integ_put_mode mode)
{
    int m = (int)mode;
    const char *step = step_name(m);
    int op = m == INTEG_PUT_INSERT ? OP_INSERT : m == INTEG_PUT_UPDATE ? OP_UPDATE : OP_UPSERT;
    stmt_ref r;
    int rc = stmt_fixed(tx->conn, kind, op, &r, step);
    if (rc != INTEG_OK)
        return rc;
    int n = ig_store_field_count(t);
    int src = SQLITE_OK;
    for (int i = 0; i < n && src == SQLITE_OK; i++)
        src = bind_field(r.st, i + 1, &f[i]);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text64(r.st, n + 1, json, json_len, SQLITE_STATIC, SQLITE_UTF8);
    if (src == SQLITE_OK)
        src = blob ? sqlite3_bind_blob64(r.st, n + 2, blob, blob_len, SQLITE_STATIC)
                   : sqlite3_bind_null(r.st, n + 2);
    if (src == SQLITE_OK) {
        src = sqlite3_step(r.st);
        if (src == SQLITE_DONE)
            src = SQLITE_OK;
    }
    if (src != SQLITE_OK)
        rc = sql_fail(tx->conn->db, src, t->table, step);
    else if (op == OP_UPDATE && sqlite3_changes(tx->conn->db) == 0)
        rc = ig_err(INTEG_ENOTFOUND, "%s: update: no record with id \"%s\"", t->table, f[0].str);
    stmt_done(&r);
    return rc;
}

/* ---- the inbox's callbacks (store_inbox.h) ---- */

static int inbox_stored(void *arg, const char *endpoint_id, const char *event_id, int *out_found)
{
    sq_store *s = arg;
    const table_spec *t = ig_store_spec(INTEG_KIND_WEBHOOK_EVENT);
    *out_found = 0;
    sq_conn *c = NULL;
    int rc = pool_acquire(s, 0, IG_SQLITE_BUSY_TIMEOUT_MS, &c);
    if (rc != INTEG_OK)
        return rc;
    stmt_ref r;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE endpoint_id = ?1 AND event_id = ?2", t->table);
    rc = stmt_dynamic(c, sql, &r, t->table, "duplicate check");
    if (rc == INTEG_OK) {
        int src = sqlite3_bind_text(r.st, 1, endpoint_id, -1, SQLITE_STATIC);
        if (src == SQLITE_OK)
            src = sqlite3_bind_text(r.st, 2, event_id, -1, SQLITE_STATIC);
        if (src == SQLITE_OK)
            src = sqlite3_step(r.st);
        if (src == SQLITE_ROW)
            *out_found = 1;
        else if (src != SQLITE_DONE)
            rc = sql_fail(c->db, src, t->table, "duplicate check");
        stmt_done(&r);
    }
    pool_release(c);
    return rc;
}

/* After a failed INSERT: a failure that inserting again can never get
 * past, since the table refuses this record itself (not the database's
 * state). */
static int refused_for_good(sqlite3 *db)
{
    int x = sqlite3_extended_errcode(db);
    return x == SQLITE_TOOBIG || x == SQLITE_MISMATCH ||
           ((x & 0xff) == SQLITE_CONSTRAINT && x != SQLITE_CONSTRAINT_UNIQUE && x != SQLITE_CONSTRAINT_PRIMARYKEY);
}

static int inbox_begin(void *arg, int timeout_ms, void **out_tx)
{
    sq_store *s = arg;
    *out_tx = NULL;
    sq_conn *c = NULL;
    int rc = pool_acquire(s, 1, timeout_ms, &c);
    if (rc != INTEG_OK)
        return rc;
    if (timeout_ms != IG_SQLITE_BUSY_TIMEOUT_MS)
        sqlite3_busy_timeout(c->db, timeout_ms);
    int src = tx_exec(c, TX_BEGIN_WRITE);
    if (timeout_ms != IG_SQLITE_BUSY_TIMEOUT_MS)
        sqlite3_busy_timeout(c->db, IG_SQLITE_BUSY_TIMEOUT_MS);
    if (src != SQLITE_OK) {
        rc = sql_fail(c->db, src, "sqlite inbox", "begin");
        pool_release(c);
        return rc;
    }
    c->tx.active = 1;
    *out_tx = &c->tx;
    return INTEG_OK;
}

static int inbox_end(void *arg, void *txp, int commit)
{
    (void)arg;
    return sq_end(txp, commit);
}

static int inbox_insert(void *arg, void *txp, ig_inbox_rec *recs, size_t n, int strict)
{
    (void)arg;
    sq_tx *tx = txp;
    sq_conn *c = tx->conn;
    const table_spec *t = ig_store_spec(INTEG_KIND_WEBHOOK_EVENT);
    /* One tokener for the whole move (up to IG_INBOX_MOVE_EVENTS records). */
    json_tokener *tok = NULL;
    int rc = INTEG_OK;
    for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
        json_object *parsed = NULL, *obj = recs[i].obj;
        if (!obj) {
            if (!tok && !(tok = json_tokener_new())) {
                rc = ig_err(INTEG_ENOMEM, "%s: move from the inbox: out of memory", t->table);
                break;
            }
            json_tokener_reset(tok);
            obj = parsed = json_tokener_parse_ex(tok, recs[i].json, (int)recs[i].json_len);
            if (obj && json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(parsed);
                obj = parsed = NULL;
            }
        }
        integ_store_field f[MAX_COLS];
        size_t nf = 0;
        recs[i].duplicate = recs[i].rejected = 0;
        if (!obj || !json_object_is_type(obj, json_type_object))
            rc = ig_err(INTEG_EINVAL, "%s: move from the inbox: record %zu is not a JSON object", t->table, i);
        else
            rc = ig_store_fields_from(t, obj, f, &nf);
        int from_sqlite = 0;
        if (rc == INTEG_OK) {
            rc = put_row(tx, t, INTEG_KIND_WEBHOOK_EVENT, recs[i].json, recs[i].json_len, f, recs[i].blob,
                         recs[i].blob_len, INTEG_PUT_INSERT);
            from_sqlite = rc != INTEG_OK;
        }
        /* Moved already (a crash between commit and truncate), or a
         * delivery the table has: the stored one stays. */
        if (rc == INTEG_EEXISTS) {
            recs[i].duplicate = 1;
            rc = INTEG_OK;
        }
        /* One record the table will never take must not hold back the
         * others, nor every later move (the inbox sets it aside). A failed
         * INSERT leaves the transaction as it was. */
        if (rc != INTEG_OK && (rc == INTEG_EINVAL || (from_sqlite && refused_for_good(c->db)))) {
            recs[i].rejected = 1;
            if (!strict)
                rc = INTEG_OK;
        }
        json_object_put(parsed);
    }
    if (tok)
        json_tokener_free(tok); /* json-c 0.16 does not take NULL */
    return rc;
}

static int inbox_self_writing(void *arg)
{
    sq_store *s = arg;
    pthread_mutex_lock(&s->mu);
    int self = s->writer && s->writer_known && pthread_equal(s->writer_tid, pthread_self());
    pthread_mutex_unlock(&s->mu);
    return self;
}

static int inbox_open(sq_store *s)
{
    sqlite3 *db = s->conns[0]->db;
    const ig_inbox_ops ops = {s,
                              inbox_stored,
                              inbox_begin,
                              inbox_insert,
                              inbox_end,
                              inbox_self_writing,
                              IG_SQLITE_BUSY_TIMEOUT_MS,
                              sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1)};
    /* SQLite's own name for the file (absolute, links resolved): every
     * context on it, whatever path it was given, finds one inbox. */
    const char *name = sqlite3_db_filename(db, "main");
    return ig_inbox_open(name && name[0] ? name : s->path, &ops, &s->inbox);
}

static int sq_put(void *txp, integ_store_kind kind, const char *json, const unsigned char *blob,
                  size_t blob_len, integ_put_mode mode)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    int rc = put_check(txp, kind, json, blob, blob_len, mode, &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    json_object *obj = NULL;
    char what[64];
    snprintf(what, sizeof what, "%s: %s", t->table, step_name((int)mode));
    rc = ig_json_parse_object(json, what, 0, &obj);
    if (rc != INTEG_OK)
        return rc;
    integ_store_field f[MAX_COLS];
    size_t n = 0;
    rc = ig_store_fields_from(t, obj, f, &n);
    if (rc == INTEG_OK)
        rc = put_row(tx, t, kind, json, strlen(json), f, blob, blob_len, mode);
    json_object_put(obj);
    return rc;
}

static int sq_put_fields(void *txp, integ_store_kind kind, const char *json, size_t json_len,
                         const integ_store_field *fields, size_t n_fields, const unsigned char *blob,
                         size_t blob_len, integ_put_mode mode)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    int rc = put_check(txp, kind, json, blob, blob_len, mode, &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    const char *step = step_name((int)mode);
    int n = ig_store_field_count(t);
    if (!fields || n_fields != (size_t)n)
        return ig_err(INTEG_EINVAL, "%s: %s: %zu indexed fields given, the kind has %d", t->table, step,
                      n_fields, n);
    for (int i = 0; i < n; i++) {
        const integ_store_field *f = &fields[i];
        int ok = f->type == INTEG_FIELD_NULL ? i > 0
               : (int)f->type == (int)t->cols[i].type && (f->type != INTEG_FIELD_STRING || f->str);
        if (i == 0 && ok && !f->str_len)
            ok = 0;
        if (!ok)
            return ig_err(INTEG_EINVAL, "%s.%s: %s: field %d is not %s%s", t->table, t->cols[i].name, step, i,
                          ig_store_type_words(t->cols[i].type),
                          i == 0 ? " (non-empty)" : " or null");
    }
    return put_row(tx, t, kind, json, json_len, fields, blob, blob_len, mode);
}

/* get/remove: a non-NULL tenant_id on a table without one is a caller bug
 * (it can never match), so it is refused rather than silently ignored. */
static int tenant_check(const table_spec *t, const char *tenant_id, const char *step)
{
    if (tenant_id && ig_store_field_index(t, "tenant_id") < 0)
        return ig_err(INTEG_EINVAL, "%s: %s: records are not tenant-scoped (pass tenant_id NULL)",
                      t->table, step);
    return INTEG_OK;
}

static int sq_get(void *txp, integ_store_kind kind, const char *tenant_id, const char *id,
                  integ_store_row_cb cb, void *payload)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    int rc = tx_check(txp, kind, 0, "get", &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    if (!id || !cb)
        return ig_err(INTEG_EINVAL, "%s: get: invalid argument: %s", t->table, id ? "cb" : "id");
    if ((rc = tenant_check(t, tenant_id, "get")) != INTEG_OK)
        return rc;
    stmt_ref r;
    rc = stmt_fixed(tx->conn, kind, tenant_id ? OP_GET_T : OP_GET, &r, "get");
    if (rc != INTEG_OK)
        return rc;
    int src = sqlite3_bind_text(r.st, 1, id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK && tenant_id)
        src = sqlite3_bind_text(r.st, 2, tenant_id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(r.st);
    if (src == SQLITE_ROW)
        rc = deliver(t, tx->conn->db, r.st, cb, payload);
    else if (src == SQLITE_DONE || src == SQLITE_OK)
        rc = ig_err(INTEG_ENOTFOUND, "%s: get: no record with id \"%s\"", t->table, id);
    else
        rc = sql_fail(tx->conn->db, src, t->table, "get");
    stmt_done(&r);
    return rc;
}

static int sq_list(void *txp, integ_store_kind kind, const char *query_json,
                   integ_store_row_cb cb, void *payload)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    int rc = tx_check(txp, kind, 0, "list", &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    if (!cb)
        return ig_err(INTEG_EINVAL, "%s: list: invalid argument: cb", t->table);
    query q;
    rc = query_parse(t, query_json, &q);
    sbuf b = {0};
    if (rc == INTEG_OK) {
        sb_addf(&b, "SELECT data, blob FROM %s", t->table);
        sb_add(&b, q.where.p ? q.where.p : "");
        q_order_limit(t, &q, &b);
        if (b.oom)
            rc = ig_err(INTEG_ENOMEM, "%s: list: out of memory", t->table);
    }
    stmt_ref r = {0};
    if (rc == INTEG_OK)
        rc = stmt_dynamic(tx->conn, b.p, &r, t->table, "list");
    if (rc == INTEG_OK) {
        int src = q_bind(&q, r.st, 1);
        while (src == SQLITE_OK || src == SQLITE_ROW) {
            src = sqlite3_step(r.st);
            if (src != SQLITE_ROW)
                break;
            rc = deliver(t, tx->conn->db, r.st, cb, payload);
            if (rc != 0)
                break;
        }
        if (rc == INTEG_OK && src != SQLITE_DONE)
            rc = sql_fail(tx->conn->db, src, t->table, "list");
    }
    stmt_done(&r);
    sb_free(&b);
    query_free(&q);
    return rc;
}

static int sq_count(void *txp, integ_store_kind kind, const char *query_json, int64_t *out_count)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    int rc = tx_check(txp, kind, 0, "count", &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    if (!out_count)
        return ig_err(INTEG_EINVAL, "%s: count: invalid argument: out_count", t->table);
    *out_count = 0;
    query q;
    rc = query_parse(t, query_json, &q);
    sbuf b = {0};
    if (rc == INTEG_OK) {
        sb_addf(&b, "SELECT count(*) FROM %s", t->table);
        sb_add(&b, q.where.p ? q.where.p : "");
        if (b.oom)
            rc = ig_err(INTEG_ENOMEM, "%s: count: out of memory", t->table);
    }
    stmt_ref r = {0};
    if (rc == INTEG_OK)
        rc = stmt_dynamic(tx->conn, b.p, &r, t->table, "count");
    if (rc == INTEG_OK) {
        int src = q_bind(&q, r.st, 0);
        if (src == SQLITE_OK)
            src = sqlite3_step(r.st);
        if (src == SQLITE_ROW)
            *out_count = sqlite3_column_int64(r.st, 0);
        else
            rc = sql_fail(tx->conn->db, src, t->table, "count");
    }
    stmt_done(&r);
    sb_free(&b);
    query_free(&q);
    return rc;
}

static int sq_remove(void *txp, integ_store_kind kind, const char *tenant_id, const char *id)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    int rc = tx_check(txp, kind, 1, "remove", &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    if (!id)
        return ig_err(INTEG_EINVAL, "%s: remove: invalid argument: id", t->table);
    if ((rc = tenant_check(t, tenant_id, "remove")) != INTEG_OK)
        return rc;
    stmt_ref r;
    rc = stmt_fixed(tx->conn, kind, tenant_id ? OP_REMOVE_T : OP_REMOVE, &r, "remove");
    if (rc != INTEG_OK)
        return rc;
    int src = sqlite3_bind_text(r.st, 1, id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK && tenant_id)
        src = sqlite3_bind_text(r.st, 2, tenant_id, -1, SQLITE_STATIC);
    if (src == SQLITE_OK)
        src = sqlite3_step(r.st);
    if (src != SQLITE_DONE)
        rc = sql_fail(tx->conn->db, src, t->table, "remove");
    else if (sqlite3_changes(tx->conn->db) == 0)
        rc = ig_err(INTEG_ENOTFOUND, "%s: remove: no record with id \"%s\"", t->table, id);
    stmt_done(&r);
    return rc;
}

static int sq_remove_where(void *txp, integ_store_kind kind, const char *query_json,
                           int64_t *out_count)
{
    sq_tx *tx = NULL;
    const table_spec *t = NULL;
    if (out_count)
        *out_count = 0;
    int rc = tx_check(txp, kind, 1, "remove_where", &tx, &t);
    if (rc != INTEG_OK)
        return rc;
    query q;
    rc = query_parse(t, query_json, &q);
    /* With a limit or offset, delete exactly the rows list would return. */
    int limited = q.limit > 0 || q.offset > 0;
    sbuf b = {0};
    if (rc == INTEG_OK) {
        if (limited) {
            sb_addf(&b, "DELETE FROM %s WHERE id IN (SELECT id FROM %s", t->table, t->table);
            sb_add(&b, q.where.p ? q.where.p : "");
            q_order_limit(t, &q, &b);
            sb_add(&b, ")");
        } else {
            sb_addf(&b, "DELETE FROM %s", t->table);
            sb_add(&b, q.where.p ? q.where.p : "");
        }
        if (b.oom)
            rc = ig_err(INTEG_ENOMEM, "%s: remove_where: out of memory", t->table);
    }
    stmt_ref r = {0};
    if (rc == INTEG_OK)
        rc = stmt_dynamic(tx->conn, b.p, &r, t->table, "remove_where");
    if (rc == INTEG_OK) {
        int src = q_bind(&q, r.st, limited);
        if (src == SQLITE_OK)
            src = sqlite3_step(r.st);
        if (src != SQLITE_DONE)
            rc = sql_fail(tx->conn->db, src, t->table, "remove_where");
        else if (out_count)
#if SQLITE_VERSION_NUMBER >= 3037000
            *out_count = (int64_t)sqlite3_changes64(tx->conn->db);
#else
            *out_count = (int64_t)sqlite3_changes(tx->conn->db);
#endif
    }
    stmt_done(&r);
    sb_free(&b);
    query_free(&q);
    return rc;
}

static const integ_store sq_vtable = {
    .version = INTEG_STORE_VERSION,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .end = sq_end,
    .put = sq_put,
    .get = sq_get,
    .list = sq_list,
    .count = sq_count,
    .remove = sq_remove,
    .remove_where = sq_remove_where,
    .put_fields = sq_put_fields,
};

sqlite3 *ig_sqlite_tx_db(void *tx) { return tx ? ((sq_tx *)tx)->conn->db : NULL; }

int ig_sqlite_owns(const integ_store *store) { return store && store->open == sq_open; }

ig_inbox *ig_sqlite_inbox(const integ_store *store, void *store_data, int *commit)
{
    sq_store *s = store_data;
    if (commit)
        *commit = 0;
    /* A host store's data is not an sq_store: nothing is read before the
     * vtable says it is. */
    if (store != &sq_vtable || !s)
        return NULL;
    if (commit)
        *commit = s->sync_full;
    return s->inbox;
}

int ig_sqlite_set_durability(void *store_data, int full)
{
    sq_store *s = store_data;
    pthread_mutex_lock(&s->mu);
    int rc = INTEG_OK;
    if (s->opened && s->sync_full != (full != 0))
        rc = ig_err(INTEG_EINVAL, "options.durability: the SQLite store is already open with durability \"%s\"",
                    s->sync_full ? "full" : "normal");
    else
        s->sync_full = full != 0;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

INTEG_API int integ_store_sqlite_new(const integ_store **out_store, void **out_store_data,
                                     const char *path)
{
    ig_err_clear();
    IG_CHECK_ARG(out_store, "out_store");
    IG_CHECK_ARG(out_store_data, "out_store_data");
    *out_store = NULL;
    *out_store_data = NULL;
    IG_CHECK_ARG(path, "path");
    if (!sqlite3_threadsafe())
        return ig_err(INTEG_ESTORE, "sqlite: the SQLite library was built without thread support");
    sq_store *s = calloc(1, sizeof *s);
    if (!s)
        return ig_err(INTEG_ENOMEM, "sqlite: out of memory");
    s->path = strdup(path);
    /* ":memory:" and "" are private to one connection: the pool holds one. */
    s->memory = strcmp(path, ":memory:") == 0 || path[0] == '\0';
    s->max_conns = s->memory ? 1 : IG_SQLITE_MAX_CONNS;
    pthread_condattr_t ca;
    int ok = s->path != NULL;
    if (ok && pthread_mutex_init(&s->mu, NULL) != 0) {
        ok = 0;
    } else if (ok) {
        int cv_ok = pthread_condattr_init(&ca) == 0;
        if (cv_ok) {
            cv_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                    pthread_cond_init(&s->cv, &ca) == 0;
            pthread_condattr_destroy(&ca);
        }
        if (!cv_ok) {
            pthread_mutex_destroy(&s->mu);
            ok = 0;
        }
    }
    if (ok && pthread_mutex_init(&s->ck_mu, NULL) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        ok = 0;
    } else if (ok && pthread_cond_init(&s->ck_cv, NULL) != 0) {
        pthread_mutex_destroy(&s->ck_mu);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        ok = 0;
    }
    if (!ok) {
        free(s->path);
        free(s);
        return ig_err(INTEG_ENOMEM, "sqlite: out of resources creating the store");
    }
    *out_store = &sq_vtable;
    *out_store_data = s;
    return INTEG_OK;
}
