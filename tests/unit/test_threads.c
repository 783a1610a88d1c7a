/* One context, many threads: creates and lists at once, exact counts. */
#include <json-c/json.h>
#include <pthread.h>
#include <unistd.h>

#include "test.h"

#define PER_THREAD 40

struct worker {
    integ_ctx *ctx;
    char tenant[32];
    int failures;
    int max_seen;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    integ_session *s = NULL;
    if (integ_session_open(&s, w->ctx, w->tenant, "worker", "[\"admin\"]") != INTEG_OK) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < PER_THREAD; i++) {
        char req[256], *out = NULL;
        snprintf(req, sizeof req,
                 "{\"integration_definition_id\":\"hubspot-crm\",\"name\":\"n-%d\",\"credentials\":{\"api_key\":\"k-%d\"}}",
                 i, i);
        if (integ_integration_create(s, req, &out) != INTEG_OK) {
            fprintf(stderr, "  create failed: %s\n", integ_errmsg());
            w->failures++;
            continue;
        }
        integ_free(out);
        if (integ_integrations_list(s, "{\"limit\":1000}", &out) != INTEG_OK) {
            fprintf(stderr, "  list failed: %s\n", integ_errmsg());
            w->failures++;
            continue;
        }
        json_object *l = json_tokener_parse(out);
        int n = (int)json_object_array_length(l);
        /* A tenant sees only its own rows, and all of them (read-your-writes). */
        if (n != i + 1)
            w->failures++;
        for (int k = 0; k < n; k++)
            if (strcmp(json_object_get_string(json_object_object_get(json_object_array_get_idx(l, k), "tenant_id")), w->tenant))
                w->failures++;
        json_object_put(l);
        integ_free(out);
        if (integ_definitions_list(w->ctx, "{\"category\":\"crm\"}", &out) != INTEG_OK)
            w->failures++;
        integ_free(out);
    }
    integ_session_close(s);
    return NULL;
}

static void run_threads(const char *opts, int nthreads)
{
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, opts));
    if (!ctx)
        return;
    pthread_t th[16];
    struct worker w[16];
    for (int i = 0; i < nthreads; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].ctx = ctx;
        snprintf(w[i].tenant, sizeof w[i].tenant, "tenant-%d", i);
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].failures == 0);
    }
    /* Every create is in the audit trail exactly once. */
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_session_open(&s, ctx, "tenant-0", "u", NULL));
    CHECK_OK(integ_audit_list(s, "{\"action\":\"integration.create\",\"limit\":1000}", &out));
    json_object *l = json_tokener_parse(out);
    CHECK(json_object_array_length(l) == PER_THREAD);
    json_object_put(l);
    integ_free(out);
    integ_session_close(s);
    integ_ctx_close(ctx);
}

static void test_two_threads_memory(void)
{
    run_threads("{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}", 2);
}

static char dbpath[64];

static void remove_db(void)
{
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
}

static void test_threads_file(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/integ-threads-%d.db", (int)getpid());
    remove_db();
    char opts[200];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"}", dbpath);
    run_threads(opts, 2);
    remove_db();
    run_threads(opts, 8);
    remove_db();
}

/* Two contexts (as two processes would) on the same file. */
static void *open_and_create(void *arg)
{
    const char *opts = arg;
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    intptr_t fails = 0;
    if (integ_ctx_open(&ctx, opts) != INTEG_OK) {
        fprintf(stderr, "  open failed: %s\n", integ_errmsg());
        return (void *)1;
    }
    integ_session_open(&s, ctx, "shared", "u", "[\"admin\"]");
    for (int i = 0; i < 25; i++) {
        char *out = NULL;
        if (integ_integration_create(s, "{\"integration_definition_id\":\"visma-erp\",\"credentials\":{\"client_id\":\"a\",\"client_secret\":\"b\"}}", &out) != INTEG_OK) {
            fprintf(stderr, "  create failed: %s\n", integ_errmsg());
            fails++;
        }
        integ_free(out);
    }
    integ_session_close(s);
    integ_ctx_close(ctx);
    return (void *)fails;
}

static void test_two_contexts_one_file(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/integ-threads2-%d.db", (int)getpid());
    remove_db();
    char opts[200];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"}", dbpath);
    pthread_t a, b;
    void *ra, *rb;
    pthread_create(&a, NULL, open_and_create, opts);
    pthread_create(&b, NULL, open_and_create, opts);
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    CHECK(ra == NULL && rb == NULL);
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_ctx_open(&ctx, opts));
    CHECK_OK(integ_session_open(&s, ctx, "shared", "u", NULL));
    CHECK_OK(integ_integrations_list(s, "{\"limit\":1000}", &out));
    json_object *l = json_tokener_parse(out);
    CHECK(json_object_array_length(l) == 50);
    json_object_put(l);
    integ_free(out);
    integ_session_close(s);
    integ_ctx_close(ctx);
    remove_db();
}

/* The context handle closed on one thread while another still works
 * through its session. */
static void *use_session(void *arg)
{
    integ_session *s = arg;
    intptr_t fails = 0;
    for (int i = 0; i < 50; i++) {
        char *out = NULL;
        if (integ_integrations_list(s, NULL, &out) != INTEG_OK)
            fails++;
        integ_free(out);
    }
    integ_session_close(s);
    return (void *)fails;
}

static void test_close_ctx_while_session_in_use(void)
{
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    CHECK_OK(integ_session_open(&s, ctx, "t", "u", NULL));
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, use_session, s);
    integ_ctx_close(ctx);
    pthread_join(t, &r);
    CHECK(r == NULL);
}

int main(void)
{
    RUN(test_two_threads_memory);
    RUN(test_threads_file);
    RUN(test_two_contexts_one_file);
    RUN(test_close_ctx_while_session_in_use);
    TEST_END();
}
