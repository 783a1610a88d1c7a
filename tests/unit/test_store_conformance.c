/*
 * The built-in SQLite store: the conformance suite on ":memory:" and on a
 * file, then what only SQLite has: migrations, pragmas, secure_delete on
 * disk, the connection pool under many threads, busy and corrupt files.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "integrations/store.h"
#include "store_sqlite.h"
#include "test.h"

/* store_conformance.c is its own module; meson builds tests/unit/test_*.c only. */
#include "store_conformance.c"

/* ------------------------------------------------------------------------ */
/* Temp files                                                               */
/* ------------------------------------------------------------------------ */

#define MAX_TMP 64

typedef struct tmpfiles {
    char paths[MAX_TMP][64];
    int n;
} tmpfiles;

static tmpfiles g_tmp; /* test-only bookkeeping, cleaned at exit */

static const char *tmp_new(void)
{
    if (g_tmp.n >= MAX_TMP)
        return NULL;
    char *p = g_tmp.paths[g_tmp.n];
    snprintf(p, 64, "/tmp/integ-store-XXXXXX");
    int fd = mkstemp(p);
    if (fd < 0)
        return NULL;
    close(fd);
    g_tmp.n++;
    return p;
}

static void tmp_remove_all(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < g_tmp.n; i++) {
        for (size_t s = 0; s < sizeof suffixes / sizeof suffixes[0]; s++) {
            char p[80];
            snprintf(p, sizeof p, "%s%s", g_tmp.paths[i], suffixes[s]);
            unlink(p);
        }
    }
    g_tmp.n = 0;
}

/* 1 if the file holds `needle` (0 if it does not or does not exist). */
static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    int found = buf && memmem(buf, len, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static void *make_memory(void *arg)
{
    (void)arg;
    const integ_store *s = NULL;
    void *d = NULL;
    return integ_store_sqlite_new(&s, &d, ":memory:") == INTEG_OK ? d : NULL;
}

static void *make_file(void *arg)
{
    (void)arg;
    const char *path = tmp_new();
    const integ_store *s = NULL;
    void *d = NULL;
    return path && integ_store_sqlite_new(&s, &d, path) == INTEG_OK ? d : NULL;
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const integ_store *S; /* the SQLite vtable, set in main */

static void *open_store(const char *path)
{
    const integ_store *s = NULL;
    void *d = NULL;
    CHECK_OK(integ_store_sqlite_new(&s, &d, path));
    CHECK(s == S);
    if (d)
        CHECK_OK(S->open(d));
    return d;
}

static int put1(void *d, integ_store_kind k, const char *json, const void *blob, size_t len,
                integ_put_mode mode)
{
    void *tx = NULL;
    int rc = S->begin(d, 1, &tx);
    if (rc)
        return rc;
    rc = S->put(tx, k, json, blob, len, mode);
    int erc = S->end(tx, rc == INTEG_OK);
    return rc ? rc : erc;
}

static int ins1(void *d, integ_store_kind k, const char *json)
{
    return put1(d, k, json, NULL, 0, INTEG_PUT_INSERT);
}

static int noop_cb(void *p, const char *j, size_t jl, const unsigned char *b, size_t bl)
{
    (void)j, (void)jl, (void)b, (void)bl;
    if (p)
        (*(int *)p)++;
    return 0;
}

static int get1(void *d, integ_store_kind k, const char *id)
{
    void *tx = NULL;
    int rc = S->begin(d, 0, &tx);
    if (rc)
        return rc;
    rc = S->get(tx, k, NULL, id, noop_cb, NULL);
    S->end(tx, 0);
    return rc;
}

static int64_t count1(void *d, integ_store_kind k, const char *q)
{
    void *tx = NULL;
    int64_t n = -1;
    if (S->begin(d, 0, &tx))
        return -1;
    if (S->count(tx, k, q, &n))
        n = -1;
    S->end(tx, 0);
    return n;
}

static int pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void pragma_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    snprintf(out, cap, "?");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static sqlite3 *ext_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int checkpoint_truncate(const char *path)
{
    sqlite3 *db = ext_open(path);
    if (!db)
        return -1;
    /* a connection opens the WAL on its first read; before that a
     * checkpoint silently does nothing */
    int rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    int log = -1, ckpt = -1;
    if (rc == SQLITE_OK)
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ckpt);
    if (rc == SQLITE_OK && (log != 0 || ckpt != 0))
        rc = SQLITE_BUSY; /* TRUNCATE leaves an empty log when it completes */
    sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                    */
/* ------------------------------------------------------------------------ */

static void test_conformance_memory(void)
{
    CHECK(store_conformance_run(S, make_memory, NULL) == 0);
}

static void test_conformance_file(void)
{
    CHECK(store_conformance_run(S, make_file, NULL) == 0);
    tmp_remove_all();
}

static void test_new_arguments(void)
{
    const integ_store *s = NULL;
    void *d = NULL;
    CHECK_RC(integ_store_sqlite_new(NULL, &d, ":memory:"), INTEG_EINVAL);
    CHECK_RC(integ_store_sqlite_new(&s, NULL, ":memory:"), INTEG_EINVAL);
    CHECK_RC(integ_store_sqlite_new(&s, &d, NULL), INTEG_EINVAL);
    CHECK(s == NULL && d == NULL);
    CHECK_OK(integ_store_sqlite_new(&s, &d, ":memory:"));
    CHECK(s && s->version == INTEG_STORE_VERSION);
    CHECK_STR(s ? s->name : NULL, "sqlite");
    void *tx0 = NULL;
    CHECK_RC(s->open(NULL), INTEG_EINVAL);
    CHECK_RC(s->begin(NULL, 0, &tx0), INTEG_EINVAL);
    /* begin before open is refused; close without open is safe */
    void *tx = (void *)1;
    CHECK_RC(s->begin(d, 0, &tx), INTEG_EINVAL);
    CHECK(tx == NULL);
    s->close(d);
    s->close(NULL);
}

static void test_schema_and_migrations(void)
{
    const char *path = tmp_new();
    CHECK(path != NULL);
    if (!path)
        return;
    void *d = open_store(path);
    CHECK_OK(put1(d, INTEG_KIND_WEBHOOK_EVENT, "{\"id\":\"e1\",\"endpoint_id\":\"p\"}",
                  (const unsigned char *)"body", 4, INTEG_PUT_INSERT));
    sqlite3 *db = ext_open(path);
    CHECK(db != NULL);
    CHECK(pragma_int(db, "PRAGMA user_version") == IG_SQLITE_SCHEMA_VERSION);
    static const char *const tables[] = {"integration_definitions",
                                         "tenant_integrations",
                                         "integration_mappings",
                                         "integration_sync_logs",
                                         "webhook_endpoints",
                                         "webhook_events",
                                         "sync_conflicts",
                                         "oauth_states",
                                         "entity_links",
                                         "sync_checkpoints",
                                         "audit_log",
                                         "entities",
                                         "leases"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'", tables[i]);
        CHECK(pragma_int(db, sql) == 1);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pragma_table_info('%s') WHERE name IN ('id','data','blob')",
                 tables[i]);
        CHECK(pragma_int(db, sql) == 3);
    }
    CHECK(pragma_int(db, "SELECT count(*) FROM pragma_table_info('webhook_events')") == 10);
    CHECK(pragma_int(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                         "name='ux_webhook_events_endpoint_id_event_id'") == 1);
    CHECK(pragma_int(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                         "name='ix_webhook_events_status_next_attempt_at_ms'") == 1);
    CHECK(pragma_int(db, "SELECT pk FROM pragma_table_info('entities') WHERE name='id'") == 1);
    /* data is the exact text, the blob a blob */
    char text[64];
    pragma_text(db, "SELECT data FROM webhook_events", text, sizeof text);
    CHECK_STR(text, "{\"id\":\"e1\",\"endpoint_id\":\"p\"}");
    CHECK(pragma_int(db, "SELECT typeof(blob)='blob' FROM webhook_events") == 1);
    sqlite3_close(db);

    /* open is idempotent; reopening keeps the data and the version */
    CHECK_OK(S->open(d));
    S->close(d);
    d = open_store(path);
    CHECK_OK(get1(d, INTEG_KIND_WEBHOOK_EVENT, "e1"));
    CHECK(count1(d, INTEG_KIND_WEBHOOK_EVENT, NULL) == 1);
    /* a second store on the same file at the same time */
    void *d2 = open_store(path);
    CHECK_OK(ins1(d2, INTEG_KIND_WEBHOOK_EVENT, "{\"id\":\"e2\"}"));
    CHECK(count1(d, INTEG_KIND_WEBHOOK_EVENT, NULL) == 2);
    S->close(d2);
    S->close(d);
    db = ext_open(path);
    CHECK(pragma_int(db, "PRAGMA user_version") == IG_SQLITE_SCHEMA_VERSION);
    sqlite3_close(db);
    tmp_remove_all();
}


/* Version 2 replaced webhook_events' tenant_id, integration_id and
 * lease_until_ms indexes with one on (tenant_id, integration_id). A file
 * made by version 1 is migrated at open, its rows kept; the queue's
 * queries still search an index. */
static int idx_exists(sqlite3 *db, const char *name)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='%s'", name);
    return pragma_int(db, sql);
}

/* The same for any table. */
static int plan_searches_in(sqlite3 *db, const char *table, const char *sql, const char *ix)
{
    char q[600], detail[200] = "", scan[80];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    snprintf(scan, sizeof scan, "SCAN %s", table);
    sqlite3_stmt *st = NULL;
    int uses = 0, scans = 0;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(detail, sizeof detail, "%s", (const char *)sqlite3_column_text(st, 3));
        uses |= strstr(detail, ix) != NULL && strncmp(detail, "SEARCH", 6) == 0;
        scans |= strncmp(detail, scan, strlen(scan)) == 0;
    }
    sqlite3_finalize(st);
    if (!uses || scans)
        fprintf(stderr, "  plan of %s: last step \"%s\"\n", sql, detail);
    return uses && !scans;
}

/* 1 if the plan of `sql` searches with an index whose detail contains
 * `ix` and scans no table. */
static int plan_searches(sqlite3 *db, const char *sql, const char *ix)
{
    return plan_searches_in(db, "webhook_events", sql, ix);
}

static void test_migration_v1_to_v2(void)
{
    const char *path = tmp_new();
    void *d = open_store(path);
    CHECK_OK(put1(d, INTEG_KIND_WEBHOOK_EVENT,
                  "{\"id\":\"e1\",\"tenant_id\":\"t1\",\"endpoint_id\":\"p\",\"integration_id\":\"i1\","
                  "\"event_id\":\"d1\",\"status\":\"processing\",\"next_attempt_at_ms\":5,\"lease_until_ms\":9}",
                  (const unsigned char *)"body", 4, INTEG_PUT_INSERT));
    S->close(d);
    /* Put the file back the way version 1 left it. */
    sqlite3 *db = ext_open(path);
    CHECK(db && sqlite3_exec(db,
                             "DROP INDEX ix_webhook_events_tenant_id_integration_id;"
                             "CREATE INDEX ix_webhook_events_tenant_id ON webhook_events (tenant_id);"
                             "CREATE INDEX ix_webhook_events_integration_id ON webhook_events (integration_id);"
                             "CREATE INDEX ix_webhook_events_lease_until_ms ON webhook_events (lease_until_ms);"
                             /* and entity_links as versions 1 and 2 had it */
                             "DROP INDEX ix_entity_links_local_id;"
                             "CREATE INDEX ix_entity_links_tenant_id ON entity_links (tenant_id);"
                             "CREATE INDEX ix_entity_links_integration_id_entity_local_id ON entity_links"
                             " (integration_id, entity, local_id);"
                             "CREATE INDEX ix_entity_links_integration_id_pending ON entity_links (integration_id, pending);"
                             "PRAGMA user_version = 1;",
                             NULL, NULL, NULL) == SQLITE_OK);
    CHECK(pragma_int(db, "PRAGMA user_version") == 1);
    sqlite3_close(db);
    d = open_store(path);
    db = ext_open(path);
    CHECK(pragma_int(db, "PRAGMA user_version") == IG_SQLITE_SCHEMA_VERSION);
    CHECK(idx_exists(db, "ix_webhook_events_tenant_id_integration_id") == 1);
    CHECK(idx_exists(db, "ix_webhook_events_tenant_id") == 0);
    CHECK(idx_exists(db, "ix_webhook_events_integration_id") == 0);
    CHECK(idx_exists(db, "ix_webhook_events_lease_until_ms") == 0);
    CHECK(idx_exists(db, "ux_webhook_events_endpoint_id_event_id") == 1);
    CHECK(idx_exists(db, "ix_webhook_events_status_next_attempt_at_ms") == 1);
    /* the row survived, blob included, and is found by every query shape the queue uses */
    CHECK_OK(get1(d, INTEG_KIND_WEBHOOK_EVENT, "e1"));
    CHECK(count1(d, INTEG_KIND_WEBHOOK_EVENT, "{\"status\":\"processing\",\"lease_until_ms\":{\"lt\":10}}") == 1);
    CHECK(count1(d, INTEG_KIND_WEBHOOK_EVENT, "{\"tenant_id\":\"t1\",\"integration_id\":\"i1\"}") == 1);
    CHECK(count1(d, INTEG_KIND_WEBHOOK_EVENT, "{\"endpoint_id\":\"p\",\"event_id\":{\"in\":[\"d1\",\"d2\"]}}") == 1);
    CHECK(plan_searches(db, "SELECT id FROM webhook_events WHERE status IN ('queued','retry') AND next_attempt_at_ms <= 9"
                            " ORDER BY next_attempt_at_ms LIMIT 10", "ix_webhook_events_status_next_attempt_at_ms"));
    CHECK(plan_searches(db, "SELECT id FROM webhook_events WHERE status = 'processing' AND lease_until_ms < 9"
                            " ORDER BY lease_until_ms LIMIT 10", "ix_webhook_events_status_next_attempt_at_ms"));
    CHECK(plan_searches(db, "SELECT id FROM webhook_events WHERE tenant_id = 't1' AND integration_id = 'i1'",
                        "ix_webhook_events_tenant_id_integration_id"));
    CHECK(plan_searches(db, "SELECT id FROM webhook_events WHERE tenant_id = 't1' AND endpoint_id = 'p'", "INDEX"));
    sqlite3_close(db);
    S->close(d);
    tmp_remove_all();
}

/* Version 3 replaced entity_links' tenant_id, (integration_id, entity,
 * local_id) and (integration_id, pending) indexes with one on local_id. A
 * version-2 file keeps its links, and every query shape the library makes
 * of links still searches an index. */
static void test_migration_v2_to_v3(void)
{
    const char *path = tmp_new();
    void *d = open_store(path);
    CHECK_OK(put1(d, INTEG_KIND_ENTITY_LINK,
                  "{\"id\":\"l1\",\"tenant_id\":\"t1\",\"integration_id\":\"i1\",\"entity\":\"contacts\","
                  "\"external_id\":\"x1\",\"local_id\":\"u1\",\"pending\":false}",
                  NULL, 0, INTEG_PUT_INSERT));
    S->close(d);
    sqlite3 *db = ext_open(path);
    CHECK(db && sqlite3_exec(db,
                             "DROP INDEX ix_entity_links_local_id;"
                             "CREATE INDEX ix_entity_links_tenant_id ON entity_links (tenant_id);"
                             "CREATE INDEX ix_entity_links_integration_id_entity_local_id ON entity_links"
                             " (integration_id, entity, local_id);"
                             "CREATE INDEX ix_entity_links_integration_id_pending ON entity_links (integration_id, pending);"
                             "PRAGMA user_version = 2;",
                             NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    d = open_store(path);
    db = ext_open(path);
    CHECK(pragma_int(db, "PRAGMA user_version") == IG_SQLITE_SCHEMA_VERSION);
    CHECK(idx_exists(db, "ix_entity_links_local_id") == 1);
    CHECK(idx_exists(db, "ix_entity_links_tenant_id") == 0);
    CHECK(idx_exists(db, "ix_entity_links_integration_id_entity_local_id") == 0);
    CHECK(idx_exists(db, "ix_entity_links_integration_id_pending") == 0);
    CHECK(idx_exists(db, "ux_entity_links_integration_id_entity_external_id") == 1);
    CHECK_OK(get1(d, INTEG_KIND_ENTITY_LINK, "l1"));
    CHECK(count1(d, INTEG_KIND_ENTITY_LINK,
                 "{\"integration_id\":\"i1\",\"entity\":\"contacts\",\"external_id\":{\"in\":[\"x1\",\"x2\"]}}") == 1);
    CHECK(count1(d, INTEG_KIND_ENTITY_LINK, "{\"tenant_id\":\"t1\",\"local_id\":\"u1\"}") == 1);
    CHECK(count1(d, INTEG_KIND_ENTITY_LINK, "{\"integration_id\":\"i1\",\"entity\":\"contacts\",\"local_id\":\"u1\"}") == 1);
    CHECK(count1(d, INTEG_KIND_ENTITY_LINK, "{\"tenant_id\":\"t1\",\"integration_id\":\"i1\"}") == 1);
    CHECK(count1(d, INTEG_KIND_ENTITY_LINK, "{\"integration_id\":\"i1\",\"pending\":false}") == 1);
    /* a second link for the same remote record is still refused */
    CHECK_RC(put1(d, INTEG_KIND_ENTITY_LINK,
                  "{\"id\":\"l2\",\"tenant_id\":\"t1\",\"integration_id\":\"i1\",\"entity\":\"contacts\","
                  "\"external_id\":\"x1\",\"local_id\":\"u2\"}",
                  NULL, 0, INTEG_PUT_INSERT),
             INTEG_EEXISTS);
    CHECK(plan_searches_in(db, "entity_links",
                           "SELECT id FROM entity_links WHERE integration_id = 'i1' AND entity = 'contacts'"
                           " AND external_id IN ('x1','x2')",
                           "ux_entity_links_integration_id_entity_external_id"));
    CHECK(plan_searches_in(db, "entity_links", "SELECT id FROM entity_links WHERE tenant_id = 't1' AND local_id = 'u1'",
                           "ix_entity_links_local_id"));
    CHECK(plan_searches_in(db, "entity_links",
                           "SELECT id FROM entity_links WHERE integration_id = 'i1' AND entity = 'contacts'"
                           " AND local_id = 'u1'",
                           "INDEX"));
    CHECK(plan_searches_in(db, "entity_links", "SELECT id FROM entity_links WHERE tenant_id = 't1' AND integration_id = 'i1'",
                           "ux_entity_links_integration_id_entity_external_id"));
    sqlite3_close(db);
    S->close(d);
    tmp_remove_all();
}

static void test_newer_schema_refused(void)
{
    const char *path = tmp_new();
    sqlite3 *db = ext_open(path);
    CHECK(db && sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    const integ_store *s = NULL;
    void *d = NULL;
    CHECK_OK(integ_store_sqlite_new(&s, &d, path));
    CHECK_RC(s->open(d), INTEG_ESTORE);
    CHECK_MSG("newer");
    s->close(d);
    tmp_remove_all();
}

static void check_pragmas(sqlite3 *db, int file)
{
    char mode[32];
    pragma_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    CHECK_STR(mode, file ? "wal" : "memory");
    CHECK(pragma_int(db, "PRAGMA foreign_keys") == 1);
    CHECK(pragma_int(db, "PRAGMA secure_delete") == 1);
    CHECK(pragma_int(db, "PRAGMA busy_timeout") == IG_SQLITE_BUSY_TIMEOUT_MS);
    CHECK(pragma_int(db, "PRAGMA synchronous") == 1); /* NORMAL */
}

static void test_pragmas(void)
{
    void *d = open_store(":memory:");
    void *tx = NULL;
    CHECK_OK(S->begin(d, 0, &tx));
    CHECK(ig_sqlite_tx_db(tx) != NULL);
    if (tx) {
        check_pragmas(ig_sqlite_tx_db(tx), 0);
        S->end(tx, 0);
    }
    S->close(d);

    /* every pooled connection of a file store, not just the first */
    const char *path = tmp_new();
    d = open_store(path);
    void *a = NULL, *b = NULL;
    CHECK_OK(S->begin(d, 0, &a));
    CHECK_OK(S->begin(d, 1, &b));
    if (a && b) {
        CHECK(ig_sqlite_tx_db(a) != ig_sqlite_tx_db(b));
        check_pragmas(ig_sqlite_tx_db(a), 1);
        check_pragmas(ig_sqlite_tx_db(b), 1);
    }
    if (a)
        S->end(a, 0);
    if (b)
        S->end(b, 0);
    S->close(d);
    CHECK(ig_sqlite_tx_db(NULL) == NULL);
    tmp_remove_all();
}

static void test_secure_delete(void)
{
    const char *path = tmp_new();
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    void *d = open_store(path);
    const char *marker = "ZQXJ-distinctive-7731-secret";
    const char *bmark = "BLOBMARK-4451-distinctive";
    /* neighbours on the same page, which must survive */
    CHECK_OK(
        ins1(d, INTEG_KIND_ENTITY, "{\"id\":\"sd0\",\"tenant_id\":\"t1\",\"keep\":\"KEEP-ME-0\"}"));
    CHECK_OK(
        put1(d, INTEG_KIND_ENTITY,
             "{\"id\":\"sd1\",\"tenant_id\":\"t1\",\"secret\":\"ZQXJ-distinctive-7731-secret\"}",
             bmark, strlen(bmark), INTEG_PUT_INSERT));
    CHECK_OK(
        ins1(d, INTEG_KIND_ENTITY, "{\"id\":\"sd2\",\"tenant_id\":\"t1\",\"keep\":\"KEEP-ME-2\"}"));
    /* move it into the main file first, so the test sees it being wiped there */
    CHECK(checkpoint_truncate(path) == SQLITE_OK);
    CHECK(file_has(path, marker));
    CHECK(file_has(path, bmark));

    void *tx = NULL;
    CHECK_OK(S->begin(d, 1, &tx));
    if (tx) {
        CHECK_OK(S->remove(tx, INTEG_KIND_ENTITY, "t1", "sd1"));
        CHECK_OK(S->end(tx, 1));
    }
    CHECK(checkpoint_truncate(path) == SQLITE_OK);
    CHECK(!file_has(path, marker));
    CHECK(!file_has(path, bmark));
    CHECK(!file_has(wal, marker));
    CHECK(!file_has(wal, bmark));
    CHECK(file_has(path, "KEEP-ME-0") && file_has(path, "KEEP-ME-2"));

    /* an update replaces the old bytes too */
    CHECK_OK(put1(d, INTEG_KIND_ENTITY, "{\"id\":\"sd0\",\"tenant_id\":\"t1\",\"keep\":\"NEW\"}",
                  NULL, 0, INTEG_PUT_UPDATE));
    CHECK(checkpoint_truncate(path) == SQLITE_OK);
    CHECK(!file_has(path, "KEEP-ME-0"));
    S->close(d);
    CHECK(!file_has(path, marker));
    tmp_remove_all();
}

/* 8 writers x 200 transactions, each bumping a counter and adding a row, and
 * readers checking that every snapshot they see is consistent. */
#define W_THREADS 8
#define W_ROUNDS 200
#define R_THREADS 3

typedef struct mt_state {
    void *d;
    atomic_int writers_left;
    atomic_int errors;
    atomic_int snapshots;
} mt_state;

static int counter_cb(void *payload, const char *json, size_t json_len, const unsigned char *blob,
                      size_t blob_len)
{
    (void)json_len, (void)blob, (void)blob_len;
    const char *p = strstr(json, "\"n\":");
    *(long *)payload = p ? strtol(p + 4, NULL, 10) : -1;
    return 0;
}

typedef struct mt_arg {
    mt_state *st;
    int index;
} mt_arg;

static void *mt_writer(void *argp)
{
    mt_arg *a = argp;
    for (int i = 0; i < W_ROUNDS; i++) {
        void *tx = NULL;
        int rc = S->begin(a->st->d, 1, &tx);
        long n = -1;
        if (rc == INTEG_OK)
            rc = S->get(tx, INTEG_KIND_LEASE, NULL, "counter", counter_cb, &n);
        char json[128];
        if (rc == INTEG_OK) {
            snprintf(json, sizeof json, "{\"id\":\"counter\",\"n\":%ld}", n + 1);
            rc = S->put(tx, INTEG_KIND_LEASE, json, NULL, 0, INTEG_PUT_UPDATE);
        }
        if (rc == INTEG_OK) {
            snprintf(json, sizeof json,
                     "{\"id\":\"e-%d-%04d\",\"tenant_id\":\"t%d\",\"entity\":\"c\",\"version\":%d}",
                     a->index, i, a->index, i);
            rc = S->put(tx, INTEG_KIND_ENTITY, json, NULL, 0, INTEG_PUT_INSERT);
        }
        if (tx) {
            int erc = S->end(tx, rc == INTEG_OK);
            if (rc == INTEG_OK)
                rc = erc;
        }
        if (rc != INTEG_OK) {
            fprintf(stderr, "  writer %d round %d: %d %s\n", a->index, i, rc, integ_errmsg());
            atomic_fetch_add(&a->st->errors, 1);
        }
    }
    atomic_fetch_sub(&a->st->writers_left, 1);
    return NULL;
}

static void *mt_reader(void *argp)
{
    mt_arg *a = argp;
    int64_t last = 0;
    while (atomic_load(&a->st->writers_left) > 0) {
        void *tx = NULL;
        int rc = S->begin(a->st->d, 0, &tx);
        int64_t n = -1;
        long counter = -1;
        int rows = 0;
        if (rc == INTEG_OK)
            rc = S->count(tx, INTEG_KIND_ENTITY, NULL, &n);
        if (rc == INTEG_OK)
            rc = S->get(tx, INTEG_KIND_LEASE, NULL, "counter", counter_cb, &counter);
        if (rc == INTEG_OK)
            rc = S->list(tx, INTEG_KIND_ENTITY, "{\"tenant_id\":\"t1\",\"limit\":5}", noop_cb,
                         &rows);
        if (tx)
            S->end(tx, 0);
        if (rc != INTEG_OK || n != counter || n < last || rows > 5) {
            fprintf(stderr, "  reader %d: rc %d (%s) count %lld counter %ld last %lld\n", a->index,
                    rc, integ_errmsg(), (long long)n, counter, (long long)last);
            atomic_fetch_add(&a->st->errors, 1);
            break;
        }
        last = n;
        atomic_fetch_add(&a->st->snapshots, 1);
    }
    return NULL;
}

static void test_many_threads(void)
{
    const char *path = tmp_new();
    mt_state st = {.d = open_store(path)};
    atomic_init(&st.writers_left, W_THREADS);
    atomic_init(&st.errors, 0);
    atomic_init(&st.snapshots, 0);
    CHECK_OK(ins1(st.d, INTEG_KIND_LEASE, "{\"id\":\"counter\",\"n\":0}"));
    pthread_t th[W_THREADS + R_THREADS];
    mt_arg args[W_THREADS + R_THREADS];
    for (int i = 0; i < W_THREADS + R_THREADS; i++) {
        args[i] = (mt_arg){&st, i};
        int rc = pthread_create(&th[i], NULL, i < W_THREADS ? mt_writer : mt_reader, &args[i]);
        CHECK(rc == 0);
        if (rc)
            abort(); /* cannot join a thread that does not exist */
    }
    for (int i = 0; i < W_THREADS + R_THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&st.errors) == 0);
    CHECK(atomic_load(&st.snapshots) > 0);
    CHECK(count1(st.d, INTEG_KIND_ENTITY, NULL) == W_THREADS * W_ROUNDS);
    CHECK(count1(st.d, INTEG_KIND_ENTITY, "{\"tenant_id\":\"t3\"}") == W_ROUNDS);
    void *tx = NULL;
    long n = -1;
    CHECK_OK(S->begin(st.d, 0, &tx));
    if (tx) {
        CHECK_OK(S->get(tx, INTEG_KIND_LEASE, NULL, "counter", counter_cb, &n));
        S->end(tx, 0);
    }
    CHECK(n == W_THREADS * W_ROUNDS);
    S->close(st.d);
    tmp_remove_all();
}

/* ":memory:" has one connection: a second begin waits for it. */
typedef struct hold_arg {
    void *d;
    atomic_int began;
} hold_arg;

static void *hold_main(void *argp)
{
    hold_arg *h = argp;
    void *tx = NULL;
    if (S->begin(h->d, 1, &tx) == INTEG_OK) {
        S->put(tx, INTEG_KIND_LEASE, "{\"id\":\"held\"}", NULL, 0, INTEG_PUT_INSERT);
        atomic_store(&h->began, 1);
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        S->end(tx, 1);
    } else {
        atomic_store(&h->began, -1);
    }
    return NULL;
}

static void test_memory_single_connection(void)
{
    hold_arg h = {.d = open_store(":memory:")};
    atomic_init(&h.began, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, hold_main, &h) == 0);
    while (atomic_load(&h.began) == 0) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    /* waits for the holder to commit, then sees its write */
    CHECK_OK(get1(h.d, INTEG_KIND_LEASE, "held"));
    pthread_join(th, NULL);
    S->close(h.d);
}

static void test_snapshot_isolation(void)
{
    const char *path = tmp_new();
    void *d = open_store(path);
    CHECK_OK(ins1(d, INTEG_KIND_AUDIT, "{\"id\":\"a1\"}"));
    void *rtx = NULL;
    CHECK_OK(S->begin(d, 0, &rtx));
    int64_t n = -1;
    if (rtx)
        CHECK_OK(S->count(rtx, INTEG_KIND_AUDIT, NULL, &n));
    CHECK(n == 1);
    /* a writer on another pooled connection is not blocked by the reader */
    CHECK_OK(ins1(d, INTEG_KIND_AUDIT, "{\"id\":\"a2\"}"));
    if (rtx) {
        CHECK_OK(S->count(rtx, INTEG_KIND_AUDIT, NULL, &n));
        CHECK(n == 1);
        CHECK_RC(S->get(rtx, INTEG_KIND_AUDIT, NULL, "a2", noop_cb, NULL), INTEG_ENOTFOUND);
        CHECK_OK(S->end(rtx, 0));
    }
    CHECK(count1(d, INTEG_KIND_AUDIT, NULL) == 2);
    S->close(d);
    tmp_remove_all();
}

static void test_busy_is_conflict(void)
{
    const char *path = tmp_new();
    void *d = open_store(path);
    sqlite3 *other = ext_open(path);
    CHECK(other && sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    void *tx = (void *)1;
    CHECK_RC(S->begin(d, 1, &tx), INTEG_ECONFLICT);
    CHECK_MSG("busy");
    CHECK(tx == NULL);
    /* readers still work (WAL), and the pool is not leaked by the failure */
    CHECK(count1(d, INTEG_KIND_AUDIT, NULL) == 0);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    CHECK_OK(ins1(d, INTEG_KIND_AUDIT, "{\"id\":\"a1\"}"));
    S->close(d);
    tmp_remove_all();
}

static void test_corrupt_file(void)
{
    const char *path = tmp_new();
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    for (int i = 0; f && i < 512; i++)
        fputs("this is not a database. ", f);
    if (f)
        fclose(f);
    const integ_store *s = NULL;
    void *d = NULL;
    CHECK_OK(integ_store_sqlite_new(&s, &d, path));
    CHECK_RC(s->open(d), INTEG_ESTORE);
    CHECK_MSG("not a database");
    CHECK_MSG(path);
    void *tx = NULL;
    CHECK_RC(s->begin(d, 0, &tx), INTEG_EINVAL); /* never opened */
    s->close(d);

    /* a directory that does not exist */
    CHECK_OK(integ_store_sqlite_new(&s, &d, "/nonexistent-integ-dir/x/store.db"));
    CHECK_RC(s->open(d), INTEG_ESTORE);
    CHECK_MSG("unable to open");
    s->close(d);
    tmp_remove_all();
}

static void test_messages(void)
{
    void *d = open_store(":memory:");
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    CHECK_OK(ins1(d, K, "{\"id\":\"i1\"}"));
    CHECK_RC(ins1(d, K, "{\"id\":\"i1\"}"), INTEG_EEXISTS);
    CHECK_MSG("tenant_integrations: insert: UNIQUE constraint failed: tenant_integrations.id");
    CHECK_OK(ins1(d, INTEG_KIND_WEBHOOK_EVENT,
                  "{\"id\":\"w1\",\"endpoint_id\":\"p\",\"event_id\":\"e\"}"));
    CHECK_RC(put1(d, INTEG_KIND_WEBHOOK_EVENT,
                  "{\"id\":\"w2\",\"endpoint_id\":\"p\",\"event_id\":\"e\"}", NULL, 0,
                  INTEG_PUT_UPSERT),
             INTEG_EEXISTS);
    CHECK_MSG("webhook_events: upsert: UNIQUE constraint failed: webhook_events.endpoint_id, "
              "webhook_events.event_id");
    CHECK_RC(put1(d, K, "{\"id\":\"i9\"}", NULL, 0, INTEG_PUT_UPDATE), INTEG_ENOTFOUND);
    CHECK_MSG("tenant_integrations: update: no record with id \"i9\"");
    CHECK_RC(ins1(d, K, "{\"id\":\"i2\",\"status\":5}"), INTEG_EINVAL);
    CHECK_MSG("tenant_integrations.status: must be a string");
    CHECK_RC(ins1(d, K, "{\"status\":\"x\"}"), INTEG_EINVAL);
    CHECK_MSG("tenant_integrations.id");
    CHECK_RC(ins1(d, K, "{\"id\":\"i2\",\"next_run_at_ms\":18446744073709551615}"), INTEG_EINVAL);
    CHECK_MSG("next_run_at_ms");
    CHECK_RC(ins1(d, K, "[1]"), INTEG_EINVAL);
    CHECK_MSG("tenant_integrations: insert: must be a JSON object");
    CHECK(count1(d, K, "{\"foo\":1}") == -1);
    CHECK_MSG("query.foo: not an indexed field of tenant_integrations");
    CHECK(count1(d, K, "{\"status\":{\"between\":[1,2]}}") == -1);
    CHECK_MSG("query.status: unknown operator \"between\"");
    CHECK(count1(d, K, "{\"status\":") == -1);
    CHECK_MSG("tenant_integrations: query: malformed JSON");
    S->close(d);
}

/* Definitions and leases have no tenant: a tenant_id there is a caller bug. */
static void test_not_tenant_scoped(void)
{
    void *d = open_store(":memory:");
    CHECK_OK(ins1(d, INTEG_KIND_DEFINITION, "{\"id\":\"d1\",\"key\":\"k\"}"));
    CHECK_OK(ins1(d, INTEG_KIND_LEASE, "{\"id\":\"l1\"}"));
    void *tx = NULL;
    CHECK_OK(S->begin(d, 1, &tx));
    if (!tx)
        return;
    CHECK_RC(S->get(tx, INTEG_KIND_DEFINITION, "t1", "d1", noop_cb, NULL), INTEG_EINVAL);
    CHECK_MSG("not tenant-scoped");
    CHECK_RC(S->remove(tx, INTEG_KIND_LEASE, "t1", "l1"), INTEG_EINVAL);
    CHECK_MSG("leases");
    CHECK_OK(S->get(tx, INTEG_KIND_DEFINITION, NULL, "d1", noop_cb, NULL));
    CHECK_OK(S->remove(tx, INTEG_KIND_LEASE, NULL, "l1"));
    CHECK_OK(S->end(tx, 1));
    S->close(d);
}

static void test_write_in_read_tx(void)
{
    void *d = open_store(":memory:");
    CHECK_OK(ins1(d, INTEG_KIND_LEASE, "{\"id\":\"l1\"}"));
    void *tx = NULL;
    CHECK_OK(S->begin(d, 0, &tx));
    if (!tx)
        return;
    int64_t n;
    CHECK_RC(S->put(tx, INTEG_KIND_LEASE, "{\"id\":\"l2\"}", NULL, 0, INTEG_PUT_INSERT),
             INTEG_EINVAL);
    CHECK_MSG("read-only");
    CHECK_RC(S->remove(tx, INTEG_KIND_LEASE, NULL, "l1"), INTEG_EINVAL);
    CHECK_RC(S->remove_where(tx, INTEG_KIND_LEASE, NULL, &n), INTEG_EINVAL);
    CHECK_OK(S->end(tx, 1));
    /* a handle is dead after end */
    CHECK_RC(S->end(tx, 0), INTEG_EINVAL);
    CHECK_RC(S->count(tx, INTEG_KIND_LEASE, NULL, &n), INTEG_EINVAL);
    CHECK_MSG("ended");
    CHECK(count1(d, INTEG_KIND_LEASE, NULL) == 1);
    S->close(d);
}

/* SQLite gives NULL for a zero-length blob; the store still reports one. */
static int blob_cb(void *p, const char *j, size_t jl, const unsigned char *b, size_t bl)
{
    (void)j, (void)jl;
    *(int *)p = b != NULL && bl == 0;
    return 0;
}

static void test_empty_blob(void)
{
    void *d = open_store(":memory:");
    static const unsigned char none[1] = {0};
    CHECK_OK(put1(d, INTEG_KIND_WEBHOOK_EVENT, "{\"id\":\"w1\"}", none, 0, INTEG_PUT_INSERT));
    CHECK_RC(put1(d, INTEG_KIND_WEBHOOK_EVENT, "{\"id\":\"w2\"}", NULL, 3, INTEG_PUT_INSERT),
             INTEG_EINVAL);
    void *tx = NULL;
    int empty = 0;
    CHECK_OK(S->begin(d, 0, &tx));
    if (tx) {
        CHECK_OK(S->get(tx, INTEG_KIND_WEBHOOK_EVENT, NULL, "w1", blob_cb, &empty));
        S->end(tx, 0);
    }
    CHECK(empty == 1);
    S->close(d);
}

/* A row callback may use the same transaction again, even the very
 * statement that is delivering rows. */
typedef struct nest {
    void *tx;
    int rows, inner_rows, errors;
} nest;

static int nest_inner_get_cb(void *p, const char *j, size_t jl, const unsigned char *b, size_t bl)
{
    (void)j, (void)jl, (void)b, (void)bl;
    nest *n = p;
    int cnt = 0;
    /* get inside get on the same kind: the cached statement is busy */
    if (S->get(n->tx, INTEG_KIND_INTEGRATION, "t1", "i2", noop_cb, &cnt) != INTEG_OK || cnt != 1)
        n->errors++;
    return 0;
}

static int nest_cb(void *p, const char *j, size_t jl, const unsigned char *b, size_t bl)
{
    (void)j, (void)jl, (void)b, (void)bl;
    nest *n = p;
    n->rows++;
    int cnt = 0;
    if (S->list(n->tx, INTEG_KIND_INTEGRATION, "{\"tenant_id\":\"t1\"}", noop_cb, &cnt) != INTEG_OK)
        n->errors++;
    n->inner_rows += cnt;
    if (S->get(n->tx, INTEG_KIND_INTEGRATION, "t1", "i1", nest_inner_get_cb, n) != INTEG_OK)
        n->errors++;
    return 0;
}

static void test_reentrant_callbacks(void)
{
    void *d = open_store(":memory:");
    CHECK_OK(ins1(d, INTEG_KIND_INTEGRATION, "{\"id\":\"i1\",\"tenant_id\":\"t1\"}"));
    CHECK_OK(ins1(d, INTEG_KIND_INTEGRATION, "{\"id\":\"i2\",\"tenant_id\":\"t1\"}"));
    CHECK_OK(ins1(d, INTEG_KIND_INTEGRATION, "{\"id\":\"i3\",\"tenant_id\":\"t1\"}"));
    nest n = {0};
    CHECK_OK(S->begin(d, 0, &n.tx));
    if (!n.tx)
        return;
    CHECK_OK(S->list(n.tx, INTEG_KIND_INTEGRATION, "{\"tenant_id\":\"t1\"}", nest_cb, &n));
    CHECK(n.rows == 3 && n.inner_rows == 9 && n.errors == 0);
    CHECK_OK(S->end(n.tx, 0));
    S->close(d);
}

/* More query shapes than the statement cache holds, twice over. */
static void test_statement_cache(void)
{
    void *d = open_store(":memory:");
    for (int i = 0; i < 50; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"id\":\"l%02d\",\"expires_at_ms\":%d}", i, i);
        CHECK_OK(ins1(d, INTEG_KIND_LEASE, json));
    }
    void *tx = NULL;
    CHECK_OK(S->begin(d, 0, &tx));
    if (!tx)
        return;
    for (int round = 0; round < 2; round++) {
        for (int k = 1; k <= 45; k++) {
            char q[512] = "{\"expires_at_ms\":{\"in\":[";
            for (int i = 0; i < k; i++)
                snprintf(q + strlen(q), sizeof q - strlen(q), i ? ",%d" : "%d", i);
            strcat(q, "]}}");
            int64_t n = -1;
            CHECK_OK(S->count(tx, INTEG_KIND_LEASE, q, &n));
            CHECK(n == k);
        }
    }
    CHECK_OK(S->end(tx, 0));
    S->close(d);
}

/* Beyond store.h: {"ne": null} means IS NOT NULL. */
static void test_ne_null(void)
{
    void *d = open_store(":memory:");
    CHECK_OK(ins1(d, INTEG_KIND_LEASE, "{\"id\":\"l1\",\"holder\":\"a\"}"));
    CHECK_OK(ins1(d, INTEG_KIND_LEASE, "{\"id\":\"l2\"}"));
    CHECK(count1(d, INTEG_KIND_LEASE, "{\"holder\":{\"ne\":null}}") == 1);
    CHECK(count1(d, INTEG_KIND_LEASE, "{\"holder\":null}") == 1);
    S->close(d);
}


/* Commits don't checkpoint inline: the store's thread does, and the WAL
 * stays bounded while thousands of transactions go by. */
static void test_background_checkpoints(void)
{
    const char *path = tmp_new();
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    void *d = open_store(path);
    static char rec[6000];
    const int n = 3000;
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        int k = snprintf(rec, sizeof rec, "{\"id\":\"cp%05d\",\"tenant_id\":\"t1\",\"pad\":\"", i);
        memset(rec + k, 'a' + i % 26, 5000);
        snprintf(rec + k + 5000, sizeof rec - (size_t)k - 5000, "\"}");
        ok = ins1(d, INTEG_KIND_ENTITY, rec) == INTEG_OK;
    }
    CHECK(ok);
    /* ~2 pages a transaction: without checkpoints the WAL would pass 24 MB */
    for (int waited = 0; ig_sqlite_checkpoints(d) == 0 && waited < 5000; waited += 10)
        usleep(10000);
    CHECK(ig_sqlite_checkpoints(d) > 0);
    struct stat st;
    CHECK(stat(wal, &st) == 0);
    CHECK(st.st_size <= (off_t)(IG_SQLITE_CHECKPOINT_FRAMES_MAX + 64) * (4096 + 24));
    S->close(d);
    /* reopened: every record is there */
    d = open_store(path);
    void *tx = NULL;
    int64_t count = -1;
    CHECK_OK(S->begin(d, 0, &tx));
    if (tx) {
        CHECK_OK(S->count(tx, INTEG_KIND_ENTITY, NULL, &count));
        S->end(tx, 0);
    }
    CHECK(count == n);
    S->close(d);
    /* ":memory:" has no WAL and no thread */
    d = open_store(":memory:");
    CHECK(ins1(d, INTEG_KIND_ENTITY, "{\"id\":\"m1\"}") == INTEG_OK);
    CHECK(ig_sqlite_checkpoints(d) == 0);
    S->close(d);
    tmp_remove_all();
}

/* The single ":memory:" connection held too long: the waiter gives up. */
static void test_pool_timeout(void)
{
    void *d = open_store(":memory:");
    void *tx = NULL;
    CHECK_OK(S->begin(d, 0, &tx));
    void *tx2 = (void *)1;
    CHECK_RC(S->begin(d, 0, &tx2), INTEG_ECONFLICT);
    CHECK_MSG("busy");
    CHECK(tx2 == NULL);
    if (tx)
        CHECK_OK(S->end(tx, 0));
    CHECK_OK(S->begin(d, 1, &tx2));
    if (tx2)
        CHECK_OK(S->end(tx2, 1));
    S->close(d);
}

/* SQLite failing under a statement, cached or not: the table was dropped
 * behind the store's back. */
static void test_sqlite_failures(void)
{
    const char *path = tmp_new();
    void *d = open_store(path);
    CHECK_OK(ins1(d, INTEG_KIND_LEASE, "{\"id\":\"l1\"}"));
    CHECK_OK(get1(d, INTEG_KIND_LEASE, "l1"));
    CHECK(count1(d, INTEG_KIND_LEASE, NULL) == 1);
    sqlite3 *db = ext_open(path);
    CHECK(db && sqlite3_exec(db, "DROP TABLE leases", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    void *tx = NULL;
    int64_t n;
    CHECK_OK(S->begin(d, 1, &tx));
    if (!tx)
        return;
    CHECK_RC(S->put(tx, INTEG_KIND_LEASE, "{\"id\":\"l2\"}", NULL, 0, INTEG_PUT_INSERT),
             INTEG_ESTORE);
    CHECK_MSG("leases: insert: no such table");
    CHECK_RC(S->get(tx, INTEG_KIND_LEASE, NULL, "l1", noop_cb, NULL), INTEG_ESTORE);
    CHECK_MSG("leases: get");
    CHECK_RC(S->list(tx, INTEG_KIND_LEASE, NULL, noop_cb, NULL), INTEG_ESTORE);
    CHECK_RC(S->count(tx, INTEG_KIND_LEASE, NULL, &n), INTEG_ESTORE);
    CHECK_MSG("leases: count");
    CHECK_RC(S->remove(tx, INTEG_KIND_LEASE, NULL, "l1"), INTEG_ESTORE);
    CHECK_RC(S->remove_where(tx, INTEG_KIND_LEASE, "{\"holder\":\"x\"}", &n), INTEG_ESTORE);
    /* other tables are unaffected */
    CHECK_OK(S->put(tx, INTEG_KIND_AUDIT, "{\"id\":\"a1\"}", NULL, 0, INTEG_PUT_INSERT));
    CHECK_OK(S->end(tx, 1));
    S->close(d);
    tmp_remove_all();
}


/* The library writes through put_fields when the store has it, and through
 * put for a store written against version 1 (it never reads past the
 * members of the declared version). Both must leave the same records. */
static atomic_int n_put, n_put_fields;

static int count_put(void *tx, integ_store_kind kind, const char *json, const unsigned char *blob,
                     size_t blob_len, integ_put_mode mode)
{
    atomic_fetch_add(&n_put, 1);
    return S->put(tx, kind, json, blob, blob_len, mode);
}

static int count_put_fields(void *tx, integ_store_kind kind, const char *json, size_t json_len,
                            const integ_store_field *f, size_t n, const unsigned char *blob, size_t blob_len,
                            integ_put_mode mode)
{
    atomic_fetch_add(&n_put_fields, 1);
    return S->put_fields(tx, kind, json, json_len, f, n, blob, blob_len, mode);
}

static void library_on(int version, char *out_entities, size_t cap)
{
    integ_store st = *S;
    st.version = version;
    st.put = count_put;
    st.put_fields = version >= 2 ? count_put_fields : NULL;
    atomic_store(&n_put, 0);
    atomic_store(&n_put_fields, 0);
    const integ_store *base = NULL;
    void *d = NULL;
    CHECK_OK(integ_store_sqlite_new(&base, &d, ":memory:"));
    integ_ctx *ctx = NULL;
    integ_session *se = NULL;
    char *out = NULL;
    CHECK_OK(integ_ctx_open_with_store(&ctx, &st, d, "{\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK_OK(integ_session_open(&se, ctx, "t1", "u1", "[\"integration:admin\"]"));
    CHECK_OK(integ_entity_put(se, "contacts", "{\"data\":{\"email\":\"a@example.com\"}}", &out));
    char id[64] = "", rec[256];
    const char *p = out ? strstr(out, "\"id\":\"") : NULL;
    if (p)
        sscanf(p + 6, "%63[^\"]", id);
    CHECK(id[0] != '\0');
    integ_free(out);
    snprintf(rec, sizeof rec, "{\"id\":\"%s\",\"data\":{\"email\":\"b@example.com\"}}", id);
    CHECK_OK(integ_entity_put(se, "contacts", rec, &out));
    integ_free(out);
    out = NULL;
    CHECK_OK(integ_entity_get(se, "contacts", id, &out));
    snprintf(out_entities, cap, "%s", out ? out : "");
    integ_free(out);
    /* a wrong type still fails cleanly on either path */
    CHECK_RC(integ_entity_put(se, "contacts", "{\"id\":\"\",\"data\":{}}", &out), INTEG_EINVAL);
    integ_session_close(se);
    integ_ctx_close(ctx);
}

static void test_library_put_paths(void)
{
    char v1[2048], v2[2048];
    library_on(1, v1, sizeof v1);
    CHECK(atomic_load(&n_put) > 0);
    CHECK(atomic_load(&n_put_fields) == 0);
    library_on(INTEG_STORE_VERSION, v2, sizeof v2);
    CHECK(atomic_load(&n_put) == 0);
    CHECK(atomic_load(&n_put_fields) > 0);
    CHECK(strstr(v1, "b@example.com") != NULL);
    /* the same record apart from its timestamps */
    CHECK(strstr(v2, "b@example.com") != NULL && strstr(v2, "\"version\":2") != NULL);
    CHECK(strstr(v1, "\"version\":2") != NULL);
}

int main(void)
{
    const integ_store *s = NULL;
    void *d = NULL;
    if (integ_store_sqlite_new(&s, &d, ":memory:") != INTEG_OK) {
        fprintf(stderr, "integ_store_sqlite_new: %s\n", integ_errmsg());
        return 1;
    }
    S = s;
    s->close(d);

    RUN(test_conformance_memory);
    RUN(test_conformance_file);
    RUN(test_new_arguments);
    RUN(test_schema_and_migrations);
    RUN(test_newer_schema_refused);
    RUN(test_migration_v1_to_v2);
    RUN(test_migration_v2_to_v3);
    RUN(test_pragmas);
    RUN(test_secure_delete);
    RUN(test_many_threads);
    RUN(test_memory_single_connection);
    RUN(test_snapshot_isolation);
    RUN(test_busy_is_conflict);
    RUN(test_corrupt_file);
    RUN(test_messages);
    RUN(test_not_tenant_scoped);
    RUN(test_write_in_read_tx);
    RUN(test_empty_blob);
    RUN(test_reentrant_callbacks);
    RUN(test_statement_cache);
    RUN(test_ne_null);
    RUN(test_pool_timeout);
    RUN(test_sqlite_failures);
    RUN(test_library_put_paths);
    RUN(test_background_checkpoints);
    tmp_remove_all();
    TEST_END();
}
