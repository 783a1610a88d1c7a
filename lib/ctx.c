/* The context: options, master key, store, lifetime; transactions and
 * sealing helpers shared by the other modules. */
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "crypto.h"
#include "ctx.h"
#include "store_schema.h"
#include "store_sqlite.h"
#include "definitions.h"
#include "engine.h"
#include "error.h"
#include "json.h"
#include "util.h"

#define NO_KEY_MSG                                                                               \
    "no master key: set the \"master_key\" or \"master_key_file\" option, or the "              \
    "INTEG_MASTER_KEY environment variable, to base64 of 32 random bytes (make one with "       \
    "integ_generate_master_key(), e.g. `integctl keygen`)"

INTEG_API const char *integ_version(void) { return INTEG_VERSION; }

INTEG_API void integ_free(void *p) { free(p); }

/* ---- options ---------------------------------------------------------- */

static int check_type(json_object *v, json_type t, const char *path, const char *what)
{
    if (v && !json_object_is_type(v, t))
        return ig_err(INTEG_EINVAL, "options.%s: must be %s", path, what);
    return INTEG_OK;
}

static int check_nonneg_int(json_object *parent, const char *key, const char *path)
{
    json_object *v = ig_json_get(parent, key);
    if (v && (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0))
        return ig_err(INTEG_EINVAL, "options.%s.%s: must be a non-negative integer", path, key);
    return INTEG_OK;
}

/* Validate the options object (types and known keys) so a typo fails at
 * open instead of being silently ignored. */
static int validate_options(json_object *o)
{
    static const char *const top[] = {"store", "master_key", "master_key_file", "adapters_dir",
                                      "http", "base_url_overrides", "webhook", "durability", NULL};
    static const char *const http[] = {"timeout_ms", "connect_timeout_ms", "max_retries", "ca_file",
                                       "proxy", "user_agent", "allow_private_networks", NULL};
    static const char *const webhook[] = {"base_url", "tolerance_s", "max_body_bytes", "max_attempts",
                                          "rotation_grace_s", "endpoint_cache_ms", NULL};
    static const char *const ovr[] = {"api", "authorize_url", "token_url", NULL};
    int rc = ig_json_check_keys(o, top, "options", "option");
    if (rc)
        return rc;
    const char *strs[] = {"store", "master_key", "master_key_file", "adapters_dir", "durability"};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        if ((rc = check_type(ig_json_get(o, strs[i]), json_type_string, strs[i], "a string")))
            return rc;
    const char *dur = ig_json_str(o, "durability");
    if (dur && strcmp(dur, "normal") != 0 && strcmp(dur, "full") != 0)
        return ig_err(INTEG_EINVAL, "options.durability: must be \"normal\" or \"full\", not \"%s\"", dur);
    json_object *h = ig_json_get(o, "http");
    if ((rc = check_type(h, json_type_object, "http", "an object")))
        return rc;
    if (h) {
        if ((rc = ig_json_check_keys(h, http, "options.http", "option")))
            return rc;
        const char *ints[] = {"timeout_ms", "connect_timeout_ms", "max_retries"};
        for (size_t i = 0; i < 3; i++)
            if ((rc = check_nonneg_int(h, ints[i], "http")))
                return rc;
        const char *hs[] = {"ca_file", "proxy", "user_agent"};
        for (size_t i = 0; i < 3; i++)
            if (ig_json_get(h, hs[i]) && !json_object_is_type(ig_json_get(h, hs[i]), json_type_string))
                return ig_err(INTEG_EINVAL, "options.http.%s: must be a string", hs[i]);
        json_object *apn = ig_json_get(h, "allow_private_networks");
        if (apn && !json_object_is_type(apn, json_type_boolean))
            return ig_err(INTEG_EINVAL, "options.http.allow_private_networks: must be a boolean");
    }
    json_object *w = ig_json_get(o, "webhook");
    if ((rc = check_type(w, json_type_object, "webhook", "an object")))
        return rc;
    if (w) {
        if ((rc = ig_json_check_keys(w, webhook, "options.webhook", "option")))
            return rc;
        if ((rc = check_nonneg_int(w, "tolerance_s", "webhook")) ||
            (rc = check_nonneg_int(w, "max_body_bytes", "webhook")) ||
            (rc = check_nonneg_int(w, "max_attempts", "webhook")) ||
            (rc = check_nonneg_int(w, "rotation_grace_s", "webhook")) ||
            (rc = check_nonneg_int(w, "endpoint_cache_ms", "webhook")))
            return rc;
        json_object *bu = ig_json_get(w, "base_url");
        if (bu && (!json_object_is_type(bu, json_type_string) ||
                   (strncmp(json_object_get_string(bu), "https://", 8) != 0 &&
                    strncmp(json_object_get_string(bu), "http://", 7) != 0)))
            return ig_err(INTEG_EINVAL, "options.webhook.base_url: must be an http(s) URL");
    }
    json_object *b = ig_json_get(o, "base_url_overrides");
    if ((rc = check_type(b, json_type_object, "base_url_overrides", "an object")))
        return rc;
    if (b) {
        ig_json_foreach(b, key, v)
        {
            char path[256];
            snprintf(path, sizeof path, "options.base_url_overrides.%s", key);
            if (json_object_is_type(v, json_type_string))
                continue;
            if (!json_object_is_type(v, json_type_object))
                return ig_err(INTEG_EINVAL, "%s: must be a URL string or an object", path);
            if ((rc = ig_json_check_keys(v, ovr, path, "option")))
                return rc;
            ig_json_foreach(v, k2, v2)
            {
                if (!json_object_is_type(v2, json_type_string))
                    return ig_err(INTEG_EINVAL, "%s.%s: must be a URL string", path, k2);
            }
        }
    }
    return INTEG_OK;
}

static int read_key_file(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ig_err(INTEG_EINVAL, "options.master_key_file: cannot open '%s'", path);
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    *out = strdup(buf);
    sodium_memzero(buf, sizeof buf);
    return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

static int load_master_key(integ_ctx *ctx)
{
    const char *inline_key = ig_json_str(ctx->options, "master_key");
    const char *file = ig_json_str(ctx->options, "master_key_file");
    const char *env = getenv("INTEG_MASTER_KEY");
    char *from_file = NULL;
    const char *text = NULL, *what = NULL;
    int rc;
    if (inline_key) {
        text = inline_key;
        what = "options.master_key";
    } else if (file) {
        if ((rc = read_key_file(file, &from_file)))
            return rc;
        text = from_file;
        what = "options.master_key_file";
    } else if (env && *env) {
        text = env;
        what = "INTEG_MASTER_KEY";
    } else {
        return ig_err(INTEG_EINVAL, NO_KEY_MSG);
    }
    ctx->mk = sodium_malloc(sizeof *ctx->mk);
    if (!ctx->mk) {
        ig_free_secret(from_file, from_file ? strlen(from_file) : 0);
        return ig_err(INTEG_ENOMEM, "out of memory for the master key");
    }
    rc = ig_master_key_from_b64(ctx->mk, text, what);
    ig_free_secret(from_file, from_file ? strlen(from_file) : 0);
    /* The key lives on only in sodium_malloc'd memory: its text leaves the
     * options (which live as long as the context), wiped. */
    if (inline_key) {
        json_object *k = json_object_get(ig_json_get(ctx->options, "master_key"));
        json_object_object_del(ctx->options, "master_key");
        ig_json_wipe_put(k);
    }
    return rc;
}

/* ---- lifetime --------------------------------------------------------- */

struct ig_bucket_entry {
    struct ig_bucket_entry *next;
    ig_bucket *bucket;
    char id[];
};

static void ctx_destroy(integ_ctx *ctx)
{
    ig_adapters_free(ctx);
    while (ctx->buckets) {
        struct ig_bucket_entry *e = ctx->buckets;
        ctx->buckets = e->next;
        ig_bucket_free(e->bucket);
        free(e);
    }
    ig_http_free(ctx->http);
    pthread_mutex_destroy(&ctx->http_lock);
    ig_wh_ingest_destroy(&ctx->ingest);
    ig_ep_cache_free(ctx->ep_cache);
    ig_def_cache_free(ctx->def_cache);
    if (ctx->store && ctx->store_data)
        ctx->store->close(ctx->store_data);
    if (ctx->mk)
        sodium_free(ctx->mk); /* zeroes the memory */
    json_object_put(ctx->options);
    pthread_rwlock_destroy(&ctx->key_lock);
    pthread_mutex_destroy(&ctx->cb_lock);
    sodium_memzero(ctx->id_key, sizeof ctx->id_key);
    free(ctx);
}

void ig_ctx_unref(integ_ctx *ctx)
{
    if (atomic_fetch_sub(&ctx->refs, 1) == 1)
        ctx_destroy(ctx);
}

static int ctx_new(integ_ctx **out, const char *options_json)
{
    *out = NULL;
    int rc = ig_global_init();
    if (rc)
        return rc;
    json_object *opts = NULL;
    if ((rc = ig_json_parse_object(options_json, "options_json", 1, &opts)))
        return rc;
    if ((rc = validate_options(opts))) {
        json_object_put(opts);
        return rc;
    }
    integ_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        json_object_put(opts);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    ctx->options = opts;
    pthread_rwlock_init(&ctx->key_lock, NULL);
    pthread_mutex_init(&ctx->cb_lock, NULL);
    pthread_mutex_init(&ctx->http_lock, NULL);
    ctx->clock = &ig_clock_system;
    atomic_init(&ctx->refs, 1);
    atomic_init(&ctx->closed, 0);
    atomic_init(&ctx->id_state, 0);
    randombytes_buf(ctx->id_key, sizeof ctx->id_key);
    if ((rc = ig_wh_ingest_init(&ctx->ingest)) || (rc = ig_ep_cache_new(&ctx->ep_cache)) ||
        (rc = ig_def_cache_new(&ctx->def_cache)) || (rc = load_master_key(ctx))) {
        ctx_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return INTEG_OK;
}

/* The store remembers which master key sealed its secrets (a sealed canary
 * and the key id), so a wrong key fails at open instead of at the first
 * credential use, hours later, in a sync. */
static int check_master_key(integ_ctx *ctx)
{
    static const char check_id[] = "master_key_check", canary[] = "integ-key-check";
    void *tx = NULL;
    json_object *rec = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_store_get(ctx, tx, INTEG_KIND_SETTING, NULL, check_id, &rec);
    if (rc == INTEG_ENOTFOUND) {
        char *sealed = NULL;
        rc = ig_seal(ctx->mk, NULL, check_id, "check", (const unsigned char *)canary,
                     sizeof canary - 1, &sealed);
        if (rc == INTEG_OK) {
            rec = json_object_new_object();
            json_object_object_add(rec, "id", json_object_new_string(check_id));
            json_object_object_add(rec, "key_id", json_object_new_string(ctx->mk->key_id));
            json_object_object_add(rec, "check_sealed", json_object_new_string(sealed));
            free(sealed);
            rc = ig_store_put(ctx, tx, INTEG_KIND_SETTING, rec, INTEG_PUT_INSERT);
        }
    } else if (rc == INTEG_OK) {
        const char *kid = ig_json_str(rec, "key_id");
        unsigned char *plain = NULL;
        size_t len = 0;
        if (!kid || strcmp(kid, ctx->mk->key_id) != 0)
            rc = ig_err(INTEG_ECRYPTO,
                        "master key: this store's secrets are sealed under master key id %s, but "
                        "the given key has id %s (wrong master key?)",
                        kid ? kid : "(unknown)", ctx->mk->key_id);
        else if ((rc = ig_open(ctx->mk, NULL, check_id, "check", ig_json_str(rec, "check_sealed"),
                               &plain, &len)) != INTEG_OK)
            ig_err_prefix(rc, "master key");
        ig_free_secret(plain, len);
    }
    json_object_put(rec);
    return ig_tx_end(ctx, tx, 1, rc);
}

/* Attach the store, create/migrate it and load the catalog. On failure the
 * store data is NOT closed (the caller still owns it). */
static int ctx_attach_store(integ_ctx *ctx, const integ_store *store, void *data)
{
    if (store->version < 1 || !store->open || !store->close || !store->begin || !store->end ||
        !store->put || !store->get || !store->list || !store->count || !store->remove ||
        !store->remove_where)
        return ig_err(INTEG_EINVAL, "store: vtable is incomplete or of an unknown version");
    /* Durability is the store's: the built-in one takes the option, a
     * host's store decides its own (an option it would ignore is refused). */
    const char *dur = ig_json_str(ctx->options, "durability");
    if (dur && !ig_sqlite_owns(store))
        return ig_err(INTEG_EINVAL, "options.durability: applies to the built-in SQLite store only (a host store "
                                    "decides its own durability)");
    if (dur && ig_sqlite_set_durability(data, !strcmp(dur, "full")))
        return INTEG_EINVAL;
    int rc = store->open(data);
    if (rc)
        return ig_err_prefix(rc, "store: open");
    ctx->store = store;
    ctx->store_data = data;
    rc = check_master_key(ctx);
    if (rc == INTEG_OK)
        rc = ig_definitions_load(ctx);
    if (rc) {
        ctx->store = NULL;
        ctx->store_data = NULL;
    }
    return rc;
}

INTEG_API int integ_ctx_open_with_store(integ_ctx **out, const integ_store *store, void *store_data,
                                        const char *options_json)
{
    ig_err_clear();
    IG_CHECK_ARG(out, "out");
    *out = NULL;
    IG_CHECK_ARG(store, "store");
    integ_ctx *ctx = NULL;
    int rc = ctx_new(&ctx, options_json);
    if (rc)
        return rc;
    if ((rc = ctx_attach_store(ctx, store, store_data))) {
        ctx_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return INTEG_OK;
}

INTEG_API int integ_ctx_open(integ_ctx **out, const char *options_json)
{
    ig_err_clear();
    IG_CHECK_ARG(out, "out");
    *out = NULL;
    integ_ctx *ctx = NULL;
    int rc = ctx_new(&ctx, options_json);
    if (rc)
        return rc;
    const char *spec = ig_json_str(ctx->options, "store");
    if (!spec)
        spec = "sqlite:./integrations.db";
    if (strncmp(spec, "sqlite:", 7) != 0 || !spec[7]) {
        /* spec lives in ctx->options: format the message before freeing it. */
        rc = ig_err(INTEG_EINVAL,
                    "options.store: unsupported store '%s' (use \"sqlite:PATH\" or \"sqlite::memory:\")",
                    spec);
        ctx_destroy(ctx);
        return rc;
    }
    const integ_store *st = NULL;
    void *data = NULL;
    if ((rc = integ_store_sqlite_new(&st, &data, spec + 7))) {
        ctx_destroy(ctx);
        return ig_err_prefix(rc, "options.store");
    }
    if ((rc = ctx_attach_store(ctx, st, data))) {
        st->close(data);
        ctx_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return INTEG_OK;
}

INTEG_API void integ_ctx_close(integ_ctx *ctx)
{
    if (!ctx)
        return;
    /* A second close of the same handle must not drop a session's reference. */
    if (atomic_exchange(&ctx->closed, 1))
        return;
    ig_ctx_unref(ctx);
}

INTEG_API int integ_ctx_set_permission_cb(integ_ctx *ctx, integ_permission_cb cb, void *payload)
{
    ig_err_clear();
    IG_CHECK_ARG(ctx, "ctx");
    pthread_mutex_lock(&ctx->cb_lock);
    ctx->perm_cb = cb;
    ctx->perm_payload = cb ? payload : NULL;
    pthread_mutex_unlock(&ctx->cb_lock);
    return INTEG_OK;
}

void ig_ctx_new_id(integ_ctx *ctx, char out[37], int64_t now_ms)
{
    ig_uuid7_next(&ctx->id_state, ctx->id_key, out, now_ms);
}

const ig_clock *ig_ctx_clock(integ_ctx *ctx) { return ctx->clock; }

int64_t ig_ctx_now_ms(integ_ctx *ctx) { return ctx->clock->now_ms(ctx->clock->payload); }

void ig_ctx_set_clock(integ_ctx *ctx, const ig_clock *clock)
{
    ctx->clock = clock ? clock : &ig_clock_system;
}

int ig_ctx_http(integ_ctx *ctx, ig_http **out)
{
    int rc = INTEG_OK;
    pthread_mutex_lock(&ctx->http_lock);
    if (!ctx->http) {
        ig_http_opts o;
        rc = ig_http_opts_from_json(ig_json_get(ctx->options, "http"), &o);
        if (rc == INTEG_OK) {
            o.clock = ctx->clock;
            rc = ig_http_new(&o, &ctx->http);
        }
    }
    *out = ctx->http;
    pthread_mutex_unlock(&ctx->http_lock);
    return rc;
}

int ig_ctx_bucket(integ_ctx *ctx, const char *integration_id, json_object *rate_limit, ig_bucket **out)
{
    int rc = INTEG_OK;
    pthread_mutex_lock(&ctx->http_lock);
    struct ig_bucket_entry *e = ctx->buckets;
    while (e && strcmp(e->id, integration_id) != 0)
        e = e->next;
    if (!e) {
        size_t n = strlen(integration_id) + 1;
        e = malloc(sizeof *e + n);
        if (!e) {
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        } else {
            memcpy(e->id, integration_id, n);
            rc = ig_bucket_new(rate_limit, ctx->clock->now_ms(ctx->clock->payload), &e->bucket);
            if (rc) {
                free(e);
                e = NULL;
            } else {
                e->next = ctx->buckets;
                ctx->buckets = e;
            }
        }
    }
    *out = e ? e->bucket : NULL;
    pthread_mutex_unlock(&ctx->http_lock);
    return rc;
}

INTEG_API int integ_ctx_set_event_cb(integ_ctx *ctx, integ_event_cb cb, void *payload)
{
    ig_err_clear();
    IG_CHECK_ARG(ctx, "ctx");
    pthread_mutex_lock(&ctx->cb_lock);
    ctx->event_cb = cb;
    ctx->event_payload = cb ? payload : NULL;
    pthread_mutex_unlock(&ctx->cb_lock);
    return INTEG_OK;
}

void ig_emit(integ_ctx *ctx, const char *type, json_object *fields)
{
    pthread_mutex_lock(&ctx->cb_lock);
    integ_event_cb cb = ctx->event_cb;
    void *payload = ctx->event_payload;
    pthread_mutex_unlock(&ctx->cb_lock);
    if (!cb)
        return;
    char at[32];
    ig_rfc3339(at, ctx->clock->now_ms(ctx->clock->payload), 0);
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "type", json_object_new_string(type));
    json_object_object_add(ev, "at", json_object_new_string(at));
    if (fields) {
        ig_json_foreach(fields, k, v)
        {
            json_object_object_add(ev, k, json_object_get(v));
        }
    }
    /* The callback runs with no library lock held and keeps no pointer. */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", ig_errmsg());
    cb(payload, json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN));
    integ_error_set(0, saved);
    json_object_put(ev);
}

/* ---- store helpers ---------------------------------------------------- */

int ig_tx_begin(integ_ctx *ctx, int write, void **tx)
{
    *tx = NULL;
    int rc = ctx->store->begin(ctx->store_data, write, tx);
    if (rc)
        return ig_err_prefix(rc, "store: begin");
    return INTEG_OK;
}

int ig_tx_end(integ_ctx *ctx, void *tx, int commit, int rc)
{
    if (!tx)
        return rc;
    if (rc != INTEG_OK || !commit) {
        /* Keep the original error message: roll back quietly. */
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", ig_errmsg());
        ctx->store->end(tx, 0);
        integ_error_set(rc, saved);
        return rc;
    }
    int erc = ctx->store->end(tx, 1);
    if (erc)
        return ig_err_prefix(erc, "store: commit");
    return INTEG_OK;
}

static int collect_one(void *payload, const char *json, size_t len, const unsigned char *blob,
                       size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    json_object **out = payload;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return INTEG_ENOMEM;
    *out = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    return *out ? 0 : INTEG_ESTORE;
}

int ig_store_get(integ_ctx *ctx, void *tx, integ_store_kind kind, const char *tenant_id,
                 const char *id, json_object **out)
{
    *out = NULL;
    int rc = ctx->store->get(tx, kind, tenant_id, id, collect_one, out);
    if (rc == INTEG_ESTORE && !*out)
        return ig_err(INTEG_ESTORE, "store: a stored record is not valid JSON");
    return rc;
}

int ig_integration_get(integ_ctx *ctx, void *tx, const char *tenant_id, const char *id,
                       json_object **out)
{
    int rc = ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, tenant_id, id, out);
    if (rc == INTEG_ENOTFOUND)
        return ig_err(rc, "integration '%s' not found", id);
    return rc;
}

int ig_integration_records(integ_ctx *ctx, const char *tenant_id, const char *integration_id,
                           integ_store_kind kind, json_object *q, json_object *rows)
{
    json_object *query = q ? json_object_get(q) : json_object_new_object(), *integ = NULL;
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK) {
        rc = ig_integration_get(ctx, tx, tenant_id, integration_id, &integ);
        if (rc == INTEG_OK) {
            json_object_object_add(query, "tenant_id", json_object_new_string(tenant_id));
            json_object_object_add(query, "integration_id", json_object_new_string(integration_id));
            rc = ig_store_list(ctx, tx, kind, query, rows);
        }
        rc = ig_tx_end(ctx, tx, 1, rc);
    }
    json_object_put(integ);
    json_object_put(query);
    return rc;
}

/* A list's rows, parsed with one tokener (reset per row) into arr. */
struct row_sink {
    json_object *arr;
    json_tokener *tok;
};

static int collect_many(void *payload, const char *json, size_t len, const unsigned char *blob,
                        size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    struct row_sink *sink = payload;
    json_tokener_reset(sink->tok);
    json_object *one = json_tokener_parse_ex(sink->tok, json, (int)len);
    if (!one)
        return INTEG_ESTORE;
    json_object_array_add(sink->arr, one);
    return 0;
}

int ig_store_list(integ_ctx *ctx, void *tx, integ_store_kind kind, json_object *query,
                  json_object *arr)
{
    struct row_sink sink = {arr, json_tokener_new()};
    if (!sink.tok)
        return ig_err(INTEG_ENOMEM, "out of memory");
    const char *q = query ? json_object_to_json_string_ext(query, JSON_C_TO_STRING_PLAIN) : NULL;
    int rc = ctx->store->list(tx, kind, q, collect_many, &sink);
    json_tokener_free(sink.tok);
    if (rc == INTEG_ESTORE && !*ig_errmsg())
        return ig_err(INTEG_ESTORE, "store: a stored record is not valid JSON");
    return rc;
}

int ig_store_put(integ_ctx *ctx, void *tx, integ_store_kind kind, json_object *rec,
                 integ_put_mode mode)
{
    return ig_store_put_blob(ctx, tx, kind, rec, NULL, 0, mode);
}

int ig_store_put_blob(integ_ctx *ctx, void *tx, integ_store_kind kind, json_object *rec,
                      const unsigned char *blob, size_t blob_len, integ_put_mode mode)
{
    /* Most records fit the stack; ig_json_write prints what json-c would,
     * a few times faster (a pull writes two records per remote record). */
    char stack[4096];
    ig_jbuf text = {stack, 0, sizeof stack, 0, 0};
    if (ig_json_write(rec, &text)) {
        ig_jbuf_free(&text);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    const integ_store *st = ctx->store;
    const table_spec *t = ig_store_spec(kind);
    int rc;
    if (st->version < 2 || !st->put_fields || !t) {
        rc = st->put(tx, kind, text.p, blob, blob_len, mode);
    } else {
        /* The record is already parsed here: the store gets its indexed
         * fields with the text instead of parsing the text again. */
        integ_store_field f[MAX_COLS];
        size_t n = 0;
        rc = ig_store_fields_from(t, rec, f, &n);
        if (rc == INTEG_OK)
            rc = st->put_fields(tx, kind, text.p, text.n, f, n, blob, blob_len, mode);
    }
    ig_jbuf_free(&text);
    return rc;
}

/* ---- put batches ------------------------------------------------------ */

struct batch_field {
    integ_field_type type;
    int64_t num;
    size_t off, len; /* a string's bytes in the buffer */
};

struct batch_put {
    integ_store_kind kind;
    integ_put_mode mode;
    size_t off, len;  /* the text in the buffer, NUL-terminated */
    size_t field0, n_fields;
};

struct ig_put_batch {
    ig_jbuf text;                 /* every text and string, on the heap */
    struct batch_put *puts;
    size_t n_puts, cap_puts;
    struct batch_field *fields;
    size_t n_fields, cap_fields;
};

ig_put_batch *ig_put_batch_new(void)
{
    return calloc(1, sizeof(ig_put_batch));
}

void ig_put_batch_reset(ig_put_batch *b)
{
    b->text.n = 0;
    b->n_puts = 0;
    b->n_fields = 0;
}

void ig_put_batch_free(ig_put_batch *b)
{
    if (!b)
        return;
    ig_jbuf_free(&b->text);
    free(b->puts);
    free(b->fields);
    free(b);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap * 2 : 64;
    while (cap2 < need)
        cap2 *= 2;
    void *q = realloc(*p, cap2 * size);
    if (!q)
        return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

/* Append a put entry whose text is already in the buffer from `off`, and
 * copies of its fields' strings. */
static int batch_entry(ig_put_batch *b, integ_store_kind kind, integ_put_mode mode, size_t off,
                       const integ_store_field *f, size_t n)
{
    if (grow((void **)&b->puts, &b->cap_puts, b->n_puts + 1, sizeof *b->puts) ||
        grow((void **)&b->fields, &b->cap_fields, b->n_fields + n, sizeof *b->fields))
        return ig_err(INTEG_ENOMEM, "out of memory");
    struct batch_put *p = &b->puts[b->n_puts];
    p->kind = kind;
    p->mode = mode;
    p->off = off;
    p->len = b->text.n - off;
    if (ig_jbuf_put(&b->text, "", 0)) /* NUL-terminated (jb_put writes one) */
        return ig_err(INTEG_ENOMEM, "out of memory");
    b->text.n++; /* past its NUL */
    p->field0 = b->n_fields;
    p->n_fields = n;
    for (size_t i = 0; i < n; i++) {
        struct batch_field *bf = &b->fields[b->n_fields + i];
        bf->type = f[i].type;
        bf->num = f[i].num;
        bf->off = b->text.n;
        bf->len = f[i].str_len;
        if (f[i].type == INTEG_FIELD_STRING) {
            if (ig_jbuf_put(&b->text, f[i].str, f[i].str_len))
                return ig_err(INTEG_ENOMEM, "out of memory");
            b->text.n++; /* past its NUL */
        }
    }
    b->n_fields += n;
    b->n_puts++;
    return INTEG_OK;
}

static int batch_fielded(integ_ctx *ctx, integ_store_kind kind)
{
    return ig_store_spec(kind) && ctx->store->version >= 2 && ctx->store->put_fields;
}

int ig_put_batch_add(integ_ctx *ctx, ig_put_batch *b, integ_store_kind kind, json_object *rec, integ_put_mode mode)
{
    integ_store_field f[MAX_COLS];
    size_t n = 0;
    if (batch_fielded(ctx, kind)) {
        int rc = ig_store_fields_from(ig_store_spec(kind), rec, f, &n);
        if (rc)
            return rc;
    }
    size_t off = b->text.n;
    if (ig_json_write(rec, &b->text))
        return ig_err(INTEG_ENOMEM, "out of memory");
    return batch_entry(b, kind, mode, off, f, n);
}

ig_jbuf *ig_put_batch_text(ig_put_batch *b, size_t *start)
{
    *start = b->text.n;
    return &b->text;
}

int ig_put_batch_add_written(integ_ctx *ctx, ig_put_batch *b, integ_store_kind kind, size_t start,
                             const integ_store_field *f, size_t n, integ_put_mode mode)
{
    return batch_entry(b, kind, mode, start, f, batch_fielded(ctx, kind) ? n : 0);
}

int ig_put_batch_run(integ_ctx *ctx, void *tx, const ig_put_batch *b)
{
    const integ_store *st = ctx->store;
    int rc = INTEG_OK;
    for (size_t i = 0; rc == INTEG_OK && i < b->n_puts; i++) {
        const struct batch_put *p = &b->puts[i];
        const char *text = b->text.p + p->off;
        if (!p->n_fields) {
            rc = st->put(tx, p->kind, text, NULL, 0, p->mode);
            continue;
        }
        integ_store_field f[MAX_COLS];
        for (size_t k = 0; k < p->n_fields; k++) {
            const struct batch_field *bf = &b->fields[p->field0 + k];
            f[k].type = bf->type;
            f[k].num = bf->num;
            f[k].str = bf->type == INTEG_FIELD_STRING ? b->text.p + bf->off : NULL;
            f[k].str_len = bf->len;
        }
        rc = st->put_fields(tx, p->kind, text, p->len, f, p->n_fields, NULL, 0, p->mode);
    }
    return rc;
}

/* ---- sealing ---------------------------------------------------------- */

int ig_ctx_seal(integ_ctx *ctx, const char *tenant_id, const char *object_id, const char *purpose,
                const char *plain, size_t len, char **out)
{
    pthread_rwlock_rdlock(&ctx->key_lock);
    int rc = ig_seal(ctx->mk, tenant_id, object_id, purpose, (const unsigned char *)plain, len, out);
    pthread_rwlock_unlock(&ctx->key_lock);
    return rc;
}

int ig_ctx_open_sealed(integ_ctx *ctx, const char *tenant_id, const char *object_id,
                       const char *purpose, const char *sealed, char **out, size_t *out_len)
{
    pthread_rwlock_rdlock(&ctx->key_lock);
    int rc = ig_open(ctx->mk, tenant_id, object_id, purpose, sealed, (unsigned char **)out, out_len);
    pthread_rwlock_unlock(&ctx->key_lock);
    return rc;
}

/* ---- master key rotation ---------------------------------------------- */

static const size_t SEALED_SUFFIX_LEN = 7; /* "_sealed" */

static int is_sealed_field(const char *k)
{
    size_t n = strlen(k);
    return n > SEALED_SUFFIX_LEN && strcmp(k + n - SEALED_SUFFIX_LEN, "_sealed") == 0;
}

/* Re-seal every "<purpose>_sealed" field of one record. */
static int reseal_record(json_object *rec, const ig_master_key *old_mk, const ig_master_key *new_mk,
                         int *changed)
{
    const char *tenant = ig_json_str(rec, "tenant_id");
    const char *id = ig_json_str(rec, "id");
    if (!id)
        return INTEG_OK;
    ig_json_foreach(rec, k, v)
    {
        if (!is_sealed_field(k) || !json_object_is_type(v, json_type_string))
            continue;
        char purpose[128];
        size_t plen = strlen(k) - SEALED_SUFFIX_LEN;
        if (plen >= sizeof purpose)
            continue;
        memcpy(purpose, k, plen);
        purpose[plen] = '\0';
        unsigned char *plain = NULL;
        size_t len = 0;
        int rc = ig_open(old_mk, tenant, id, purpose, json_object_get_string(v), &plain, &len);
        if (rc)
            return ig_err_prefix(rc, id);
        char *sealed = NULL;
        rc = ig_seal(new_mk, tenant, id, purpose, plain, len, &sealed);
        ig_free_secret(plain, len);
        if (rc)
            return rc;
        json_object_object_add(rec, k, json_object_new_string(sealed));
        free(sealed);
        *changed = 1;
    }
    return INTEG_OK;
}

INTEG_API int integ_ctx_rotate_master_key(integ_ctx *ctx, const char *new_key_b64)
{
    ig_err_clear();
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(new_key_b64, "new_key_b64");
    ig_master_key *nk = sodium_malloc(sizeof *nk);
    if (!nk)
        return ig_err(INTEG_ENOMEM, "out of memory");
    int rc = ig_master_key_from_b64(nk, new_key_b64, "new_key_b64");
    if (rc) {
        sodium_free(nk);
        return rc;
    }
    /* Hold the key exclusively for the whole transaction so no record is
     * sealed under the old key after we have read it. */
    pthread_rwlock_wrlock(&ctx->key_lock);
    void *tx = NULL;
    int64_t total = 0;
    rc = ig_tx_begin(ctx, 1, &tx);
    for (int kind = 1; rc == INTEG_OK && kind < INTEG_KIND_END; kind++) {
        json_object *rows = json_object_new_array();
        rc = ig_store_list(ctx, tx, (integ_store_kind)kind, NULL, rows);
        size_t n = ig_json_len(rows);
        for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
            json_object *rec = json_object_array_get_idx(rows, i);
            int changed = 0;
            rc = reseal_record(rec, ctx->mk, nk, &changed);
            if (kind == INTEG_KIND_SETTING && ig_json_get(rec, "key_id"))
                json_object_object_add(rec, "key_id", json_object_new_string(nk->key_id));
            if (rc == INTEG_OK && changed) {
                rc = ig_store_put(ctx, tx, (integ_store_kind)kind, rec, INTEG_PUT_UPDATE);
                total++;
            }
        }
        json_object_put(rows);
    }
    if (rc == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "records", json_object_new_int64(total));
        json_object_object_add(d, "old_key_id", json_object_new_string(ctx->mk->key_id));
        json_object_object_add(d, "new_key_id", json_object_new_string(nk->key_id));
        rc = ig_audit(ctx, tx, NULL, NULL, "master_key.rotate", "master_key", nk->key_id, d);
        json_object_put(d);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    if (rc == INTEG_OK) {
        sodium_free(ctx->mk);
        ctx->mk = nk;
    } else {
        sodium_free(nk);
    }
    pthread_rwlock_unlock(&ctx->key_lock);
    if (rc == INTEG_OK)
        ig_ep_cache_changed(ctx->ep_cache); /* cached endpoints hold secrets sealed under the old key */
    return rc;
}
