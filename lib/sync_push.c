/* Push: local records changed since their last sync go to the remote
 * system — created when there is no link, updated when there is one, in
 * batches where the manifest declares them — and the conflict calls. A
 * create is made crash-safe with a pending link written before the remote
 * call: a run that finds one looks the record up (the manifest's lookup)
 * before creating it again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "engine.h"
#include "entities.h"
#include "error.h"
#include "json.h"
#include "mapping.h"
#include "sync.h"
#include "util.h"


static int load_links(integ_ctx *ctx, void *tx, const char *integration_id, const char *entity, const char *local_id,
                      json_object **out)
{
    *out = NULL;
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    json_object_object_add(q, "integration_id", json_object_new_string(integration_id));
    json_object_object_add(q, "entity", json_object_new_string(entity));
    json_object_object_add(q, "local_id", json_object_new_string(local_id));
    json_object_object_add(q, "limit", json_object_new_int(1));
    int rc = ig_store_list(ctx, tx, INTEG_KIND_ENTITY_LINK, q, rows);
    if (rc == INTEG_OK && ig_json_len(rows))
        *out = json_object_get(json_object_array_get_idx(rows, 0));
    json_object_put(q);
    json_object_put(rows);
    return rc;
}

/* *held: the record has an open conflict. A store error is returned, never
 * read as "no conflict": that would push over an unresolved conflict. */
static int has_open_conflict(integ_ctx *ctx, void *tx, const char *integration_id, const char *local_id, int *held)
{
    char q[400];
    int64_t n = 0;
    snprintf(q, sizeof q, "{\"integration_id\":\"%s\",\"local_id\":\"%s\",\"status\":\"open\"}", integration_id, local_id);
    int rc = ctx->store->count(tx, INTEG_KIND_CONFLICT, q, &n);
    *held = rc == INTEG_OK && n > 0;
    return rc;
}

/* Fields the remote must not receive. */
static void push_policies(json_object *policies, json_object *data)
{
    ig_json_foreach(policies, field, pv)
    {
        const char *p = json_object_get_string(pv);
        if (!strcmp(p, "always_remote") || !strcmp(p, "dont_sync"))
            json_object_object_del(data, field);
    }
}

/* What the remote receives for a local record's data: the fields whose
 * policy keeps them off the remote left out, the mapping reversed (none:
 * the data itself), and the server-maintained fields (the remote id and
 * updated-at a pull maps in) never written back. A push and a conflict
 * resolution both send exactly this. *out is owned. */
static int push_payload(const ig_mapping *mapping, json_object *policies, json_object *data, const char *id_field,
                        const char *upd_field, json_object **out)
{
    *out = NULL;
    /* A copy only where it is changed: by the field policies, or as the
     * remote record itself when there is no mapping. */
    json_object *d = policies || !mapping ? ig_json_copy(data) : json_object_get(data);
    push_policies(policies, d);
    json_object *remote = NULL;
    int rc = mapping ? ig_mapping_apply(mapping, IG_PUSH, d, &remote) : ((remote = json_object_get(d)), INTEG_OK);
    json_object_put(d);
    if (rc) {
        json_object_put(remote);
        return rc;
    }
    if (upd_field)
        json_object_object_del(remote, upd_field);
    if (id_field)
        json_object_object_del(remote, id_field);
    *out = remote;
    return INTEG_OK;
}

/* Links written together, in one transaction. */
static int write_links(integ_ctx *ctx, json_object *const *links, size_t n)
{
    if (n == 0)
        return INTEG_OK;
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    for (size_t i = 0; rc == INTEG_OK && i < n; i++)
        rc = ig_store_put(ctx, tx, INTEG_KIND_ENTITY_LINK, links[i], INTEG_PUT_UPSERT);
    return ig_tx_end(ctx, tx, 1, rc);
}

static int write_link(integ_ctx *ctx, json_object *link)
{
    return write_links(ctx, &link, 1);
}

/* After a successful write the link records what both sides now hold. */
static void settle_link(json_object *link, json_object *rec, json_object *remote, const char *id_field,
                        const char *upd_field, const char *upd_format)
{
    char ext[256], at[32];
    if (remote && ig_record_id(remote, id_field, ext, sizeof ext) == 0)
        json_object_object_add(link, "external_id", json_object_new_string(ext));
    int64_t upd = remote ? ig_remote_time_ms(ig_json_get(remote, upd_field), upd_format) : -1;
    if (upd >= 0) {
        ig_rfc3339(at, upd, 1);
        json_object_object_add(link, "remote_updated_at", json_object_new_string(at));
        json_object_object_add(link, "remote_updated_at_ms", json_object_new_int64(upd));
    }
    json_object_object_add(link, "local_version", json_object_new_int64(ig_json_int(rec, "version", 0)));
    json_object_object_add(link, "base", json_object_get(ig_json_get(rec, "data")));
    /* The next pull re-reads the remote version and settles the hash. */
    json_object_object_add(link, "hash", json_object_new_string(""));
    json_object_object_add(link, "pending", json_object_new_boolean(0));
    ig_rfc3339(at, ig_now_ms(), 0);
    json_object_object_add(link, "synced_at", json_object_new_string(at));
}

/* Local records read per page, and so the most items a batch has. */
#define PUSH_PAGE 200
/* How far before the push watermark the next push reads again: covers
 * writes in the watermark's millisecond, transactions that committed late
 * and clocks of other processes a few seconds behind. */
#define PUSH_OVERLAP_MS 5000

struct push_item {
    json_object *rec;    /* local record (owned) */
    json_object *link;   /* owned; NULL for a create */
    json_object *remote; /* reverse-mapped record (owned) */
};

static void ig_push_error(struct ig_push_counts *out, const char *record, int code);
static int ig_push_creates(ig_conn *c, const char *tenant_id, const char *entity, const char *local_entity,
                           json_object *lookup, const char *id_field, const char *upd_field, const char *upd_format,
                           struct push_item *items, size_t n, struct ig_push_counts *out);
static int ig_push_updates(ig_conn *c, const char *entity, const char *id_field, const char *upd_field,
                           const char *upd_format, struct push_item *items, size_t n, struct ig_push_counts *out);

static void items_free(struct push_item *it, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_object_put(it[i].rec);
        json_object_put(it[i].link);
        json_object_put(it[i].remote);
    }
}

static json_object *new_link(integ_ctx *ctx, const char *tenant, const char *integration_id, const char *entity,
                             const char *local_entity, const char *local_id)
{
    char id[37];
    ig_ctx_new_id(ctx, id, ig_now_ms());
    json_object *l = json_object_new_object();
    json_object_object_add(l, "id", json_object_new_string(id));
    json_object_object_add(l, "tenant_id", json_object_new_string(tenant));
    json_object_object_add(l, "integration_id", json_object_new_string(integration_id));
    json_object_object_add(l, "entity", json_object_new_string(entity));
    json_object_object_add(l, "local_entity", json_object_new_string(local_entity));
    json_object_object_add(l, "local_id", json_object_new_string(local_id));
    json_object_object_add(l, "external_id", NULL);
    json_object_object_add(l, "pending", json_object_new_boolean(1));
    return l;
}

int ig_sync_push(ig_conn *c, const char *tenant_id, const char *entity, json_object *edef, const char *local_entity,
                 const ig_mapping *mapping, json_object *policies, int dry_run, int full, struct ig_push_counts *out)
{
    integ_ctx *ctx = c->ctx;
    const char *iid = ig_json_str(c->integration, "id");
    const char *id_field = ig_json_str(edef, "id_field");
    const char *upd_field = ig_json_str(edef, "updated_field");
    const char *upd_format = ig_json_str(edef, "updated_format");
    int can_create = ig_json_get(edef, "create") || ig_json_get(ig_json_get(edef, "batch"), "create");
    int can_update = ig_json_get(edef, "update") || ig_json_get(ig_json_get(edef, "batch"), "update");
    int delete_remote = ig_json_bool(c->config, "delete_remote", 0) && ig_json_get(edef, "delete");
    json_object *lookup = ig_json_get(edef, "lookup");
    memset(out, 0, sizeof *out);
    out->errors = json_object_new_array();
    /* Where the previous push ended (local updated_at), unless full. */
    char ck_id[200];
    snprintf(ck_id, sizeof ck_id, "%s:%s:push", iid, entity);
    json_object *ck = NULL;
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK) {
        int g = ig_store_get(ctx, tx, INTEG_KIND_CHECKPOINT, tenant_id, ck_id, &ck);
        rc = ig_tx_end(ctx, tx, 1, g == INTEG_ENOTFOUND ? INTEG_OK : g);
    }
    int64_t since = full ? -1 : ig_json_int(ck, "hwm_ms", -1), newest = since;
    json_object_put(ck);
    int64_t offset = 0;
    while (rc == INTEG_OK) {
        /* A page of candidates, oldest change first. */
        json_object *q = json_object_new_object(), *rows = json_object_new_array();
        json_object_object_add(q, "tenant_id", json_object_new_string(tenant_id));
        json_object_object_add(q, "entity", json_object_new_string(local_entity));
        if (since >= 0) {
            /* Not just after the watermark: a record written in the same
             * millisecond as the newest one seen, or by a transaction that
             * committed after this list read it, has a time at or below
             * it. The overlap is read again; a record already pushed is
             * skipped by its link's version below. */
            json_object *gte = json_object_new_object();
            json_object_object_add(gte, "gte", json_object_new_int64(since > PUSH_OVERLAP_MS ? since - PUSH_OVERLAP_MS : 0));
            json_object_object_add(q, "updated_at_ms", gte);
        }
        json_object_object_add(q, "order", json_object_new_string("updated_at_ms"));
        json_object_object_add(q, "limit", json_object_new_int(PUSH_PAGE));
        json_object_object_add(q, "offset", json_object_new_int64(offset));
        rc = ig_tx_begin(ctx, 0, &tx);
        if (rc == INTEG_OK)
            rc = ig_tx_end(ctx, tx, 1, ig_store_list(ctx, tx, INTEG_KIND_ENTITY, q, rows));
        json_object_put(q);
        size_t n = ig_json_len(rows);
        offset += (int64_t)n;
        struct push_item creates[PUSH_PAGE], updates[PUSH_PAGE];
        size_t nc = 0, nu = 0;
        for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
            json_object *rec = json_object_array_get_idx(rows, i);
            const char *lid = ig_json_str(rec, "id");
            if (ig_json_int(rec, "updated_at_ms", 0) > newest)
                newest = ig_json_int(rec, "updated_at_ms", 0);
            /* Records a sync wrote are what the remote already has. */
            if (strcmp(ig_json_str(rec, "origin") ? ig_json_str(rec, "origin") : "sync", "local") != 0)
                continue;
            json_object *link = NULL;
            rc = ig_tx_begin(ctx, 0, &tx);
            int held = 0;
            if (rc == INTEG_OK) {
                rc = load_links(ctx, tx, iid, entity, lid, &link);
                if (rc == INTEG_OK)
                    rc = has_open_conflict(ctx, tx, iid, lid, &held);
                rc = ig_tx_end(ctx, tx, 1, rc);
            }
            if (rc) {
                json_object_put(link);
                break;
            }
            int pending = link && ig_json_bool(link, "pending", 0);
            if (held || (link && !pending && ig_json_int(rec, "version", 0) <= ig_json_int(link, "local_version", 0))) {
                json_object_put(link);
                continue;
            }
            out->processed++;
            if (ig_json_bool(rec, "deleted", 0)) {
                /* A local deletion goes out only when the integration says so. */
                if (link && !pending && delete_remote && !dry_run) {
                    int drc = ig_rest_delete(c, entity, ig_json_str(link, "external_id"));
                    if (drc == INTEG_OK) {
                        json_object_object_add(link, "local_version", json_object_new_int64(ig_json_int(rec, "version", 0)));
                        json_object_object_add(link, "deleted", json_object_new_boolean(1));
                        rc = write_link(ctx, link);
                        out->deleted++;
                    } else if (drc == INTEG_EAUTH || drc == INTEG_ERATELIMIT || drc == INTEG_ENETWORK) {
                        rc = drc;
                    } else {
                        ig_push_error(out, ig_json_str(link, "external_id"), drc);
                    }
                } else if (link && !pending && delete_remote) {
                    out->deleted++;
                } else {
                    out->skipped++;
                }
                json_object_put(link);
                continue;
            }
            json_object *remote = NULL;
            int mrc = push_payload(mapping, policies, ig_json_get(rec, "data"), id_field, upd_field, &remote);
            if (mrc) {
                ig_push_error(out, lid, mrc);
                json_object_put(link);
                continue;
            }
            if (!link || pending) {
                if (!can_create) {
                    out->skipped++;
                    json_object_put(link);
                    json_object_put(remote);
                    continue;
                }
                creates[nc].rec = json_object_get(rec);
                creates[nc].link = link;
                creates[nc].remote = remote;
                nc++;
            } else {
                if (!can_update) {
                    out->skipped++;
                    json_object_put(link);
                    json_object_put(remote);
                    continue;
                }
                updates[nu].rec = json_object_get(rec);
                updates[nu].link = link;
                updates[nu].remote = remote;
                nu++;
            }
        }
        if (dry_run) {
            out->created += (int64_t)nc;
            out->updated += (int64_t)nu;
        } else if (rc == INTEG_OK) {
            rc = ig_push_creates(c, tenant_id, entity, local_entity, lookup, id_field, upd_field, upd_format, creates,
                                 nc, out);
            if (rc == INTEG_OK)
                rc = ig_push_updates(c, entity, id_field, upd_field, upd_format, updates, nu, out);
        }
        items_free(creates, nc);
        items_free(updates, nu);
        json_object_put(rows);
        if (n < PUSH_PAGE)
            break;
    }
    if (rc == INTEG_OK && !dry_run && newest > since) {
        /* The next push starts after the newest local change seen. Records
         * that failed stay behind it only if they change again — so the
         * watermark does not move past a failed record. */
        if (out->failed == 0) {
            json_object *ck2 = json_object_new_object();
            json_object_object_add(ck2, "id", json_object_new_string(ck_id));
            json_object_object_add(ck2, "tenant_id", json_object_new_string(tenant_id));
            json_object_object_add(ck2, "integration_id", json_object_new_string(iid));
            json_object_object_add(ck2, "entity", json_object_new_string(ck_id + strlen(iid) + 1));
            json_object_object_add(ck2, "hwm_ms", json_object_new_int64(newest));
            rc = ig_tx_begin(ctx, 1, &tx);
            if (rc == INTEG_OK)
                rc = ig_tx_end(ctx, tx, 1, ig_store_put(ctx, tx, INTEG_KIND_CHECKPOINT, ck2, INTEG_PUT_UPSERT));
            json_object_put(ck2);
        }
    }
    return rc;
}

static void ig_push_error(struct ig_push_counts *out, const char *record, int code)
{
    ig_sync_log_error(out->errors, &out->failed, record, code, integ_errmsg());
}

/* Transport-level failures end the run; per-record ones are logged. */
static int fatal(int rc)
{
    return rc == INTEG_EAUTH || rc == INTEG_ERATELIMIT || rc == INTEG_ENETWORK || rc == INTEG_ESTORE ||
           rc == INTEG_ENOMEM || rc == INTEG_ECRYPTO;
}

/* A batch's answer: results[k] is the remote's record for items[idx[k]]
 * (idx NULL: items[k]), or {"error": {code, message}}. Each item's error is
 * its own; the links of the items the remote took are settled and written
 * in one transaction, and counted in *count once it has committed. A batch
 * that stopped early (brc) still reports what it did: those links are
 * saved before its error ends the run. No results: nothing was sent. */
static int settle_batch(ig_conn *c, struct push_item *items, const size_t *idx, size_t n, json_object *results,
                        int brc, const char *id_field, const char *upd_field, const char *upd_format,
                        int64_t *count, struct ig_push_counts *out)
{
    if (!results)
        return brc;
    json_object *links[PUSH_PAGE];
    size_t ok = 0;
    for (size_t k = 0; k < n && k < PUSH_PAGE; k++) {
        struct push_item *it = &items[idx ? idx[k] : k];
        json_object *res = json_object_array_get_idx(results, k);
        json_object *err = ig_json_get(res, "error");
        if (!res || err) {
            integ_error_set(INTEG_EREMOTE, err ? (ig_json_str(err, "message") ? ig_json_str(err, "message") : "batch item failed")
                                               : "no result for this batch item");
            ig_push_error(out, ig_json_str(it->rec, "id"), err ? (int)ig_json_int(err, "code", INTEG_EREMOTE) : INTEG_EREMOTE);
            continue;
        }
        settle_link(it->link, it->rec, res, id_field, upd_field, upd_format);
        links[ok++] = it->link;
    }
    int rc = write_links(c->ctx, links, ok);
    if (rc == INTEG_OK)
        *count += (int64_t)ok;
    return rc ? rc : brc;
}

static int ig_push_creates(ig_conn *c, const char *tenant_id, const char *entity, const char *local_entity,
                    json_object *lookup, const char *id_field, const char *upd_field, const char *upd_format,
                    struct push_item *items, size_t n, struct ig_push_counts *out)
{
    integ_ctx *ctx = c->ctx;
    const char *iid = ig_json_str(c->integration, "id");
    int rc = INTEG_OK;
    json_object *edef = ig_conn_entity(c, entity);
    int batch = ig_json_get(ig_json_get(edef, "batch"), "create") != NULL && n > 1;
    json_object *to_batch = json_object_new_array();
    /* A batch's items in to_batch order, and the links to write before it
     * is sent: its pending markers and the adoptions, in one transaction. */
    size_t batch_idx[PUSH_PAGE];
    json_object *marks[PUSH_PAGE];
    size_t nb = 0, nm = 0;
    int64_t adopted = 0;
    for (size_t i = 0; rc == INTEG_OK && i < n && i < PUSH_PAGE; i++) {
        struct push_item *it = &items[i];
        const char *lid = ig_json_str(it->rec, "id");
        if (it->link) {
            /* A create of an earlier run whose result was lost: look the
             * record up before creating it again. Without a lookup, or when
             * it fails, the record is held and reported — never created
             * twice. */
            json_object *found = NULL;
            const char *field = ig_json_str(lookup, "field");
            json_object *val = field ? ig_json_get(ig_json_get(it->rec, "data"), field) : NULL;
            if (!lookup || !json_object_is_type(val, json_type_string)) {
                integ_error_set(INTEG_ECONFLICT, "an earlier create of this record may have reached the remote "
                                                 "system and it cannot be looked up: check it there, then delete "
                                                 "the pending link or the record");
                ig_push_error(out, lid, INTEG_ECONFLICT);
                continue;
            }
            int frc = ig_rest_find(c, entity, field, json_object_get_string(val), &found);
            if (fatal(frc)) {
                rc = frc;
                break;
            }
            if (frc) {
                ig_push_error(out, lid, frc);
                continue;
            }
            if (found) {
                settle_link(it->link, it->rec, found, id_field, upd_field, upd_format);
                json_object_put(found);
                if (batch) {
                    marks[nm++] = it->link;
                    adopted++;
                } else if ((rc = write_link(ctx, it->link)) == INTEG_OK) {
                    out->adopted++;
                }
                continue;
            }
        } else {
            it->link = new_link(ctx, tenant_id, iid, entity, local_entity, lid);
        }
        /* The marker goes in before the remote call. */
        json_object_object_add(it->link, "pending", json_object_new_boolean(1));
        if (batch) {
            json_object *item = NULL;
            if ((rc = ig_rest_batch_item(c, entity, "create", NULL, it->remote, &item)))
                break;
            json_object_array_add(to_batch, item);
            batch_idx[nb++] = i;
            marks[nm++] = it->link;
            continue;
        }
        if ((rc = write_link(ctx, it->link)))
            break;
        json_object *created = NULL;
        int crc = ig_rest_create(c, entity, it->remote, &created);
        if (crc == INTEG_OK) {
            settle_link(it->link, it->rec, created, id_field, upd_field, upd_format);
            rc = write_link(ctx, it->link);
            out->created++;
        } else if (fatal(crc)) {
            rc = crc;
        } else {
            ig_push_error(out, lid, crc);
        }
        json_object_put(created);
    }
    if (batch) {
        /* Markers and adoptions land before the batch goes out. When the
         * batch is not going out (an error above), the adoptions are still
         * saved, and no marker is left for a create never sent. */
        if (rc != INTEG_OK) {
            size_t keep = 0;
            for (size_t k = 0; k < nm; k++)
                if (!ig_json_bool(marks[k], "pending", 0))
                    marks[keep++] = marks[k];
            nm = keep;
            nb = 0;
        }
        int wrc = write_links(ctx, marks, nm);
        if (wrc == INTEG_OK)
            out->adopted += adopted;
        if (rc == INTEG_OK)
            rc = wrc;
    }
    if (rc == INTEG_OK && nb) {
        json_object *results = NULL;
        int brc = ig_rest_batch(c, entity, "create", to_batch, &results);
        rc = settle_batch(c, items, batch_idx, nb, results, brc, id_field, upd_field, upd_format, &out->created, out);
        json_object_put(results);
    }
    json_object_put(to_batch);
    return rc;
}

static int ig_push_updates(ig_conn *c, const char *entity, const char *id_field, const char *upd_field,
                    const char *upd_format, struct push_item *items, size_t n, struct ig_push_counts *out)
{
    int rc = INTEG_OK;
    json_object *edef = ig_conn_entity(c, entity);
    int batch = ig_json_get(ig_json_get(edef, "batch"), "update") != NULL && n > 1;
    if (batch) {
        json_object *to_batch = json_object_new_array(), *results = NULL;
        for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
            json_object *r = NULL;
            rc = ig_rest_batch_item(c, entity, "update", ig_json_str(items[i].link, "external_id"), items[i].remote, &r);
            if (rc == INTEG_OK)
                json_object_array_add(to_batch, r);
        }
        if (rc == INTEG_OK) {
            int brc = ig_rest_batch(c, entity, "update", to_batch, &results);
            rc = settle_batch(c, items, NULL, n, results, brc, id_field, upd_field, upd_format, &out->updated, out);
        }
        json_object_put(results);
        json_object_put(to_batch);
        return rc;
    }
    for (size_t i = 0; rc == INTEG_OK && i < n; i++) {
        json_object *updated = NULL;
        int urc = ig_rest_update(c, entity, ig_json_str(items[i].link, "external_id"), items[i].remote, &updated);
        if (urc == INTEG_OK) {
            settle_link(items[i].link, items[i].rec, updated, id_field, upd_field, upd_format);
            rc = write_link(c->ctx, items[i].link);
            out->updated++;
        } else if (fatal(urc)) {
            rc = urc;
        } else {
            ig_push_error(out, ig_json_str(items[i].rec, "id"), urc);
        }
        json_object_put(updated);
    }
    return rc;
}

/* ---- conflicts ---------------------------------------------------------------- */

static json_object *public_conflict(json_object *rec)
{
    json_object *pub = json_object_new_object();
    static const char *const keep[] = {"id", "integration_id", "entity", "local_entity", "local_id", "external_id",
                                       "local", "remote", "base", "fields", "strategy", "status", "resolution",
                                       "resolved_by", "created_at", "resolved_at", NULL};
    for (const char *const *k = keep; *k; k++)
        json_object_object_add(pub, *k, json_object_get(ig_json_get(rec, *k)));
    return pub;
}

INTEG_API int integ_conflicts_list(integ_session *s, const char *integration_id, const char *filter_json,
                                   char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    IG_CHECK_ARG(out_json, "out_json");
    json_object *filter = NULL;
    if ((rc = ig_json_parse_object(filter_json, "filter_json", 1, &filter)))
        return rc;
    static const char *const fields[] = {"status", "entity", NULL};
    static const char *const statuses[] = {"open", "resolved", NULL};
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    rc = ig_json_filter_query(filter, fields, statuses, "must be \"open\" or \"resolved\"", q);
    if (rc == INTEG_OK)
        rc = ig_integration_records(s->ctx, s->tenant_id, integration_id, INTEG_KIND_CONFLICT, q, rows);
    if (rc == INTEG_OK)
        rc = ig_json_public_list(rows, public_conflict, out_json);
    json_object_put(rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}

/* The field policies on the data a resolution writes locally (changed in
 * place), as a pull and a merge apply them: an always_remote field takes
 * the remote value whatever was chosen (the remote is its authority and
 * never receives it); choosing the remote keeps the current local value of
 * always_local and dont_sync fields, and of prefer_remote_unless_blank ones
 * the remote has blank. `local` is NULL when the local record is gone. */
static void resolve_policies(json_object *policies, json_object *final, json_object *remote, json_object *local,
                             int chose_remote)
{
    if (!final)
        return;
    ig_json_foreach(policies, field, pv)
    {
        if (!remote || strcmp(json_object_get_string(pv), "always_remote") != 0)
            continue;
        json_object *v = ig_json_get(remote, field);
        if (v)
            json_object_object_add(final, field, json_object_get(v));
        else
            json_object_object_del(final, field);
    }
    if (chose_remote)
        ig_pull_policies(policies, final, local); /* what a pull keeps locally */
}

INTEG_API int integ_conflict_resolve(integ_session *s, const char *conflict_id, const char *resolution_json)
{
    int rc = ig_session_enter(s, NULL);
    if (rc)
        return rc;
    IG_CHECK_ARG(conflict_id && *conflict_id, "conflict_id");
    json_object *res = NULL;
    if ((rc = ig_json_parse_object(resolution_json, "resolution_json", 0, &res)))
        return rc;
    const char *choose = ig_json_str(res, "choose");
    json_object *data = ig_json_get(res, "data");
    static const char *const known[] = {"choose", "data", NULL};
    rc = ig_json_check_keys(res, known, "resolution_json", "field (use choose or data)");
    if (rc == INTEG_OK && !!choose == !!data)
        rc = ig_err(INTEG_EINVAL, "resolution_json: give exactly one of {\"choose\": \"local\"|\"remote\"} or {\"data\": {...}}");
    if (rc == INTEG_OK && choose && strcmp(choose, "local") && strcmp(choose, "remote"))
        rc = ig_err(INTEG_EINVAL, "resolution_json.choose: must be \"local\" or \"remote\"");
    if (rc == INTEG_OK && data && !json_object_is_type(data, json_type_object))
        rc = ig_err(INTEG_EINVAL, "resolution_json.data: must be an object");
    if (rc == INTEG_OK)
        rc = ig_session_require_admin(s);
    int chose_remote = choose && !strcmp(choose, "remote"), chose_local = choose && !chose_remote;
    json_object *conf = NULL, *link = NULL, *local = NULL, *cur = NULL;
    json_object *policies = NULL;
    ig_conn *c = NULL;
    ig_mapping *m = NULL;
    void *tx = NULL;
    if (rc == INTEG_OK && (rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK) {
        rc = ig_store_get(s->ctx, tx, INTEG_KIND_CONFLICT, s->tenant_id, conflict_id, &conf);
        if (rc == INTEG_ENOTFOUND)
            rc = ig_err(rc, "conflict '%s' not found", conflict_id);
        if (rc == INTEG_OK && strcmp(ig_json_str(conf, "status"), "open"))
            rc = ig_err(INTEG_ECONFLICT, "conflict '%s' is already resolved", conflict_id);
        if (rc == INTEG_OK)
            rc = load_links(s->ctx, tx, ig_json_str(conf, "integration_id"), ig_json_str(conf, "entity"),
                            ig_json_str(conf, "local_id"), &link);
        if (rc == INTEG_OK && !link)
            rc = ig_err(INTEG_ENOTFOUND, "conflict '%s': the entity link is gone", conflict_id);
        /* The local record as it is now (edits made since the conflict was
         * found count); only choosing it needs it to exist. */
        if (rc == INTEG_OK) {
            rc = ig_entity_load(s->ctx, tx, s->tenant_id, ig_json_str(conf, "local_entity"),
                                ig_json_str(conf, "local_id"), &cur);
            if (rc == INTEG_ENOTFOUND && !chose_local)
                rc = INTEG_OK;
        }
        rc = ig_tx_end(s->ctx, tx, 1, rc);
    }
    if (rc == INTEG_OK)
        rc = ig_conn_open(s->ctx, s->tenant_id, ig_json_str(conf, "integration_id"), &c);
    json_object *edef = c ? ig_conn_entity(c, ig_json_get(conf, "entity") ? ig_json_str(conf, "entity") : "") : NULL;
    if (rc == INTEG_OK && !edef)
        rc = ig_err_prefix(INTEG_EINVAL, "conflict");
    /* The mapping and field policies a push of this entity uses: the
     * integration's own mapping, else the manifest's default. */
    json_object *spec = NULL;
    if (rc == INTEG_OK)
        rc = ig_sync_mapping_spec(s->ctx, s->tenant_id, ig_json_str(conf, "integration_id"), ig_json_str(conf, "entity"),
                                  edef, &spec, &policies, NULL);
    /* What both sides end up with: given data, the remote version seen at
     * detection, or the local record as it is now; then the field policies,
     * as a pull or a merge applies them. */
    json_object *final = NULL;
    if (rc == INTEG_OK) {
        json_object *src = data ? data : chose_remote ? ig_json_get(conf, "remote") : ig_json_get(cur, "data");
        final = ig_json_copy(src);
        if (src && !final)
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        resolve_policies(policies, final, ig_json_get(conf, "remote"), ig_json_get(cur, "data"), chose_remote);
    }
    const char *local_entity = ig_json_str(conf, "local_entity");
    /* The remote side gets the chosen data too, unless it already has it:
     * exactly what a push would send (the same mapping, the fields whose
     * policy keeps them off the remote left out). */
    if (rc == INTEG_OK && !chose_remote) {
        json_object *remote = NULL, *updated = NULL;
        if (spec)
            rc = ig_mapping_compile(spec, "mapping", &m);
        if (rc == INTEG_OK)
            rc = push_payload(m, policies, final, ig_json_str(edef, "id_field"), ig_json_str(edef, "updated_field"),
                              &remote);
        if (rc == INTEG_OK)
            rc = ig_rest_update(c, ig_json_str(conf, "entity"), ig_json_str(link, "external_id"), remote, &updated);
        json_object_put(updated);
        json_object_put(remote);
    }
    /* The remote took the choice (or already had it): now the local side,
     * the link and the conflict, together. A refused remote write leaves
     * everything as it was, the conflict still open. */
    if (rc == INTEG_OK) {
        json_object_object_add(link, "base", json_object_get(final));
        json_object_object_add(link, "hash", json_object_new_string(chose_remote ? ig_json_str(conf, "remote_hash") : ""));
        char at[32];
        ig_rfc3339(at, ig_ctx_now_ms(s->ctx), 0);
        json_object_object_add(conf, "status", json_object_new_string("resolved"));
        json_object_object_add(conf, "resolution", json_object_new_string(data ? "data" : choose));
        json_object_object_add(conf, "resolved_data", json_object_get(final));
        json_object_object_add(conf, "resolved_by", json_object_new_string(s->user_id));
        json_object_object_add(conf, "resolved_at", json_object_new_string(at));
        if ((rc = ig_tx_begin(s->ctx, 1, &tx)) == INTEG_OK) {
            rc = ig_entity_store_put(s->ctx, tx, s->tenant_id, local_entity, ig_json_str(conf, "local_id"), final, 0,
                                     "sync", &local);
            if (rc == INTEG_OK) {
                json_object_object_add(link, "local_version", json_object_new_int64(ig_json_int(local, "version", 0)));
                rc = ig_store_put(s->ctx, tx, INTEG_KIND_ENTITY_LINK, link, INTEG_PUT_UPDATE);
            }
            if (rc == INTEG_OK)
                rc = ig_store_put(s->ctx, tx, INTEG_KIND_CONFLICT, conf, INTEG_PUT_UPDATE);
            if (rc == INTEG_OK) {
                json_object *d = json_object_new_object();
                json_object_object_add(d, "resolution", json_object_new_string(data ? "data" : choose));
                json_object_object_add(d, "local_id", json_object_get(ig_json_get(conf, "local_id")));
                rc = ig_audit(s->ctx, tx, s->tenant_id, s->user_id, "conflict.resolve", "conflict", conflict_id, d);
                json_object_put(d);
            }
            rc = ig_tx_end(s->ctx, tx, 1, rc);
        }
    }
    json_object_put(final);
    ig_mapping_free(m);
    ig_conn_close(c);
    json_object_put(local);
    json_object_put(cur);
    json_object_put(spec);
    json_object_put(link);
    json_object_put(conf);
    json_object_put(res);
    return rc;
}
