/* Schedules: integ_run_due runs the syncs that are due (integrations with
 * auto_sync, every sync_interval seconds, with jitter) and then processes
 * queued webhook events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "definitions.h"
#include "error.h"
#include "json.h"
#include "sync.h"
#include "ctx.h"
#include "util.h"


/* The next run: one interval on, give or take 10%, so integrations created
 * together don't all hit their providers in the same second forever. */
int64_t ig_schedule_next(integ_ctx *ctx, json_object *config, int64_t from_ms)
{
    int64_t interval = ig_json_int(config, "sync_interval", 3600);
    if (interval < 60)
        interval = 60;
    int64_t span = interval * 1000 / 5; /* 20% wide window */
    uint32_t r = ig_ctx_clock(ctx)->random(ig_ctx_clock(ctx)->payload);
    return from_ms + interval * 1000 - span / 2 + (span ? (int64_t)(r % (uint64_t)span) : 0);
}

/* The entities a scheduled run syncs: config.entities, else every listable one. */
static json_object *scheduled_entities(json_object *config, json_object *manifest)
{
    json_object *out = json_object_new_array();
    json_object *chosen = ig_json_get(config, "entities");
    if (ig_json_len(chosen)) {
        for (size_t i = 0; i < ig_json_len(chosen); i++)
            json_object_array_add(out, json_object_get(json_object_array_get_idx(chosen, i)));
        return out;
    }
    ig_json_foreach(ig_json_get(manifest, "entities"), name, e)
    {
        if (ig_json_str(e, "records_path") && !json_object_is_type(ig_json_get(e, "list"), json_type_boolean))
            json_object_array_add(out, json_object_new_string(name));
    }
    return out;
}

/* Claim up to max due integrations: their next run moves one interval on
 * in the same transaction, so another process's run_due skips them. */
static int claim_due(integ_ctx *ctx, int max, json_object *claimed)
{
    int64_t now = ig_ctx_now_ms(ctx);
    void *tx = NULL;
    json_object *rows = json_object_new_array();
    char q[200];
    /* "error" (the last sync failed, not for its credentials) is retried at
     * the next interval: a success makes it active again. "needs_reauth"
     * and "paused" wait for a person. */
    snprintf(q, sizeof q,
             "{\"status\":{\"in\":[\"active\",\"error\"]},\"next_run_at_ms\":{\"lte\":%lld},"
             "\"order\":\"next_run_at_ms\",\"limit\":%d}",
             (long long)now, max);
    json_object *query = json_tokener_parse(q);
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = ig_store_list(ctx, tx, INTEG_KIND_INTEGRATION, query, rows);
    for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(rows); i++) {
        json_object *rec = json_object_array_get_idx(rows, i);
        json_object *config = ig_json_get(rec, "config");
        if (!ig_json_bool(config, "auto_sync", 0)) {
            json_object_object_add(rec, "next_run_at_ms", NULL);
        } else {
            json_object_object_add(rec, "next_run_at_ms", json_object_new_int64(ig_schedule_next(ctx, config, now)));
            json_object_array_add(claimed, json_object_get(rec));
        }
        rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    json_object_put(query);
    json_object_put(rows);
    return rc;
}

/* A claimed integration whose run could not start (its definition or a
 * session could not be had): due again at once rather than an interval
 * later, unless someone changed its schedule meanwhile. Best effort: the
 * failure is reported either way. */
static void due_again(integ_ctx *ctx, json_object *claimed_rec)
{
    void *tx = NULL;
    json_object *rec = NULL;
    if (ig_tx_begin(ctx, 1, &tx) != INTEG_OK)
        return;
    int rc = ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, ig_json_str(claimed_rec, "tenant_id"),
                          ig_json_str(claimed_rec, "id"), &rec);
    if (rc == INTEG_OK && ig_json_int(rec, "next_run_at_ms", -1) == ig_json_int(claimed_rec, "next_run_at_ms", -2)) {
        json_object_object_add(rec, "next_run_at_ms", json_object_new_int64(ig_ctx_now_ms(ctx)));
        rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, rec, INTEG_PUT_UPDATE);
    }
    ig_tx_end(ctx, tx, 1, rc);
    json_object_put(rec);
}

/* An entry of `syncs`: {tenant_id, integration_id, entity (when not
 * NULL)}; the caller adds the outcome. */
static json_object *sync_entry(json_object *syncs, const char *tenant, const char *iid, const char *entity)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "tenant_id", json_object_new_string(tenant));
    json_object_object_add(o, "integration_id", json_object_new_string(iid));
    if (entity)
        json_object_object_add(o, "entity", json_object_new_string(entity));
    json_object_array_add(syncs, o);
    return o;
}

/* The outcome of a run that failed (or, "skipped", found one running). */
static void entry_failed(json_object *o, const char *status, int code)
{
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "code", json_object_new_int(code));
    json_object_object_add(o, "error", json_object_new_string(integ_errmsg()));
}

INTEG_API int integ_run_due(integ_ctx *ctx, int max_jobs, char **out_json)
{
    ig_err_clear();
    if (out_json)
        *out_json = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    IG_CHECK_ARG(max_jobs > 0 && max_jobs <= 10000, "max_jobs (1..10000)");
    json_object *claimed = json_object_new_array(), *syncs = json_object_new_array();
    int rc = claim_due(ctx, max_jobs, claimed);
    int jobs = 0;
    for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(claimed); i++) {
        json_object *rec = json_object_array_get_idx(claimed, i);
        const char *tenant = ig_json_str(rec, "tenant_id"), *iid = ig_json_str(rec, "id");
        json_object *def = NULL;
        void *tx = NULL;
        /* Without its definition the run would sync nothing (no entities)
         * and say nothing: report it instead. */
        int drc = ig_tx_begin(ctx, 0, &tx);
        if (drc == INTEG_OK)
            drc = ig_tx_end(ctx, tx, 1, ig_definition_lookup(ctx, tx, ig_json_str(rec, "definition_id"), &def));
        /* The scheduler acts as the platform: an admin session of the tenant. */
        integ_session *s = NULL;
        if (drc == INTEG_OK)
            drc = integ_session_open(&s, ctx, tenant, "scheduler", "[\"admin\"]");
        if (drc != INTEG_OK) {
            entry_failed(sync_entry(syncs, tenant, iid, NULL), "error", drc);
            due_again(ctx, rec);
            json_object_put(def);
            continue;
        }
        json_object *entities = scheduled_entities(ig_json_get(rec, "config"), ig_json_get(def, "manifest"));
        for (size_t k = 0; k < ig_json_len(entities); k++) {
            const char *entity = json_object_get_string(json_object_array_get_idx(entities, k));
            char *out = NULL;
            json_object *rq = json_object_new_object();
            json_object_object_add(rq, "entity", json_object_new_string(entity));
            int src = ig_sync_run(s, iid, json_object_to_json_string_ext(rq, JSON_C_TO_STRING_PLAIN), NULL, NULL,
                                  "schedule", &out);
            json_object_put(rq);
            json_object *o = sync_entry(syncs, tenant, iid, entity);
            if (src == INTEG_OK) {
                json_object *res = json_tokener_parse(out);
                json_object_object_add(o, "status", json_object_get(ig_json_get(res, "status")));
                json_object_object_add(o, "sync_log_id", json_object_get(ig_json_get(res, "sync_log_id")));
                json_object_object_add(o, "records_processed", json_object_get(ig_json_get(res, "records_processed")));
                json_object_put(res);
            } else {
                /* A sync already running is skipped, not failed. */
                entry_failed(o, src == INTEG_ECONFLICT ? "skipped" : "error", src);
            }
            integ_free(out);
            jobs++;
        }
        integ_session_close(s);
        json_object_put(entities);
        json_object_put(def);
    }
    char *wh = NULL;
    if (rc == INTEG_OK) {
        int budget = max_jobs - jobs > 0 ? max_jobs - jobs : 1;
        rc = integ_webhook_process(ctx, budget, &wh);
    }
    if (rc == INTEG_OK && out_json) {
        json_object *out = json_object_new_object();
        json_object_object_add(out, "syncs", json_object_get(syncs));
        json_object_object_add(out, "webhooks", json_tokener_parse(wh));
        rc = ig_json_to_string(out, out_json);
        json_object_put(out);
    }
    integ_free(wh);
    json_object_put(syncs);
    json_object_put(claimed);
    return rc;
}
