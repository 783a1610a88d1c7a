/* The webhook endpoint cache (lib/endpoint_cache.c) as receiving sees it:
 * a change made through the same context is seen by the next delivery; a
 * change made through another context (another process, in production)
 * within webhook.endpoint_cache_ms; with 0 at once; and receivers on many
 * threads share snapshots while the endpoint is changed under them. */
#include <json-c/json.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <unistd.h>

#include "ctx.h"
#include "test.h"

#define SECRET "shpss_cache_test_secret"
#define BODY "{\"id\":7,\"note\":\"cache\"}"

static char dbpath[64], ep_id[128];

/* A clock the test moves: cache expiry follows the context's clock. */
static _Atomic int64_t fake_now = 1750000000000;
static int64_t fk_now(void *p) { (void)p; return atomic_load(&fake_now); }
static void fk_sleep(void *p, int64_t ms) { (void)p; atomic_fetch_add(&fake_now, ms); }
static uint32_t fk_rand(void *p) { (void)p; return 0x40000000u; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};

static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

static integ_ctx *open_ctx(const char *webhook_opts)
{
    char opts[512];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"" TEST_MASTER_KEY "\"%s%s}", dbpath,
             webhook_opts ? ",\"webhook\":" : "", webhook_opts ? webhook_opts : "");
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, opts));
    if (ctx)
        ig_ctx_set_clock(ctx, &fake_clock);
    return ctx;
}

/* A fresh file with a Shopify integration and endpoint made through `ctx`. */
static int setup(integ_ctx *ctx, integ_session **s)
{
    char *out = NULL;
    if (integ_session_open(s, ctx, "acme", "alice", "[\"admin\"]") != INTEG_OK ||
        integ_integration_create(*s,
                                 "{\"integration_definition_id\":\"shopify-ecommerce\",\"credentials\":{\"api_key\":\"x\"},"
                                 "\"config\":{\"shop\":\"acme.myshopify.com\"}}",
                                 &out) != INTEG_OK)
        return -1;
    json_object *o = json_tokener_parse(out);
    char integ_id[64];
    snprintf(integ_id, sizeof integ_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    if (integ_webhook_endpoint_create(*s, integ_id, "{\"secret\":\"" SECRET "\"}", &out) != INTEG_OK)
        return -1;
    o = json_tokener_parse(out);
    snprintf(ep_id, sizeof ep_id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    return 0;
}

static atomic_long seq;

/* The status of one delivery signed with `secret` (a fresh delivery id each). */
static int deliver(integ_ctx *ctx, const char *secret)
{
    unsigned char mac[32];
    char sig[64], wid[48];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)BODY, strlen(BODY));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(sig, sizeof sig, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    snprintf(wid, sizeof wid, "c0ffee-%ld", atomic_fetch_add(&seq, 1));
    const char *names[] = {"X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id"};
    const char *values[] = {sig, "orders/create", wid};
    int status = 0;
    char *ob = NULL;
    integ_webhook_receive(ctx, ep_id, "POST", "https://app.example.com/hooks/x", names, values, 3,
                          (const unsigned char *)BODY, strlen(BODY), &status, &ob);
    integ_free(ob);
    return status;
}

static void set_active(integ_session *s, int on)
{
    char *out = NULL;
    CHECK_OK(integ_webhook_endpoint_update(s, ep_id, on ? "{\"active\":true}" : "{\"active\":false}", &out));
    integ_free(out);
}

static void fresh_db(void)
{
    snprintf(dbpath, sizeof dbpath, "integ-epcache-XXXXXX");
    int fd = mkstemp(dbpath);
    if (fd >= 0)
        close(fd);
}

static void rm_db(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
}

/* A fresh file, a context with the default cache, and the endpoint. */
static integ_ctx *fresh_env(integ_session **s)
{
    fresh_db();
    integ_ctx *a = open_ctx(NULL);
    if (!a || setup(a, s)) {
        CHECK(!"setup");
        integ_session_close(*s);
        integ_ctx_close(a);
        rm_db();
        return NULL;
    }
    return a;
}

static void test_own_changes_at_once(void)
{
    integ_session *s = NULL;
    integ_ctx *a = fresh_env(&s);
    if (!a)
        return;
    CHECK(deliver(a, SECRET) == 202); /* cached from here on */
    set_active(s, 0);
    CHECK(deliver(a, SECRET) == 404);
    set_active(s, 1);
    CHECK(deliver(a, SECRET) == 202);
    /* a new secret verifies at once; the old one during the grace */
    char *out = NULL;
    CHECK_OK(integ_webhook_endpoint_update(s, ep_id, "{\"secret\":\"shpss_the_next_secret\"}", &out));
    integ_free(out);
    CHECK(deliver(a, "shpss_the_next_secret") == 202);
    CHECK(deliver(a, SECRET) == 202);
    CHECK(deliver(a, "shpss_never_set") == 401);
    CHECK_OK(integ_webhook_endpoint_delete(s, ep_id));
    CHECK(deliver(a, SECRET) == 404);
    integ_session_close(s);
    integ_ctx_close(a);
    rm_db();
}

static void test_other_context_within_ttl(void)
{
    fresh_db();
    integ_ctx *a = open_ctx("{\"endpoint_cache_ms\":5000}"), *b = open_ctx(NULL), *c = open_ctx("{\"endpoint_cache_ms\":0}");
    integ_session *sb = NULL;
    if (!a || !b || !c || setup(b, &sb)) {
        CHECK(!"setup");
        integ_ctx_close(a);
        integ_ctx_close(b);
        integ_ctx_close(c);
        return;
    }
    CHECK(deliver(a, SECRET) == 202);
    CHECK(deliver(c, SECRET) == 202);
    set_active(sb, 0); /* through b: a and c learn it from the store */
    CHECK(deliver(c, SECRET) == 404);            /* no cache: at once */
    CHECK(deliver(a, SECRET) == 202);            /* a's snapshot is 0 ms old */
    atomic_fetch_add(&fake_now, 4999);
    CHECK(deliver(a, SECRET) == 202);            /* still within 5 s */
    atomic_fetch_add(&fake_now, 2);
    CHECK(deliver(a, SECRET) == 404);            /* expired: reread */
    set_active(sb, 1);
    atomic_fetch_add(&fake_now, 5001);
    CHECK(deliver(a, SECRET) == 202);
    /* a clock that goes back never keeps a snapshot alive */
    set_active(sb, 0);
    atomic_fetch_sub(&fake_now, 60000);
    CHECK(deliver(a, SECRET) == 404);
    integ_session_close(sb);
    integ_ctx_close(a);
    integ_ctx_close(b);
    integ_ctx_close(c);
    rm_db();
}

/* The snapshot keeps the endpoint's secrets opened, but whether the
 * previous one still verifies is decided per delivery: its grace period
 * ends on time even while the snapshot is cached. */
static void test_grace_ends_within_ttl(void)
{
    fresh_db();
    integ_ctx *a = open_ctx("{\"endpoint_cache_ms\":3600000,\"rotation_grace_s\":60}");
    integ_session *s = NULL;
    if (!a || setup(a, &s)) {
        CHECK(!"setup");
        integ_session_close(s);
        integ_ctx_close(a);
        rm_db();
        return;
    }
    char *out = NULL;
    CHECK_OK(integ_webhook_endpoint_update(s, ep_id, "{\"secret\":\"shpss_the_next_secret\"}", &out));
    integ_free(out);
    CHECK(deliver(a, SECRET) == 202); /* loaded and cached here, both secrets opened */
    CHECK(deliver(a, "shpss_the_next_secret") == 202);
    atomic_fetch_add(&fake_now, 59000);
    CHECK(deliver(a, SECRET) == 202); /* 59 s into the 60 s grace */
    atomic_fetch_add(&fake_now, 2000);
    CHECK(deliver(a, SECRET) == 401); /* past it, same snapshot */
    CHECK_MSG("signature");
    CHECK(deliver(a, "shpss_the_next_secret") == 202);
    integ_session_close(s);
    integ_ctx_close(a);
    rm_db();
}

struct worker {
    integ_ctx *ctx;
    int n, ok, gone, other;
};

static void *receiver(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        int st = deliver(w->ctx, SECRET);
        if (st == 202)
            w->ok++;
        else if (st == 404)
            w->gone++;
        else
            w->other++;
    }
    return NULL;
}

/* Snapshots are shared and replaced while receivers use them (ASan in CI). */
static void test_threads_share_snapshots(void)
{
    integ_session *s = NULL;
    integ_ctx *a = fresh_env(&s);
    if (!a)
        return;
    enum { T = 4 };
    struct worker w[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){a, 150, 0, 0, 0};
        pthread_create(&th[i], NULL, receiver, &w[i]);
    }
    for (int i = 0; i < 40; i++) {
        set_active(s, i % 2);
        atomic_fetch_add(&fake_now, 700); /* and expiries */
    }
    set_active(s, 1);
    int ok = 0, gone = 0, other = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        gone += w[i].gone;
        other += w[i].other;
    }
    CHECK(other == 0);
    CHECK(ok + gone == T * 150);
    CHECK(deliver(a, SECRET) == 202);
    /* every 202 is one stored event */
    char *out = NULL;
    CHECK_OK(integ_webhook_events_list(s, "{\"limit\":10000}", &out));
    json_object *l = out ? json_tokener_parse(out) : NULL;
    CHECK((int)json_object_array_length(l) == ok + 1);
    json_object_put(l);
    integ_free(out);
    integ_session_close(s);
    integ_ctx_close(a);
    rm_db();
}

static void test_option_checked(void)
{
    integ_ctx *ctx = NULL;
    CHECK_RC(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY
                                  "\",\"webhook\":{\"endpoint_cache_ms\":-1}}"),
             INTEG_EINVAL);
    CHECK_MSG("endpoint_cache_ms");
}

int main(void)
{
    RUN(test_own_changes_at_once);
    RUN(test_other_context_within_ttl);
    RUN(test_grace_ends_within_ttl);
    RUN(test_threads_share_snapshots);
    RUN(test_option_checked);
    TEST_END();
}
