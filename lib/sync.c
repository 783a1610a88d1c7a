/* Pull sync: stream an entity's pages from the remote system into the local
 * entity store, one transaction per page (records, links, checkpoint), so a
 * sync killed at any point resumes from its checkpoint with nothing lost or
 * duplicated. Also the sync logs and the connection test. */
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "engine.h"
#include "entities.h"
#include "error.h"
#include "json.h"
#include "mapping.h"
#include "oauth.h"
#include "store_schema.h"
#include "prefetch.h"
#include "sync.h"
#include "util.h"
#include "worker.h"

#define LEASE_TTL_MS 120000
#define MAX_LOGGED_ERRORS 100
#define MAX_PAGES_WITHOUT_PROGRESS 3
#define PREFETCH_DEPTH 2

struct run {
    integ_session *s;
    const char *trigger; /* "manual", "webhook", "schedule" */
    const char *direction; /* "pull", "push", "bidirectional" */
    struct ig_push_counts push;
    ig_conn *c;
    const char *entity;
    json_object *edef;
    const char *local_entity;
    ig_mapping *mapping;
    unsigned char mapping_fp[16]; /* hash of the mapping spec in use */
    int full, dry_run;
    int64_t since_ms;
    json_object *state;
    int64_t hwm_ms, prev_hwm_ms;
    int64_t failed_min_ms;         /* oldest remote update time of a record that failed mapping, or -1 */
    char log_id[37];
    char holder[37];
    char checkpoint_id[160];
    char lease_id[160];
    int64_t started_ms;
    int64_t lease_until_ms;
    int leased;                    /* this run holds the lease (not a dry run, not a webhook apply) */
    int lease_lost;                /* ... and lost it to another run */
    int conflicts_durable;         /* the queued conflicts were committed although the page failed */
    int64_t processed, created, updated, skipped, failed, pages, bytes;
    int64_t conflicts, deleted;
    const char *strategy;          /* conflict strategy of this run */
    int sweep;                     /* full read from the start: stamp links, then sweep the unseen */
    int assume_new;                /* the writer's pages are planned without reading links */
    json_object *dry_seen;         /* a dry run's sweep: {external id: null} seen (its stamps roll back) */
    json_object *field_policies;   /* {local field: policy} from the mapping (owned ref) */
    json_object *conflict_events;  /* emitted after their page commits */
    json_object *errors;
    integ_progress_cb cb;
    void *cb_payload;
};

static int64_t now_ms(struct run *r) { return ig_ctx_now_ms(r->s->ctx); }

/* ---- lease: one sync per integration and entity set --------------------- */

static int lease_take(struct run *r)
{
    integ_ctx *ctx = r->s->ctx;
    void *tx = NULL;
    json_object *cur = NULL;
    int64_t now = now_ms(r);
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK) {
        rc = ig_store_get(ctx, tx, INTEG_KIND_LEASE, NULL, r->lease_id, &cur);
        if (rc == INTEG_ENOTFOUND)
            rc = INTEG_OK;
        if (rc == INTEG_OK && cur && strcmp(ig_json_str(cur, "holder"), r->holder) != 0 &&
            ig_json_int(cur, "expires_at_ms", 0) > now) {
            rc = ig_err(INTEG_ECONFLICT, "a sync of integration %s is already running (since %s, by %s)",
                        ig_json_str(r->c->integration, "id"),
                        ig_json_str(cur, "started_at") ? ig_json_str(cur, "started_at") : "?",
                        ig_json_str(cur, "user_id") ? ig_json_str(cur, "user_id") : "?");
        }
        if (rc == INTEG_OK) {
            char at[32];
            ig_rfc3339(at, r->started_ms, 0);
            json_object *l = json_object_new_object();
            json_object_object_add(l, "id", json_object_new_string(r->lease_id));
            json_object_object_add(l, "holder", json_object_new_string(r->holder));
            r->lease_until_ms = now + LEASE_TTL_MS;
            json_object_object_add(l, "expires_at_ms", json_object_new_int64(r->lease_until_ms));
            json_object_object_add(l, "started_at", json_object_new_string(at));
            json_object_object_add(l, "user_id", json_object_new_string(r->s->user_id));
            rc = ig_store_put(ctx, tx, INTEG_KIND_LEASE, l, INTEG_PUT_UPSERT);
            json_object_put(l);
        }
        rc = ig_tx_end(ctx, tx, 1, rc);
    }
    json_object_put(cur);
    return rc;
}

/* In a write transaction about to write a page or a checkpoint: the lease
 * is still this holder's, renewed in it once half its time has gone (*until:
 * the expiry known, moved on). One page's fetch can outlast the lease
 * (retries honouring Retry-After, rate-limit waits), and another run may
 * have taken it over meanwhile: then nothing more is written
 * (INTEG_ECONFLICT, *lost set). Uses no json-c object of the run: the
 * writer thread calls it too. */
static int lease_hold(integ_ctx *ctx, void *tx, const char *lease_id, const char *holder,
                      const char *integration_id, int64_t *until, int *lost)
{
    int64_t now = ig_ctx_now_ms(ctx);
    json_object *cur = NULL;
    int rc = ig_store_get(ctx, tx, INTEG_KIND_LEASE, NULL, lease_id, &cur);
    const char *h = rc == INTEG_OK ? ig_json_str(cur, "holder") : NULL;
    if (rc == INTEG_ENOTFOUND || (rc == INTEG_OK && (!h || strcmp(h, holder) != 0))) {
        *lost = 1;
        rc = ig_err(INTEG_ECONFLICT, "sync lease lost to another run (integration %s): stopping", integration_id);
    } else if (rc == INTEG_OK && now > *until - LEASE_TTL_MS / 2) {
        json_object_object_add(cur, "expires_at_ms", json_object_new_int64(now + LEASE_TTL_MS));
        rc = ig_store_put(ctx, tx, INTEG_KIND_LEASE, cur, INTEG_PUT_UPDATE);
        if (rc == INTEG_OK)
            *until = now + LEASE_TTL_MS;
    }
    json_object_put(cur);
    return rc;
}

/* lease_hold for a run on the calling thread; OK when it holds no lease. */
static int run_lease_hold(struct run *r, void *tx)
{
    if (!r->leased)
        return INTEG_OK;
    return lease_hold(r->s->ctx, tx, r->lease_id, r->holder, ig_json_str(r->c->integration, "id"), &r->lease_until_ms,
                      &r->lease_lost);
}

static void lease_release(struct run *r)
{
    integ_ctx *ctx = r->s->ctx;
    void *tx = NULL;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", integ_errmsg());
    if (ig_tx_begin(ctx, 1, &tx) == INTEG_OK) {
        json_object *cur = NULL;
        int rc = ig_store_get(ctx, tx, INTEG_KIND_LEASE, NULL, r->lease_id, &cur);
        if (rc == INTEG_OK && !strcmp(ig_json_str(cur, "holder"), r->holder))
            rc = ctx->store->remove(tx, INTEG_KIND_LEASE, NULL, r->lease_id);
        json_object_put(cur);
        ig_tx_end(ctx, tx, 1, rc == INTEG_ENOTFOUND ? INTEG_OK : rc);
    }
    integ_error_set(0, saved);
}

/* ---- checkpoints ---------------------------------------------------------- */

static int checkpoint_load(struct run *r, json_object **out)
{
    void *tx = NULL;
    int rc = ig_tx_begin(r->s->ctx, 0, &tx);
    if (rc == INTEG_OK) {
        rc = ig_store_get(r->s->ctx, tx, INTEG_KIND_CHECKPOINT, r->s->tenant_id, r->checkpoint_id, out);
        if (rc == INTEG_ENOTFOUND) {
            *out = NULL;
            rc = INTEG_OK;
        }
        rc = ig_tx_end(r->s->ctx, tx, 1, rc);
    }
    return rc;
}

/* The checkpoint record (state is taken over). */
static json_object *checkpoint_rec(struct run *r, json_object *state, int64_t hwm_ms)
{
    json_object *ck = json_object_new_object();
    json_object_object_add(ck, "id", json_object_new_string(r->checkpoint_id));
    json_object_object_add(ck, "tenant_id", json_object_new_string(r->s->tenant_id));
    json_object_object_add(ck, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
    json_object_object_add(ck, "entity", json_object_new_string(r->entity));
    json_object_object_add(ck, "state", state);
    json_object_object_add(ck, "run_since_ms", json_object_new_int64(r->since_ms));
    json_object_object_add(ck, "run_max_ms", json_object_new_int64(r->hwm_ms));
    json_object_object_add(ck, "run_failed_min_ms", json_object_new_int64(r->failed_min_ms));
    json_object_object_add(ck, "hwm_ms", json_object_new_int64(hwm_ms));
    char at[32];
    ig_rfc3339(at, ig_now_ms(), 0);
    json_object_object_add(ck, "updated_at", json_object_new_string(at));
    return ck;
}

static int checkpoint_put(struct run *r, void *tx, json_object *state, int64_t hwm_ms)
{
    json_object *ck = checkpoint_rec(r, json_object_get(state), hwm_ms);
    int rc = ig_store_put(r->s->ctx, tx, INTEG_KIND_CHECKPOINT, ck, INTEG_PUT_UPSERT);
    json_object_put(ck);
    return rc;
}

/* ---- sync log ------------------------------------------------------------- */

static json_object *result_json(struct run *r, const char *status, int64_t completed_ms)
{
    char at[32];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sync_log_id", json_object_new_string(r->log_id));
    json_object_object_add(o, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
    json_object_object_add(o, "entity", json_object_new_string(r->entity));
    json_object_object_add(o, "local_entity", json_object_new_string(r->local_entity));
    json_object_object_add(o, "sync_type", json_object_new_string(r->since_ms >= 0 ? "incremental" : "full"));
    json_object_object_add(o, "direction", json_object_new_string(r->direction ? r->direction : "pull"));
    if (r->direction && strcmp(r->direction, "pull")) {
        json_object_object_add(o, "records_pushed",
                               json_object_new_int64(r->push.created + r->push.updated + r->push.deleted));
        json_object *p = json_object_new_object();
        json_object_object_add(p, "processed", json_object_new_int64(r->push.processed));
        json_object_object_add(p, "created", json_object_new_int64(r->push.created));
        json_object_object_add(p, "updated", json_object_new_int64(r->push.updated));
        json_object_object_add(p, "deleted", json_object_new_int64(r->push.deleted));
        json_object_object_add(p, "adopted", json_object_new_int64(r->push.adopted));
        json_object_object_add(p, "skipped", json_object_new_int64(r->push.skipped));
        json_object_object_add(p, "failed", json_object_new_int64(r->push.failed));
        json_object_object_add(o, "push", p);
    }
    json_object_object_add(o, "trigger", json_object_new_string(r->trigger ? r->trigger : "manual"));
    json_object_object_add(o, "dry_run", json_object_new_boolean(r->dry_run));
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "records_processed", json_object_new_int64(r->processed));
    json_object_object_add(o, "records_created", json_object_new_int64(r->created));
    json_object_object_add(o, "records_updated", json_object_new_int64(r->updated));
    json_object_object_add(o, "records_skipped", json_object_new_int64(r->skipped));
    json_object_object_add(o, "records_failed", json_object_new_int64(r->failed));
    json_object_object_add(o, "records_deleted", json_object_new_int64(r->deleted));
    json_object_object_add(o, "conflicts", json_object_new_int64(r->conflicts));
    json_object_object_add(o, "conflict_strategy", json_object_new_string(r->strategy ? r->strategy : "last_write_wins"));
    json_object_object_add(o, "pages", json_object_new_int64(r->pages));
    json_object_object_add(o, "errors", json_object_get(r->errors));
    ig_rfc3339(at, r->started_ms, 0);
    json_object_object_add(o, "started_at", json_object_new_string(at));
    if (completed_ms > 0) {
        ig_rfc3339(at, completed_ms, 0);
        json_object_object_add(o, "completed_at", json_object_new_string(at));
    } else {
        json_object_object_add(o, "completed_at", NULL);
    }
    json_object_object_add(o, "user_id", json_object_new_string(r->s->user_id));
    return o;
}

/* The stored log row: the result plus its index fields. */
static int log_put(struct run *r, void *tx, json_object *result, integ_put_mode mode)
{
    json_object *rec = ig_json_copy(result);
    json_object_object_add(rec, "id", json_object_new_string(r->log_id));
    json_object_object_add(rec, "tenant_id", json_object_new_string(r->s->tenant_id));
    json_object_object_add(rec, "started_at_ms", json_object_new_int64(r->started_ms));
    int rc = ig_store_put(r->s->ctx, tx, INTEG_KIND_SYNC_LOG, rec, mode);
    json_object_put(rec);
    return rc;
}

void ig_sync_log_error(json_object *errors, int64_t *failed, const char *record, int code, const char *message)
{
    (*failed)++;
    if (ig_json_len(errors) >= MAX_LOGGED_ERRORS)
        return;
    json_object *e = json_object_new_object();
    json_object_object_add(e, "record", record ? json_object_new_string(record) : NULL);
    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_array_add(errors, e);
}

static void record_error(struct run *r, const char *external_id, int code, const char *message)
{
    ig_sync_log_error(r->errors, &r->failed, external_id, code, message);
}

/* ---- one page -------------------------------------------------------------- */

/* The hash covers the remote payload and the mapping that produced the
 * local data, so a changed mapping re-applies to unchanged records. */
static void record_hash(const unsigned char fp[16], json_object *rec, char out[33])
{
    /* json-c's PLAIN text (slashes escaped), which the stored hashes were
     * made of; written without json-c caching it in the record. */
    char stack[4096];
    ig_jbuf text = {stack, 0, sizeof stack, 0, 1};
    int failed = ig_json_write(rec, &text);
    unsigned char h[16];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, fp, 16);
    if (!failed)
        crypto_generichash_update(&st, (const unsigned char *)text.p, text.n);
    crypto_generichash_final(&st, h, sizeof h);
    ig_jbuf_free(&text);
    sodium_bin2hex(out, 33, h, sizeof h);
}

/* What plan_page needs of each record that depends on the record alone:
 * made on the fetch thread (prep_page) when pages are prefetched. */
struct rec_facts {
    int ok;             /* an object with an id */
    char ext[256];      /* the remote id */
    int64_t upd;        /* remote updated time, ms, or -1 */
    char hash[33];
};

struct page_facts {
    size_t n;
    struct rec_facts r[];
};

/* Shared with the fetch thread, immutable while it runs: the strings
 * point into the run's entity description (which outlives the thread), and
 * only their characters are read there, never a json-c object. */
struct facts_cfg {
    const char *id_field, *upd_field, *upd_format;
    unsigned char fp[16];
};

static void facts_cfg_init(struct run *r, struct facts_cfg *cfg)
{
    cfg->id_field = ig_json_str(r->edef, "id_field");
    cfg->upd_field = ig_json_str(r->edef, "updated_field");
    cfg->upd_format = ig_json_str(r->edef, "updated_format");
    memcpy(cfg->fp, r->mapping_fp, sizeof cfg->fp);
}

static void facts_of(const struct facts_cfg *cfg, json_object *rec, struct rec_facts *f)
{
    f->ok = json_object_is_type(rec, json_type_object) &&
            ig_record_id(rec, cfg->id_field, f->ext, sizeof f->ext) == 0;
    if (!f->ok)
        return;
    f->upd = ig_remote_time_ms(cfg->upd_field ? ig_json_get(rec, cfg->upd_field) : NULL, cfg->upd_format);
    record_hash(cfg->fp, rec, f->hash);
}

static struct page_facts *page_facts_new(const struct facts_cfg *cfg, json_object *records)
{
    size_t n = ig_json_len(records);
    struct page_facts *pf = malloc(sizeof *pf + (n ? n : 1) * sizeof pf->r[0]);
    if (!pf)
        return NULL;
    pf->n = n;
    for (size_t i = 0; i < n; i++)
        facts_of(cfg, json_object_array_get_idx(records, i), &pf->r[i]);
    return pf;
}

/* ig_page_prep_fn: on the fetch thread. */
static int prep_page(const void *arg, ig_page *page)
{
    struct page_facts *pf = page_facts_new(arg, page->records);
    if (!pf)
        return ig_err(INTEG_ENOMEM, "out of memory");
    page->prep = pf;
    page->prep_free = free;
    return INTEG_OK;
}

static int find_link(struct run *r, void *tx, const char *external_id, json_object **out)
{
    *out = NULL;
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    json_object_object_add(q, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
    json_object_object_add(q, "entity", json_object_new_string(r->entity));
    json_object_object_add(q, "external_id", json_object_new_string(external_id));
    json_object_object_add(q, "limit", json_object_new_int(1));
    int rc = ig_store_list(r->s->ctx, tx, INTEG_KIND_ENTITY_LINK, q, rows);
    if (rc == INTEG_OK && ig_json_len(rows) == 1)
        *out = json_object_get(json_object_array_get_idx(rows, 0));
    json_object_put(q);
    json_object_put(rows);
    return rc;
}

/* A link made by a page planned for the writer: its parts, from which
 * the writer batch writes its text (no object built; fresh_link_text). */
struct fresh_link {
    char id[37], local_id[37];
    char external_id[256], hash[33]; /* as in struct rec_facts */
    int64_t upd;                     /* remote update time, ms, or -1 */
};

struct pending {
    json_object *link;  /* the link to write (owned); NULL: `made` holds it */
    json_object *data;  /* local data to write (owned); NULL: the link only */
    int created;
    int fresh;          /* the link and its local id were made by this page */
    const char *origin; /* "sync", or "local" when a merge left changes to push */
    int64_t version;    /* the local record's version this plan read, or -1 */
    struct fresh_link made;
};

static int write_link(struct run *r, void *tx, json_object *link)
{
    return ig_store_put(r->s->ctx, tx, INTEG_KIND_ENTITY_LINK, link, INTEG_PUT_UPSERT);
}

/* Map the page and work out what to write. Per-record failures are logged
 * and skipped; store failures abort the page. */
/* ---- conflicts ---------------------------------------------------------------- */

static const char *policy_of(struct run *r, const char *field)
{
    const char *p = ig_json_str(r->field_policies, field);
    return p ? p : "two_way";
}

static int blank(json_object *v)
{
    return !v || (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0);
}

void ig_pull_policies(json_object *policies, json_object *data, json_object *local)
{
    if (!policies || !local)
        return;
    ig_json_foreach(policies, field, pv)
    {
        const char *p = json_object_get_string(pv);
        json_object *lv = ig_json_get(local, field);
        if (!strcmp(p, "always_local") || !strcmp(p, "dont_sync") ||
            (!strcmp(p, "prefer_remote_unless_blank") && blank(ig_json_get(data, field)))) {
            if (lv)
                json_object_object_add(data, field, json_object_get(lv));
            else
                json_object_object_del(data, field);
        }
    }
}

/* Three-way merge against the base: a field changed on one side takes that
 * side; changed on both (to different values) follows its policy, "two_way"
 * meaning the more recent side. Returns the merged data (owned). */
static json_object *merge3(struct run *r, json_object *base, json_object *local, json_object *remote,
                           int remote_newer, json_object *conflicting)
{
    json_object *out = ig_json_copy(local);
    json_object *keys = json_object_new_object();
    ig_json_foreach(local, k1, v1) { (void)v1; json_object_object_add(keys, k1, NULL); }
    ig_json_foreach(remote, k2, v2) { (void)v2; json_object_object_add(keys, k2, NULL); }
    ig_json_foreach(keys, f, unused)
    {
        (void)unused;
        json_object *b = ig_json_get(base, f), *l = ig_json_get(local, f), *rv = ig_json_get(remote, f);
        int lc = !json_object_equal(l, b), rc = !json_object_equal(rv, b);
        int take_remote = 0;
        if (rc && !lc) {
            take_remote = 1;
        } else if (rc && lc && !json_object_equal(l, rv)) {
            json_object_array_add(conflicting, json_object_new_string(f));
            const char *p = policy_of(r, f);
            if (!strcmp(p, "always_remote"))
                take_remote = 1;
            else if (!strcmp(p, "prefer_remote_unless_blank"))
                take_remote = !blank(rv);
            else if (!strcmp(p, "two_way"))
                take_remote = remote_newer;
        }
        if (take_remote) {
            if (rv)
                json_object_object_add(out, f, json_object_get(rv));
            else
                json_object_object_del(out, f);
        }
    }
    json_object_put(keys);
    return out;
}

static int open_conflict_exists(struct run *r, void *tx, const char *local_id, json_object **out)
{
    *out = NULL;
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    json_object_object_add(q, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
    json_object_object_add(q, "entity", json_object_new_string(r->entity));
    json_object_object_add(q, "local_id", json_object_new_string(local_id));
    json_object_object_add(q, "status", json_object_new_string("open"));
    json_object_object_add(q, "limit", json_object_new_int(1));
    int rc = ig_store_list(r->s->ctx, tx, INTEG_KIND_CONFLICT, q, rows);
    if (rc == INTEG_OK && ig_json_len(rows))
        *out = json_object_get(json_object_array_get_idx(rows, 0));
    json_object_put(q);
    json_object_put(rows);
    return rc;
}

/* Record a conflict (open when held for a person, else resolved by the
 * strategy) and queue its notification. */
static int record_conflict(struct run *r, void *tx, json_object *link, json_object *local, json_object *remote,
                           const char *hash, int64_t remote_upd, const char *outcome, json_object *fields)
{
    json_object *existing = NULL;
    int rc = open_conflict_exists(r, tx, ig_json_str(link, "local_id"), &existing);
    if (rc)
        return rc;
    char id[37], at[32];
    ig_ctx_new_id(r->s->ctx, id, ig_now_ms());
    ig_rfc3339(at, now_ms(r), 0);
    json_object *c = existing ? existing : json_object_new_object();
    if (!existing) {
        json_object_object_add(c, "id", json_object_new_string(id));
        json_object_object_add(c, "tenant_id", json_object_new_string(r->s->tenant_id));
        json_object_object_add(c, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
        json_object_object_add(c, "entity", json_object_new_string(r->entity));
        json_object_object_add(c, "local_entity", json_object_new_string(r->local_entity));
        json_object_object_add(c, "local_id", json_object_get(ig_json_get(link, "local_id")));
        json_object_object_add(c, "external_id", json_object_get(ig_json_get(link, "external_id")));
        json_object_object_add(c, "created_at", json_object_new_string(at));
    }
    json_object_object_add(c, "local", json_object_get(ig_json_get(local, "data")));
    json_object_object_add(c, "remote", json_object_get(remote));
    json_object_object_add(c, "base", json_object_get(ig_json_get(link, "base")));
    json_object_object_add(c, "fields", json_object_get(fields));
    json_object_object_add(c, "strategy", json_object_new_string(r->strategy));
    json_object_object_add(c, "remote_hash", json_object_new_string(hash));
    json_object_object_add(c, "remote_updated_at_ms", json_object_new_int64(remote_upd));
    int held = !strcmp(outcome, "held");
    json_object_object_add(c, "status", json_object_new_string(held ? "open" : "resolved"));
    json_object_object_add(c, "resolution", held ? NULL : json_object_new_string(outcome));
    json_object_object_add(c, "resolved_by", held ? NULL : json_object_new_string("strategy"));
    json_object_object_add(c, "resolved_at", held ? NULL : json_object_new_string(at));
    rc = ig_store_put(r->s->ctx, tx, INTEG_KIND_CONFLICT, c, existing ? INTEG_PUT_UPDATE : INTEG_PUT_INSERT);
    /* A conflict already open (held) is refreshed, not reported again. */
    if (rc == INTEG_OK && !existing) {
        r->conflicts++;
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "tenant_id", json_object_new_string(r->s->tenant_id));
        json_object_object_add(ev, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
        json_object_object_add(ev, "conflict_id", json_object_get(ig_json_get(c, "id")));
        json_object_object_add(ev, "entity", json_object_new_string(r->entity));
        json_object_object_add(ev, "local_id", json_object_get(ig_json_get(link, "local_id")));
        json_object_object_add(ev, "external_id", json_object_get(ig_json_get(link, "external_id")));
        json_object_object_add(ev, "strategy", json_object_new_string(r->strategy));
        json_object_object_add(ev, "outcome", json_object_new_string(outcome));
        json_object_array_add(r->conflict_events, ev);
    }
    json_object_put(c);
    return rc;
}

/* A remote change to a linked record: apply it, or, when the local record
 * changed too since the last sync, resolve by the run's strategy. Sets
 * *data (what to write locally; NULL: nothing) and *origin. */
static int resolve_incoming(struct run *r, void *tx, json_object *link, json_object *mapped, const char *hash,
                            int64_t remote_upd, json_object **data, const char **origin, int64_t *version)
{
    *data = NULL;
    *origin = "sync";
    *version = -1;
    json_object *local = NULL;
    int rc = ig_entity_load(r->s->ctx, tx, r->s->tenant_id, r->local_entity, ig_json_str(link, "local_id"), &local);
    if (rc == INTEG_ENOTFOUND) {
        *data = json_object_get(mapped);
        return INTEG_OK;
    }
    if (rc)
        return rc;
    *version = ig_json_int(local, "version", 0);
    int local_changed = !strcmp(ig_json_str(local, "origin") ? ig_json_str(local, "origin") : "sync", "local") &&
                        ig_json_int(local, "version", 0) > ig_json_int(link, "local_version", 0);
    ig_pull_policies(r->field_policies, mapped, ig_json_get(local, "data"));
    if (!local_changed) {
        *data = json_object_get(mapped);
        json_object_put(local);
        return INTEG_OK;
    }
    int64_t local_upd = ig_json_int(local, "updated_at_ms", 0);
    int remote_newer = remote_upd >= local_upd; /* ties go to the remote side */
    const char *st = r->strategy;
    json_object *fields = json_object_new_array();
    const char *outcome;
    if (!strcmp(st, "remote_wins") || (!strcmp(st, "last_write_wins") && remote_newer)) {
        outcome = "remote";
        *data = json_object_get(mapped);
    } else if (!strcmp(st, "local_wins") || !strcmp(st, "last_write_wins")) {
        outcome = "local"; /* the link moves on; push sends the local version */
    } else if (!strcmp(st, "merge_fields")) {
        json_object *merged = merge3(r, ig_json_get(link, "base"), ig_json_get(local, "data"), mapped, remote_newer, fields);
        outcome = "merged";
        *data = merged;
        /* Anything the remote lacks still has to be pushed. */
        *origin = json_object_equal(merged, mapped) ? "sync" : "local";
    } else {
        outcome = "held"; /* manual: nothing moves until someone resolves it */
    }
    if (ig_json_len(fields) == 0) {
        /* Which fields the two versions disagree on. */
        json_object *ld = ig_json_get(local, "data");
        ig_json_foreach(ld, lk, lv)
        {
            if (!json_object_equal(lv, ig_json_get(mapped, lk)))
                json_object_array_add(fields, json_object_new_string(lk));
        }
        ig_json_foreach(mapped, rk, rv)
        {
            (void)rv;
            if (!ig_json_get(ld, rk))
                json_object_array_add(fields, json_object_new_string(rk));
        }
    }
    rc = record_conflict(r, tx, link, local, mapped, hash, remote_upd, outcome, fields);
    json_object_put(fields);
    json_object_put(local);
    if (rc == INTEG_OK && !strcmp(outcome, "held"))
        rc = 1; /* the caller leaves this record alone */
    return rc;
}

/* The page's links in one query: external id -> link. */
static int page_links(struct run *r, void *tx, const struct page_facts *pf, json_object **out)
{
    *out = json_object_new_object();
    json_object *ids = json_object_new_array();
    for (size_t i = 0; i < pf->n; i++)
        if (pf->r[i].ok)
            json_object_array_add(ids, json_object_new_string(pf->r[i].ext));
    if (!ig_json_len(ids)) {
        json_object_put(ids);
        return INTEG_OK;
    }
    json_object *q = json_object_new_object(), *in = json_object_new_object(), *rows = json_object_new_array();
    json_object_object_add(in, "in", ids);
    json_object_object_add(q, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
    json_object_object_add(q, "entity", json_object_new_string(r->entity));
    json_object_object_add(q, "external_id", in);
    int rc = ig_store_list(r->s->ctx, tx, INTEG_KIND_ENTITY_LINK, q, rows);
    for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(rows); i++) {
        json_object *l = json_object_array_get_idx(rows, i);
        json_object_object_add(*out, ig_json_str(l, "external_id"), json_object_get(l));
    }
    json_object_put(q);
    json_object_put(rows);
    return rc;
}

/* The page's facts: made on the fetch thread already, or here. */
static struct page_facts *page_facts_of(struct run *r, json_object *records, const struct page_facts *prepared)
{
    if (prepared && prepared->n == ig_json_len(records))
        return (struct page_facts *)prepared;
    struct facts_cfg cfg;
    facts_cfg_init(r, &cfg);
    return page_facts_new(&cfg, records);
}

/* A set of external ids (strings lent, from a page's facts): a page's
 * repeats, and the ids of the page being written, whose links the next
 * page's plan cannot see yet. */
struct ext_set {
    size_t cap; /* a power of two, at least twice the count */
    const char **slot;
};

static uint64_t ext_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* An empty set with room for n ids. */
static int ext_set_init(struct ext_set *set, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    set->slot = calloc(cap, sizeof *set->slot);
    set->cap = set->slot ? cap : 0;
    return set->slot ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

/* The error of a run its progress callback stopped. */
static int canceled(const struct run *r)
{
    return ig_err(INTEG_ECANCELED, "canceled by the progress callback after %lld pages", (long long)r->pages);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t ext_set_probe(const struct ext_set *set, const char *id)
{
    size_t k = ext_hash(id) & (set->cap - 1);
    while (set->slot[k] && strcmp(set->slot[k], id) != 0)
        k = (k + 1) & (set->cap - 1);
    return k;
}

/* Add id (lent: it must outlive the set); 1 if it was there already. */
static int ext_set_add(struct ext_set *set, const char *id)
{
    size_t k = ext_set_probe(set, id);
    if (set->slot[k])
        return 1;
    set->slot[k] = id;
    return 0;
}

static int ext_set_fill(struct ext_set *set, const struct page_facts *pf)
{
    int rc = ext_set_init(set, pf->n);
    for (size_t i = 0; rc == INTEG_OK && i < pf->n; i++)
        if (pf->r[i].ok)
            ext_set_add(set, pf->r[i].ext);
    return rc;
}

/* Does the page of these facts hold a record of the set? */
static int ext_set_meets(const struct ext_set *set, const struct page_facts *pf)
{
    if (!set->slot)
        return 0;
    for (size_t i = 0; i < pf->n; i++)
        if (pf->r[i].ok && set->slot[ext_set_probe(set, pf->r[i].ext)])
            return 1;
    return 0;
}

static void ext_set_free(struct ext_set *set)
{
    free(set->slot);
    set->slot = NULL;
    set->cap = 0;
}

/* How plan_page plans. */
enum plan_mode {
    PLAN_IN_TX,     /* inside the write transaction that applies the page */
    PLAN_FRESH,     /* outside it, for the writer: creates only; a record
                     * with a link stops the plan with PLAN_NOT_FRESH */
    PLAN_ASSUMED,   /* the same without reading links: the run found none
                     * (an initial load); a link met on writing fails the
                     * write, and the page is planned again in it */
};

/* plan_page's answer, outside a transaction, for a page with a record that
 * is already linked (and would be updated or stamped). */
#define PLAN_NOT_FRESH 1

/* A plan entry that only stamps the link (taken over) as seen by this full
 * read: the record is listed remotely, so it is no remote deletion, also
 * when it is skipped as unchanged, fails its mapping or is held. */
static void plan_stamp(struct run *r, struct pending *plan, size_t *n_plan, json_object *link)
{
    json_object_object_add(link, "seen_run", json_object_new_string(r->log_id));
    plan[*n_plan].link = link;
    plan[*n_plan].data = NULL;
    plan[*n_plan].created = 0;
    plan[*n_plan].fresh = 0;
    plan[*n_plan].origin = "sync";
    plan[*n_plan].version = -1;
    (*n_plan)++;
}

/* Work out what to write for the page's records (tx: NULL for
 * PLAN_ASSUMED). */
static int plan_page(struct run *r, void *tx, json_object *records, const struct page_facts *prepared,
                     enum plan_mode mode, struct pending *plan, size_t *n_plan)
{
    int fresh_only = mode != PLAN_IN_TX;
    const char *id_field = ig_json_str(r->edef, "id_field");
    size_t n = ig_json_len(records);
    *n_plan = 0;
    struct page_facts *pf = page_facts_of(r, records, prepared);
    if (!pf)
        return ig_err(INTEG_ENOMEM, "out of memory");
    json_object *links = NULL;
    struct ext_set seen = {0, NULL};
    char synced_at[32]; /* one time for the page: its records are written together */
    ig_rfc3339(synced_at, ig_now_ms(), 0);
    int rc = ext_set_init(&seen, n);
    if (rc)
        goto done;
    if (mode == PLAN_ASSUMED)
        links = json_object_new_object();
    else if ((rc = page_links(r, tx, pf, &links)))
        goto done;
    /* Outside the writing transaction only creates are planned: a record
     * that would be updated or stamped sends the page the usual way, found
     * before anything is mapped. */
    for (size_t i = 0; fresh_only && i < n; i++) {
        json_object *l = pf->r[i].ok ? ig_json_get(links, pf->r[i].ext) : NULL;
        if (l && (r->sweep || ig_json_bool(l, "pending", 0) || ig_json_bool(l, "deleted", 0) ||
                  strcmp(ig_json_str(l, "hash") ? ig_json_str(l, "hash") : "", pf->r[i].hash) != 0)) {
            rc = PLAN_NOT_FRESH;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *rec = json_object_array_get_idx(records, i);
        const struct rec_facts *f = &pf->r[i];
        const char *ext = f->ext;
        r->processed++;
        if (!f->ok) {
            char msg[160];
            snprintf(msg, sizeof msg, "record %zu of page %lld: id field '%s' missing", i,
                     (long long)r->pages + 1, id_field ? id_field : "id");
            record_error(r, NULL, INTEG_EMAPPING, msg);
            continue;
        }
        /* Listed remotely, whatever becomes of it below. */
        if (r->dry_seen)
            json_object_object_add(r->dry_seen, ext, NULL);
        int64_t upd = f->upd;
        if (upd > r->hwm_ms)
            r->hwm_ms = upd;
        const char *hash = f->hash;
        json_object *link = json_object_get(ig_json_get(links, ext));
        /* The same record twice in one page (re-anchored queries overlap):
         * the plan already holds it. */
        int dup = ext_set_add(&seen, ext);
        /* A pending link (host entity store, a page interrupted between
         * its steps) is not proof that the record reached the host. */
        int pending = link && ig_json_bool(link, "pending", 0);
        /* A link a remote deletion marked: the record is back, and written
         * again (undeleted) even when unchanged. */
        int gone = link && ig_json_bool(link, "deleted", 0);
        /* Seen in this full read: not a remote deletion (plan_stamp). */
        int stamp = r->sweep && link && !pending && !dup;
        if (dup || (link && !pending && !gone && !strcmp(ig_json_str(link, "hash") ? ig_json_str(link, "hash") : "", hash))) {
            r->skipped++;
            if (stamp) {
                plan_stamp(r, plan, n_plan, link);
                continue;
            }
            json_object_put(link);
            continue;
        }
        json_object *data = NULL;
        if (r->mapping) {
            rc = ig_mapping_apply(r->mapping, IG_PULL, rec, &data);
            if (rc == INTEG_EMAPPING || rc == INTEG_EINVAL) {
                record_error(r, ext, INTEG_EMAPPING, integ_errmsg());
                /* The next incremental run reads it again (the watermark stays below it). */
                if (upd >= 0 && (r->failed_min_ms < 0 || upd < r->failed_min_ms))
                    r->failed_min_ms = upd;
                if (stamp)
                    plan_stamp(r, plan, n_plan, link);
                else
                    json_object_put(link);
                continue;
            }
            if (rc) {
                json_object_put(link);
                goto done;
            }
        } else {
            data = ig_json_copy(rec);
        }
        char at[32];
        int created = link == NULL || pending;
        const char *origin = "sync";
        int64_t version = -1;
        if (!created) {
            json_object *to_write = NULL;
            rc = resolve_incoming(r, tx, link, data, hash, upd, &to_write, &origin, &version);
            json_object_put(data);
            data = to_write;
            if (rc == 1) {
                /* Held for a person: neither side moves. */
                json_object_put(data);
                if (stamp)
                    plan_stamp(r, plan, n_plan, link);
                else
                    json_object_put(link);
                continue;
            }
            if (rc) {
                json_object_put(data);
                json_object_put(link);
                goto done;
            }
        }
        int fresh = link == NULL;
        if (!link && fresh_only) {
            /* For the writer: the link's parts only (fresh_link_text). */
            struct fresh_link *m = &plan[*n_plan].made;
            ig_ctx_new_id(r->s->ctx, m->id, ig_now_ms());
            ig_ctx_new_id(r->s->ctx, m->local_id, ig_now_ms());
            snprintf(m->external_id, sizeof m->external_id, "%s", ext);
            snprintf(m->hash, sizeof m->hash, "%s", hash);
            m->upd = upd;
            plan[*n_plan].link = NULL;
            plan[*n_plan].data = data;
            plan[*n_plan].created = 1;
            plan[*n_plan].fresh = 1;
            plan[*n_plan].origin = origin;
            plan[*n_plan].version = 0;
            (*n_plan)++;
            continue;
        }
        if (!link) {
            char id[37], lid[37];
            ig_ctx_new_id(r->s->ctx, id, ig_now_ms());
            ig_ctx_new_id(r->s->ctx, lid, ig_now_ms());
            link = json_object_new_object();
            json_object_object_add(link, "id", json_object_new_string(id));
            json_object_object_add(link, "tenant_id", json_object_new_string(r->s->tenant_id));
            json_object_object_add(link, "integration_id", json_object_get(ig_json_get(r->c->integration, "id")));
            json_object_object_add(link, "entity", json_object_new_string(r->entity));
            json_object_object_add(link, "local_entity", json_object_new_string(r->local_entity));
            json_object_object_add(link, "external_id", json_object_new_string(ext));
            json_object_object_add(link, "local_id", json_object_new_string(lid));
        }
        json_object_object_add(link, "hash", json_object_new_string(hash));
        if (upd >= 0) {
            ig_rfc3339(at, upd, 1);
            json_object_object_add(link, "remote_updated_at", json_object_new_string(at));
            json_object_object_add(link, "remote_updated_at_ms", json_object_new_int64(upd));
        }
        json_object_object_add(link, "synced_at", json_object_new_string(synced_at));
        json_object_object_add(link, "pending", json_object_new_boolean(0));
        json_object_object_del(link, "deleted"); /* seen again: a later removal is found again */
        if (r->sweep)
            json_object_object_add(link, "seen_run", json_object_new_string(r->log_id));
        /* The base of the next three-way merge: what both sides agree on. */
        if (data && !strcmp(origin, "sync"))
            json_object_object_add(link, "base", json_object_get(data));
        plan[*n_plan].link = link;
        plan[*n_plan].data = data;
        plan[*n_plan].created = created;
        plan[*n_plan].fresh = fresh;
        plan[*n_plan].origin = origin;
        plan[*n_plan].version = version;
        (*n_plan)++;
    }
    rc = INTEG_OK; /* per-record outcomes (mapping errors, held conflicts) don't fail the page */
done:
    json_object_put(links);
    ext_set_free(&seen);
    if (pf != prepared)
        free(pf);
    return rc;
}

static void plan_free(struct pending *plan, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_object_put(plan[i].link);
        json_object_put(plan[i].data);
    }
}

/* The record and the link's base carry the same data: serialised once,
 * for both (p->data becomes its ig_json_raw text). -1 when out of memory. */
static int share_data_text(struct pending *p)
{
    json_object *raw = ig_json_raw(p->data);
    if (!raw)
        return -1;
    if (ig_json_get(p->link, "base") == p->data)
        json_object_object_add(p->link, "base", json_object_get(raw));
    json_object_put(p->data);
    p->data = raw;
    return 0;
}

/* Write a plan's records and links into the built-in entity store. A
 * fresh link is inserted: one made meanwhile for the same remote record
 * fails the write with INTEG_EEXISTS. */
static int write_plan(integ_ctx *ctx, void *tx, const char *tenant_id, const char *local_entity,
                      struct pending *plan, size_t n_plan)
{
    /* A local record the plan read is written over without reading it
     * again, unless two entries of the page write it. */
    struct ext_set written = {0, NULL};
    int rc = ext_set_init(&written, n_plan);
    for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++) {
        if (!plan[i].data)
            continue; /* local kept (local_wins): the link alone moves on */
        if (share_data_text(&plan[i])) {
            rc = ig_err(INTEG_ENOMEM, "out of memory");
            break;
        }
        json_object *stored = NULL;
        const char *lid = ig_json_str(plan[i].link, "local_id");
        int again = ext_set_add(&written, lid);
        if (plan[i].fresh)
            rc = ig_entity_store_create(ctx, tx, tenant_id, local_entity, lid, plan[i].data, plan[i].origin, &stored);
        else if (plan[i].version > 0 && !again)
            rc = ig_entity_store_replace(ctx, tx, tenant_id, local_entity, lid, plan[i].data, 0, plan[i].origin,
                                         plan[i].version, &stored);
        else
            rc = ig_entity_store_put(ctx, tx, tenant_id, local_entity, lid, plan[i].data, 0, plan[i].origin, &stored);
        /* The local version this sync wrote: a later local edit is
         * a version past it. A merge that left changes to push
         * stays "changed". */
        if (rc == INTEG_OK && !strcmp(plan[i].origin, "sync"))
            json_object_object_add(plan[i].link, "local_version",
                                   json_object_new_int64(ig_json_int(stored, "version", 0)));
        json_object_put(stored);
    }
    for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++)
        rc = ig_store_put(ctx, tx, INTEG_KIND_ENTITY_LINK, plan[i].link,
                          plan[i].fresh ? INTEG_PUT_INSERT : INTEG_PUT_UPSERT);
    ext_set_free(&written);
    return rc;
}

/* Apply one page. Built-in entity store: one transaction for records,
 * links and checkpoint. Host entity store: (1) links marked pending, so a
 * replay after a crash reuses the same local ids; (2) the host's upserts;
 * (3) links final and the checkpoint. */
static int apply_page(struct run *r, json_object *records, json_object *next_state, const struct page_facts *facts)
{
    integ_ctx *ctx = r->s->ctx;
    size_t n = ig_json_len(records), n_plan = 0;
    struct pending *plan = calloc(n ? n : 1, sizeof *plan);
    if (!plan)
        return ig_err(INTEG_ENOMEM, "out of memory");
    int external = ig_entities_external(ctx);
    int64_t created0 = r->created, updated0 = r->updated;
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    /* Still this run's lease, before anything of the page is written. */
    if (rc == INTEG_OK)
        rc = run_lease_hold(r, tx);
    if (rc == INTEG_OK)
        rc = plan_page(r, tx, records, facts, PLAN_IN_TX, plan, &n_plan);
    if (rc == INTEG_OK && !r->dry_run) {
        if (external) {
            for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++) {
                if (!plan[i].created)
                    continue;
                json_object_object_add(plan[i].link, "pending", json_object_new_boolean(1));
                rc = write_link(r, tx, plan[i].link);
                json_object_object_add(plan[i].link, "pending", json_object_new_boolean(0));
            }
            rc = ig_tx_end(ctx, tx, 1, rc);
            tx = NULL;
            /* The page's conflict rows are committed with the pending links. */
            r->conflicts_durable = rc == INTEG_OK;
            for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++)
                if (plan[i].data)
                    rc = ig_entity_store_put(ctx, NULL, r->s->tenant_id, r->local_entity,
                                             ig_json_str(plan[i].link, "local_id"), plan[i].data, 0, plan[i].origin, NULL);
            if (rc == INTEG_OK)
                rc = ig_tx_begin(ctx, 1, &tx);
            if (rc == INTEG_OK)
                rc = run_lease_hold(r, tx);
            for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++)
                rc = write_link(r, tx, plan[i].link);
        } else {
            rc = write_plan(ctx, tx, r->s->tenant_id, r->local_entity, plan, n_plan);
        }
        /* Webhook deliveries apply records outside any paged run. */
        if (rc == INTEG_OK && r->checkpoint_id[0])
            rc = checkpoint_put(r, tx, next_state, r->prev_hwm_ms);
    }
    /* Link-only entries (a stamp, a kept local version) write no record. */
    for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++) {
        if (!plan[i].data)
            continue;
        if (plan[i].created)
            r->created++;
        else
            r->updated++;
    }
    rc = ig_tx_end(ctx, tx, !r->dry_run, rc);
    if (rc) {
        r->created = created0;
        r->updated = updated0;
    }
    plan_free(plan, n_plan);
    free(plan);
    return rc;
}

/* ---- remote deletions ------------------------------------------------------------ */

/* Soft-delete the local records linked to these remote ids. */
static int soft_delete_ids(struct run *r, json_object *ids)
{
    integ_ctx *ctx = r->s->ctx;
    int rc = INTEG_OK;
    for (size_t i = 0; rc == INTEG_OK && i < ig_json_len(ids); i++) {
        const char *ext = json_object_get_string(json_object_array_get_idx(ids, i));
        void *tx = NULL;
        json_object *link = NULL, *local = NULL;
        r->processed++;
        rc = ig_tx_begin(ctx, 1, &tx);
        if (rc == INTEG_OK)
            rc = find_link(r, tx, ext, &link);
        if (rc == INTEG_OK && link && !ig_json_bool(link, "deleted", 0)) {
            const char *le = ig_json_str(link, "local_entity") ? ig_json_str(link, "local_entity") : r->local_entity;
            rc = ig_entity_load(ctx, tx, r->s->tenant_id, le, ig_json_str(link, "local_id"), &local);
            if (rc == INTEG_OK && !ig_json_bool(local, "deleted", 0)) {
                json_object *stored = NULL;
                int64_t version = ig_json_int(local, "version", 0);
                if (version > 0)
                    rc = ig_entity_store_replace(ctx, tx, r->s->tenant_id, le, ig_json_str(link, "local_id"),
                                                 ig_json_get(local, "data"), 1, "sync", version, &stored);
                else
                    rc = ig_entity_store_put(ctx, tx, r->s->tenant_id, le, ig_json_str(link, "local_id"),
                                             ig_json_get(local, "data"), 1, "sync", &stored);
                if (rc == INTEG_OK)
                    json_object_object_add(link, "local_version", json_object_new_int64(ig_json_int(stored, "version", 0)));
                json_object_put(stored);
                r->deleted++;
            } else if (rc == INTEG_ENOTFOUND) {
                rc = INTEG_OK;
            }
            if (rc == INTEG_OK) {
                json_object_object_add(link, "deleted", json_object_new_boolean(1));
                rc = ig_store_put(ctx, tx, INTEG_KIND_ENTITY_LINK, link, INTEG_PUT_UPDATE);
            }
        } else if (rc == INTEG_OK) {
            r->skipped++;
        }
        rc = ig_tx_end(ctx, tx, !r->dry_run, rc);
        json_object_put(link);
        json_object_put(local);
    }
    return rc;
}

struct unseen {
    const char *run;
    json_object *seen; /* a dry run's: the ids it saw (its stamps rolled back) */
    json_object *ids;
};

static int collect_unseen(void *payload, const char *json, size_t len, const unsigned char *blob, size_t blob_len)
{
    (void)blob;
    (void)blob_len;
    struct unseen *u = payload;
    json_object *l = ig_json_parse_len(json, len);
    if (!l)
        return INTEG_ESTORE;
    const char *seen = ig_json_str(l, "seen_run");
    if (!ig_json_bool(l, "deleted", 0) && !ig_json_bool(l, "pending", 0) && ig_json_str(l, "external_id") &&
        (!seen || strcmp(seen, u->run)) &&
        !(u->seen && json_object_object_get_ex(u->seen, ig_json_str(l, "external_id"), NULL)))
        json_object_array_add(u->ids, json_object_new_string(ig_json_str(l, "external_id")));
    json_object_put(l);
    return 0;
}

/* After a completed read: the manifest's deleted-records request, or, for
 * a full read of an entity without one, the links this read never saw. */
static int detect_remote_deletes(struct run *r)
{
    int rc = INTEG_OK;
    if (ig_json_get(r->edef, "deletes")) {
        json_object *state = NULL;
        for (int pages = 0; rc == INTEG_OK && pages < 100000; pages++) {
            ig_page page;
            rc = ig_rest_list_deleted_page(r->c, r->entity, state, &page);
            if (rc)
                break;
            json_object *ids = json_object_new_array();
            for (size_t i = 0; i < ig_json_len(page.records); i++) {
                char ext[256];
                if (ig_record_id(json_object_array_get_idx(page.records, i), ig_json_str(r->edef, "id_field"), ext, sizeof ext) == 0)
                    json_object_array_add(ids, json_object_new_string(ext));
            }
            rc = soft_delete_ids(r, ids);
            json_object_put(ids);
            int same = page.next_state && state && json_object_equal(page.next_state, state);
            json_object_put(state);
            state = page.next_state ? json_object_get(page.next_state) : NULL;
            ig_page_free(&page);
            if (!state || same)
                break;
        }
        json_object_put(state);
        return rc;
    }
    if (!r->sweep)
        return INTEG_OK;
    struct unseen u = {r->log_id, r->dry_seen, json_object_new_array()};
    char q[300];
    snprintf(q, sizeof q, "{\"integration_id\":\"%s\",\"entity\":\"%s\"}", ig_json_str(r->c->integration, "id"), r->entity);
    void *tx = NULL;
    rc = ig_tx_begin(r->s->ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(r->s->ctx, tx, 1, r->s->ctx->store->list(tx, INTEG_KIND_ENTITY_LINK, q, collect_unseen, &u));
    if (rc == INTEG_OK)
        rc = soft_delete_ids(r, u.ids);
    json_object_put(u.ids);
    return rc;
}

/* After apply_page returned rc: the page's conflicts are reported when it
 * committed; a page rolled back recorded none, so they are dropped and not
 * counted (unless a host-store page committed them before failing). */
static void emit_conflicts(struct run *r, int rc)
{
    int keep = rc == INTEG_OK || r->conflicts_durable;
    r->conflicts_durable = 0;
    if (!keep)
        r->conflicts -= (int64_t)ig_json_len(r->conflict_events);
    for (size_t i = 0; keep && !r->dry_run && i < ig_json_len(r->conflict_events); i++)
        ig_emit(r->s->ctx, "conflict.detected", json_object_array_get_idx(r->conflict_events, i));
    json_object_put(r->conflict_events);
    r->conflict_events = json_object_new_array();
}

/* ---- the run --------------------------------------------------------------- */

/* The run's counts at one point: what a page added can be taken back, or
 * left out of a progress report. */
struct tally {
    int64_t processed, created, updated, skipped, failed, pages, hwm_ms, failed_min_ms;
    size_t n_errors;
};

static struct tally tally_of(const struct run *r)
{
    struct tally t = {r->processed, r->created, r->updated, r->skipped, r->failed, r->pages, r->hwm_ms,
                      r->failed_min_ms, ig_json_len(r->errors)};
    return t;
}

/* Back to t: the counts, and the errors logged since. */
static void tally_restore(struct run *r, const struct tally *t)
{
    r->processed = t->processed;
    r->created = t->created;
    r->updated = t->updated;
    r->skipped = t->skipped;
    r->failed = t->failed;
    r->pages = t->pages;
    r->hwm_ms = t->hwm_ms;
    r->failed_min_ms = t->failed_min_ms;
    size_t n = ig_json_len(r->errors);
    if (n > t->n_errors)
        json_object_array_del_idx(r->errors, t->n_errors, n - t->n_errors);
}

/* Report the counts in t (NULL: the run's own). Non-zero: cancel. */
static int progress_at(struct run *r, const struct tally *t)
{
    if (!r->cb)
        return 0;
    struct tally now = tally_of(r);
    if (!t)
        t = &now;
    double secs = (double)(now_ms(r) - r->started_ms) / 1000.0;
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"integration_id\":\"%s\",\"entity\":\"%s\",\"pages\":%lld,\"records_processed\":%lld,"
             "\"records_created\":%lld,\"records_updated\":%lld,\"records_skipped\":%lld,"
             "\"records_failed\":%lld,\"elapsed_ms\":%lld,\"records_per_second\":%.1f}",
             ig_json_str(r->c->integration, "id"), r->entity, (long long)t->pages, (long long)t->processed,
             (long long)t->created, (long long)t->updated, (long long)t->skipped, (long long)t->failed,
             (long long)(now_ms(r) - r->started_ms), secs > 0 ? (double)t->processed / secs : 0.0);
    return r->cb(r->cb_payload, buf);
}

static int progress(struct run *r)
{
    return progress_at(r, NULL);
}

int ig_sync_mapping_spec(integ_ctx *ctx, const char *tenant_id, const char *integration_id, const char *entity,
                         json_object *edef, json_object **spec, json_object **policies, int *stored)
{
    *spec = NULL;
    if (policies)
        *policies = NULL;
    if (stored)
        *stored = 0;
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    json_object_object_add(q, "tenant_id", json_object_new_string(tenant_id));
    json_object_object_add(q, "integration_id", json_object_new_string(integration_id));
    json_object_object_add(q, "source_entity", json_object_new_string(entity));
    void *tx = NULL;
    int rc = ig_tx_begin(ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = ig_tx_end(ctx, tx, 1, ig_store_list(ctx, tx, INTEG_KIND_MAPPING, q, rows));
    if (rc == INTEG_OK) {
        int own = ig_json_len(rows) > 0;
        *spec = json_object_get(own ? json_object_array_get_idx(rows, 0) : ig_json_get(edef, "default_mapping"));
        if (policies)
            *policies = ig_json_get(*spec, "field_policies");
        if (stored)
            *stored = own;
    }
    json_object_put(q);
    json_object_put(rows);
    return rc;
}

/* Choose the mapping: the integration's own for this entity, else the
 * manifest's default; none means records are kept as they come. */
static int load_mapping(struct run *r)
{
    json_object *spec = NULL, *policies = NULL;
    int stored = 0;
    int rc = ig_sync_mapping_spec(r->s->ctx, r->s->tenant_id, ig_json_str(r->c->integration, "id"), r->entity, r->edef,
                                  &spec, &policies, &stored);
    if (rc == INTEG_OK && policies)
        r->field_policies = json_object_get(policies);
    if (rc == INTEG_OK && spec) {
        static const char *const parts[] = {"target_entity", "field_map", "transform_rules", "required", "reverse",
                                            "field_policies"};
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof r->mapping_fp);
        for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
            json_object *v = ig_json_get(spec, parts[i]);
            const char *t = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "-";
            crypto_generichash_update(&st, (const unsigned char *)t, strlen(t) + 1);
        }
        crypto_generichash_final(&st, r->mapping_fp, sizeof r->mapping_fp);
        rc = ig_mapping_compile(spec, "mapping", &r->mapping);
    }
    /* local_entity must outlive the stored spec: keep the manifest's when it matches. */
    if (rc == INTEG_OK && stored) {
        const char *t = ig_json_str(spec, "target_entity");
        json_object_object_add(r->edef, "x-run-target", json_object_new_string(t ? t : r->local_entity));
        r->local_entity = ig_json_str(r->edef, "x-run-target");
    } else {
        r->local_entity = ig_json_str(r->edef, "local_entity");
    }
    json_object_put(spec);
    return rc;
}

static int parse_request(json_object *req, struct run *r, int64_t *modified_since)
{
    static const char *const known[] = {"entity", "direction", "filter", "full", "dry_run", "conflict_strategy", NULL};
    *modified_since = -1;
    int rc = ig_json_check_keys(req, known, "request_json", "field");
    if (rc)
        return rc;
    r->entity = ig_json_str(req, "entity");
    if (!r->entity || !*r->entity)
        return ig_err(INTEG_EINVAL, "request_json.entity: required (an entity of the integration's definition)");
    const char *dir = ig_json_str(req, "direction");
    static const char *const directions[] = {"pull", "push", "bidirectional", NULL};
    if (ig_json_get(req, "direction") && !ig_in_list(dir, directions))
        return ig_err(INTEG_EINVAL, "request_json.direction: must be \"pull\", \"push\" or \"bidirectional\"");
    r->direction = dir ? dir : "pull";
    json_object *full = ig_json_get(req, "full"), *dry = ig_json_get(req, "dry_run");
    if (full && !json_object_is_type(full, json_type_boolean))
        return ig_err(INTEG_EINVAL, "request_json.full: must be a boolean");
    if (dry && !json_object_is_type(dry, json_type_boolean))
        return ig_err(INTEG_EINVAL, "request_json.dry_run: must be a boolean");
    r->full = full && json_object_get_boolean(full);
    r->dry_run = dry && json_object_get_boolean(dry);
    json_object *f = ig_json_get(req, "filter");
    if (f) {
        if (!json_object_is_type(f, json_type_object))
            return ig_err(INTEG_EINVAL, "request_json.filter: must be an object");
        ig_json_foreach(f, fk, fv)
        {
            if (strcmp(fk, "modified_since") != 0)
                return ig_err(INTEG_EINVAL, "request_json.filter.%s: unknown filter (use modified_since)", fk);
            if (!json_object_is_type(fv, json_type_string) || ig_parse_rfc3339(json_object_get_string(fv), modified_since))
                return ig_err(INTEG_EINVAL, "request_json.filter.modified_since: must be an RFC 3339 timestamp");
        }
    }
    const char *cs = ig_json_str(req, "conflict_strategy");
    if (ig_json_get(req, "conflict_strategy")) {
        static const char *const strategies[] = {"last_write_wins", "remote_wins", "local_wins", "manual", "merge_fields", NULL};
        if (!ig_in_list(cs, strategies))
            return ig_err(INTEG_EINVAL, "request_json.conflict_strategy: must be one of last_write_wins, "
                          "remote_wins, local_wins, manual, merge_fields");
    }
    return INTEG_OK;
}

/* Record the outcome: log row, integration status and last_sync_at, audit. */
static int finish(struct run *r, const char *status, int err, json_object **result)
{
    integ_ctx *ctx = r->s->ctx;
    int64_t done = now_ms(r);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", integ_errmsg());
    if (err && err != INTEG_ECANCELED) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "record", NULL);
        json_object_object_add(e, "code", json_object_new_int(err));
        json_object_object_add(e, "message", json_object_new_string(saved));
        json_object_array_add(r->errors, e);
    }
    *result = result_json(r, status, done);
    if (r->dry_run)
        return INTEG_OK;
    void *tx = NULL;
    json_object *integ = NULL;
    int rc = ig_tx_begin(ctx, 1, &tx);
    if (rc == INTEG_OK)
        rc = log_put(r, tx, *result, INTEG_PUT_UPSERT);
    if (rc == INTEG_OK)
        rc = ig_store_get(ctx, tx, INTEG_KIND_INTEGRATION, r->s->tenant_id, ig_json_str(r->c->integration, "id"), &integ);
    if (rc == INTEG_OK) {
        char at[32];
        ig_rfc3339(at, done, 0);
        const char *cur = ig_json_str(integ, "status");
        if (!strcmp(status, "success") || !strcmp(status, "partial")) {
            json_object_object_add(integ, "last_sync_at", json_object_new_string(at));
            /* A success clears "needs_reauth" only when the run started
             * with it (its credentials then proved good). Marked while the
             * run went on, it records a rejection that came after this
             * run's requests (another run's 401): that stays. */
            const char *was = ig_json_str(r->c->integration, "status");
            if (cur && (!strcmp(cur, "error") || (!strcmp(cur, "needs_reauth") && was && !strcmp(was, "needs_reauth"))))
                json_object_object_add(integ, "status", json_object_new_string("active"));
            json_object_object_del(integ, "last_error");
        } else if (!strcmp(status, "error") && !r->lease_lost) {
            /* A failure keeps "paused" (a person paused it; "error" would
             * let the scheduler run it), and keeps "needs_reauth" too: the
             * credentials are still to be fixed, whatever else failed now.
             * A run that lost its lease leaves the status to the run that
             * took over.
             *
             * INTEG_EAUTH is compare-and-set on the credentials (as
             * ig_oauth_needs_reauth): the rejected ones are those the
             * connection holds (as opened, or as it renewed or adopted
             * them). When the record's are others now (set or
             * re-authorised during the run), the rejection is about
             * credentials gone and the new ones are untried: the status
             * and last_error stay; the sync log, the audit entry and
             * sync.failed record the failure. */
            ig_creds_seen seen = {ig_json_str(r->c->integration, "credentials_sealed"), r->c->credentials};
            int gone = err == INTEG_EAUTH && !ig_oauth_creds_unchanged(ctx, integ, &seen);
            if (!gone && (!cur || (strcmp(cur, "paused") != 0 && strcmp(cur, "needs_reauth") != 0)))
                json_object_object_add(integ, "status",
                                       json_object_new_string(err == INTEG_EAUTH ? "needs_reauth" : "error"));
            if (!gone)
                json_object_object_add(integ, "last_error", json_object_new_string(saved));
        }
        json_object_object_add(integ, "updated_at", json_object_new_string(at));
        rc = ig_store_put(ctx, tx, INTEG_KIND_INTEGRATION, integ, INTEG_PUT_UPDATE);
    }
    if (rc == INTEG_OK) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "entity", json_object_new_string(r->entity));
        json_object_object_add(d, "status", json_object_new_string(status));
        json_object_object_add(d, "sync_log_id", json_object_new_string(r->log_id));
        json_object_object_add(d, "records_processed", json_object_new_int64(r->processed));
        rc = ig_audit(ctx, tx, r->s->tenant_id, r->s->user_id, "sync.run", "integration",
                      ig_json_str(r->c->integration, "id"), d);
        json_object_put(d);
    }
    rc = ig_tx_end(ctx, tx, 1, rc);
    json_object_put(integ);
    if (strcmp(status, "canceled") != 0) {
        json_object *f = json_object_new_object();
        json_object_object_add(f, "tenant_id", json_object_new_string(r->s->tenant_id));
        static const char *const copy[] = {"integration_id", "entity", "sync_log_id", "status", "trigger", "direction",
                                           "records_processed", "records_created", "records_updated",
                                           "records_skipped", "records_failed", "records_deleted", "records_pushed",
                                           "conflicts", NULL};
        for (const char *const *k = copy; *k; k++)
            json_object_object_add(f, *k, json_object_get(ig_json_get(*result, *k)));
        if (err && err != INTEG_ECANCELED) {
            json_object_object_add(f, "error", json_object_new_string(saved));
            json_object_object_add(f, "code", json_object_new_int(err));
        }
        ig_emit(ctx, !strcmp(status, "error") ? "sync.failed" : "sync.completed", f);
        json_object_put(f);
    }
    integ_error_set(0, saved);
    return rc;
}

INTEG_API int integ_sync(integ_session *s, const char *integration_id, const char *request_json,
                         integ_progress_cb cb, void *payload, char **out_json)
{
    ig_err_clear();
    return ig_sync_run(s, integration_id, request_json, cb, payload, "manual", out_json);
}

/* ---- the writer stage ------------------------------------------------------- */

/* A pull's pages can be committed on a second thread while the caller plans
 * the next one. Only pages that create records go there: their plan reads
 * (which links exist) and writes nothing, so it can be made outside the
 * writing transaction, and a link made meanwhile for the same remote record
 * (a webhook delivery) fails the write's insert, after which the page is
 * planned again inside its own write transaction. A page that updates or
 * stamps records, or shares a record with the page being written, is
 * applied as before, after that page has landed. */

/* What the writer thread gets: the page's puts as plain bytes (json-c's
 * reference counts are not atomic, and objects built on one core and read
 * on the other cost more than they save: measured, issue 8). */
struct write_job {
    integ_ctx *ctx;
    ig_put_batch *batch;
    /* The run's lease, checked in the job's transaction (lease_hold);
     * lease_id NULL: none. The strings are lent from the run; lease_until
     * and lease_lost are the job's until it has been waited for. */
    const char *lease_id, *holder, *integration_id;
    int64_t lease_until;
    int lease_lost;
};

/* ig_job_fn: on the writer thread. */
static int write_job_run(void *arg)
{
    struct write_job *j = arg;
    void *tx = NULL;
    int rc = ig_tx_begin(j->ctx, 1, &tx);
    if (rc == INTEG_OK && j->lease_id)
        rc = lease_hold(j->ctx, tx, j->lease_id, j->holder, j->integration_id, &j->lease_until, &j->lease_lost);
    if (rc == INTEG_OK)
        rc = ig_put_batch_run(j->ctx, tx, j->batch);
    return ig_tx_end(j->ctx, tx, 1, rc);
}

/* The page with the writer. */
struct inflight {
    int active;
    ig_page page;         /* kept until it lands: a lost race applies it again */
    int64_t created;      /* records it creates */
    struct write_job job;
    struct tally before;  /* the run's counts before it was fetched */
    struct ext_set ids;
};

/* Plan a page for the writer: in a read transaction, or without reading
 * links (assumed). PLAN_NOT_FRESH when it has to be applied the usual way
 * (the counts it made are the caller's to take back). */
static int plan_ahead(struct run *r, ig_page *page, int assumed, struct pending **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t n = ig_json_len(page->records);
    /* Not zeroed (a page's entries are a few hundred bytes each, and
     * plan_page sets every member of each entry it makes). */
    struct pending *plan = malloc((n ? n : 1) * sizeof *plan);
    if (!plan)
        return ig_err(INTEG_ENOMEM, "out of memory");
    void *tx = NULL;
    size_t n_plan = 0;
    int rc = assumed ? INTEG_OK : ig_tx_begin(r->s->ctx, 0, &tx);
    if (rc == INTEG_OK)
        rc = plan_page(r, tx, page->records, page->prep, assumed ? PLAN_ASSUMED : PLAN_FRESH, plan, &n_plan);
    rc = ig_tx_end(r->s->ctx, tx, 0, rc);
    if (rc) {
        plan_free(plan, n_plan);
        free(plan);
        return rc;
    }
    *out = plan;
    *n_out = n_plan;
    return INTEG_OK;
}

/* A writer page's fresh link as text: the bytes ig_json_write writes for
 * the object plan_page builds for a fresh link, with the base (`base`, the
 * record's data) and the local_version 1 that writing adds, and its
 * indexed fields (strings lent from r and m). test_writer_links_as_built
 * holds the two paths' links equal. */
static int fresh_link_text(struct run *r, const struct fresh_link *m, const char *synced_at, json_object *base,
                           ig_jbuf *b, integ_store_field f[MAX_COLS], size_t *n_fields)
{
    const char *integration_id = ig_json_str(r->c->integration, "id");
    char num[64], at[32];
    struct {
        const char *key, *val;
    } strs[] = {{"{\"id\":", m->id},
                {",\"tenant_id\":", r->s->tenant_id},
                {",\"integration_id\":", integration_id},
                {",\"entity\":", r->entity},
                {",\"local_entity\":", r->local_entity},
                {",\"external_id\":", m->external_id},
                {",\"local_id\":", m->local_id},
                {",\"hash\":", m->hash}};
    int e = 0;
    for (size_t i = 0; !e && i < sizeof strs / sizeof strs[0]; i++)
        e = ig_jbuf_put(b, strs[i].key, strlen(strs[i].key)) || ig_json_write_string(b, strs[i].val, strlen(strs[i].val));
    if (!e && m->upd >= 0) {
        ig_rfc3339(at, m->upd, 1);
        int k = snprintf(num, sizeof num, ",\"remote_updated_at_ms\":%lld", (long long)m->upd);
        e = ig_jbuf_put(b, ",\"remote_updated_at\":", 21) || ig_json_write_string(b, at, strlen(at)) ||
            ig_jbuf_put(b, num, (size_t)k);
    }
    e = e || ig_jbuf_put(b, ",\"synced_at\":", 13) || ig_json_write_string(b, synced_at, strlen(synced_at)) ||
        ig_jbuf_put(b, ",\"pending\":false", 16);
    if (!e && r->sweep)
        e = ig_jbuf_put(b, ",\"seen_run\":", 12) || ig_json_write_string(b, r->log_id, strlen(r->log_id));
    if (!e && base)
        e = ig_jbuf_put(b, ",\"base\":", 8) || ig_json_write(base, b);
    e = e || ig_jbuf_put(b, ",\"local_version\":1}", 19);
    if (e)
        return ig_err(INTEG_ENOMEM, "out of memory");
    const table_spec *t = ig_store_spec(INTEG_KIND_ENTITY_LINK);
    size_t n = (size_t)ig_store_field_count(t);
    memset(f, 0, n * sizeof *f);
    ig_store_field_set(t, f, "id", INTEG_FIELD_STRING, m->id, 0);
    ig_store_field_set(t, f, "tenant_id", INTEG_FIELD_STRING, r->s->tenant_id, 0);
    ig_store_field_set(t, f, "integration_id", INTEG_FIELD_STRING, integration_id, 0);
    ig_store_field_set(t, f, "entity", INTEG_FIELD_STRING, r->entity, 0);
    ig_store_field_set(t, f, "external_id", INTEG_FIELD_STRING, m->external_id, 0);
    ig_store_field_set(t, f, "local_id", INTEG_FIELD_STRING, m->local_id, 0);
    ig_store_field_set(t, f, "pending", INTEG_FIELD_BOOL, NULL, 0);
    *n_fields = n;
    return INTEG_OK;
}

/* The puts of a fresh-only plan, as write_plan and apply_page would make
 * them (records, then links, then the checkpoint), into b. */
static int batch_plan(struct run *r, struct pending *plan, size_t n_plan, json_object *next_state,
                      ig_put_batch *b, int64_t *created)
{
    integ_ctx *ctx = r->s->ctx;
    *created = 0;
    ig_put_batch_reset(b);
    char synced_at[32]; /* one time for the page, as plan_page's */
    ig_rfc3339(synced_at, ig_now_ms(), 0);
    integ_store_field f[MAX_COLS];
    size_t n = 0, start = 0;
    int rc = INTEG_OK;
    /* Every entry of a fresh plan is a made link with its data (NULL only
     * when copying a record ran out of memory). */
    for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++) {
        if (!plan[i].data || share_data_text(&plan[i]))
            return ig_err(INTEG_ENOMEM, "out of memory");
        ig_jbuf *text = ig_put_batch_text(b, &start);
        rc = ig_entity_row_text(text, r->s->tenant_id, r->local_entity, plan[i].made.local_id, plan[i].data, 0,
                                plan[i].origin, 1, ig_now_ms(), f, &n);
        if (rc == INTEG_OK)
            rc = ig_put_batch_add_written(ctx, b, INTEG_KIND_ENTITY, start, f, n, INTEG_PUT_INSERT);
        (*created)++;
    }
    for (size_t i = 0; rc == INTEG_OK && i < n_plan; i++) {
        ig_jbuf *text = ig_put_batch_text(b, &start);
        rc = fresh_link_text(r, &plan[i].made, synced_at, plan[i].data, text, f, &n);
        if (rc == INTEG_OK)
            rc = ig_put_batch_add_written(ctx, b, INTEG_KIND_ENTITY_LINK, start, f, n, INTEG_PUT_INSERT);
    }
    if (rc == INTEG_OK) {
        json_object *ck = checkpoint_rec(r, json_object_get(next_state), r->prev_hwm_ms);
        rc = ig_put_batch_add(ctx, b, INTEG_KIND_CHECKPOINT, ck, INTEG_PUT_UPSERT);
        json_object_put(ck);
    }
    return rc;
}

static void inflight_clear(struct inflight *fl, ig_prefetch *prefetch)
{
    ext_set_free(&fl->ids);
    ig_prefetch_release(prefetch, &fl->page);
    memset(fl, 0, sizeof *fl);
}

/* Hand a page and its batch to the writer (taken over only when this
 * returns INTEG_OK). */
static int submit(struct run *r, ig_worker *writer, struct inflight *fl, ig_page *page, ig_put_batch *batch,
                  int64_t created, const struct tally *before)
{
    memset(fl, 0, sizeof *fl);
    int rc = ext_set_fill(&fl->ids, page->prep);
    if (rc)
        return rc;
    fl->job.ctx = r->s->ctx;
    fl->job.batch = batch;
    if (r->leased) {
        fl->job.lease_id = r->lease_id;
        fl->job.holder = r->holder;
        fl->job.integration_id = ig_json_str(r->c->integration, "id");
        fl->job.lease_until = r->lease_until_ms;
    }
    fl->page = *page;
    memset(page, 0, sizeof *page);
    fl->created = created;
    fl->before = *before;
    fl->active = 1;
    ig_worker_submit(writer, write_job_run, &fl->job);
    return INTEG_OK;
}

/* Wait for the page with the writer, count it and report progress. `next`
 * (NULL after the last page) holds the counts from before the page fetched
 * since; the report leaves that page out, and a cancel takes it back. When
 * the page with the writer has to be applied again, the next page's batch
 * (*batched set) is dropped and that page goes the usual way after it.
 * INTEG_ECANCELED when the progress callback cancels. */
static int land(struct run *r, struct inflight *fl, ig_worker *writer, ig_prefetch *prefetch, struct tally *next,
                int *batched)
{
    if (!fl->active)
        return INTEG_OK;
    int rc = ig_worker_wait(writer);
    /* What the job's transaction learnt of the lease. */
    if (fl->job.lease_until > r->lease_until_ms)
        r->lease_until_ms = fl->job.lease_until;
    if (fl->job.lease_lost)
        r->lease_lost = 1;
    if (rc == INTEG_EEXISTS) {
        /* A link for one of its records was made after it was planned (a
         * webhook delivery): plan it again, in the transaction that writes
         * it. The next page's batch counted on this one's, so it goes too. */
        if (batched)
            *batched = 0;
        atomic_fetch_add(&r->s->ctx->writer_retries, 1);
        tally_restore(r, &fl->before);
        r->assume_new = 0;
        r->pages++;
        rc = apply_page(r, fl->page.records, fl->page.next_state, fl->page.prep);
        emit_conflicts(r, rc);
        inflight_clear(fl, prefetch);
        if (rc == INTEG_OK && progress(r) != 0)
            rc = canceled(r);
        if (rc == INTEG_OK && next) {
            *next = tally_of(r);
            r->pages++; /* the page fetched since, not planned yet */
        }
        return rc;
    }
    if (rc) {
        /* The run ends with this error; what is not committed does not count. */
        tally_restore(r, &fl->before);
        inflight_clear(fl, prefetch);
        return rc;
    }
    atomic_fetch_add(&r->s->ctx->writer_pages, 1);
    int64_t created = fl->created;
    inflight_clear(fl, prefetch);
    r->created += created;
    if (next)
        next->created += created;
    if (progress_at(r, next) != 0) {
        if (next)
            tally_restore(r, next);
        return canceled(r);
    }
    return INTEG_OK;
}

void ig_sync_writer_stats(integ_ctx *ctx, uint64_t *pages, uint64_t *retries)
{
    *pages = atomic_load(&ctx->writer_pages);
    *retries = atomic_load(&ctx->writer_retries);
}

int ig_sync_run(integ_session *s, const char *integration_id, const char *request_json, integ_progress_cb cb,
                void *payload, const char *trigger, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    int rc = ig_session_check(s);
    if (rc)
        return rc;
    IG_CHECK_ARG(integration_id && *integration_id, "integration_id");
    json_object *req = NULL;
    if ((rc = ig_json_parse_object(request_json, "request_json", 0, &req)))
        return rc;
    struct run r;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.cb = cb;
    r.cb_payload = payload;
    r.trigger = trigger;
    r.errors = json_object_new_array();
    r.conflict_events = json_object_new_array();
    r.since_ms = -1;
    r.hwm_ms = -1;
    r.failed_min_ms = -1;
    int64_t modified_since = -1;
    json_object *ck = NULL, *result = NULL;
    ig_prefetch *prefetch = NULL;
    if ((rc = parse_request(req, &r, &modified_since)) || (rc = ig_session_require_admin(s)) ||
        (rc = ig_conn_open(s->ctx, s->tenant_id, integration_id, &r.c)))
        goto out;
    r.edef = ig_conn_entity(r.c, r.entity);
    if (!r.edef) {
        rc = ig_err_prefix(INTEG_EINVAL, "request_json.entity");
        goto out;
    }
    if (strcmp(r.direction, "push") != 0 &&
        (!ig_json_str(r.edef, "records_path") || json_object_is_type(ig_json_get(r.edef, "list"), json_type_boolean))) {
        rc = ig_err(INTEG_EUNSUPPORTED, "request_json.entity: '%s' cannot be pulled", r.entity);
        goto out;
    }
    if ((rc = load_mapping(&r)))
        goto out;
    /* The request's strategy, else the integration's, else last write wins. */
    r.strategy = ig_json_str(req, "conflict_strategy");
    if (!r.strategy)
        r.strategy = ig_json_str(r.c->config, "conflict_strategy");
    if (!r.strategy)
        r.strategy = "last_write_wins";
    r.started_ms = now_ms(&r);
    ig_ctx_new_id(s->ctx, r.log_id, ig_now_ms());
    ig_ctx_new_id(s->ctx, r.holder, ig_now_ms());
    snprintf(r.lease_id, sizeof r.lease_id, "sync:%s", integration_id);
    snprintf(r.checkpoint_id, sizeof r.checkpoint_id, "%s:%s", integration_id, r.entity);
    if (!r.dry_run) {
        if ((rc = lease_take(&r)))
            goto out;
        r.leased = 1;
    }
    if ((rc = checkpoint_load(&r, &ck)))
        goto out;
    r.prev_hwm_ms = ig_json_int(ck, "hwm_ms", -1);
    json_object *saved_state = ig_json_get(ck, "state");
    int incremental_ok = ig_json_get(r.edef, "incremental") != NULL;
    if (saved_state && !r.full) {
        /* An interrupted run: carry on where its last committed page ended. */
        r.state = json_object_get(saved_state);
        r.since_ms = ig_json_int(ck, "run_since_ms", -1);
        r.hwm_ms = ig_json_int(ck, "run_max_ms", -1);
        r.failed_min_ms = ig_json_int(ck, "run_failed_min_ms", -1);
    } else if (!r.full && incremental_ok) {
        r.since_ms = modified_since >= 0 ? modified_since : r.prev_hwm_ms;
    }
    /* A read of everything from the first page can tell what disappeared. */
    r.sweep = r.since_ms < 0 && !r.state && !ig_json_get(r.edef, "deletes");
    /* A dry run's stamps roll back with each page: it keeps what it saw. */
    if (r.sweep && r.dry_run)
        r.dry_seen = json_object_new_object();
    if (!r.dry_run) {
        json_object *running = result_json(&r, "running", 0);
        void *tx = NULL;
        rc = ig_tx_begin(s->ctx, 1, &tx);
        if (rc == INTEG_OK)
            rc = log_put(&r, tx, running, INTEG_PUT_INSERT);
        rc = ig_tx_end(s->ctx, tx, 1, rc);
        json_object_put(running);
        if (rc)
            goto out;
    }
    const char *status = "success";
    int stalls = 0;
    int pulling = strcmp(r.direction, "push") != 0;
    /* The built-in engine's pages come from a second thread, one or two
     * ahead (a host's C adapter is called on the caller's thread only). */
    struct facts_cfg facts_cfg; /* read by the fetch thread until ig_prefetch_stop */
    facts_cfg_init(&r, &facts_cfg);
    if (pulling && !r.c->adapter)
        rc = ig_prefetch_start(&prefetch, s->ctx, s->tenant_id, integration_id, r.entity, r.state, r.since_ms,
                               PREFETCH_DEPTH, prep_page, &facts_cfg);
    /* The writer stage (see above): with the built-in engine and entity
     * store, when the run writes. Without its thread the run goes on
     * without it. Two batches: one with the writer, one being filled. */
    ig_worker *writer = NULL;
    ig_put_batch *batches[2] = {NULL, NULL};
    int spare = 0;
    struct inflight fl;
    memset(&fl, 0, sizeof fl);
    if (prefetch && !r.dry_run && !ig_entities_external(s->ctx)) {
        batches[0] = ig_put_batch_new();
        batches[1] = ig_put_batch_new();
        if (!batches[0] || !batches[1] || ig_worker_start(&writer) != INTEG_OK) {
            writer = NULL;
            ig_err_clear();
        }
        /* No link for this entity yet (an initial load): pages go to the
         * writer without reading links first. */
        json_object *q = json_object_new_object(), *rows = json_object_new_array();
        json_object_object_add(q, "integration_id", json_object_new_string(integration_id));
        json_object_object_add(q, "entity", json_object_new_string(r.entity));
        json_object_object_add(q, "limit", json_object_new_int(1));
        void *tx = NULL;
        if (writer && (rc = ig_tx_begin(s->ctx, 0, &tx)) == INTEG_OK)
            rc = ig_tx_end(s->ctx, tx, 0, ig_store_list(s->ctx, tx, INTEG_KIND_ENTITY_LINK, q, rows));
        r.assume_new = rc == INTEG_OK && writer && ig_json_len(rows) == 0;
        json_object_put(q);
        json_object_put(rows);
    }
    for (; pulling && rc == INTEG_OK;) {
        ig_page page;
        rc = prefetch ? ig_prefetch_next(prefetch, &page) : ig_rest_list_page(r.c, r.entity, r.state, r.since_ms, &page);
        if (rc)
            break;
        struct tally before = tally_of(&r);
        r.pages++;
        r.bytes += (int64_t)page.bytes;
        /* Planned and made into bytes while the page before is written,
         * unless it shares a record with it. */
        int batched = 0;
        int64_t created = 0;
        if (writer && page.prep && !ext_set_meets(&fl.ids, page.prep)) {
            struct pending *plan = NULL;
            size_t n_plan = 0;
            rc = plan_ahead(&r, &page, r.assume_new, &plan, &n_plan);
            if (rc == INTEG_OK) {
                rc = batch_plan(&r, plan, n_plan, page.next_state, batches[spare], &created);
                batched = rc == INTEG_OK;
            } else if (rc == PLAN_NOT_FRESH) {
                tally_restore(&r, &before);
                r.pages++;
                rc = INTEG_OK;
            }
            plan_free(plan, n_plan);
            free(plan);
        }
        /* The page with the writer lands first: its commit comes before
         * anything of this one. */
        int lrc = land(&r, &fl, writer, prefetch, &before, &batched);
        if (rc == INTEG_OK)
            rc = lrc;
        json_object *next = page.next_state;
        if (rc == INTEG_OK && batched) {
            rc = submit(&r, writer, &fl, &page, batches[spare], created, &before);
            if (rc == INTEG_OK) {
                next = fl.page.next_state;
                spare = !spare;
            }
        } else if (rc == INTEG_OK) {
            rc = apply_page(&r, page.records, page.next_state, page.prep);
            emit_conflicts(&r, rc);
        }
        /* A server that hands back the cursor it was given would loop forever. */
        if (rc == INTEG_OK && next && r.state && json_object_equal(next, r.state))
            stalls++;
        else
            stalls = 0;
        json_object_put(r.state);
        /* A copy: a prefetched page is freed on the fetch thread. */
        r.state = next ? (prefetch ? ig_json_copy(next) : json_object_get(next)) : NULL;
        if (next && !r.state && rc == INTEG_OK)
            rc = ig_err(INTEG_ENOMEM, "out of memory");
        if (prefetch)
            ig_prefetch_release(prefetch, &page);
        else
            ig_page_free(&page);
        if (rc)
            break;
        if (stalls >= MAX_PAGES_WITHOUT_PROGRESS) {
            rc = ig_err(INTEG_EREMOTE, "the remote returned the same next page %d times; stopping", stalls);
            break;
        }
        /* A page with the writer is reported when it lands. */
        if (!fl.active && progress(&r) != 0) {
            rc = canceled(&r);
            break;
        }
        if (!r.state)
            break;
    }
    /* The last page with the writer, whatever ended the loop. */
    if (fl.active) {
        int lrc = land(&r, &fl, writer, prefetch, NULL, NULL);
        if (rc == INTEG_OK)
            rc = lrc;
    }
    ig_worker_stop(writer);
    ig_put_batch_free(batches[0]);
    ig_put_batch_free(batches[1]);
    /* Before anything else writes: the fetch thread may hold a page or a
     * request in flight that this run no longer wants. */
    ig_prefetch_stop(prefetch);
    prefetch = NULL;
    if (rc == INTEG_OK && pulling)
        rc = detect_remote_deletes(&r);
    if (rc == INTEG_OK && pulling) {
        /* The watermark moves only when the run completed. */
        int64_t hwm = r.hwm_ms > r.prev_hwm_ms ? r.hwm_ms : r.prev_hwm_ms;
        /* ... and never past a record that failed mapping: the next
         * incremental run reads from just before it (the records it reads
         * again unchanged are skipped by their hash). */
        if (r.failed_min_ms >= 0 && hwm >= r.failed_min_ms)
            hwm = r.failed_min_ms - 1;
        if (!r.dry_run) {
            void *tx = NULL;
            int crc = ig_tx_begin(s->ctx, 1, &tx);
            if (crc == INTEG_OK)
                crc = run_lease_hold(&r, tx);
            if (crc == INTEG_OK)
                crc = checkpoint_put(&r, tx, NULL, hwm);
            rc = ig_tx_end(s->ctx, tx, 1, crc);
        }
    }
    if (rc == INTEG_OK && strcmp(r.direction, "pull") != 0) {
        /* Push after the pull: conflicts are settled by then. */
        rc = ig_sync_push(r.c, s->tenant_id, r.entity, r.edef, r.local_entity, r.mapping, r.field_policies, r.dry_run,
                          r.full, &r.push);
        for (size_t i = 0; i < ig_json_len(r.push.errors); i++)
            json_object_array_add(r.errors, json_object_get(json_object_array_get_idx(r.push.errors, i)));
        r.failed += r.push.failed;
    }
    if (rc == INTEG_OK)
        status = r.failed ? "partial" : "success";
    else
        status = rc == INTEG_ECANCELED ? "canceled" : "error";
    int frc = finish(&r, status, rc, &result);
    if (rc == INTEG_OK)
        rc = frc;
    if (rc == INTEG_OK || rc == INTEG_ECANCELED) {
        /* A canceled run still reports what it did. */
        int src = ig_json_to_string(result, out_json);
        if (src)
            rc = src;
    }
out:
    ig_prefetch_stop(prefetch);
    if (r.leased)
        lease_release(&r);
    json_object_put(result);
    json_object_put(ck);
    json_object_put(r.state);
    json_object_put(r.errors);
    json_object_put(r.conflict_events);
    json_object_put(r.dry_seen);
    json_object_put(r.field_policies);
    json_object_put(r.push.errors);
    ig_mapping_free(r.mapping);
    ig_conn_close(r.c);
    json_object_put(req);
    return rc;
}

INTEG_API int integ_sync_logs(integ_session *s, const char *integration_id, const char *filter_json,
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
    static const char *const fields[] = {"entity", "status", NULL};
    json_object *q = json_object_new_object(), *rows = json_object_new_array();
    rc = ig_json_filter_query(filter, fields, NULL, NULL, q);
    if (rc == INTEG_OK)
        rc = ig_integration_records(s->ctx, s->tenant_id, integration_id, INTEG_KIND_SYNC_LOG, q, rows);
    if (rc == INTEG_OK) {
        for (size_t i = 0; i < ig_json_len(rows); i++) {
            json_object *row = json_object_array_get_idx(rows, i);
            json_object_object_del(row, "id");
            json_object_object_del(row, "tenant_id");
            json_object_object_del(row, "started_at_ms");
        }
        rc = ig_json_to_string(rows, out_json);
    }
    json_object_put(rows);
    json_object_put(q);
    json_object_put(filter);
    return rc;
}

INTEG_API int integ_integration_test(integ_session *s, const char *id, char **out_json)
{
    int rc = ig_session_enter(s, out_json);
    if (rc)
        return rc;
    IG_CHECK_ARG(id && *id, "id");
    IG_CHECK_ARG(out_json, "out_json");
    ig_conn *c = NULL;
    if ((rc = ig_conn_open(s->ctx, s->tenant_id, id, &c)))
        return rc;
    long status = 0;
    int trc = ig_rest_test(c, &status);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "success", json_object_new_boolean(trc == INTEG_OK));
    json_object_object_add(o, "message", json_object_new_string(trc == INTEG_OK ? "connection works" : integ_errmsg()));
    json_object_object_add(o, "code", json_object_new_int(trc));
    if (status)
        json_object_object_add(o, "http_status", json_object_new_int((int)status));
    rc = ig_json_to_string(o, out_json);
    json_object_put(o);
    ig_conn_close(c);
    return rc;
}

/* ---- records from elsewhere (webhooks) ------------------------------------- */

int ig_sync_apply(ig_conn *c, const char *tenant_id, const char *user_id, const char *entity,
                  json_object *records, json_object *deleted_ids, const char *trigger, json_object **out_result)
{
    struct integ_session tmp = {c->ctx, (char *)tenant_id, (char *)user_id, NULL};
    struct run r;
    memset(&r, 0, sizeof r);
    r.s = &tmp;
    r.c = c;
    r.trigger = trigger;
    r.entity = entity;
    r.errors = json_object_new_array();
    r.conflict_events = json_object_new_array();
    r.strategy = ig_json_str(c->config, "conflict_strategy") ? ig_json_str(c->config, "conflict_strategy") : "last_write_wins";
    r.since_ms = -1;
    r.hwm_ms = -1;
    r.failed_min_ms = -1;
    r.started_ms = now_ms(&r);
    ig_ctx_new_id(c->ctx, r.log_id, ig_now_ms());
    int rc = INTEG_OK;
    r.edef = ig_conn_entity(c, entity);
    if (!r.edef)
        rc = INTEG_EINVAL;
    if (rc == INTEG_OK)
        rc = load_mapping(&r);
    if (rc == INTEG_OK && ig_json_len(records)) {
        rc = apply_page(&r, records, NULL, NULL);
        emit_conflicts(&r, rc);
    }
    /* Remote deletions soft-delete the linked local records. */
    if (rc == INTEG_OK && ig_json_len(deleted_ids))
        rc = soft_delete_ids(&r, deleted_ids);
    json_object *result = NULL;
    int frc = finish(&r, rc ? "error" : (r.failed ? "partial" : "success"), rc, &result);
    if (rc == INTEG_OK)
        rc = frc;
    if (out_result)
        *out_result = result;
    else
        json_object_put(result);
    json_object_put(r.errors);
    json_object_put(r.conflict_events);
    json_object_put(r.field_policies);
    ig_mapping_free(r.mapping);
    return rc;
}
