/* The catalog: built-in manifests, adapters_dir, registration, app credentials. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "definitions.h"
#include "error.h"
#include "json.h"
#include "manifest.h"
#include "sha256.h"
#include "util.h"

static const char *const CATEGORIES[] = {"erp", "crm", "accounting", "ecommerce", "email",
                                         "storage", "communication", NULL};

static int looks_like_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* The store call that finds one definition, by id or by key: its row (at
 * most one) goes to cb. */
static int definition_find(integ_ctx *ctx, void *tx, const char *key_or_id, integ_store_row_cb cb, void *payload)
{
    if (looks_like_uuid(key_or_id))
        return ctx->store->get(tx, INTEG_KIND_DEFINITION, NULL, key_or_id, cb, payload);
    json_object *q = json_object_new_object();
    json_object_object_add(q, "key", json_object_new_string(key_or_id));
    int rc = ctx->store->list(tx, INTEG_KIND_DEFINITION, json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN), cb,
                              payload);
    json_object_put(q);
    return rc;
}

static int definition_not_found(const char *key_or_id)
{
    return ig_err(INTEG_ENOTFOUND, "integration definition '%s' not found", key_or_id);
}

static int collect_parsed(void *payload, const char *json, size_t len, const unsigned char *blob, size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    json_object **out = payload;
    if (!*out)
        *out = ig_json_parse_len(json, len);
    return *out ? INTEG_OK : INTEG_ESTORE;
}

int ig_definition_lookup(integ_ctx *ctx, void *tx, const char *key_or_id, json_object **out)
{
    *out = NULL;
    int rc = definition_find(ctx, tx, key_or_id, collect_parsed, out);
    if (rc == INTEG_ESTORE && !*out)
        return ig_err(INTEG_ESTORE, "store: a stored record is not valid JSON");
    if (rc == INTEG_ENOTFOUND || (rc == INTEG_OK && !*out))
        return definition_not_found(key_or_id);
    return rc;
}

/* Insert or replace the stored record for a validated manifest, keeping the
 * id, creation time and app credentials of an existing one. Unchanged
 * manifests are not rewritten (every process opening the store loads the
 * catalog). */
static int upsert_manifest(integ_ctx *ctx, void *tx, json_object *manifest, const char *source,
                           json_object **out_rec)
{
    const char *key = ig_json_str(manifest, "key");
    json_object *old = NULL;
    int rc = ig_definition_lookup(ctx, tx, key, &old);
    if (rc && rc != INTEG_ENOTFOUND)
        return rc;
    /* A built-in only fills in or updates its own record: a definition that
     * a host registered or an adapters_dir file provided stays (precedence:
     * doc/manifest.md). A record without a source predates sources. */
    const char *old_source = old ? ig_json_str(old, "source") : NULL;
    int keep = old && !strcmp(source, "builtin") && old_source && strcmp(old_source, "builtin") != 0;
    if (old && (keep || json_object_equal(ig_json_get(old, "manifest"), manifest))) {
        if (out_rec)
            *out_rec = old;
        else
            json_object_put(old);
        return INTEG_OK;
    }
    char id[37], now[32];
    int64_t ms = ig_now_ms();
    ig_rfc3339(now, ms, 0);
    json_object *rec = json_object_new_object();
    if (old) {
        json_object_object_add(rec, "id", json_object_get(ig_json_get(old, "id")));
    } else {
        ig_ctx_new_id(ctx, id, ms);
        json_object_object_add(rec, "id", json_object_new_string(id));
    }
    json_object_object_add(rec, "key", json_object_new_string(key));
    json_object_object_add(rec, "category", json_object_get(ig_json_get(manifest, "category")));
    json_object_object_add(rec, "source", json_object_new_string(source));
    json_object_object_add(rec, "manifest", json_object_get(manifest));
    if (old && ig_json_get(old, "app_credentials_sealed"))
        json_object_object_add(rec, "app_credentials_sealed",
                               json_object_get(ig_json_get(old, "app_credentials_sealed")));
    json_object_object_add(rec, "created_at",
                           old ? json_object_get(ig_json_get(old, "created_at")) : json_object_new_string(now));
    json_object_object_add(rec, "updated_at", json_object_new_string(now));
    json_object_put(old);
    rc = ig_store_put(ctx, tx, INTEG_KIND_DEFINITION, rec, INTEG_PUT_UPSERT);
    if (rc == INTEG_OK && out_rec)
        *out_rec = rec;
    else
        json_object_put(rec);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parse and validate every *.json of `dir` (sorted by name) into `out`
 * (key -> manifest). Errors name the file. */
static int load_dir(const char *dir, json_object *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return ig_err(INTEG_EINVAL, "options.adapters_dir: cannot open directory '%s'", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = INTEG_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = ig_err(INTEG_ENOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = ig_err(INTEG_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_object *m = json_object_from_file(path);
        if (!m) {
            rc = ig_err(INTEG_EINVAL, "adapters_dir: %s: malformed JSON: %s", names[i],
                        json_util_get_last_err() ? json_util_get_last_err() : "parse error");
            break;
        }
        rc = ig_manifest_validate(m);
        if (rc) {
            ig_err_prefix(rc, names[i]);
            rc = ig_err_prefix(rc, "adapters_dir");
            json_object_put(m);
            break;
        }
        json_object_object_add(out, ig_json_str(m, "key"), m);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int ig_definitions_load(integ_ctx *ctx)
{
    json_object *builtin = json_object_new_object();
    json_object *extra = json_object_new_object();
    int rc = INTEG_OK;
    for (size_t i = 0; rc == INTEG_OK && i < ig_builtin_manifest_count; i++) {
        json_object *m = NULL;
        rc = ig_json_parse_object(ig_builtin_manifests[i], "built-in manifest", 0, &m);
        if (rc == INTEG_OK && (rc = ig_manifest_validate(m)) != INTEG_OK)
            rc = ig_err_prefix(INTEG_EINTERNAL, "built-in manifest");
        if (rc == INTEG_OK)
            json_object_object_add(builtin, ig_json_str(m, "key"), m);
        else
            json_object_put(m);
    }
    const char *dir = ig_json_str(ctx->options, "adapters_dir");
    if (rc == INTEG_OK && dir)
        rc = load_dir(dir, extra);
    if (rc == INTEG_OK) {
        void *tx = NULL;
        rc = ig_tx_begin(ctx, 1, &tx);
        ig_json_foreach(builtin, k, m)
        {
            if (rc)
                break;
            if (!ig_json_get(extra, k))
                rc = upsert_manifest(ctx, tx, m, "builtin", NULL);
        }
        ig_json_foreach(extra, k2, m2)
        {
            (void)k2;
            if (rc)
                break;
            rc = upsert_manifest(ctx, tx, m2, "adapters_dir", NULL);
        }
        rc = ig_tx_end(ctx, tx, 1, rc);
    }
    json_object_put(builtin);
    json_object_put(extra);
    return rc;
}

/* The public shape of a definition: its manifest plus id, auth_type(s),
 * has_app_credentials and times. */
static json_object *public_definition(json_object *rec)
{
    json_object *m = ig_json_get(rec, "manifest");
    json_object *pub = ig_json_copy(m);
    json_object_object_add(pub, "id", json_object_get(ig_json_get(rec, "id")));
    json_object *auth = ig_json_get(m, "auth");
    json_object_object_add(pub, "auth_type", json_object_get(ig_json_get(auth, "default")));
    json_object *types = json_object_new_array();
    ig_json_foreach(ig_json_get(auth, "methods"), k, v)
    {
        (void)v;
        json_object_array_add(types, json_object_new_string(k));
    }
    json_object_object_add(pub, "auth_types", types);
    json_object_object_add(pub, "has_app_credentials",
                           json_object_new_boolean(ig_json_get(rec, "app_credentials_sealed") != NULL));
    json_object_object_add(pub, "created_at", json_object_get(ig_json_get(rec, "created_at")));
    json_object_object_add(pub, "updated_at", json_object_get(ig_json_get(rec, "updated_at")));
    return pub;
}

/* ---- the public form, cached by record text (definitions.h) ---------------------------- */

struct def_entry {
    unsigned char digest[IG_SHA256_DIGEST_LEN];
    char *key, *category; /* for sorting a list */
    char *text;           /* the public JSON */
    size_t len;
    uint64_t used;
};

struct ig_def_cache {
    pthread_mutex_t mu;
    struct def_entry e[IG_DEF_CACHE_MAX];
    size_t n;
    uint64_t tick;
};

int ig_def_cache_new(struct ig_def_cache **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out || pthread_mutex_init(&(*out)->mu, NULL) != 0) {
        free(*out);
        *out = NULL;
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    return INTEG_OK;
}

static void entry_free(struct def_entry *e)
{
    free(e->key);
    free(e->category);
    free(e->text);
    memset(e, 0, sizeof *e);
}

void ig_def_cache_free(struct ig_def_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->e[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* One definition of a read: copies, owned by the reader. */
struct def_row {
    char *key, *category, *text;
    size_t len;
};

struct def_rows {
    integ_ctx *ctx;
    struct def_row *v;
    size_t n, cap;
};

static void rows_free(struct def_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].category);
        free(r->v[i].text);
    }
    free(r->v);
}

static int row_from(struct def_row *row, const struct def_entry *e)
{
    row->key = strdup(e->key);
    row->category = strdup(e->category);
    row->text = malloc(e->len + 1);
    row->len = e->len;
    if (!row->key || !row->category || !row->text) {
        free(row->key);
        free(row->category);
        free(row->text);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    memcpy(row->text, e->text, e->len + 1);
    return INTEG_OK;
}

/* A stored record's text: its public form from the cache, or made (and
 * cached) when the cache has none for exactly this text. */
static int collect_public(void *payload, const char *json, size_t len, const unsigned char *blob, size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    struct def_rows *r = payload;
    struct ig_def_cache *c = r->ctx->def_cache;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct def_row *g = realloc(r->v, cap * sizeof *g);
        if (!g)
            return ig_err(INTEG_ENOMEM, "out of memory");
        r->v = g;
        r->cap = cap;
    }
    struct def_row *row = &r->v[r->n];
    unsigned char d[IG_SHA256_DIGEST_LEN];
    ig_sha256(json, len, d);
    int rc = INTEG_ENOTFOUND;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        if (!memcmp(c->e[i].digest, d, sizeof d)) {
            c->e[i].used = ++c->tick;
            rc = row_from(row, &c->e[i]);
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (rc == INTEG_OK) {
        r->n++;
        return INTEG_OK;
    }
    if (rc != INTEG_ENOTFOUND)
        return rc;
    json_object *rec = ig_json_parse_len(json, len);
    if (!rec || !json_object_is_type(rec, json_type_object)) {
        json_object_put(rec);
        return ig_err(INTEG_ESTORE, "integration_definitions: a stored record is not a JSON object");
    }
    json_object *pub = public_definition(rec);
    struct def_entry e = {{0}, NULL, NULL, NULL, 0, 0};
    memcpy(e.digest, d, sizeof d);
    e.key = strdup(ig_json_str(rec, "key") ? ig_json_str(rec, "key") : "");
    e.category = strdup(ig_json_str(rec, "category") ? ig_json_str(rec, "category") : "");
    rc = ig_json_to_string(pub, &e.text);
    json_object_put(pub);
    json_object_put(rec);
    if (rc == INTEG_OK && (!e.key || !e.category))
        rc = ig_err(INTEG_ENOMEM, "out of memory");
    if (rc == INTEG_OK) {
        e.len = strlen(e.text);
        rc = row_from(row, &e);
    }
    if (rc != INTEG_OK) {
        entry_free(&e);
        return rc;
    }
    r->n++;
    pthread_mutex_lock(&c->mu);
    size_t slot = c->n;
    if (c->n == IG_DEF_CACHE_MAX) {
        slot = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used)
                slot = i;
        entry_free(&c->e[slot]);
    } else {
        c->n++;
    }
    e.used = ++c->tick;
    c->e[slot] = e;
    pthread_mutex_unlock(&c->mu);
    return INTEG_OK;
}

static int cmp_rows(const void *a, const void *b)
{
    const struct def_row *x = a, *y = b;
    int c = strcmp(x->category, y->category);
    return c ? c : strcmp(x->key, y->key);
}

INTEG_API int integ_definitions_list(integ_ctx *ctx, const char *filter_json, char **out_json)
{
    ig_err_clear();
    IG_CHECK_ARG(out_json, "out_json");
    *out_json = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    json_object *filter = NULL;
    int rc = ig_json_parse_object(filter_json, "filter_json", 1, &filter);
    if (rc)
        return rc;
    int64_t limit, offset;
    rc = ig_json_limit_offset(filter, "filter_json", &limit, &offset);
    json_object *q = json_object_new_object();
    ig_json_foreach(filter, k, v)
    {
        if (rc)
            break;
        if (!strcmp(k, "limit") || !strcmp(k, "offset"))
            continue;
        if (strcmp(k, "category") != 0) {
            rc = ig_err(INTEG_EINVAL, "filter_json.%s: unknown filter (use category)", k);
            break;
        }
        const char *c = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        if (!ig_in_list(c, CATEGORIES))
            rc = ig_err(INTEG_EINVAL,
                        "filter_json.category: must be one of erp, crm, accounting, ecommerce, "
                        "email, storage, communication");
        else
            json_object_object_add(q, "category", json_object_get(v));
    }
    struct def_rows rows = {ctx, NULL, 0, 0};
    if (rc == INTEG_OK) {
        void *tx = NULL;
        rc = ig_tx_begin(ctx, 0, &tx);
        if (rc == INTEG_OK)
            rc = ig_tx_end(ctx, tx, 1,
                           ctx->store->list(tx, INTEG_KIND_DEFINITION,
                                            json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN),
                                            collect_public, &rows));
    }
    if (rc == INTEG_OK) {
        if (rows.n > 1)
            qsort(rows.v, rows.n, sizeof *rows.v, cmp_rows);
        /* The public texts, joined into one array. */
        ig_jbuf out = {NULL, 0, 0, 0, 0};
        int oom = ig_jbuf_put(&out, "[", 1);
        for (size_t i = (size_t)offset, k = 0; !oom && i < rows.n && (int64_t)k < limit; i++, k++)
            oom = (k && ig_jbuf_put(&out, ",", 1)) || ig_jbuf_put(&out, rows.v[i].text, rows.v[i].len);
        oom = oom || ig_jbuf_put(&out, "]", 1);
        if (oom) {
            ig_jbuf_free(&out);
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        } else {
            *out_json = out.p; /* heap: ig_jbuf grows with malloc from an empty start */
        }
    }
    rows_free(&rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}

INTEG_API int integ_definition_get(integ_ctx *ctx, const char *key, char **out_json)
{
    ig_err_clear();
    IG_CHECK_ARG(out_json, "out_json");
    *out_json = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(key && *key, "key");
    struct def_rows rows = {ctx, NULL, 0, 0};
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, definition_find(ctx, tx, key, collect_public, &rows));
    if (rc == INTEG_ENOTFOUND || (rc == INTEG_OK && rows.n == 0))
        rc = definition_not_found(key);
    if (rc == INTEG_OK) {
        *out_json = rows.v[0].text;
        rows.v[0].text = NULL;
    }
    rows_free(&rows);
    return rc;
}

INTEG_API int integ_definition_register(integ_ctx *ctx, const char *manifest_json, char **out_json)
{
    ig_err_clear();
    if (out_json)
        *out_json = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    json_object *m = NULL;
    int rc = ig_json_parse_object(manifest_json, "manifest_json", 0, &m);
    if (rc)
        return rc;
    if ((rc = ig_manifest_validate(m))) {
        json_object_put(m);
        return rc;
    }
    void *tx = NULL;
    json_object *rec = NULL;
    rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = upsert_manifest(ctx, tx, m, "registered", &rec);
    if (rc == INTEG_OK)
        rc = ig_audit(ctx, tx, NULL, NULL, "definition.register", "integration_definition",
                      ig_json_str(rec, "id"), NULL);
    rc = ig_tx_end(ctx, tx, 1, rc);
    if (rc == INTEG_OK && out_json) {
        json_object *pub = public_definition(rec);
        rc = ig_json_to_string(pub, out_json);
        json_object_put(pub);
    }
    json_object_put(rec);
    json_object_put(m);
    return rc;
}

INTEG_API int integ_definition_set_app_credentials(integ_ctx *ctx, const char *key,
                                                   const char *creds_json)
{
    ig_err_clear();
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(key && *key, "key");
    json_object *creds = NULL;
    int rc = ig_json_parse_object(creds_json, "creds_json", 0, &creds);
    if (rc)
        return rc;
    const char *cid = ig_json_str(creds, "client_id");
    if (!cid || !*cid)
        rc = ig_err(INTEG_EINVAL, "creds_json.client_id: required (a non-empty string)");
    ig_json_foreach(creds, k, v)
    {
        if (rc)
            break;
        if (!json_object_is_type(v, json_type_string))
            rc = ig_err(INTEG_EINVAL, "creds_json.%s: must be a string", k);
    }
    void *tx = NULL;
    json_object *rec = NULL;
    if (rc == INTEG_OK)
        rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_definition_lookup(ctx, tx, key, &rec);
    if (rc == INTEG_OK) {
        char *sealed = NULL;
        size_t len = 0;
        const char *plain = json_object_to_json_string_length(creds, JSON_C_TO_STRING_PLAIN, &len);
        rc = ig_ctx_seal(ctx, NULL, ig_json_str(rec, "id"), "app_credentials", plain, len, &sealed);
        if (rc == INTEG_OK) {
            char now[32];
            ig_rfc3339(now, ig_now_ms(), 0);
            json_object_object_add(rec, "app_credentials_sealed", json_object_new_string(sealed));
            json_object_object_add(rec, "updated_at", json_object_new_string(now));
            free(sealed);
            rc = ig_store_put(ctx, tx, INTEG_KIND_DEFINITION, rec, INTEG_PUT_UPDATE);
        }
    }
    if (rc == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "client_id", json_object_new_string(cid));
        rc = ig_audit(ctx, tx, NULL, NULL, "definition.set_app_credentials", "integration_definition",
                      ig_json_str(rec, "id"), d);
        json_object_put(d);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    if (rc == INTEG_OK)
        ig_ep_cache_changed(ctx->ep_cache); /* receivers reread it */
    json_object_put(rec);
    ig_json_wipe_put(creds);
    return rc;
}
