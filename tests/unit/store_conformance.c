/*
 * The store conformance suite (see store_conformance.h). It uses the store
 * vtable and the public API only, so a host writing its own backend can run
 * it unchanged. It has its own small check macros (SC_*) so it can be built
 * alone or #included into a test that also uses tests/unit/test.h.
 *
 * Records are written by hand so the byte-for-byte promise is checked
 * against odd spacing, escapes and key order a re-serialiser would change.
 * Ids are fixed strings that sort like UUIDv7s: a larger id is newer.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integrations/integrations.h"
#include "integrations/store.h"
#include "store_conformance.h"

typedef struct sc_env {
    const integ_store *st;
    void *sd;
    int fails;
} sc_env;

#define SC_CHECK(e, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
            (e)->fails++;                                                                          \
        }                                                                                          \
    } while (0)

#define SC_RC(e, expr, want)                                                                       \
    do {                                                                                           \
        int sc_rc_ = (expr);                                                                       \
        if (sc_rc_ != (want)) {                                                                    \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), want %d; errmsg: %s\n", __FILE__,       \
                    __LINE__, #expr, sc_rc_, integ_strerror(sc_rc_), (int)(want), integ_errmsg()); \
            (e)->fails++;                                                                          \
        }                                                                                          \
    } while (0)

#define SC_OK(e, expr) SC_RC(e, expr, INTEG_OK)

#define SC_STR(e, a, b)                                                                            \
    do {                                                                                           \
        const char *sc_a_ = (a), *sc_b_ = (b);                                                     \
        if (!sc_a_ || !sc_b_ || strcmp(sc_a_, sc_b_) != 0) {                                       \
            fprintf(stderr, "  %s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a,         \
                    sc_a_ ? sc_a_ : "(null)", sc_b_ ? sc_b_ : "(null)");                           \
            (e)->fails++;                                                                          \
        }                                                                                          \
    } while (0)

/* The last error message must mention `needle`. */
#define SC_MSG(e, needle)                                                                          \
    do {                                                                                           \
        if (!strstr(integ_errmsg(), (needle))) {                                                   \
            fprintf(stderr, "  %s:%d: errmsg \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,           \
                    integ_errmsg(), (needle));                                                     \
            (e)->fails++;                                                                          \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Helpers: each runs one operation in its own transaction                  */
/* ------------------------------------------------------------------------ */

static int sc_put(sc_env *e, integ_store_kind kind, const char *json, const void *blob,
                  size_t blob_len, integ_put_mode mode)
{
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 1, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->put(tx, kind, json, blob, blob_len, mode);
    if (rc != INTEG_OK) {
        e->st->end(tx, 0);
        return rc;
    }
    return e->st->end(tx, 1);
}

static int sc_ins(sc_env *e, integ_store_kind kind, const char *json)
{
    return sc_put(e, kind, json, NULL, 0, INTEG_PUT_INSERT);
}

/* A copy of one delivered row. */
typedef struct sc_row {
    char *json;
    size_t json_len;
    unsigned char *blob;
    size_t blob_len;
    int has_blob;
    int calls;
} sc_row;

static void sc_row_free(sc_row *r)
{
    free(r->json);
    free(r->blob);
    memset(r, 0, sizeof *r);
}

static int sc_row_cb(void *payload, const char *json, size_t json_len, const unsigned char *blob,
                     size_t blob_len)
{
    sc_row *r = payload;
    sc_row_free(r);
    r->calls = 1;
    r->json = malloc(json_len + 1);
    if (!r->json)
        return -1000;
    memcpy(r->json, json, json_len);
    r->json[json_len] = '\0';
    r->json_len = json_len;
    /* the contract promises a terminating NUL */
    if (json[json_len] != '\0')
        r->json_len = (size_t)-1;
    r->has_blob = blob != NULL;
    if (blob) {
        r->blob = malloc(blob_len ? blob_len : 1);
        if (!r->blob)
            return -1000;
        memcpy(r->blob, blob, blob_len);
        r->blob_len = blob_len;
    }
    return 0;
}

static int sc_get(sc_env *e, integ_store_kind kind, const char *tenant, const char *id, sc_row *out)
{
    memset(out, 0, sizeof *out);
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 0, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->get(tx, kind, tenant, id, sc_row_cb, out);
    int erc = e->st->end(tx, 0);
    return rc != INTEG_OK ? rc : erc;
}

/* 1 if a get of id succeeds. */
static int sc_exists(sc_env *e, integ_store_kind kind, const char *id)
{
    sc_row r;
    int rc = sc_get(e, kind, NULL, id, &r);
    sc_row_free(&r);
    return rc == INTEG_OK;
}

/* Ids of listed rows joined by ',' (records here start with {"id":"..."). */
typedef struct sc_ids {
    char buf[4096];
    int n;
    int stop_after; /* 0: never */
    int stop_value;
} sc_ids;

static int sc_ids_cb(void *payload, const char *json, size_t json_len, const unsigned char *blob,
                     size_t blob_len)
{
    (void)json_len;
    (void)blob;
    (void)blob_len;
    sc_ids *ids = payload;
    const char *p = strstr(json, "\"id\":\"");
    size_t used = strlen(ids->buf);
    if (ids->n)
        snprintf(ids->buf + used, sizeof ids->buf - used, ",");
    used = strlen(ids->buf);
    if (p) {
        p += 6;
        const char *end = strchr(p, '"');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (used + n + 1 < sizeof ids->buf) {
            memcpy(ids->buf + used, p, n);
            ids->buf[used + n] = '\0';
        }
    } else {
        snprintf(ids->buf + used, sizeof ids->buf - used, "?");
    }
    ids->n++;
    if (ids->stop_after && ids->n >= ids->stop_after)
        return ids->stop_value;
    return 0;
}

static int sc_list(sc_env *e, integ_store_kind kind, const char *query, sc_ids *ids)
{
    int stop_after = ids->stop_after, stop_value = ids->stop_value;
    memset(ids, 0, sizeof *ids);
    ids->stop_after = stop_after;
    ids->stop_value = stop_value;
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 0, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->list(tx, kind, query, sc_ids_cb, ids);
    int erc = e->st->end(tx, 0);
    return rc != INTEG_OK ? rc : erc;
}

/* The listed ids, or "ERR <code>" when list fails. */
static const char *sc_list_s(sc_env *e, integ_store_kind kind, const char *query, sc_ids *ids)
{
    ids->stop_after = 0;
    int rc = sc_list(e, kind, query, ids);
    if (rc != INTEG_OK)
        snprintf(ids->buf, sizeof ids->buf, "ERR %d: %s", rc, integ_errmsg());
    return ids->buf;
}

static int sc_count(sc_env *e, integ_store_kind kind, const char *query, int64_t *out)
{
    *out = -1;
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 0, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->count(tx, kind, query, out);
    int erc = e->st->end(tx, 0);
    return rc != INTEG_OK ? rc : erc;
}

/* The count, or -1 on failure (reported). */
static int64_t sc_n(sc_env *e, integ_store_kind kind, const char *query)
{
    int64_t n = -1;
    SC_OK(e, sc_count(e, kind, query, &n));
    return n;
}

static int sc_remove(sc_env *e, integ_store_kind kind, const char *tenant, const char *id)
{
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 1, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->remove(tx, kind, tenant, id);
    if (rc != INTEG_OK) {
        e->st->end(tx, 0);
        return rc;
    }
    return e->st->end(tx, 1);
}

static int sc_remove_where(sc_env *e, integ_store_kind kind, const char *query, int64_t *out)
{
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 1, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->remove_where(tx, kind, query, out);
    if (rc != INTEG_OK) {
        e->st->end(tx, 0);
        return rc;
    }
    return e->st->end(tx, 1);
}

/* ------------------------------------------------------------------------ */
/* Data                                                                     */
/* ------------------------------------------------------------------------ */

/* One record per kind with every indexed field set, in awkward formatting:
 * spaces, tabs, a newline, escapes, raw UTF-8, 1.50 and key order a
 * serialiser would not keep. */
static const struct {
    integ_store_kind kind;
    const char *json;
} sc_samples[] = {
    {INTEG_KIND_DEFINITION, "{ \"key\" : \"acme\", \"id\":\"def-1\",\t\"category\":\"crm\", \"x\": "
                            "[1, 1.50, \"\\u00e9\"] }"},
    {INTEG_KIND_INTEGRATION,
     "{\"id\":\"int-1\",\"tenant_id\":\"t1\",\"definition_id\":\"def-1\",\"status\":\"active\","
     "\"next_run_at_ms\":1700000000000,\n \"config\":{\"a\":null,\"b\":\"caf\xc3\xa9\"}}"},
    {INTEG_KIND_MAPPING,
     "{\"id\":\"map-1\",\"tenant_id\":\"t1\",\"integration_id\":\"int-1\","
     "\"source_entity\":\"contact\",\"target_entity\":\"person\",\"rules\":[]}"},
    {INTEG_KIND_SYNC_LOG,
     "{\"id\":\"log-1\",\"tenant_id\":\"t1\",\"integration_id\":\"int-1\",\"entity\":\"contact\","
     "\"status\":\"ok\",\"started_at_ms\":1700000000001,\"msg\":\"a \\\"quoted\\\" word\"}"},
    {INTEG_KIND_WEBHOOK_ENDPOINT,
     "{\"id\":\"wep-1\",\"tenant_id\":\"t1\",\"integration_id\":\"int-1\",\"active\":true}"},
    {INTEG_KIND_WEBHOOK_EVENT,
     "{\"id\":\"wev-1\",\"tenant_id\":\"t1\",\"endpoint_id\":\"wep-1\",\"integration_id\":\"int-"
     "1\","
     "\"event_id\":\"evt-1\",\"status\":\"queued\",\"next_attempt_at_ms\":1700000000002,"
     "\"lease_until_ms\":0}"},
    {INTEG_KIND_CONFLICT,
     "{\"id\":\"con-1\",\"tenant_id\":\"t1\",\"integration_id\":\"int-1\",\"entity\":\"contact\","
     "\"status\":\"open\",\"local_id\":\"L1\",\"external_id\":\"X1\"}"},
    {INTEG_KIND_OAUTH_STATE,
     "{\"id\":\"oas-1\",\"tenant_id\":\"t1\",\"expires_at_ms\":-5,\"verifier\":\"\\/slash\"}"},
    {INTEG_KIND_ENTITY_LINK,
     "{\"id\":\"lnk-1\",\"tenant_id\":\"t1\",\"integration_id\":\"int-1\",\"entity\":\"contact\","
     "\"external_id\":\"X1\",\"local_id\":\"L1\",\"pending\":false}"},
    {INTEG_KIND_CHECKPOINT,
     "{\"id\":\"chk-1\",\"tenant_id\":\"t1\",\"integration_id\":\"int-1\",\"entity\":\"contact\","
     "\"cursor\":\"abc\"}"},
    {INTEG_KIND_AUDIT,
     "{\"id\":\"aud-1\",\"tenant_id\":\"t1\",\"user_id\":\"u1\",\"action\":\"create\","
     "\"object_id\":\"int-1\",\"at_ms\":1700000000003}"},
    {INTEG_KIND_ENTITY,
     "{\"id\":\"ent-1\",\"tenant_id\":\"t1\",\"entity\":\"contact\",\"deleted\":false,"
     "\"updated_at_ms\":1700000000004,\"version\":3,\"data\":{\"name\":\"\xe2\x82\xac\"}}"},
    {INTEG_KIND_LEASE,
     "{\"id\":\"lea-1\",\"holder\":\"worker-1\",\"expires_at_ms\":1700000000005}"},
    {INTEG_KIND_SETTING, "{\"id\":\"master_key_check\",\"value\":{\"key_id\":\"0011\"}}"},
};

#define SC_NSAMPLES (sizeof sc_samples / sizeof sc_samples[0])

/* Six integrations with sortable ids, inserted out of order:
 *   id   tenant status  next_run_at_ms
 *   i01  t1     active  100
 *   i02  t1     paused  200
 *   i03  t1     active  300
 *   i04  t2     active  400
 *   i05  t1     (none)  500
 *   i06  t1     error   null          */
static void sc_seed_integrations(sc_env *e)
{
    static const char *const rows[] = {
        "{\"id\":\"i03\",\"tenant_id\":\"t1\",\"status\":\"active\",\"next_run_at_ms\":300}",
        "{\"id\":\"i01\",\"tenant_id\":\"t1\",\"status\":\"active\",\"next_run_at_ms\":100}",
        "{\"id\":\"i05\",\"tenant_id\":\"t1\",\"next_run_at_ms\":500}",
        "{\"id\":\"i02\",\"tenant_id\":\"t1\",\"status\":\"paused\",\"next_run_at_ms\":200}",
        "{\"id\":\"i06\",\"tenant_id\":\"t1\",\"status\":\"error\",\"next_run_at_ms\":null}",
        "{\"id\":\"i04\",\"tenant_id\":\"t2\",\"status\":\"active\",\"next_run_at_ms\":400}",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        SC_OK(e, sc_ins(e, INTEG_KIND_INTEGRATION, rows[i]));
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                    */
/* ------------------------------------------------------------------------ */

static void sc_t_roundtrip_every_kind(sc_env *e)
{
    int seen[INTEG_KIND_END] = {0};
    for (size_t i = 0; i < SC_NSAMPLES; i++) {
        integ_store_kind k = sc_samples[i].kind;
        const char *json = sc_samples[i].json;
        seen[k] = 1;
        SC_OK(e, sc_ins(e, k, json));
        /* the id is the 3rd quoted string or the 2nd: find it by key */
        const char *p = strstr(json, "\"id\":\"");
        SC_CHECK(e, p != NULL);
        if (!p)
            continue;
        char id[32] = {0};
        sscanf(p + 6, "%31[^\"]", id);
        sc_row r;
        SC_OK(e, sc_get(e, k, NULL, id, &r));
        SC_CHECK(e, r.calls == 1);
        SC_CHECK(e, r.json_len == strlen(json));
        SC_STR(e, r.json, json);
        SC_CHECK(e, !r.has_blob && r.blob_len == 0);
        sc_row_free(&r);

        /* list returns the same bytes */
        void *tx = NULL;
        SC_OK(e, e->st->begin(e->sd, 0, &tx));
        if (tx) {
            sc_row lr = {0};
            SC_OK(e, e->st->list(tx, k, NULL, sc_row_cb, &lr));
            SC_STR(e, lr.json, json);
            SC_CHECK(e, lr.json_len == strlen(json));
            sc_row_free(&lr);
            int64_t n = -1;
            SC_OK(e, e->st->count(tx, k, NULL, &n));
            SC_CHECK(e, n == 1);
            SC_OK(e, e->st->end(tx, 1));
        }
    }
    for (int k = 1; k < INTEG_KIND_END; k++)
        SC_CHECK(e, seen[k]);
    /* kinds are separate collections */
    SC_CHECK(e, !sc_exists(e, INTEG_KIND_MAPPING, "int-1"));
}

static void sc_t_blob_roundtrip(sc_env *e)
{
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7); /* includes NUL bytes */
    const char *a = "{\"id\":\"wev-a\",\"tenant_id\":\"t1\",\"status\":\"queued\"}";
    const char *b = "{\"id\":\"wev-b\",\"tenant_id\":\"t1\",\"status\":\"queued\"}";
    SC_OK(e, sc_put(e, INTEG_KIND_WEBHOOK_EVENT, a, bin, sizeof bin, INTEG_PUT_INSERT));
    SC_OK(e, sc_put(e, INTEG_KIND_WEBHOOK_EVENT, b, NULL, 0, INTEG_PUT_INSERT));

    sc_row r;
    SC_OK(e, sc_get(e, INTEG_KIND_WEBHOOK_EVENT, "t1", "wev-a", &r));
    SC_CHECK(e, r.has_blob && r.blob_len == sizeof bin);
    SC_CHECK(e, r.blob && memcmp(r.blob, bin, sizeof bin) == 0);
    SC_STR(e, r.json, a);
    sc_row_free(&r);
    SC_OK(e, sc_get(e, INTEG_KIND_WEBHOOK_EVENT, NULL, "wev-b", &r));
    SC_CHECK(e, !r.has_blob && r.blob_len == 0);
    sc_row_free(&r);

    /* list delivers the blob too */
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 0, &tx));
    if (tx) {
        SC_OK(e, e->st->list(tx, INTEG_KIND_WEBHOOK_EVENT, "{\"id\":\"wev-a\"}", sc_row_cb, &r));
        SC_CHECK(e, r.has_blob && r.blob_len == sizeof bin && memcmp(r.blob, bin, sizeof bin) == 0);
        sc_row_free(&r);
        SC_OK(e, e->st->end(tx, 0));
    }

    /* an update replaces the blob, also by none */
    SC_OK(e, sc_put(e, INTEG_KIND_WEBHOOK_EVENT, a, NULL, 0, INTEG_PUT_UPDATE));
    SC_OK(e, sc_get(e, INTEG_KIND_WEBHOOK_EVENT, NULL, "wev-a", &r));
    SC_CHECK(e, !r.has_blob);
    sc_row_free(&r);
    SC_OK(e, sc_put(e, INTEG_KIND_WEBHOOK_EVENT, b, bin + 1, 10, INTEG_PUT_UPSERT));
    SC_OK(e, sc_get(e, INTEG_KIND_WEBHOOK_EVENT, NULL, "wev-b", &r));
    SC_CHECK(e, r.has_blob && r.blob_len == 10 && memcmp(r.blob, bin + 1, 10) == 0);
    sc_row_free(&r);
}

static void sc_t_large_record(sc_env *e)
{
    size_t n = 300 * 1024;
    char *json = malloc(n + 64);
    SC_CHECK(e, json != NULL);
    if (!json)
        return;
    int off = snprintf(json, 64, "{\"id\":\"big\",\"tenant_id\":\"t1\",\"pad\":\"");
    for (size_t i = 0; i < n; i++)
        json[off + i] = (char)('a' + i % 26);
    strcpy(json + off + n, "\"}");
    SC_OK(e, sc_ins(e, INTEG_KIND_ENTITY, json));
    sc_row r;
    SC_OK(e, sc_get(e, INTEG_KIND_ENTITY, "t1", "big", &r));
    SC_CHECK(e, r.json_len == strlen(json));
    SC_CHECK(e, r.json && strcmp(r.json, json) == 0);
    sc_row_free(&r);
    free(json);
}

static void sc_t_insert_duplicate(sc_env *e)
{
    const char *a = "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"active\"}";
    SC_OK(e, sc_ins(e, INTEG_KIND_INTEGRATION, a));
    SC_RC(
        e,
        sc_ins(e, INTEG_KIND_INTEGRATION, "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"x\"}"),
        INTEG_EEXISTS);
    /* also when the duplicate belongs to another tenant */
    SC_RC(e, sc_ins(e, INTEG_KIND_INTEGRATION, "{\"id\":\"i1\",\"tenant_id\":\"t2\"}"),
          INTEG_EEXISTS);
    sc_row r;
    SC_OK(e, sc_get(e, INTEG_KIND_INTEGRATION, NULL, "i1", &r));
    SC_STR(e, r.json, a);
    sc_row_free(&r);
    SC_CHECK(e, sc_n(e, INTEG_KIND_INTEGRATION, NULL) == 1);
    /* the same id in another kind is fine */
    SC_OK(e, sc_ins(e, INTEG_KIND_MAPPING, "{\"id\":\"i1\",\"tenant_id\":\"t1\"}"));
}

static void sc_t_update(sc_env *e)
{
    SC_RC(e,
          sc_put(e, INTEG_KIND_INTEGRATION, "{\"id\":\"i1\",\"status\":\"a\"}", NULL, 0,
                 INTEG_PUT_UPDATE),
          INTEG_ENOTFOUND);
    SC_CHECK(e, sc_n(e, INTEG_KIND_INTEGRATION, NULL) == 0);
    SC_OK(e, sc_ins(e, INTEG_KIND_INTEGRATION,
                    "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"a\"}"));
    const char *b = "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"b\",\"next_run_at_ms\":7}";
    SC_OK(e, sc_put(e, INTEG_KIND_INTEGRATION, b, NULL, 0, INTEG_PUT_UPDATE));
    sc_row r;
    SC_OK(e, sc_get(e, INTEG_KIND_INTEGRATION, "t1", "i1", &r));
    SC_STR(e, r.json, b);
    sc_row_free(&r);
    /* the indexed fields follow the new record */
    sc_ids ids;
    SC_STR(e, sc_list_s(e, INTEG_KIND_INTEGRATION, "{\"status\":\"a\"}", &ids), "");
    SC_STR(e, sc_list_s(e, INTEG_KIND_INTEGRATION, "{\"status\":\"b\",\"next_run_at_ms\":7}", &ids),
           "i1");
    /* and a field dropped from the record becomes NULL */
    SC_OK(e, sc_put(e, INTEG_KIND_INTEGRATION, "{\"id\":\"i1\",\"tenant_id\":\"t1\"}", NULL, 0,
                    INTEG_PUT_UPDATE));
    SC_STR(e, sc_list_s(e, INTEG_KIND_INTEGRATION, "{\"status\":null}", &ids), "i1");
    SC_CHECK(e, sc_n(e, INTEG_KIND_INTEGRATION, NULL) == 1);
}

static void sc_t_upsert(sc_env *e)
{
    const char *a = "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"a\"}";
    const char *b = "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"b\", \"more\": true}";
    SC_OK(e, sc_put(e, INTEG_KIND_INTEGRATION, a, NULL, 0, INTEG_PUT_UPSERT));
    sc_row r;
    SC_OK(e, sc_get(e, INTEG_KIND_INTEGRATION, NULL, "i1", &r));
    SC_STR(e, r.json, a);
    sc_row_free(&r);
    SC_OK(e, sc_put(e, INTEG_KIND_INTEGRATION, b, NULL, 0, INTEG_PUT_UPSERT));
    SC_OK(e, sc_get(e, INTEG_KIND_INTEGRATION, NULL, "i1", &r));
    SC_STR(e, r.json, b);
    sc_row_free(&r);
    SC_CHECK(e, sc_n(e, INTEG_KIND_INTEGRATION, NULL) == 1);
    SC_CHECK(e, sc_n(e, INTEG_KIND_INTEGRATION, "{\"status\":\"b\"}") == 1);
    SC_CHECK(e, sc_n(e, INTEG_KIND_INTEGRATION, "{\"status\":\"a\"}") == 0);
}

/* Two records sharing a unique set collide; a NULL in the set never does. */
static void sc_unique_case(sc_env *e, integ_store_kind k, const char *first, const char *dup,
                           const char *dup_update, const char *null1, const char *null2)
{
    SC_OK(e, sc_ins(e, k, first));
    SC_RC(e, sc_ins(e, k, dup), INTEG_EEXISTS);
    SC_RC(e, sc_put(e, k, dup, NULL, 0, INTEG_PUT_UPSERT), INTEG_EEXISTS);
    SC_OK(e, sc_ins(e, k, null1));
    SC_OK(e, sc_ins(e, k, null2));
    /* updating another record into the set collides too, and changes nothing */
    SC_RC(e, sc_put(e, k, dup_update, NULL, 0, INTEG_PUT_UPDATE), INTEG_EEXISTS);
    SC_CHECK(e, sc_n(e, k, NULL) == 3);
}

static void sc_t_unique_sets(sc_env *e)
{
    sc_unique_case(e, INTEG_KIND_DEFINITION, "{\"id\":\"d1\",\"key\":\"acme\"}",
                   "{\"id\":\"d2\",\"key\":\"acme\"}", "{\"id\":\"dn1\",\"key\":\"acme\"}",
                   "{\"id\":\"dn1\",\"key\":null}", "{\"id\":\"dn2\"}");
    /* a free key is fine */
    SC_OK(e, sc_ins(e, INTEG_KIND_DEFINITION, "{\"id\":\"d3\",\"key\":\"other\"}"));

    sc_unique_case(e, INTEG_KIND_WEBHOOK_EVENT,
                   "{\"id\":\"w1\",\"endpoint_id\":\"ep1\",\"event_id\":\"e1\"}",
                   "{\"id\":\"w2\",\"endpoint_id\":\"ep1\",\"event_id\":\"e1\"}",
                   "{\"id\":\"wn1\",\"endpoint_id\":\"ep1\",\"event_id\":\"e1\"}",
                   "{\"id\":\"wn1\",\"endpoint_id\":\"ep1\",\"event_id\":null}",
                   "{\"id\":\"wn2\",\"endpoint_id\":\"ep1\"}");
    /* only the pair is unique, not each field */
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_EVENT,
                    "{\"id\":\"w3\",\"endpoint_id\":\"ep1\",\"event_id\":\"e2\"}"));
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_EVENT,
                    "{\"id\":\"w4\",\"endpoint_id\":\"ep2\",\"event_id\":\"e1\"}"));

    sc_unique_case(
        e, INTEG_KIND_ENTITY_LINK,
        "{\"id\":\"l1\",\"integration_id\":\"i1\",\"entity\":\"c\",\"external_id\":\"x\"}",
        "{\"id\":\"l2\",\"integration_id\":\"i1\",\"entity\":\"c\",\"external_id\":\"x\"}",
        "{\"id\":\"ln1\",\"integration_id\":\"i1\",\"entity\":\"c\",\"external_id\":\"x\"}",
        "{\"id\":\"ln1\",\"integration_id\":\"i1\",\"entity\":\"c\"}",
        "{\"id\":\"ln2\",\"integration_id\":\"i1\",\"entity\":\"c\",\"external_id\":null}");
    SC_OK(
        e,
        sc_ins(e, INTEG_KIND_ENTITY_LINK,
               "{\"id\":\"l3\",\"integration_id\":\"i1\",\"entity\":\"d\",\"external_id\":\"x\"}"));

    sc_unique_case(
        e, INTEG_KIND_CHECKPOINT, "{\"id\":\"c1\",\"integration_id\":\"i1\",\"entity\":\"c\"}",
        "{\"id\":\"c2\",\"integration_id\":\"i1\",\"entity\":\"c\"}",
        "{\"id\":\"cn1\",\"integration_id\":\"i1\",\"entity\":\"c\"}",
        "{\"id\":\"cn1\",\"integration_id\":\"i1\"}", "{\"id\":\"cn2\",\"entity\":\"c\"}");

    /* once the holder is gone the set is free again */
    SC_OK(e, sc_remove(e, INTEG_KIND_WEBHOOK_EVENT, NULL, "w1"));
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_EVENT,
                    "{\"id\":\"w2\",\"endpoint_id\":\"ep1\",\"event_id\":\"e1\"}"));
}

static void sc_t_tenant_scoping(sc_env *e)
{
    SC_OK(e, sc_ins(e, INTEG_KIND_INTEGRATION, "{\"id\":\"i1\",\"tenant_id\":\"t1\"}"));
    SC_OK(e, sc_ins(e, INTEG_KIND_INTEGRATION, "{\"id\":\"i2\"}")); /* no tenant */
    sc_row r;
    SC_RC(e, sc_get(e, INTEG_KIND_INTEGRATION, "t2", "i1", &r), INTEG_ENOTFOUND);
    SC_CHECK(e, r.calls == 0);
    sc_row_free(&r);
    SC_OK(e, sc_get(e, INTEG_KIND_INTEGRATION, "t1", "i1", &r));
    sc_row_free(&r);
    SC_OK(e, sc_get(e, INTEG_KIND_INTEGRATION, NULL, "i1", &r));
    sc_row_free(&r);
    /* a record without a tenant belongs to no tenant */
    SC_RC(e, sc_get(e, INTEG_KIND_INTEGRATION, "t1", "i2", &r), INTEG_ENOTFOUND);
    sc_row_free(&r);
    SC_RC(e, sc_get(e, INTEG_KIND_INTEGRATION, "t1", "nope", &r), INTEG_ENOTFOUND);
    sc_row_free(&r);

    SC_RC(e, sc_remove(e, INTEG_KIND_INTEGRATION, "t2", "i1"), INTEG_ENOTFOUND);
    SC_CHECK(e, sc_exists(e, INTEG_KIND_INTEGRATION, "i1"));
    sc_ids ids;
    SC_STR(e, sc_list_s(e, INTEG_KIND_INTEGRATION, "{\"tenant_id\":\"t2\"}", &ids), "");
    SC_OK(e, sc_remove(e, INTEG_KIND_INTEGRATION, "t1", "i1"));
    SC_CHECK(e, !sc_exists(e, INTEG_KIND_INTEGRATION, "i1"));
}

static void sc_t_list_equality(sc_env *e)
{
    sc_seed_integrations(e);
    sc_ids ids;
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    SC_STR(e, sc_list_s(e, K, NULL, &ids), "i06,i05,i04,i03,i02,i01");
    SC_STR(e, sc_list_s(e, K, "{}", &ids), "i06,i05,i04,i03,i02,i01");
    SC_STR(e, sc_list_s(e, K, "{\"tenant_id\":\"t1\"}", &ids), "i06,i05,i03,i02,i01");
    SC_STR(e, sc_list_s(e, K, "{\"tenant_id\":\"t1\",\"status\":\"active\"}", &ids), "i03,i01");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":300}", &ids), "i03");
    SC_STR(e, sc_list_s(e, K, "{\"id\":\"i04\"}", &ids), "i04");
    SC_STR(e, sc_list_s(e, K, "{\"status\":\"nope\"}", &ids), "");
    /* null: absent and explicit null alike */
    SC_STR(e, sc_list_s(e, K, "{\"status\":null}", &ids), "i05");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":null}", &ids), "i06");

    /* booleans */
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"id\":\"w1\",\"active\":true}"));
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"id\":\"w2\",\"active\":false}"));
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"id\":\"w3\",\"active\":true}"));
    SC_OK(e, sc_ins(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"id\":\"w4\"}"));
    SC_STR(e, sc_list_s(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"active\":true}", &ids), "w3,w1");
    SC_STR(e, sc_list_s(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"active\":false}", &ids), "w2");
    SC_STR(e, sc_list_s(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"active\":null}", &ids), "w4");

    /* integers beyond double precision compare exactly */
    SC_OK(e, sc_ins(e, INTEG_KIND_ENTITY,
                    "{\"id\":\"e1\",\"version\":9007199254740993,\"deleted\":false}"));
    SC_OK(e, sc_ins(e, INTEG_KIND_ENTITY,
                    "{\"id\":\"e2\",\"version\":-9223372036854775808,\"deleted\":true}"));
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"version\":9007199254740993}", &ids), "e1");
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"version\":9007199254740992}", &ids), "");
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"version\":{\"lt\":0}}", &ids), "e2");
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"deleted\":true}", &ids), "e2");

    /* strings compare as UTF-8, whatever the escaping */
    SC_OK(e, sc_ins(e, INTEG_KIND_ENTITY, "{\"id\":\"e3\",\"tenant_id\":\"t\\u00e9\"}"));
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"tenant_id\":\"t\xc3\xa9\"}", &ids), "e3");
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"tenant_id\":\"t\\u00e9\"}", &ids), "e3");
    SC_STR(e, sc_list_s(e, INTEG_KIND_ENTITY, "{\"tenant_id\":\"t\"}", &ids), "");
}

static void sc_t_list_operators(sc_env *e)
{
    sc_seed_integrations(e);
    sc_ids ids;
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"lt\":300}}", &ids), "i02,i01");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"lte\":300}}", &ids), "i03,i02,i01");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"gt\":300}}", &ids), "i05,i04");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"gte\":300}}", &ids), "i05,i04,i03");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"gt\":100,\"lt\":400}}", &ids), "i03,i02");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"gte\":100,\"lte\":400,\"ne\":200}}", &ids),
           "i04,i03,i01");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"gt\":400,\"lt\":400}}", &ids), "");
    /* strings order bytewise */
    SC_STR(e, sc_list_s(e, K, "{\"status\":{\"lt\":\"b\"}}", &ids), "i04,i03,i01");
    SC_STR(e, sc_list_s(e, K, "{\"id\":{\"gt\":\"i02\",\"lte\":\"i04\"}}", &ids), "i04,i03");
    /* ne, and NULL fields never match a comparison */
    SC_STR(e, sc_list_s(e, K, "{\"status\":{\"ne\":\"active\"}}", &ids), "i06,i02");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"lt\":100000}}", &ids), "i05,i04,i03,i02,i01");
    /* in */
    SC_STR(e, sc_list_s(e, K, "{\"status\":{\"in\":[\"paused\",\"error\"]}}", &ids), "i06,i02");
    SC_STR(e, sc_list_s(e, K, "{\"next_run_at_ms\":{\"in\":[100,400,999]}}", &ids), "i04,i01");
    SC_STR(e, sc_list_s(e, K, "{\"id\":{\"in\":[\"i05\"]}}", &ids), "i05");
    SC_STR(e, sc_list_s(e, K, "{\"status\":{\"in\":[]}}", &ids), "");
    SC_CHECK(e, sc_n(e, K, "{\"status\":{\"in\":[]}}") == 0);
    /* everything ANDs */
    SC_STR(e,
           sc_list_s(e, K,
                     "{\"tenant_id\":\"t1\",\"status\":{\"in\":[\"active\",\"paused\"]},"
                     "\"next_run_at_ms\":{\"gte\":200}}",
                     &ids),
           "i03,i02");
}

static void sc_t_list_order_paging(sc_env *e)
{
    sc_seed_integrations(e);
    sc_ids ids;
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    SC_STR(e, sc_list_s(e, K, "{\"order\":\"id\"}", &ids), "i01,i02,i03,i04,i05,i06");
    SC_STR(e, sc_list_s(e, K, "{\"order\":\"-id\"}", &ids), "i06,i05,i04,i03,i02,i01");
    /* NULL sorts lowest: first ascending, last descending */
    SC_STR(e, sc_list_s(e, K, "{\"tenant_id\":\"t1\",\"order\":\"next_run_at_ms\"}", &ids),
           "i06,i01,i02,i03,i05");
    SC_STR(e, sc_list_s(e, K, "{\"tenant_id\":\"t1\",\"order\":\"-next_run_at_ms\"}", &ids),
           "i05,i03,i02,i01,i06");
    /* ties break by id in the same direction */
    SC_STR(e, sc_list_s(e, K, "{\"order\":\"status\"}", &ids), "i05,i01,i03,i04,i06,i02");
    SC_STR(e, sc_list_s(e, K, "{\"order\":\"-status\"}", &ids), "i02,i06,i04,i03,i01,i05");
    /* limit and offset */
    SC_STR(e, sc_list_s(e, K, "{\"limit\":2}", &ids), "i06,i05");
    SC_STR(e, sc_list_s(e, K, "{\"limit\":2,\"offset\":2}", &ids), "i04,i03");
    SC_STR(e, sc_list_s(e, K, "{\"offset\":5}", &ids), "i01");
    SC_STR(e, sc_list_s(e, K, "{\"offset\":6}", &ids), "");
    SC_STR(e, sc_list_s(e, K, "{\"limit\":0}", &ids), "i06,i05,i04,i03,i02,i01");
    SC_STR(e, sc_list_s(e, K, "{\"order\":\"next_run_at_ms\",\"limit\":2,\"offset\":1}", &ids),
           "i01,i02");
    SC_STR(
        e,
        sc_list_s(e, K, "{\"status\":\"active\",\"order\":\"id\",\"limit\":1,\"offset\":1}", &ids),
        "i03");
}

/* Every malformed query is EINVAL, from list, count and remove_where, and
 * remove_where deletes nothing. */
static void sc_bad_query(sc_env *e, integ_store_kind k, const char *q, const char *needle, int line)
{
    int before = e->fails;
    sc_ids ids = {0};
    SC_RC(e, sc_list(e, k, q, &ids), INTEG_EINVAL);
    if (needle)
        SC_MSG(e, needle);
    SC_CHECK(e, ids.n == 0);
    int64_t n = 0;
    SC_RC(e, sc_count(e, k, q, &n), INTEG_EINVAL);
    int64_t total = sc_n(e, k, NULL);
    SC_RC(e, sc_remove_where(e, k, q, &n), INTEG_EINVAL);
    SC_CHECK(e, sc_n(e, k, NULL) == total);
    if (e->fails != before)
        fprintf(stderr, "  (query at line %d: %s)\n", line, q);
}

#define SC_BAD(e, k, q, needle) sc_bad_query(e, k, q, needle, __LINE__)

static void sc_t_query_errors(sc_env *e)
{
    sc_seed_integrations(e);
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    SC_BAD(e, K, "{\"foo\":1}", "foo");
    SC_BAD(e, K, "{\"tenant_id\":\"t1\",\"bogus_field\":null}", "bogus_field");
    SC_BAD(e, K, "{\"status\":{\"like\":\"a%\"}}", "like");
    SC_BAD(e, K, "{\"status\":1}", "status");
    SC_BAD(e, K, "{\"status\":true}", "status");
    SC_BAD(e, K, "{\"status\":[\"a\"]}", "status");
    SC_BAD(e, K, "{\"next_run_at_ms\":\"100\"}", "next_run_at_ms");
    SC_BAD(e, K, "{\"next_run_at_ms\":1.5}", "next_run_at_ms");
    SC_BAD(e, K, "{\"next_run_at_ms\":{\"lt\":\"x\"}}", "next_run_at_ms");
    SC_BAD(e, K, "{\"next_run_at_ms\":{\"lt\":null}}", "next_run_at_ms");
    SC_BAD(e, K, "{\"status\":{\"in\":\"active\"}}", "status");
    SC_BAD(e, K, "{\"status\":{\"in\":[\"a\",2]}}", "status");
    SC_BAD(e, K, "{\"status\":{}}", "status");
    SC_BAD(e, K, "{\"order\":\"foo\"}", "foo");
    SC_BAD(e, K, "{\"order\":5}", "order");
    SC_BAD(e, K, "{\"limit\":-1}", "limit");
    SC_BAD(e, K, "{\"limit\":\"2\"}", "limit");
    SC_BAD(e, K, "{\"offset\":-3}", "offset");
    SC_BAD(e, K, "{", NULL);
    SC_BAD(e, K, "", NULL);
    SC_BAD(e, K, "{\"status\":}", NULL);
    SC_BAD(e, K, "[1]", NULL);
    SC_BAD(e, K, "\"status\"", NULL);
    SC_BAD(e, K, "{\"status\":\"a\"} trailing", NULL);
    /* a field indexed by another kind is not indexed here */
    SC_BAD(e, INTEG_KIND_LEASE, "{\"tenant_id\":\"t1\"}", "tenant_id");
    SC_BAD(e, INTEG_KIND_MAPPING, "{\"definition_id\":\"d\"}", "definition_id");
    /* nor is a field that is only inside the JSON */
    SC_OK(e, sc_ins(e, INTEG_KIND_LEASE, "{\"id\":\"l1\",\"holder\":\"h\",\"note\":\"x\"}"));
    SC_BAD(e, INTEG_KIND_LEASE, "{\"note\":\"x\"}", "note");
}

static void sc_t_count(sc_env *e)
{
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    SC_CHECK(e, sc_n(e, K, NULL) == 0);
    sc_seed_integrations(e);
    SC_CHECK(e, sc_n(e, K, NULL) == 6);
    SC_CHECK(e, sc_n(e, K, "{}") == 6);
    SC_CHECK(e, sc_n(e, K, "{\"tenant_id\":\"t1\"}") == 5);
    SC_CHECK(e, sc_n(e, K, "{\"status\":\"active\",\"next_run_at_ms\":{\"gt\":100}}") == 2);
    /* order, limit and offset do not change a count */
    SC_CHECK(
        e, sc_n(e, K, "{\"tenant_id\":\"t1\",\"order\":\"status\",\"limit\":1,\"offset\":1}") == 5);
    SC_CHECK(e, sc_n(e, INTEG_KIND_MAPPING, NULL) == 0);
}

static void sc_t_remove(sc_env *e)
{
    sc_seed_integrations(e);
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    SC_OK(e, sc_remove(e, K, NULL, "i01"));
    SC_RC(e, sc_remove(e, K, NULL, "i01"), INTEG_ENOTFOUND);
    SC_RC(e, sc_remove(e, K, "t1", "i01"), INTEG_ENOTFOUND);
    SC_RC(e, sc_remove(e, K, NULL, "never"), INTEG_ENOTFOUND);
    SC_CHECK(e, !sc_exists(e, K, "i01"));
    SC_CHECK(e, sc_n(e, K, NULL) == 5);
    SC_OK(e, sc_remove(e, K, "t2", "i04"));
    SC_CHECK(e, sc_n(e, K, NULL) == 4);
    /* a removed id may be inserted again */
    SC_OK(e, sc_ins(e, K, "{\"id\":\"i01\",\"tenant_id\":\"t9\"}"));
    SC_CHECK(e, sc_n(e, K, "{\"tenant_id\":\"t9\"}") == 1);
}

static void sc_t_remove_where(sc_env *e)
{
    sc_seed_integrations(e);
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    int64_t n = -1;
    /* scoped by tenant: t2's active record stays */
    SC_OK(e, sc_remove_where(e, K, "{\"tenant_id\":\"t1\",\"status\":\"active\"}", &n));
    SC_CHECK(e, n == 2);
    sc_ids ids;
    SC_STR(e, sc_list_s(e, K, NULL, &ids), "i06,i05,i04,i02");
    SC_OK(e, sc_remove_where(e, K, "{\"tenant_id\":\"t1\",\"status\":\"active\"}", &n));
    SC_CHECK(e, n == 0);
    SC_OK(e, sc_remove_where(e, K, "{\"status\":{\"in\":[]}}", &n));
    SC_CHECK(e, n == 0);
    /* out_count may be NULL */
    SC_OK(e, sc_remove_where(e, K, "{\"next_run_at_ms\":null}", NULL));
    SC_STR(e, sc_list_s(e, K, NULL, &ids), "i05,i04,i02");
    /* limit: exactly the rows list would return (here the oldest) */
    SC_OK(e, sc_remove_where(e, K, "{\"order\":\"id\",\"limit\":1}", &n));
    SC_CHECK(e, n == 1);
    SC_STR(e, sc_list_s(e, K, NULL, &ids), "i05,i04");
    /* NULL: everything */
    SC_OK(e, sc_remove_where(e, K, NULL, &n));
    SC_CHECK(e, n == 2);
    SC_CHECK(e, sc_n(e, K, NULL) == 0);
}

static void sc_t_rollback_discards(sc_env *e)
{
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    const char *a = "{\"id\":\"i1\",\"tenant_id\":\"t1\",\"status\":\"a\"}";
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 1, &tx));
    if (!tx)
        return;
    SC_OK(e, e->st->put(tx, K, a, NULL, 0, INTEG_PUT_INSERT));
    /* a transaction reads its own writes */
    sc_row r = {0};
    SC_OK(e, e->st->get(tx, K, "t1", "i1", sc_row_cb, &r));
    SC_STR(e, r.json, a);
    sc_row_free(&r);
    int64_t n = 0;
    SC_OK(e, e->st->count(tx, K, NULL, &n));
    SC_CHECK(e, n == 1);
    SC_OK(e, e->st->end(tx, 0));
    SC_CHECK(e, !sc_exists(e, K, "i1"));
    SC_CHECK(e, sc_n(e, K, NULL) == 0);

    /* update, remove and remove_where roll back too */
    SC_OK(e, sc_ins(e, K, a));
    SC_OK(e, sc_ins(e, K, "{\"id\":\"i2\",\"tenant_id\":\"t1\"}"));
    tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 1, &tx));
    if (!tx)
        return;
    SC_OK(e, e->st->put(tx, K, "{\"id\":\"i1\",\"status\":\"b\"}", NULL, 0, INTEG_PUT_UPDATE));
    SC_OK(e, e->st->remove(tx, K, NULL, "i2"));
    SC_OK(e, e->st->remove_where(tx, K, NULL, &n));
    SC_OK(e, e->st->end(tx, 0));
    SC_OK(e, sc_get(e, K, NULL, "i1", &r));
    SC_STR(e, r.json, a);
    sc_row_free(&r);
    SC_CHECK(e, sc_exists(e, K, "i2"));

    /* a failed put leaves the transaction usable */
    tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 1, &tx));
    if (!tx)
        return;
    SC_OK(e, e->st->put(tx, K, "{\"id\":\"i3\"}", NULL, 0, INTEG_PUT_INSERT));
    SC_RC(e, e->st->put(tx, K, a, NULL, 0, INTEG_PUT_INSERT), INTEG_EEXISTS);
    SC_OK(e, e->st->put(tx, K, "{\"id\":\"i4\"}", NULL, 0, INTEG_PUT_INSERT));
    SC_OK(e, e->st->end(tx, 1));
    SC_CHECK(e, sc_exists(e, K, "i3") && sc_exists(e, K, "i4"));
}

static void sc_t_read_tx_sees_committed(sc_env *e)
{
    const integ_store_kind K = INTEG_KIND_AUDIT;
    const char *a = "{\"id\":\"a1\",\"tenant_id\":\"t1\",\"at_ms\":5}";
    SC_OK(e, sc_ins(e, K, a));
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 0, &tx));
    if (!tx)
        return;
    sc_row r = {0};
    SC_OK(e, e->st->get(tx, K, "t1", "a1", sc_row_cb, &r));
    SC_STR(e, r.json, a);
    sc_row_free(&r);
    int64_t n = 0;
    SC_OK(e, e->st->count(tx, K, "{\"at_ms\":{\"gte\":5}}", &n));
    SC_CHECK(e, n == 1);
    sc_ids ids = {0};
    SC_OK(e, e->st->list(tx, K, "{\"tenant_id\":\"t1\"}", sc_ids_cb, &ids));
    SC_STR(e, ids.buf, "a1");
    /* committing a read transaction is fine too */
    SC_OK(e, e->st->end(tx, 1));
}

static int sc_stop_cb(void *payload, const char *json, size_t json_len, const unsigned char *blob,
                      size_t blob_len)
{
    (void)json;
    (void)json_len;
    (void)blob;
    (void)blob_len;
    int *calls = payload;
    (*calls)++;
    return *calls == 2 ? 42 : 0;
}

static int sc_neg_cb(void *payload, const char *json, size_t json_len, const unsigned char *blob,
                     size_t blob_len)
{
    (void)payload;
    (void)json;
    (void)json_len;
    (void)blob;
    (void)blob_len;
    return -12345;
}

static void sc_t_callback_stop(sc_env *e)
{
    sc_seed_integrations(e);
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 0, &tx));
    if (!tx)
        return;
    int calls = 0;
    SC_RC(e, e->st->list(tx, INTEG_KIND_INTEGRATION, NULL, sc_stop_cb, &calls), 42);
    SC_CHECK(e, calls == 2);
    SC_RC(e, e->st->list(tx, INTEG_KIND_INTEGRATION, NULL, sc_neg_cb, NULL), -12345);
    SC_RC(e, e->st->get(tx, INTEG_KIND_INTEGRATION, NULL, "i01", sc_neg_cb, NULL), -12345);
    /* the transaction is still usable afterwards */
    int64_t n = 0;
    SC_OK(e, e->st->count(tx, INTEG_KIND_INTEGRATION, NULL, &n));
    SC_CHECK(e, n == 6);
    SC_OK(e, e->st->end(tx, 0));
}

static void sc_t_put_invalid(sc_env *e)
{
    const integ_store_kind K = INTEG_KIND_INTEGRATION;
    static const char *const bad[] = {
        "",
        "{",
        "[1,2]",
        "\"str\"",
        "null",
        "42",
        "{\"id\":\"x\"} {}",
        "{\"tenant_id\":\"t1\"}",
        "{\"id\":5}",
        "{\"id\":null}",
        "{\"id\":[\"x\"]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sc_put(e, K, bad[i], NULL, 0, INTEG_PUT_UPSERT);
        if (rc != INTEG_EINVAL) {
            fprintf(stderr, "  put of '%s' returned %d, want EINVAL\n", bad[i], rc);
            e->fails++;
        }
    }
    SC_RC(e, sc_put(e, K, NULL, NULL, 0, INTEG_PUT_INSERT), INTEG_EINVAL);

    /* indexed fields of the wrong type name the field */
    SC_RC(e, sc_ins(e, K, "{\"id\":\"i1\",\"status\":5}"), INTEG_EINVAL);
    SC_MSG(e, "status");
    SC_RC(e, sc_ins(e, K, "{\"id\":\"i1\",\"tenant_id\":{\"a\":1}}"), INTEG_EINVAL);
    SC_MSG(e, "tenant_id");
    SC_RC(e, sc_ins(e, K, "{\"id\":\"i1\",\"next_run_at_ms\":\"soon\"}"), INTEG_EINVAL);
    SC_MSG(e, "next_run_at_ms");
    SC_RC(e, sc_ins(e, K, "{\"id\":\"i1\",\"next_run_at_ms\":1.5}"), INTEG_EINVAL);
    SC_MSG(e, "next_run_at_ms");
    SC_RC(e, sc_ins(e, K, "{\"id\":\"i1\",\"next_run_at_ms\":true}"), INTEG_EINVAL);
    SC_RC(e, sc_ins(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"id\":\"w1\",\"active\":\"yes\"}"),
          INTEG_EINVAL);
    SC_MSG(e, "active");
    SC_RC(e, sc_ins(e, INTEG_KIND_WEBHOOK_ENDPOINT, "{\"id\":\"w1\",\"active\":1}"), INTEG_EINVAL);
    SC_MSG(e, "active");
    /* UPDATE checks the same, and keeps the old record */
    SC_OK(e, sc_ins(e, K, "{\"id\":\"i1\",\"status\":\"ok\"}"));
    SC_RC(e, sc_put(e, K, "{\"id\":\"i1\",\"status\":false}", NULL, 0, INTEG_PUT_UPDATE),
          INTEG_EINVAL);
    SC_CHECK(e, sc_n(e, K, "{\"status\":\"ok\"}") == 1);
    SC_CHECK(e, sc_n(e, K, NULL) == 1);
    SC_CHECK(e, sc_n(e, INTEG_KIND_WEBHOOK_ENDPOINT, NULL) == 0);
    /* unindexed fields may hold anything */
    SC_OK(e, sc_ins(e, K, "{\"id\":\"i2\",\"other\":{\"status\":5},\"x\":1.5}"));
}

static void sc_t_bad_kind_and_mode(sc_env *e)
{
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 1, &tx));
    if (!tx)
        return;
    const integ_store_kind bad_kinds[] = {(integ_store_kind)0, (integ_store_kind)INTEG_KIND_END,
                                          (integ_store_kind)99, (integ_store_kind)-1};
    for (size_t i = 0; i < sizeof bad_kinds / sizeof bad_kinds[0]; i++) {
        integ_store_kind k = bad_kinds[i];
        sc_row r = {0};
        int64_t n = 0;
        SC_RC(e, e->st->put(tx, k, "{\"id\":\"x\"}", NULL, 0, INTEG_PUT_INSERT), INTEG_EINVAL);
        SC_RC(e, e->st->get(tx, k, NULL, "x", sc_row_cb, &r), INTEG_EINVAL);
        SC_RC(e, e->st->list(tx, k, NULL, sc_row_cb, &r), INTEG_EINVAL);
        SC_RC(e, e->st->count(tx, k, NULL, &n), INTEG_EINVAL);
        SC_RC(e, e->st->remove(tx, k, NULL, "x"), INTEG_EINVAL);
        SC_RC(e, e->st->remove_where(tx, k, NULL, &n), INTEG_EINVAL);
        sc_row_free(&r);
    }
    SC_RC(e, e->st->put(tx, INTEG_KIND_LEASE, "{\"id\":\"x\"}", NULL, 0, (integ_put_mode)0),
          INTEG_EINVAL);
    SC_RC(e, e->st->put(tx, INTEG_KIND_LEASE, "{\"id\":\"x\"}", NULL, 0, (integ_put_mode)4),
          INTEG_EINVAL);
    SC_OK(e, e->st->end(tx, 1));
    SC_CHECK(e, sc_n(e, INTEG_KIND_LEASE, NULL) == 0);
}

static void sc_t_null_arguments(sc_env *e)
{
    const integ_store *s = e->st;
    SC_RC(e, s->begin(e->sd, 0, NULL), INTEG_EINVAL);
    SC_RC(e, s->end(NULL, 0), INTEG_EINVAL);
    SC_RC(e, s->end(NULL, 1), INTEG_EINVAL);
    int64_t n = 0;
    sc_row r = {0};
    SC_RC(e, s->put(NULL, INTEG_KIND_LEASE, "{\"id\":\"x\"}", NULL, 0, INTEG_PUT_INSERT),
          INTEG_EINVAL);
    SC_RC(e, s->get(NULL, INTEG_KIND_LEASE, NULL, "x", sc_row_cb, &r), INTEG_EINVAL);
    SC_RC(e, s->list(NULL, INTEG_KIND_LEASE, NULL, sc_row_cb, &r), INTEG_EINVAL);
    SC_RC(e, s->count(NULL, INTEG_KIND_LEASE, NULL, &n), INTEG_EINVAL);
    SC_RC(e, s->remove(NULL, INTEG_KIND_LEASE, NULL, "x"), INTEG_EINVAL);
    SC_RC(e, s->remove_where(NULL, INTEG_KIND_LEASE, NULL, &n), INTEG_EINVAL);
    void *tx = NULL;
    SC_OK(e, s->begin(e->sd, 1, &tx));
    if (!tx)
        return;
    SC_RC(e, s->get(tx, INTEG_KIND_LEASE, NULL, NULL, sc_row_cb, &r), INTEG_EINVAL);
    SC_RC(e, s->get(tx, INTEG_KIND_LEASE, NULL, "x", NULL, NULL), INTEG_EINVAL);
    SC_RC(e, s->list(tx, INTEG_KIND_LEASE, NULL, NULL, NULL), INTEG_EINVAL);
    SC_RC(e, s->count(tx, INTEG_KIND_LEASE, NULL, NULL), INTEG_EINVAL);
    SC_RC(e, s->remove(tx, INTEG_KIND_LEASE, NULL, NULL), INTEG_EINVAL);
    SC_OK(e, s->end(tx, 0));
    sc_row_free(&r);
}

static void sc_t_open_idempotent(sc_env *e)
{
    SC_OK(e, sc_ins(e, INTEG_KIND_LEASE, "{\"id\":\"l1\",\"holder\":\"a\"}"));
    SC_OK(e, e->st->open(e->sd));
    SC_CHECK(e, sc_exists(e, INTEG_KIND_LEASE, "l1"));
}

/* Threads: read-modify-write of one counter must not lose an increment. */
#define SC_THREADS 4
#define SC_ROUNDS 25

typedef struct sc_worker {
    sc_env *e;
    int index;
    int errors;
} sc_worker;

static int sc_counter_cb(void *payload, const char *json, size_t json_len,
                         const unsigned char *blob, size_t blob_len)
{
    (void)json_len;
    (void)blob;
    (void)blob_len;
    const char *p = strstr(json, "\"n\":");
    *(long *)payload = p ? strtol(p + 4, NULL, 10) : -1;
    return 0;
}

static void *sc_worker_main(void *arg)
{
    sc_worker *w = arg;
    const integ_store *s = w->e->st;
    for (int i = 0; i < SC_ROUNDS; i++) {
        int rc;
        int attempts = 0;
        do { /* ECONFLICT is retryable by contract */
            void *tx = NULL;
            rc = s->begin(w->e->sd, 1, &tx);
            if (rc != INTEG_OK)
                continue;
            long n = -1;
            rc = s->get(tx, INTEG_KIND_LEASE, NULL, "counter", sc_counter_cb, &n);
            char json[96];
            if (rc == INTEG_OK) {
                snprintf(json, sizeof json, "{\"id\":\"counter\",\"n\":%ld}", n + 1);
                rc = s->put(tx, INTEG_KIND_LEASE, json, NULL, 0, INTEG_PUT_UPDATE);
            }
            if (rc == INTEG_OK) {
                snprintf(json, sizeof json, "{\"id\":\"r-%d-%03d\",\"holder\":\"w%d\"}", w->index,
                         i, w->index);
                rc = s->put(tx, INTEG_KIND_LEASE, json, NULL, 0, INTEG_PUT_INSERT);
            }
            int erc = s->end(tx, rc == INTEG_OK);
            if (rc == INTEG_OK)
                rc = erc;
        } while (rc == INTEG_ECONFLICT && ++attempts < 50);
        if (rc != INTEG_OK) {
            fprintf(stderr, "  worker %d round %d: %d %s\n", w->index, i, rc, integ_errmsg());
            w->errors++;
        }
    }
    return NULL;
}

static void sc_t_concurrent_writers(sc_env *e)
{
    SC_OK(e, sc_ins(e, INTEG_KIND_LEASE, "{\"id\":\"counter\",\"n\":0}"));
    pthread_t th[SC_THREADS];
    sc_worker w[SC_THREADS];
    int started = 0;
    for (int i = 0; i < SC_THREADS; i++) {
        w[i] = (sc_worker){e, i, 0};
        if (pthread_create(&th[i], NULL, sc_worker_main, &w[i]) != 0)
            break;
        started++;
    }
    SC_CHECK(e, started == SC_THREADS);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        SC_CHECK(e, w[i].errors == 0);
    }
    long n = -1;
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 0, &tx));
    if (!tx)
        return;
    SC_OK(e, e->st->get(tx, INTEG_KIND_LEASE, NULL, "counter", sc_counter_cb, &n));
    SC_OK(e, e->st->end(tx, 0));
    SC_CHECK(e, n == (long)started * SC_ROUNDS);
    SC_CHECK(e, sc_n(e, INTEG_KIND_LEASE, "{\"holder\":{\"ne\":\"\"}}") ==
                    (int64_t)started * SC_ROUNDS);
}

/* ------------------------------------------------------------------------ */
/* Runner                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct sc_case {
    const char *name;
    void (*fn)(sc_env *e);
} sc_case;


/* ------------------------------------------------------------------------ */
/* put_fields (version 2, optional)                                         */
/* ------------------------------------------------------------------------ */

static integ_store_field sc_s(const char *v)
{
    integ_store_field f = {INTEG_FIELD_STRING, v, v ? strlen(v) : 0, 0};
    return f;
}

static integ_store_field sc_b(int v)
{
    integ_store_field f = {INTEG_FIELD_BOOL, NULL, 0, v};
    return f;
}

static integ_store_field sc_null(void)
{
    integ_store_field f = {INTEG_FIELD_NULL, NULL, 0, 0};
    return f;
}

/* An entity link through put_fields: id, tenant_id, integration_id, entity,
 * external_id, local_id, pending (store.h's order). */
static int sc_put_link(sc_env *e, const char *json, const char *id, const char *ext, int pending,
                       size_t n_fields, integ_put_mode mode)
{
    integ_store_field f[7] = {sc_s(id), sc_s("t1"), sc_s("i1"), sc_s("contacts"), sc_s(ext),
                              sc_s("L-1"), sc_b(pending)};
    void *tx = NULL;
    int rc = e->st->begin(e->sd, 1, &tx);
    if (rc != INTEG_OK)
        return rc;
    rc = e->st->put_fields(tx, INTEG_KIND_ENTITY_LINK, json, strlen(json), f, n_fields, NULL, 0, mode);
    if (rc != INTEG_OK) {
        e->st->end(tx, 0);
        return rc;
    }
    return e->st->end(tx, 1);
}

static void sc_t_put_fields(sc_env *e)
{
    if (e->st->version < 2 || !e->st->put_fields) {
        printf("     (put_fields: not implemented, skipped)\n");
        return;
    }
    const integ_store_kind K = INTEG_KIND_ENTITY_LINK;
    const char *a = "{\"id\":\"l2\", \"tenant_id\":\"t1\",\"integration_id\":\"i1\",\"entity\":\"contacts\","
                    "\"external_id\":\"x2\",\"local_id\":\"L-1\",\"pending\":false,\"base\":{\"n\":\"\\u00e9\"}}";
    SC_OK(e, sc_put_link(e, a, "l2", "x2", 0, 7, INTEG_PUT_INSERT));
    /* The same fields through put: the two paths must be indistinguishable. */
    SC_OK(e, sc_ins(e, K, "{\"id\":\"l1\",\"tenant_id\":\"t1\",\"integration_id\":\"i1\",\"entity\":\"contacts\","
                          "\"external_id\":\"x1\",\"local_id\":\"L-1\",\"pending\":false}"));
    sc_row r;
    SC_OK(e, sc_get(e, K, "t1", "l2", &r));
    SC_STR(e, r.json, a); /* byte for byte */
    SC_CHECK(e, r.json_len == strlen(a) && !r.has_blob);
    sc_row_free(&r);
    sc_ids ids;
    SC_STR(e, sc_list_s(e, K, "{\"local_id\":\"L-1\",\"pending\":false,\"order\":\"id\"}", &ids), "l1,l2");
    SC_STR(e, sc_list_s(e, K, "{\"external_id\":\"x2\",\"tenant_id\":\"t1\"}", &ids), "l2");
    SC_CHECK(e, sc_n(e, K, "{\"pending\":true}") == 0);
    /* insert of an existing id; the unique triple binds across both paths */
    SC_RC(e, sc_put_link(e, a, "l2", "x9", 0, 7, INTEG_PUT_INSERT), INTEG_EEXISTS);
    SC_RC(e, sc_put_link(e, a, "l3", "x1", 0, 7, INTEG_PUT_INSERT), INTEG_EEXISTS);
    /* update and upsert replace the fields and the text */
    const char *b = "{\"id\":\"l2\",\"pending\":true}";
    SC_OK(e, sc_put_link(e, b, "l2", "x2", 1, 7, INTEG_PUT_UPDATE));
    SC_STR(e, sc_list_s(e, K, "{\"pending\":true}", &ids), "l2");
    SC_OK(e, sc_get(e, K, NULL, "l2", &r));
    SC_STR(e, r.json, b);
    sc_row_free(&r);
    SC_RC(e, sc_put_link(e, b, "l9", "x8", 1, 7, INTEG_PUT_UPDATE), INTEG_ENOTFOUND);
    SC_OK(e, sc_put_link(e, b, "l9", "x8", 1, 7, INTEG_PUT_UPSERT));
    SC_CHECK(e, sc_n(e, K, NULL) == 3);
    /* wrong field count or types: refused, nothing written */
    SC_RC(e, sc_put_link(e, a, "l4", "x4", 0, 6, INTEG_PUT_INSERT), INTEG_EINVAL);
    SC_RC(e, sc_put_link(e, a, "l4", "x4", 0, 8, INTEG_PUT_INSERT), INTEG_EINVAL);
    SC_RC(e, sc_put_link(e, a, "", "x4", 0, 7, INTEG_PUT_INSERT), INTEG_EINVAL);
    SC_MSG(e, "id");
    SC_RC(e, sc_put_link(e, a, NULL, "x4", 0, 7, INTEG_PUT_INSERT), INTEG_EINVAL);
    SC_CHECK(e, sc_n(e, K, NULL) == 3);
    void *tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 1, &tx));
    if (tx) {
        integ_store_field f[7] = {sc_s("l5"), sc_s("t1"), sc_s("i1"), sc_s("contacts"), sc_s("x5"),
                                  sc_null(), sc_s("no")};
        SC_RC(e, e->st->put_fields(tx, K, a, strlen(a), f, 7, NULL, 0, INTEG_PUT_INSERT), INTEG_EINVAL);
        SC_MSG(e, "pending");
        f[6] = sc_null();
        f[1].type = INTEG_FIELD_INT;
        SC_RC(e, e->st->put_fields(tx, K, a, strlen(a), f, 7, NULL, 0, INTEG_PUT_INSERT), INTEG_EINVAL);
        SC_MSG(e, "tenant_id");
        f[1] = sc_null(); /* NULL is fine for any field but id */
        SC_OK(e, e->st->put_fields(tx, K, a, strlen(a), f, 7, NULL, 0, INTEG_PUT_INSERT));
        SC_RC(e, e->st->put_fields(tx, K, a, strlen(a), NULL, 7, NULL, 0, INTEG_PUT_INSERT), INTEG_EINVAL);
        SC_RC(e, e->st->put_fields(tx, K, NULL, 0, f, 7, NULL, 0, INTEG_PUT_UPSERT), INTEG_EINVAL);
        SC_OK(e, e->st->end(tx, 1));
    }
    SC_CHECK(e, sc_n(e, K, "{\"tenant_id\":null}") == 1);
    /* a blob and an integer field (webhook events) */
    const char *ev = "{\"id\":\"e1\",\"endpoint_id\":\"w1\",\"event_id\":\"d1\",\"next_attempt_at_ms\":42}";
    integ_store_field g[8] = {sc_s("e1"), sc_null(), sc_s("w1"), sc_null(), sc_s("d1"), sc_null(),
                              {INTEG_FIELD_INT, NULL, 0, 42}, sc_null()};
    tx = NULL;
    SC_OK(e, e->st->begin(e->sd, 1, &tx));
    if (tx)
        SC_OK(e, e->st->end(tx, e->st->put_fields(tx, INTEG_KIND_WEBHOOK_EVENT, ev, strlen(ev), g, 8,
                                                  (const unsigned char *)"\0body", 5, INTEG_PUT_INSERT) == INTEG_OK));
    SC_OK(e, sc_get(e, INTEG_KIND_WEBHOOK_EVENT, NULL, "e1", &r));
    SC_CHECK(e, r.has_blob && r.blob_len == 5 && memcmp(r.blob, "\0body", 5) == 0);
    sc_row_free(&r);
    SC_CHECK(e, sc_n(e, INTEG_KIND_WEBHOOK_EVENT, "{\"next_attempt_at_ms\":{\"gt\":41}}") == 1);
}

static const sc_case sc_cases[] = {
    {"roundtrip_every_kind", sc_t_roundtrip_every_kind},
    {"blob_roundtrip", sc_t_blob_roundtrip},
    {"large_record", sc_t_large_record},
    {"insert_duplicate", sc_t_insert_duplicate},
    {"update", sc_t_update},
    {"upsert", sc_t_upsert},
    {"unique_sets", sc_t_unique_sets},
    {"tenant_scoping", sc_t_tenant_scoping},
    {"list_equality", sc_t_list_equality},
    {"list_operators", sc_t_list_operators},
    {"list_order_paging", sc_t_list_order_paging},
    {"query_errors", sc_t_query_errors},
    {"count", sc_t_count},
    {"remove", sc_t_remove},
    {"remove_where", sc_t_remove_where},
    {"rollback_discards", sc_t_rollback_discards},
    {"read_tx_sees_committed", sc_t_read_tx_sees_committed},
    {"callback_stop", sc_t_callback_stop},
    {"put_invalid", sc_t_put_invalid},
    {"bad_kind_and_mode", sc_t_bad_kind_and_mode},
    {"null_arguments", sc_t_null_arguments},
    {"open_idempotent", sc_t_open_idempotent},
    {"concurrent_writers", sc_t_concurrent_writers},
    {"put_fields", sc_t_put_fields},
};

static int sc_vtable_complete(const integ_store *s)
{
    int ok = s->version >= 1 && s->version <= INTEG_STORE_VERSION && s->name && s->name[0] &&
             s->open && s->close && s->begin && s->end && s->put && s->get && s->list && s->count &&
             s->remove && s->remove_where;
    if (!ok)
        fprintf(stderr, "  the vtable has a NULL member, no name or a bad version\n");
    return ok;
}

int store_conformance_run(const integ_store *store, void *(*make_store_data)(void *arg), void *arg)
{
    if (!store || !make_store_data || !sc_vtable_complete(store)) {
        printf("FAIL conformance.vtable\n");
        return 1;
    }
    printf("ok   conformance.vtable\n");
    int failed = 0;
    for (size_t i = 0; i < sizeof sc_cases / sizeof sc_cases[0]; i++) {
        sc_env e = {store, make_store_data(arg), 0};
        if (!e.sd) {
            fprintf(stderr, "  make_store_data returned NULL\n");
            e.fails++;
        } else {
            int rc = store->open(e.sd);
            if (rc != INTEG_OK) {
                fprintf(stderr, "  open: %d %s\n", rc, integ_errmsg());
                e.fails++;
            } else {
                sc_cases[i].fn(&e);
            }
            store->close(e.sd);
        }
        if (e.fails) {
            failed++;
            printf("FAIL conformance.%s\n", sc_cases[i].name);
        } else {
            printf("ok   conformance.%s\n", sc_cases[i].name);
        }
        fflush(stdout);
    }
    return failed;
}
