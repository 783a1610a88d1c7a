/* Secrets at rest: never in the files, bound to tenant and row, rotation. */
#include <json-c/json.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "json.h"
#include "test.h"

#define SECRET "pat-na1-KNOWN-SECRET-7f3a9c"
#define KEY_B "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="

static char dbpath[64];

static void make_path(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/integ-secrets-%d.db", (int)getpid());
}

static void remove_db(void)
{
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
}

static int open_file(integ_ctx **ctx, const char *key)
{
    char opts[256];
    snprintf(opts, sizeof opts, "{\"store\":\"sqlite:%s\",\"master_key\":\"%s\"}", dbpath, key);
    return integ_ctx_open(ctx, opts);
}

/* 1 when `needle` occurs in the file's bytes. */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    size_t nl = strlen(needle);
    int found = 0;
    for (size_t i = 0; !found && i + nl <= got; i++)
        found = memcmp(buf + i, needle, nl) == 0;
    free(buf);
    return found;
}

static char *create_one(integ_ctx *ctx, const char *tenant, const char *secret)
{
    integ_session *s = NULL;
    CHECK_OK(integ_session_open(&s, ctx, tenant, "u", "[\"admin\"]"));
    char req[512], *out = NULL;
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"hubspot-crm\",\"credentials\":{\"api_key\":\"%s\"}}", secret);
    CHECK_OK(integ_integration_create(s, req, &out));
    json_object *o = json_tokener_parse(out);
    char *id = strdup(json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    integ_session_close(s);
    return id;
}

static void test_secret_not_in_files(void)
{
    remove_db();
    integ_ctx *ctx = NULL;
    CHECK_OK(open_file(&ctx, TEST_MASTER_KEY));
    char *id = create_one(ctx, "t1", SECRET);
    CHECK_OK(integ_definition_set_app_credentials(ctx, "hubspot-crm",
                                                  "{\"client_id\":\"c\",\"client_secret\":\"APP-" SECRET "\"}"));
    /* While open: the WAL holds the recent writes. */
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    CHECK(!file_contains(dbpath, SECRET));
    CHECK(!file_contains(wal, SECRET));
    CHECK(!file_contains(dbpath, TEST_MASTER_KEY));
    CHECK(!file_contains(wal, TEST_MASTER_KEY));
    /* The record is really there (the scan would find plain text). */
    CHECK(file_contains(dbpath, id) || file_contains(wal, id));
    integ_ctx_close(ctx);
    CHECK(!file_contains(dbpath, SECRET));
    CHECK(!file_contains(wal, SECRET));
    free(id);
}

static void test_wrong_master_key(void)
{
    integ_ctx *ctx = NULL;
    CHECK_RC(open_file(&ctx, KEY_B), INTEG_ECRYPTO);
    CHECK(ctx == NULL);
    CHECK_MSG("master key");
    CHECK_OK(open_file(&ctx, TEST_MASTER_KEY));
    integ_ctx_close(ctx);
}

static json_object *load_record(integ_ctx *ctx, integ_store_kind kind, const char *id)
{
    void *tx = NULL;
    json_object *rec = NULL;
    CHECK_OK(ig_tx_begin(ctx, 0, &tx));
    CHECK_OK(ig_store_get(ctx, tx, kind, NULL, id, &rec));
    ig_tx_end(ctx, tx, 1, 0);
    return rec;
}

static void store_record(integ_ctx *ctx, integ_store_kind kind, json_object *rec)
{
    void *tx = NULL;
    CHECK_OK(ig_tx_begin(ctx, 1, &tx));
    CHECK_OK(ig_tx_end(ctx, tx, 1, ig_store_put(ctx, tx, kind, rec, INTEG_PUT_UPDATE)));
}

static int open_credentials(integ_ctx *ctx, json_object *rec)
{
    char *plain = NULL;
    size_t len = 0;
    int rc = ig_ctx_open_sealed(ctx, json_object_get_string(json_object_object_get(rec, "tenant_id")),
                                json_object_get_string(json_object_object_get(rec, "id")), "credentials",
                                json_object_get_string(json_object_object_get(rec, "credentials_sealed")),
                                &plain, &len);
    if (rc == INTEG_OK) {
        CHECK(strstr(plain, "api_key") != NULL);
        free(plain);
    }
    return rc;
}

static void test_tampered_and_moved(void)
{
    integ_ctx *ctx = NULL;
    CHECK_OK(integ_ctx_open(&ctx, "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\"}"));
    char *a = create_one(ctx, "t1", "secret-a");
    char *b = create_one(ctx, "t1", "secret-b");
    char *c = create_one(ctx, "t2", "secret-c");
    json_object *ra = load_record(ctx, INTEG_KIND_INTEGRATION, a);
    json_object *rb = load_record(ctx, INTEG_KIND_INTEGRATION, b);
    json_object *rc_ = load_record(ctx, INTEG_KIND_INTEGRATION, c);
    CHECK_OK(open_credentials(ctx, ra));
    /* Moved to another row of the same tenant. */
    json_object_object_add(rb, "credentials_sealed", json_object_get(json_object_object_get(ra, "credentials_sealed")));
    CHECK_RC(open_credentials(ctx, rb), INTEG_ECRYPTO);
    /* Moved to another tenant's row. */
    json_object_object_add(rc_, "credentials_sealed", json_object_get(json_object_object_get(ra, "credentials_sealed")));
    CHECK_RC(open_credentials(ctx, rc_), INTEG_ECRYPTO);
    /* Tampered: one character of the ciphertext changed. */
    char *t = strdup(json_object_get_string(json_object_object_get(ra, "credentials_sealed")));
    size_t n = strlen(t);
    t[n / 2] = t[n / 2] == 'x' ? 'y' : 'x';
    json_object_object_add(ra, "credentials_sealed", json_object_new_string(t));
    free(t);
    CHECK_RC(open_credentials(ctx, ra), INTEG_ECRYPTO);
    /* Rotation refuses a store holding a bad ciphertext, and changes nothing. */
    store_record(ctx, INTEG_KIND_INTEGRATION, rb);
    CHECK_RC(integ_ctx_rotate_master_key(ctx, KEY_B), INTEG_ECRYPTO);
    CHECK_MSG(b);
    json_object *again = load_record(ctx, INTEG_KIND_INTEGRATION, a);
    CHECK_OK(open_credentials(ctx, again));
    json_object_put(again);
    json_object_put(ra);
    json_object_put(rb);
    json_object_put(rc_);
    free(a);
    free(b);
    free(c);
    integ_ctx_close(ctx);
}

static void test_rotate_master_key(void)
{
    remove_db();
    integ_ctx *ctx = NULL;
    CHECK_OK(open_file(&ctx, TEST_MASTER_KEY));
    char *a = create_one(ctx, "t1", "secret-a");
    char *b = create_one(ctx, "t2", "secret-b");
    CHECK_OK(integ_definition_set_app_credentials(ctx, "visma-erp", "{\"client_id\":\"c\",\"client_secret\":\"s\"}"));
    json_object *before = load_record(ctx, INTEG_KIND_INTEGRATION, a);
    CHECK_RC(integ_ctx_rotate_master_key(ctx, "short"), INTEG_EINVAL);
    CHECK_MSG("new_key_b64");
    CHECK_OK(integ_ctx_rotate_master_key(ctx, KEY_B));
    json_object *after = load_record(ctx, INTEG_KIND_INTEGRATION, a);
    CHECK(strcmp(json_object_get_string(json_object_object_get(before, "credentials_sealed")),
                 json_object_get_string(json_object_object_get(after, "credentials_sealed"))) != 0);
    CHECK_OK(open_credentials(ctx, after));
    json_object *rb = load_record(ctx, INTEG_KIND_INTEGRATION, b);
    CHECK_OK(open_credentials(ctx, rb));
    json_object_put(rb);
    json_object_put(before);
    json_object_put(after);
    /* Sessions keep working with the new key; new secrets use it. */
    char *c = create_one(ctx, "t1", "secret-c");
    integ_ctx_close(ctx);
    /* The old key no longer opens the store; the new one does. */
    CHECK_RC(open_file(&ctx, TEST_MASTER_KEY), INTEG_ECRYPTO);
    CHECK_OK(open_file(&ctx, KEY_B));
    json_object *rc_ = load_record(ctx, INTEG_KIND_INTEGRATION, c);
    CHECK_OK(open_credentials(ctx, rc_));
    json_object_put(rc_);
    /* The rotation is audited at platform level (not visible to tenants). */
    integ_session *s = NULL;
    char *out = NULL;
    CHECK_OK(integ_session_open(&s, ctx, "t1", "u", NULL));
    CHECK_OK(integ_audit_list(s, "{\"action\":\"master_key.rotate\"}", &out));
    CHECK_STR(out, "[]");
    integ_free(out);
    integ_session_close(s);
    integ_ctx_close(ctx);
    free(a);
    free(b);
    free(c);
    remove_db();
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ig_json_wipe_put zeroes the print buffer of every value inside, not only
 * the top one's: json-c gives each object its own buffer when it is
 * serialised on its own (ig_oauth_seal_into does that with a nested
 * credentials object), and frees it as is. The values are kept alive with
 * extra references so their buffers can be read after the wipe. */
static void test_wipe_nested_print_buffers(void)
{
    json_object *top = json_tokener_parse("{\"name\":\"n\",\"credentials\":{\"api_key\":\"" SECRET "\","
                                          "\"url\":\"https://x/" SECRET "\",\"list\":[\"" SECRET "\","
                                          "{\"deep\":\"" SECRET "\"}]}}");
    CHECK(top != NULL);
    if (!top)
        return;
    json_object *creds = json_object_object_get(top, "credentials");
    json_object *list = json_object_object_get(creds, "list");
    json_object *deep = json_object_array_get_idx(list, 1);
    json_object *url = json_object_object_get(creds, "url");
    struct {
        json_object *o;
        int flags;
        const char *buf;
        size_t len;
    } held[] = {
        {top, JSON_C_TO_STRING_PLAIN, NULL, 0},
        {creds, JSON_C_TO_STRING_PLAIN, NULL, 0},  /* as ig_oauth_seal_into */
        {list, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_PRETTY, NULL, 0}, /* longer than plain */
        {deep, JSON_C_TO_STRING_SPACED, NULL, 0},
        {url, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, NULL, 0},
    };
    size_t n = sizeof held / sizeof *held;
    for (size_t i = 0; i < n; i++) {
        held[i].buf = json_object_to_json_string_length(held[i].o, held[i].flags, &held[i].len);
        CHECK(held[i].buf && strstr(held[i].buf, SECRET));
        json_object_get(held[i].o);
    }
    json_object *key = json_object_get(json_object_object_get(creds, "api_key"));
    ig_json_wipe_put(top);
    for (size_t i = 0; i < n; i++) {
        /* The whole earlier serialisation, also past a shorter rewrite. */
        if (!all_zero(held[i].buf, held[i].len))
            fprintf(stderr, "  print buffer %zu still holds: %.*s\n", i, (int)held[i].len, held[i].buf);
        CHECK(all_zero(held[i].buf, held[i].len));
    }
    CHECK(all_zero(json_object_get_string(key), strlen(SECRET)));
    json_object_put(key);
    for (size_t i = n; i-- > 0;)
        json_object_put(held[i].o);
}

int main(void)
{
    make_path();
    RUN(test_secret_not_in_files);
    RUN(test_wrong_master_key);
    RUN(test_tampered_and_moved);
    RUN(test_rotate_master_key);
    RUN(test_wipe_nested_print_buffers);
    remove_db();
    TEST_END();
}
