/* The SQLite store's inbox (lib/store_inbox.c): on a file database with
 * durability "normal", a received event is appended to `<db>-inbox` and
 * moved into webhook_events when a transaction begins, when enough have
 * gathered, or when the store closes.
 *
 * Asserted here: a 202'd event is visible to the next read (in the same or
 * another context), duplicates stay exact while events wait in the inbox
 * (within one context and across two on the same file), events survive a
 * process that dies without closing (a torn record after them is dropped),
 * a move repeated after a crash changes nothing, receiving does not wait
 * for the database's write lock, the appender moves a full inbox, "full"
 * durability bypasses it, and an empty inbox is removed at close even
 * while another context still has the old file open. */
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <mbedtls/md.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"
#include "store_inbox.h"
#include "test.h"

#define SECRET "shpss_inbox_test_secret"
#define BODY "{\"id\":42,\"note\":\"inbox\"}"

static char dbpath[256], inboxpath[272];
static char ep_id[128];

static void rm_db(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal", "-inbox"};
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
}

static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

static integ_ctx *ctx_open(const char *durability)
{
    char opts[512];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"%s%s%s}", dbpath,
             durability ? ",\"durability\":\"" : "", durability ? durability : "", durability ? "\"" : "");
    integ_ctx *ctx = NULL;
    if (integ_ctx_open(&ctx, opts) != INTEG_OK) {
        fprintf(stderr, "  open: %s\n", integ_errmsg());
        return NULL;
    }
    return ctx;
}

/* A Shopify integration and endpoint (ep_id) in dbpath's database; the
 * context that made them is closed again. */
static void setup_at(const char *path)
{
    snprintf(dbpath, sizeof dbpath, "%s", path);
    snprintf(inboxpath, sizeof inboxpath, "%s-inbox", dbpath);
    integ_ctx *ctx = ctx_open(NULL);
    CHECK(ctx != NULL);
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]"));
    CHECK_OK(integ_integration_create(s,
                                      "{\"integration_definition_id\":\"shopify-ecommerce\",\"credentials\":{\"api_key\":"
                                      "\"x\"},\"config\":{\"shop\":\"acme.myshopify.com\"}}",
                                      &out));
    json_object *o = json_tokener_parse(out);
    char integ_id[64];
    snprintf(integ_id, sizeof integ_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    CHECK_OK(integ_webhook_endpoint_create(s, integ_id, "{\"secret\":\"" SECRET "\"}", &out));
    o = json_tokener_parse(out);
    snprintf(ep_id, sizeof ep_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    integ_session_close(s);
    integ_ctx_close(ctx);
}

/* A fresh file (in the working directory) set up as above. */
static void setup(void)
{
    char path[64];
    snprintf(path, sizeof path, "integ-inbox-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    setup_at(path);
}

/* One signed Shopify delivery with X-Shopify-Webhook-Id `wid`: the HTTP
 * status the library answers (0 when the call failed). */
static int receive(integ_ctx *ctx, const char *wid)
{
    unsigned char mac[32];
    char sig[64];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)SECRET, strlen(SECRET),
                    (const unsigned char *)BODY, strlen(BODY), mac);
    sodium_bin2base64(sig, sizeof sig, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    const char *names[] = {"X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id", "Content-Type"};
    const char *values[] = {sig, "orders/create", wid, "application/json"};
    char *ob = NULL;
    int status = 0;
    int rc = integ_webhook_receive(ctx, ep_id, "POST", "https://app.example.com/hooks/x", names, values, 4,
                                   (const unsigned char *)BODY, strlen(BODY), &status, &ob);
    if (rc != INTEG_OK)
        fprintf(stderr, "  receive %s: %s\n", wid, integ_errmsg());
    integ_free(ob);
    return rc == INTEG_OK ? status : 0;
}

/* Size of the inbox file; -1 when there is none. */
static long inbox_size(void)
{
    struct stat st;
    return stat(inboxpath, &st) == 0 ? (long)st.st_size : -1;
}

/* Rows in webhook_events, read with SQLite directly (no transaction of the
 * library's: nothing is moved by looking). */
static long table_rows(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM webhook_events", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The tenant's events through the library (a transaction: moves first). */
static json_object *events(integ_ctx *ctx)
{
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]"));
    CHECK_OK(integ_webhook_events_list(s, "{\"limit\":1000}", &out));
    json_object *arr = json_tokener_parse(out ? out : "[]");
    integ_free(out);
    integ_session_close(s);
    return arr;
}

static int count_with(json_object *arr, const char *k, const char *v)
{
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *x = jstr(json_object_array_get_idx(arr, i), k);
        n += x && !strcmp(x, v);
    }
    return n;
}

static void test_visible_after_receive(void)
{
    setup();
    integ_ctx *ctx = ctx_open(NULL);
    CHECK(receive(ctx, "wid-a") == 202);
    CHECK(receive(ctx, "wid-b") == 202);
    CHECK(receive(ctx, "wid-c") == 202);
    /* Accepted into the inbox, not yet into the table. */
    CHECK(inbox_size() > 0);
    CHECK(table_rows() == 0);
    json_object *arr = events(ctx);
    CHECK(json_object_array_length(arr) == 3);
    CHECK(count_with(arr, "event_id", "wid-b") == 1);
    CHECK(count_with(arr, "status", "queued") == 3);
    json_object_put(arr);
    CHECK(inbox_size() == 0);
    CHECK(table_rows() == 3);
    integ_ctx_close(ctx);
    /* An empty inbox goes at close, as SQLite's -wal does. */
    CHECK(inbox_size() == -1);
    rm_db();
}

static void test_duplicates_exact(void)
{
    setup();
    integ_ctx *ctx = ctx_open(NULL);
    CHECK(receive(ctx, "wid-dup") == 202);
    /* The first copy waits in the inbox: still a duplicate. */
    CHECK(receive(ctx, "wid-dup") == 200);
    CHECK(receive(ctx, "wid-other") == 202);
    json_object *arr = events(ctx);
    CHECK(json_object_array_length(arr) == 2);
    json_object_put(arr);
    /* Now in the table: still a duplicate, and nothing new in the inbox. */
    CHECK(receive(ctx, "wid-dup") == 200);
    CHECK(inbox_size() == 0);
    integ_ctx_close(ctx);
    CHECK(table_rows() == 2);
    rm_db();
}

static void test_two_contexts(void)
{
    setup();
    integ_ctx *a = ctx_open(NULL), *b = ctx_open(NULL);
    CHECK(a && b);
    CHECK(receive(a, "wid-x") == 202);
    /* B has no key of A's in memory: it moves A's record first and the
     * table answers. */
    CHECK(receive(b, "wid-x") == 200);
    CHECK(receive(b, "wid-y") == 202);
    CHECK(receive(a, "wid-y") == 200);
    CHECK(receive(a, "wid-z") == 202);
    /* B reads what A received. */
    json_object *arr = events(b);
    CHECK(json_object_array_length(arr) == 3);
    CHECK(count_with(arr, "event_id", "wid-x") == 1);
    CHECK(count_with(arr, "event_id", "wid-y") == 1);
    CHECK(count_with(arr, "event_id", "wid-z") == 1);
    json_object_put(arr);
    integ_ctx_close(a);
    integ_ctx_close(b);
    CHECK(table_rows() == 3);
    rm_db();
}

/* A child receives n events and dies without closing its context. */
static void crash_after_receiving(int n)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        integ_ctx *ctx = ctx_open(NULL);
        int ok = ctx != NULL;
        for (int i = 0; ok && i < n; i++) {
            char wid[32];
            snprintf(wid, sizeof wid, "wid-crash-%d", i);
            ok = receive(ctx, wid) == 202;
        }
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static void write_file(const char *path, const unsigned char *buf, size_t len, const char *mode)
{
    FILE *f = fopen(path, mode);
    CHECK(f != NULL);
    CHECK(fwrite(buf, 1, len, f) == len);
    fclose(f);
}

static void test_crash_recovery(void)
{
    setup();
    crash_after_receiving(5);
    CHECK(table_rows() == 0);
    size_t len = 0;
    unsigned char *saved = read_file(inboxpath, &len);
    CHECK(saved && len > 0);
    /* A torn record after them: what a power loss mid-append leaves. */
    const unsigned char torn[] = {0x49, 0x47, 0x42, 0x31, 0x40, 0, 0, 0, 0x10, 0, 0, 0, 1, 2, 3};
    write_file(inboxpath, torn, sizeof torn, "ab");

    integ_ctx *ctx = ctx_open(NULL);
    json_object *arr = events(ctx);
    CHECK(json_object_array_length(arr) == 5);
    CHECK(count_with(arr, "event_id", "wid-crash-4") == 1);
    CHECK(inbox_size() == 0);
    /* Accepted before the crash: a duplicate now. */
    CHECK(receive(ctx, "wid-crash-2") == 200);

    /* One event changes state; then the same records reappear, as after a
     * crash between a move's commit and its truncate. */
    const char *id0 = jstr(json_object_array_get_idx(arr, 0), "id");
    void *tx = NULL;
    json_object *rec = NULL;
    CHECK_OK(ig_tx_begin(ctx, 1, &tx));
    CHECK_OK(ig_store_get(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, NULL, id0, &rec));
    json_object_object_add(rec, "status", json_object_new_string("dead"));
    CHECK_OK(ig_tx_end(ctx, tx, 1, ig_store_put(ctx, tx, INTEG_KIND_WEBHOOK_EVENT, rec, INTEG_PUT_UPDATE)));
    json_object_put(rec);
    write_file(inboxpath, saved, len, "ab");
    /* The repeated move skips every record; the call's message stays its own. */
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_session_open(&s, ctx, "acme", "alice", "[\"admin\"]"));
    CHECK_OK(integ_webhook_events_list(s, NULL, &out));
    CHECK_STR(integ_errmsg(), "");
    integ_free(out);
    integ_session_close(s);
    json_object *again = events(ctx);
    CHECK(json_object_array_length(again) == 5);
    CHECK(count_with(again, "status", "dead") == 1);
    CHECK(inbox_size() == 0);
    json_object_put(again);
    json_object_put(arr);
    free(saved);
    integ_ctx_close(ctx);
    CHECK(table_rows() == 5);
    rm_db();
}

static void test_receive_while_database_locked(void)
{
    setup();
    integ_ctx *ctx = ctx_open(NULL), *other = ctx_open(NULL);
    CHECK(receive(ctx, "wid-before") == 202);
    json_object_put(events(ctx)); /* table and inbox settled */
    /* Another process holds the database's write lock. */
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    for (int i = 0; i < 3; i++) {
        char wid[32];
        snprintf(wid, sizeof wid, "wid-locked-%d", i);
        CHECK(receive(ctx, wid) == 202);
    }
    CHECK(receive(ctx, "wid-locked-1") == 200);
    /* A second context too, though the first one's records are in the file
     * (it reads their keys instead of moving them). */
    CHECK(receive(other, "wid-locked-2") == 200);
    CHECK(receive(other, "wid-locked-3") == 202);
    CHECK(receive(ctx, "wid-locked-3") == 200);
    /* A read meanwhile is not held up by the move it cannot make: it sees
     * the queue as committed, and the events wait in the inbox. */
    json_object *during = events(ctx);
    CHECK(json_object_array_length(during) == 1);
    json_object_put(during);
    CHECK(inbox_size() > 0);
    CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    /* Readers skip the move for a moment after it found the database busy
     * (IG_INBOX_RETRY_MS); a writer's transaction moves them at once. */
    void *tx = NULL;
    CHECK_OK(ig_tx_begin(ctx, 1, &tx));
    CHECK_OK(ig_tx_end(ctx, tx, 0, INTEG_OK));
    CHECK(inbox_size() == 0);
    integ_ctx_close(other);
    json_object *arr = events(ctx);
    CHECK(json_object_array_length(arr) == 5);
    json_object_put(arr);
    integ_ctx_close(ctx);
    rm_db();
}

static void test_full_inbox_moved_by_appender(void)
{
    setup();
    integ_ctx *ctx = ctx_open(NULL);
    for (int i = 0; i < IG_INBOX_MOVE_EVENTS - 1; i++) {
        char wid[32];
        snprintf(wid, sizeof wid, "wid-many-%d", i);
        CHECK(receive(ctx, wid) == 202);
    }
    CHECK(table_rows() == 0);
    CHECK(receive(ctx, "wid-many-last") == 202);
    /* The appender that filled it moved it. */
    CHECK(table_rows() == IG_INBOX_MOVE_EVENTS);
    CHECK(inbox_size() == 0);
    CHECK(receive(ctx, "wid-many-7") == 200);
    integ_ctx_close(ctx);
    rm_db();
}

static void test_full_durability_commits(void)
{
    setup();
    integ_ctx *ctx = ctx_open("full");
    CHECK(receive(ctx, "wid-full") == 202);
    /* A 202 under "full" is a synced commit: in the table at once. */
    CHECK(table_rows() == 1);
    CHECK(inbox_size() <= 0);
    CHECK(receive(ctx, "wid-full") == 200);
    integ_ctx_close(ctx);
    rm_db();
}

static void test_removed_inbox_reopened(void)
{
    setup();
    integ_ctx *a = ctx_open(NULL), *b = ctx_open(NULL);
    /* B closes with the inbox empty and removes it; A still holds the old
     * file, and must append to a new one that others can see. */
    integ_ctx_close(b);
    CHECK(inbox_size() == -1);
    CHECK(receive(a, "wid-after-remove") == 202);
    CHECK(inbox_size() > 0);
    integ_ctx *c = ctx_open(NULL);
    json_object *arr = events(c);
    CHECK(json_object_array_length(arr) == 1);
    CHECK(count_with(arr, "event_id", "wid-after-remove") == 1);
    json_object_put(arr);
    CHECK(receive(a, "wid-after-remove") == 200);
    integ_ctx_close(c);
    integ_ctx_close(a);
    CHECK(table_rows() == 1);
    CHECK(inbox_size() == -1);
    rm_db();
}

/* Durability "full" commits (no append), but under the inbox's lock: a
 * "normal" context on the same file never takes the same delivery. */
struct racer {
    integ_ctx *ctx;
    int n;
    int accepted[300];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < r->n; i++) {
        char wid[32];
        snprintf(wid, sizeof wid, "wid-race-%d", i);
        r->accepted[i] = receive(r->ctx, wid) == 202;
    }
    return NULL;
}

static void test_mixed_durability(void)
{
    setup();
    integ_ctx *normal = ctx_open(NULL), *full = ctx_open("full");
    CHECK(normal && full);
    CHECK(receive(normal, "wid-n") == 202);
    CHECK(receive(full, "wid-n") == 200);
    CHECK(receive(full, "wid-f") == 202);
    CHECK(receive(normal, "wid-f") == 200);
    /* The same deliveries to both at once: each accepted exactly once. */
    struct racer a = {normal, 300, {0}}, b = {full, 300, {0}};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int twice = 0, never = 0;
    for (int i = 0; i < 300; i++) {
        twice += a.accepted[i] && b.accepted[i];
        never += !a.accepted[i] && !b.accepted[i];
    }
    CHECK(twice == 0);
    CHECK(never == 0);
    integ_ctx_close(full);
    integ_ctx_close(normal);
    CHECK(table_rows() == 302);
    rm_db();
}

/* The inbox belongs to the database file, whatever path reached it: a
 * relative path resolved in another directory, or a symbolic link. */
static void test_paths(void)
{
    char top[] = "/tmp/integ-inbox-paths-XXXXXX", here[1024];
    CHECK(mkdtemp(top) != NULL);
    CHECK(getcwd(here, sizeof here) != NULL);
    char d1[96], d2[96], p1[128], p2[128];
    snprintf(d1, sizeof d1, "%s/one", top);
    snprintf(d2, sizeof d2, "%s/two", top);
    CHECK(mkdir(d1, 0700) == 0 && mkdir(d2, 0700) == 0);
    snprintf(p1, sizeof p1, "%s/hooks.db", d1);
    snprintf(p2, sizeof p2, "%s/hooks.db", d2);
    setup_at(p1);
    char ep1[128];
    snprintf(ep1, sizeof ep1, "%s", ep_id);
    setup_at(p2);

    /* Two contexts opened as "hooks.db" in two directories. */
    CHECK(chdir(d1) == 0);
    snprintf(dbpath, sizeof dbpath, "hooks.db");
    integ_ctx *one = ctx_open(NULL);
    CHECK(chdir(d2) == 0);
    integ_ctx *two = ctx_open(NULL);
    for (int i = 0; i < 3; i++) {
        char wid[32];
        snprintf(wid, sizeof wid, "wid-two-%d", i);
        CHECK(receive(two, wid) == 202);
    }
    /* Closing the first (its inbox empty) removes its own inbox only. */
    integ_ctx_close(one);
    snprintf(inboxpath, sizeof inboxpath, "%s-inbox", p2);
    CHECK(inbox_size() > 0);
    json_object *arr = events(two);
    CHECK(json_object_array_length(arr) == 3);
    json_object_put(arr);
    CHECK(chdir(here) == 0);

    /* A symbolic link to the second file: the same inbox. */
    char link[128];
    snprintf(link, sizeof link, "%s/link.db", top);
    CHECK(symlink(p2, link) == 0);
    snprintf(dbpath, sizeof dbpath, "%s", link);
    integ_ctx *via_link = ctx_open(NULL);
    CHECK(receive(via_link, "wid-link") == 202);
    CHECK(receive(two, "wid-link") == 200);
    integ_ctx_close(via_link);
    integ_ctx_close(two);
    snprintf(dbpath, sizeof dbpath, "%s", p2);
    CHECK(table_rows() == 4);
    unlink(link);
    snprintf(dbpath, sizeof dbpath, "%s", p1);
    rm_db();
    snprintf(dbpath, sizeof dbpath, "%s", p2);
    rm_db();
    (void)ep1;
    rmdir(d1);
    rmdir(d2);
    rmdir(top);
}

/* The inbox gets the database file's mode (SQLite's -wal does too), so
 * whoever may open the database may open it. */
static void test_inbox_mode(void)
{
    setup();
    mode_t old = umask(022);
    CHECK(chmod(dbpath, 0666) == 0);
    integ_ctx *a = ctx_open(NULL), *b = ctx_open(NULL);
    struct stat st;
    CHECK(stat(inboxpath, &st) == 0);
    CHECK((st.st_mode & 0777) == 0666);
    /* Removed by b's close, made again by a: the same mode. */
    integ_ctx_close(b);
    CHECK(inbox_size() == -1);
    CHECK(receive(a, "wid-mode") == 202);
    CHECK(stat(inboxpath, &st) == 0);
    CHECK((st.st_mode & 0777) == 0666);
    integ_ctx_close(a);
    umask(old);
    rm_db();
}

/* A writer whose move waits for a database another process holds must
 * not hold receiving up: the move takes the database first and the
 * inbox's locks only after it. */
struct writer {
    integ_ctx *ctx;
    atomic_int done;
    int rc;
};

static void *begin_write(void *arg)
{
    struct writer *w = arg;
    void *tx = NULL;
    w->rc = ig_tx_begin(w->ctx, 1, &tx);
    if (w->rc == INTEG_OK)
        w->rc = ig_tx_end(w->ctx, tx, 0, INTEG_OK);
    atomic_store(&w->done, 1);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_receiving_not_held_by_a_waiting_move(void)
{
    setup();
    integ_ctx *ctx = ctx_open(NULL);
    CHECK(receive(ctx, "wid-pending") == 202); /* the inbox is not empty */
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    struct writer w = {ctx, 0, -1};
    pthread_t t;
    pthread_create(&t, NULL, begin_write, &w);
    for (int i = 0; i < 50 && !atomic_load(&w.done); i++)
        usleep(2000); /* let it reach the locked database */
    /* Its move waits up to the busy timeout (5 s); receiving does not. */
    double t0 = now_s();
    CHECK(receive(ctx, "wid-meanwhile") == 202);
    CHECK(now_s() - t0 < 2.0);
    CHECK(!atomic_load(&w.done));
    CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    pthread_join(t, NULL);
    CHECK_OK(w.rc);
    json_object *arr = events(ctx);
    CHECK(json_object_array_length(arr) == 2);
    json_object_put(arr);
    integ_ctx_close(ctx);
    rm_db();
}

/* ig_inbox itself, over the real store of a context on the same file:
 * what the store can never take is refused before a 202, and a record it
 * refuses anyway is set aside (never dropped) while the others move. */
static int t_stored(void *arg, const char *ep, const char *ev, int *found)
{
    (void)arg;
    (void)ep;
    (void)ev;
    *found = 0;
    return INTEG_OK;
}
static int t_begin(void *arg, int timeout_ms, void **tx)
{
    (void)arg;
    (void)timeout_ms;
    *tx = NULL;
    return integ_error_set(INTEG_ESTORE, "this inbox never moves");
}
static int t_insert(void *arg, void *tx, ig_inbox_rec *recs, size_t n, int strict)
{
    (void)arg;
    (void)tx;
    (void)recs;
    (void)n;
    (void)strict;
    return INTEG_ESTORE;
}
static int t_end(void *arg, void *tx, int commit)
{
    (void)arg;
    (void)tx;
    (void)commit;
    return INTEG_ESTORE;
}
static int t_self(void *arg)
{
    (void)arg;
    return 0;
}

static void test_refused_records(void)
{
    setup();
    ig_inbox_ops ops = {NULL, t_stored, t_begin, t_insert, t_end, t_self, 1000, 5000};
    ig_inbox *raw = NULL;
    CHECK_OK(ig_inbox_open(dbpath, &ops, &raw));
    char big[6000];
    memset(big, 'x', sizeof big);
    ig_inbox_rec too_big = {.json = "{}", .json_len = 2, .blob = (unsigned char *)big, .blob_len = sizeof big};
    CHECK_RC(ig_inbox_put(raw, &too_big, 1, 0), INTEG_EINVAL);
    CHECK_MSG("too large");
    CHECK(inbox_size() == 0);
    /* A record no table takes (not a JSON object), between two good ones. */
    integ_ctx *ctx = ctx_open(NULL);
    CHECK(receive(ctx, "wid-before-poison") == 202);
    ig_inbox_rec poison = {.json = "[1,2]", .json_len = 5, .blob = (unsigned char *)"x", .blob_len = 1};
    CHECK_OK(ig_inbox_put(raw, &poison, 1, 0));
    CHECK(receive(ctx, "wid-after-poison") == 202);
    json_object *arr = events(ctx);
    CHECK(json_object_array_length(arr) == 2);
    json_object_put(arr);
    CHECK(inbox_size() == 0);
    char rej[300];
    snprintf(rej, sizeof rej, "%s-rejected", inboxpath);
    struct stat st;
    CHECK(stat(rej, &st) == 0 && st.st_size == 24 + 5 + 1);
    CHECK(receive(ctx, "wid-later") == 202);
    ig_inbox_close(raw);
    integ_ctx_close(ctx);
    CHECK(table_rows() == 3);
    unlink(rej);
    rm_db();
}

/* A host store whose store_data is 8 bytes (a pointer to the real
 * store): receiving must not read it as the SQLite store's (under ASan a
 * read past those 8 bytes is reported). It forwards to a SQLite store. */
struct real {
    const integ_store *in;
    void *data;
};
struct tiny {
    struct real *r;
};
#define REAL(d) (((struct tiny *)(d))->r)
static int h_open(void *d) { return REAL(d)->in->open(REAL(d)->data); }
static void h_close(void *d)
{
    struct real *r = REAL(d);
    r->in->close(r->data);
    free(r);
    free(d);
}
static int h_begin(void *d, int write, void **tx) { return REAL(d)->in->begin(REAL(d)->data, write, tx); }
static const integ_store *h_in;
static int h_end(void *tx, int commit) { return h_in->end(tx, commit); }
static int h_put(void *tx, integ_store_kind k, const char *json, const unsigned char *blob, size_t blob_len,
                 integ_put_mode mode)
{
    return h_in->put(tx, k, json, blob, blob_len, mode);
}
static int h_get(void *tx, integ_store_kind k, const char *tenant, const char *id, integ_store_row_cb cb, void *p)
{
    return h_in->get(tx, k, tenant, id, cb, p);
}
static int h_list(void *tx, integ_store_kind k, const char *q, integ_store_row_cb cb, void *p)
{
    return h_in->list(tx, k, q, cb, p);
}
static int h_count(void *tx, integ_store_kind k, const char *q, int64_t *out) { return h_in->count(tx, k, q, out); }
static int h_remove(void *tx, integ_store_kind k, const char *tenant, const char *id)
{
    return h_in->remove(tx, k, tenant, id);
}
static int h_remove_where(void *tx, integ_store_kind k, const char *q, int64_t *out)
{
    return h_in->remove_where(tx, k, q, out);
}
static const integ_store host_store = {
    .version = 1,
    .name = "host",
    .open = h_open,
    .close = h_close,
    .begin = h_begin,
    .end = h_end,
    .put = h_put,
    .get = h_get,
    .list = h_list,
    .count = h_count,
    .remove = h_remove,
    .remove_where = h_remove_where,
};

static void test_host_store_not_read_as_sqlite(void)
{
    setup();
    struct real *r = calloc(1, sizeof *r);
    struct tiny *t = malloc(sizeof *t);
    CHECK(r && t);
    t->r = r;
    CHECK_OK(integ_store_sqlite_new(&r->in, &r->data, dbpath));
    h_in = r->in;
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open_with_store(&ctx, &host_store, t, "{\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    /* Not the SQLite vtable: no inbox, one transaction per event. */
    CHECK(receive(ctx, "wid-host") == 202);
    CHECK(receive(ctx, "wid-host") == 200);
    CHECK(table_rows() == 1);
    integ_ctx_close(ctx);
    rm_db();
}

int main(void)
{
    RUN(test_visible_after_receive);
    RUN(test_duplicates_exact);
    RUN(test_two_contexts);
    RUN(test_crash_recovery);
    RUN(test_receive_while_database_locked);
    RUN(test_full_inbox_moved_by_appender);
    RUN(test_full_durability_commits);
    RUN(test_removed_inbox_reopened);
    RUN(test_mixed_durability);
    RUN(test_paths);
    RUN(test_inbox_mode);
    RUN(test_receiving_not_held_by_a_waiting_move);
    RUN(test_refused_records);
    RUN(test_host_store_not_read_as_sqlite);
    TEST_END();
}
