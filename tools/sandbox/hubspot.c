/* HubSpot CRM v3 objects: list (after cursor), get by id and search
 * (filterGroups on the last-modified date, offset cursor, 10,000 cap);
 * writes: create, update, archive and batch create/update/upsert/read/archive.
 * Reference: apis.md section 1. */
#include "sandbox.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEARCH_CAP 10000

/* Per type: the properties HubSpot returns when none are asked for, the ones
 * it always adds to an explicit list, and the last-modified property. */
static const struct {
    int ent;
    const char *defaults;
    const char *always;
    const char *modified;
} TYPES[] = {
    {E_HS_CONTACTS, "createdate,email,firstname,hs_object_id,lastmodifieddate,lastname",
     "createdate,hs_object_id,lastmodifieddate", "lastmodifieddate"},
    {E_HS_COMPANIES, "createdate,domain,hs_lastmodifieddate,hs_object_id,name",
     "createdate,hs_lastmodifieddate,hs_object_id", "hs_lastmodifieddate"},
    {E_HS_DEALS, "amount,closedate,createdate,dealname,dealstage,hs_lastmodifieddate,hs_object_id,pipeline",
     "createdate,hs_lastmodifieddate,hs_object_id", "hs_lastmodifieddate"},
};

static int type_of(int ent)
{
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].ent == ent)
            return (int)i;
    return 0;
}

static const char *const STAGES[] = {"appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                                     "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"};
static const char *const LIFECYCLE[] = {"subscriber", "lead", "marketingqualifiedlead",
                                        "salesqualifiedlead", "opportunity", "customer"};
static const char *const JOBS[] = {"CEO", "CFO", "Buyer", "Sales Manager", "Engineer",
                                   "Accountant", "Consultant", "Office Manager"};
static const char *const INDUSTRY[] = {"COMPUTER_SOFTWARE", "RETAIL", "LOGISTICS_AND_SUPPLY_CHAIN",
                                       "FOOD_BEVERAGES", "FINANCIAL_SERVICES", "MACHINERY"};
static const char *const CURRENCIES[] = {"NOK", "EUR", "USD", "SEK", "DKK", "GBP"};

static void em_tstr(struct emit *e, const char *name, ms_t t)
{
    em_time(e, name, t, TS_MS_Z);
}

/* HubSpot property values are strings, numbers included. */
static void properties(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index;
    sb_reset(tmp);
    ent_id_fmt(tmp, ent, i);
    char id[32];
    snprintf(id, sizeof id, "%s", tmp->p);
    const char *country;
    const char *city = gen_city(st, ent, i, &country);

    if (ent == E_HS_CONTACTS) {
        em_str(e, "city", city);
        em_str(e, "company", gen_company(st, ent, i, tmp));
        em_str(e, "country", country);
        em_tstr(e, "createdate", r->created);
        sb_reset(tmp);
        gen_email(tmp, st, ent, i);
        em_str(e, "email", tmp->p);
        em_str(e, "firstname", gen_first(st, ent, i));
        em_str(e, "hs_object_id", id);
        em_str(e, "jobtitle", gen_pick(st, ent, i, 30, JOBS, 8));
        em_tstr(e, "lastmodifieddate", r->updated);
        em_str(e, "lastname", gen_last(st, ent, i));
        em_str(e, "lifecyclestage", gen_pick(st, ent, i, 31, LIFECYCLE, 6));
        sb_reset(tmp);
        gen_phone(tmp, st, ent, i);
        em_str(e, "phone", tmp->p);
    } else if (ent == E_HS_COMPANIES) {
        em_str(e, "city", city);
        em_str(e, "country", country);
        em_tstr(e, "createdate", r->created);
        const char *name = gen_company(st, ent, i, tmp);
        char domain[96];
        size_t k = 0;
        for (const char *p = name; *p && *p != ' ' && k < 40; p++)
            domain[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        snprintf(domain + k, sizeof domain - k, "%lld.example.com", (long long)i);
        em_str(e, "domain", domain);
        em_tstr(e, "hs_lastmodifieddate", r->updated);
        em_str(e, "hs_object_id", id);
        em_str(e, "industry", gen_pick(st, ent, i, 32, INDUSTRY, 6));
        em_str(e, "name", gen_company(st, ent, i, tmp));
        if (em_key(e, "numberofemployees"))
            sb_printf(e->b, "\"%u\"", (unsigned)(rec_hash(st, ent, i, 33) % 5000 + 1));
        sb_reset(tmp);
        gen_phone(tmp, st, ent, i);
        em_str(e, "phone", tmp->p);
    } else {
        em_money(e, "amount", gen_amount(st, ent, i), 1);
        em_tstr(e, "closedate", r->created + 120LL * 86400 * 1000);
        em_tstr(e, "createdate", r->created);
        em_str(e, "deal_currency_code", gen_pick(st, ent, i, 34, CURRENCIES, 6));
        if (em_key(e, "dealname")) {
            char name[160];
            snprintf(name, sizeof name, "%s - deal %lld", gen_company(st, ent, i, tmp), (long long)i);
            sb_jstr(e->b, name);
        }
        em_str(e, "dealstage", gen_pick(st, ent, i, 35, STAGES, 7));
        em_tstr(e, "hs_lastmodifieddate", r->updated);
        em_str(e, "hs_object_id", id);
        em_str(e, "pipeline", "default");
    }
    em_rest(e);
}

struct props {
    struct sel want, always;
    int explicit_list;
};

static void props_init(struct props *p, int ent, const char *list)
{
    int t = type_of(ent);
    if (list && *list) {
        p->explicit_list = 1;
        sel_parse(&p->want, list);
        sel_parse(&p->always, TYPES[t].always);
    } else {
        p->explicit_list = 0;
        sel_parse(&p->want, TYPES[t].defaults);
        memset(&p->always, 0, sizeof p->always);
    }
}

static void props_free(struct props *p)
{
    sel_free(&p->want);
    sel_free(&p->always);
}

static void object(struct req *r, const struct rec *rec, const struct props *p, sbuf *tmp)
{
    sbuf *b = &r->out;
    sb_puts(b, "{\"id\":\"");
    ent_id_fmt(b, rec->ent, rec->index);
    sb_puts(b, "\",\"properties\":{");
    struct emit e;
    em_begin(&e, b, &p->want, rec->ov);
    e.keep = "createdate,hs_object_id,lastmodifieddate,hs_lastmodifieddate";
    if (p->explicit_list)
        e.extra = &p->always;
    properties(&SB.store, rec, &e, tmp);
    sb_puts(b, "},\"createdAt\":\"");
    time_fmt(b, rec->created, TS_MS_Z);
    sb_puts(b, "\",\"updatedAt\":\"");
    time_fmt(b, rec->updated, TS_MS_Z);
    sb_puts(b, "\",\"archived\":");
    if (rec->archived) {
        sb_puts(b, "true,\"archivedAt\":\"");
        time_fmt(b, rec->updated, TS_MS_Z);
        sb_puts(b, "\"}");
    } else {
        sb_puts(b, "false}");
    }
}

/* ---- errors and limits ---------------------------------------------------- */

static void hs_error(struct req *r, enum err_kind kind, unsigned status, const char *msg)
{
    sbuf *b = &r->out;
    sb_reset(b);
    r->status = status;
    sbuf cid;
    sb_init(&cid);
    correlation_id(&cid, r->seq);
    switch (kind) {
    case ERR_UNAUTHORIZED:
        sb_printf(b, "{\"status\":\"error\",\"message\":\"Authentication credentials not found. This API "
                     "supports OAuth 2.0 authentication and you can find more details at "
                     "https://developers.hubspot.com/docs/methods/auth/oauth-overview\","
                     "\"correlationId\":\"%s\",\"category\":\"INVALID_AUTHENTICATION\"}", cid.p);
        break;
    case ERR_RATE_LIMIT: {
        /* The search API has its own per-second policy; everything else hits
         * the ten-second rolling one.  The official client keys its retry
         * delays off exactly these names and messages. */
        int search = strstr(r->path, "/search") != NULL;
        req_header(r, "Retry-After", "%lld", (long long)r->retry_after);
        sb_printf(b, "{\"status\":\"error\",\"message\":\"You have reached your %s limit.\","
                     "\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"%s\",\"policyName\":\"%s\"}",
                  search ? "secondly" : "ten_secondly_rolling", cid.p,
                  search ? "SECONDLY" : "TEN_SECONDLY_ROLLING");
        break;
    }
    case ERR_NOT_FOUND:
        sb_printf(b, "{\"status\":\"error\",\"message\":\"%s\",\"correlationId\":\"%s\","
                     "\"category\":\"OBJECT_NOT_FOUND\"}", msg ? msg : "resource not found", cid.p);
        break;
    case ERR_BAD_REQUEST:
        sb_puts(b, "{\"status\":\"error\",\"message\":");
        sb_jstr(b, msg ? msg : "Invalid input");
        sb_printf(b, ",\"correlationId\":\"%s\",\"category\":\"VALIDATION_ERROR\"}", cid.p);
        break;
    default:
        sb_printf(b, "{\"status\":\"error\",\"message\":\"%s\",\"correlationId\":\"%s\"}",
                  status == 503 ? "Service Unavailable" : "internal error", cid.p);
        break;
    }
    sb_free(&cid);
}

static int hs_limits(struct req *r, struct sys_limits *l, ms_t now, int64_t *retry_s)
{
    /* Free/Starter private app: 100 per 10 s, 10 per second, 250,000 a day. */
    int64_t ten = window_hit(&l->w1, 10000, now);
    int64_t one = window_hit(&l->w2, 1000, now);
    int64_t day = window_hit(&l->day, 86400000, now);
    req_header(r, "X-HubSpot-RateLimit-Daily", "250000");
    req_header(r, "X-HubSpot-RateLimit-Daily-Remaining", "%lld", (long long)(day > 250000 ? 0 : 250000 - day));
    req_header(r, "X-HubSpot-RateLimit-Interval-Milliseconds", "10000");
    req_header(r, "X-HubSpot-RateLimit-Max", "100");
    req_header(r, "X-HubSpot-RateLimit-Remaining", "%lld", (long long)(ten > 100 ? 0 : 100 - ten));
    req_header(r, "X-HubSpot-RateLimit-Secondly", "10");
    req_header(r, "X-HubSpot-RateLimit-Secondly-Remaining", "%lld", (long long)(one > 10 ? 0 : 10 - one));
    if (one > 10) {
        *retry_s = 1;
        return 1;
    }
    if (ten > 100) {
        *retry_s = (l->w1.start + 10000 - now + 999) / 1000;
        return 1;
    }
    return 0;
}

static int hs_auth(struct req *r)
{
    /* The OAuth endpoints authenticate the client themselves (oauth.c). */
    if (hs_oauth_path(r->path))
        return 1;
    return bearer_ok(r);
}

/* ---- list and get --------------------------------------------------------- */

struct link_ctx {
    sbuf *b;
    int first;
};

static void link_arg(void *cls, const char *k, const char *v)
{
    struct link_ctx *c = cls;
    if (strcmp(k, "after") == 0)
        return;
    sb_putc(c->b, c->first ? '?' : '&');
    c->first = 0;
    sb_urlenc(c->b, k);
    if (v) {
        sb_putc(c->b, '=');
        sb_urlenc(c->b, v);
    }
}

static void list(struct req *r, int ent)
{
    int64_t limit;
    if (parse_limit(req_arg(r, "limit"), 10, 100, &limit))
        return hs_error(r, ERR_BAD_REQUEST, 400, "limit must be a positive integer");
    const char *after = req_arg(r, "after");
    const char *archived = req_arg(r, "archived");
    struct query q;
    query_init(&q, ent);
    q.archived = archived && strcasecmp(archived, "true") == 0;
    if (after && *after) {
        int64_t idx;
        if (ent_id_parse(ent, after, &idx))
            return hs_error(r, ERR_BAD_REQUEST, 400, "Invalid 'after' paging cursor");
        q.has_after = 1;
        q.after_i = idx - 1;
    }
    struct props p;
    props_init(&p, ent, req_arg(r, "properties"));
    sbuf tmp;
    sb_init(&tmp);
    struct iter it;
    iter_init(&it, &SB.store, &q);
    struct rec rec;
    sb_puts(&r->out, "{\"results\":[");
    int64_t n = 0;
    while (n < limit && iter_next(&it, &rec)) {
        if (n++)
            sb_putc(&r->out, ',');
        object(r, &rec, &p, &tmp);
    }
    sb_putc(&r->out, ']');
    if (n == limit && iter_next(&it, &rec)) {
        sb_reset(&tmp);
        ent_id_fmt(&tmp, ent, rec.index);
        sb_printf(&r->out, ",\"paging\":{\"next\":{\"after\":\"%s\",\"link\":\"%s/hubspot/crm/v3/objects/%s",
                  tmp.p, r->base, ENTITIES[ent].name);
        struct link_ctx lc = {&r->out, 1};
        req_args(r, link_arg, &lc);
        sb_printf(&r->out, "%cafter=%s\"}}", lc.first ? '?' : '&', tmp.p);
    }
    sb_putc(&r->out, '}');
    sb_free(&tmp);
    props_free(&p);
    r->status = 200;
    r->is_page = 1;
}

static void get_one(struct req *r, int ent, const char *id)
{
    if (req_arg(r, "idProperty"))
        return hs_error(r, ERR_BAD_REQUEST, 400, "the sandbox looks records up by id only");
    int64_t idx;
    struct rec rec;
    const char *archived = req_arg(r, "archived");
    int want_archived = archived && strcasecmp(archived, "true") == 0;
    if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) ||
        rec.archived != want_archived)
        return hs_error(r, ERR_NOT_FOUND, 404, "resource not found");
    struct props p;
    props_init(&p, ent, req_arg(r, "properties"));
    sbuf tmp;
    sb_init(&tmp);
    object(r, &rec, &p, &tmp);
    sb_free(&tmp);
    props_free(&p);
    r->status = 200;
    r->is_page = 1;
}

/* ---- search ---------------------------------------------------------------- */

static int is_modified_prop(const char *name)
{
    return name && (strcmp(name, "lastmodifieddate") == 0 || strcmp(name, "hs_lastmodifieddate") == 0);
}

static int filter_value(json_object *f, const char *key, ms_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(f, key, &v))
        return -1;
    return time_parse(json_object_get_string(v), out);
}

/* One filterGroup on the date property narrows [lo, hi]. */
static const char *apply_filters(json_object *groups, struct query *q)
{
    if (!groups)
        return NULL;
    if (!json_object_is_type(groups, json_type_array))
        return "filterGroups must be an array";
    size_t ng = json_object_array_length(groups);
    if (ng > 5)
        return "Too many filter groups (max 5)";
    if (ng > 1)
        return "the sandbox supports a single filterGroup";
    if (ng == 0)
        return NULL;
    json_object *filters;
    if (!json_object_object_get_ex(json_object_array_get_idx(groups, 0), "filters", &filters) ||
        !json_object_is_type(filters, json_type_array))
        return "filterGroups[0].filters must be an array";
    if (json_object_array_length(filters) > 10)
        return "Too many filters in group (max 10)";
    for (size_t i = 0; i < json_object_array_length(filters); i++) {
        json_object *f = json_object_array_get_idx(filters, i), *v;
        const char *prop = json_object_object_get_ex(f, "propertyName", &v) ? json_object_get_string(v) : NULL;
        const char *op = json_object_object_get_ex(f, "operator", &v) ? json_object_get_string(v) : NULL;
        if (!is_modified_prop(prop))
            return "the sandbox filters on lastmodifieddate / hs_lastmodifieddate only";
        if (!op)
            return "filter without operator";
        ms_t t, t2;
        if (strcmp(op, "HAS_PROPERTY") == 0)
            continue;
        if (strcmp(op, "NOT_HAS_PROPERTY") == 0) {
            q->lo = 1;
            q->hi = 0;
            continue;
        }
        if (filter_value(f, "value", &t))
            return "filter value must be a date-time (ISO 8601 or epoch milliseconds)";
        if (strcmp(op, "GTE") == 0) { if (t > q->lo) q->lo = t; }
        else if (strcmp(op, "GT") == 0) { if (t + 1 > q->lo) q->lo = t + 1; }
        else if (strcmp(op, "LTE") == 0) { if (t < q->hi) q->hi = t; }
        else if (strcmp(op, "LT") == 0) { if (t - 1 < q->hi) q->hi = t - 1; }
        else if (strcmp(op, "EQ") == 0) {
            if (t > q->lo) q->lo = t;
            if (t < q->hi) q->hi = t;
        } else if (strcmp(op, "BETWEEN") == 0) {
            if (filter_value(f, "highValue", &t2))
                return "BETWEEN needs highValue";
            if (t > q->lo) q->lo = t;
            if (t2 < q->hi) q->hi = t2;
        } else {
            return "unsupported operator for the sandbox";
        }
    }
    return NULL;
}

static const char *apply_sorts(json_object *sorts, struct query *q)
{
    if (!sorts)
        return NULL;
    if (!json_object_is_type(sorts, json_type_array))
        return "sorts must be an array";
    if (json_object_array_length(sorts) > 1)
        return "the sandbox supports one sort";
    if (json_object_array_length(sorts) == 0)
        return NULL;
    json_object *s = json_object_array_get_idx(sorts, 0), *v;
    const char *prop, *dir = "ASCENDING";
    if (json_object_is_type(s, json_type_string)) {
        prop = json_object_get_string(s);
        if (prop[0] == '-') {
            prop++;
            dir = "DESCENDING";
        }
    } else {
        prop = json_object_object_get_ex(s, "propertyName", &v) ? json_object_get_string(v) : NULL;
        if (json_object_object_get_ex(s, "direction", &v))
            dir = json_object_get_string(v);
    }
    if (is_modified_prop(prop))
        q->order = ORD_TIME;
    else if (prop && (strcmp(prop, "hs_object_id") == 0 || strcmp(prop, "createdate") == 0))
        q->order = ORD_INDEX;
    else
        return "the sandbox sorts on the last-modified date, createdate or hs_object_id only";
    if (strcmp(dir, "DESCENDING") == 0)
        q->desc = 1;
    else if (strcmp(dir, "ASCENDING") != 0)
        return "direction must be ASCENDING or DESCENDING";
    return NULL;
}

static void search(struct req *r, int ent)
{
    json_object *body = json_tokener_parse(r->body);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        return hs_error(r, ERR_BAD_REQUEST, 400, "Invalid input JSON on line 1");
    }
    json_object *v;
    struct query q;
    query_init(&q, ent);
    const char *err = NULL;
    int64_t limit = 10, after = 0;
    if (json_object_object_get_ex(body, "query", &v) && json_object_get_string(v)[0])
        err = "the sandbox does not support full-text 'query'";
    if (!err)
        err = apply_filters(json_object_object_get_ex(body, "filterGroups", &v) ? v : NULL, &q);
    if (!err)
        err = apply_sorts(json_object_object_get_ex(body, "sorts", &v) ? v : NULL, &q);
    if (!err && json_object_object_get_ex(body, "limit", &v) &&
        parse_limit(json_object_get_string(v), 10, 200, &limit))
        err = "limit must be a positive integer";
    if (!err && json_object_object_get_ex(body, "after", &v) && !json_object_is_type(v, json_type_null)) {
        const char *a = json_object_get_string(v);
        char *end;
        after = strtoll(a, &end, 10);
        if (!*a || *end || after < 0)
            err = "after must be a non-negative integer";
    }
    if (!err && after >= SEARCH_CAP)
        err = "Search results are limited to 10000 per query: narrow the filter "
              "(for instance re-anchor on the last-modified date)";
    if (err) {
        json_object_put(body);
        return hs_error(r, ERR_BAD_REQUEST, 400, err);
    }
    sbuf list;
    sb_init(&list);
    struct props p;
    if (json_object_object_get_ex(body, "properties", &v) && json_object_is_type(v, json_type_array) &&
        json_object_array_length(v)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            if (i)
                sb_putc(&list, ',');
            sb_puts(&list, json_object_get_string(json_object_array_get_idx(v, i)));
        }
        props_init(&p, ent, list.p);
    } else {
        props_init(&p, ent, NULL);
    }
    json_object_put(body);

    int64_t total = query_count(&SB.store, &q);
    struct iter it;
    iter_init(&it, &SB.store, &q);
    struct rec rec;
    /* Offset paging, as HubSpot's search does: hence its 10,000 cap. */
    int64_t skipped = 0;
    while (skipped < after && iter_next(&it, &rec))
        skipped++;
    sb_printf(&r->out, "{\"total\":%lld,\"results\":[", (long long)total);
    int64_t n = 0;
    while (n < limit && after + n < SEARCH_CAP && iter_next(&it, &rec)) {
        if (n++)
            sb_putc(&r->out, ',');
        object(r, &rec, &p, &list);
    }
    sb_putc(&r->out, ']');
    if (after + n < total)
        sb_printf(&r->out, ",\"paging\":{\"next\":{\"after\":\"%lld\"}}", (long long)(after + n));
    sb_putc(&r->out, '}');
    sb_free(&list);
    props_free(&p);
    r->status = 200;
    r->is_page = 1;
}


/* ---- writes ------------------------------------------------------------------ */

#define BATCH_MAX 100
/* Server-side properties a client cannot set. */
#define READ_ONLY "hs_object_id,createdate,lastmodifieddate,hs_lastmodifieddate"

static json_object *parse_body(struct req *r)
{
    json_object *body = json_tokener_parse(r->body);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        hs_error(r, ERR_BAD_REQUEST, 400, "Invalid input JSON on line 1");
        return NULL;
    }
    return body;
}

/* The properties object of an input, or NULL (and a 400) when malformed. */
static json_object *input_props(struct req *r, json_object *in)
{
    json_object *p;
    if (!json_object_object_get_ex(in, "properties", &p))
        return json_object_new_object(); /* leaks nothing: callers put it */
    if (!json_object_is_type(p, json_type_object)) {
        hs_error(r, ERR_BAD_REQUEST, 400, "properties must be an object");
        return NULL;
    }
    return json_object_get(p);
}

/* Properties echoed back: the defaults plus what was written. */
static void write_props(struct props *p, int ent, json_object *props)
{
    props_init(p, ent, NULL);
    sbuf names;
    sb_init(&names);
    json_object_object_foreach(props, k, v) {
        (void)v;
        if (names.len)
            sb_putc(&names, ',');
        sb_puts(&names, k);
    }
    sel_parse(&p->always, names.p ? names.p : "");
    p->explicit_list = 1;
    sb_free(&names);
}

static int apply(int ent, struct override *ov, json_object *props)
{
    if (ov_set_json(ov, props, READ_ONLY))
        return -1;
    ov_written(&SB.store, ent, ov);
    return 0;
}

/* Looks a record up by id, or by a unique property for upserts: generated
 * e-mails end in ".<index>@example.com", so no scan of a million rows. */
static int find(int ent, const char *id, const char *id_prop, int64_t *index)
{
    struct rec rec;
    if (!id_prop || strcmp(id_prop, "hs_object_id") == 0)
        return ent_id_parse(ent, id, index) == 0 && rec_get(&SB.store, ent, *index, &rec) &&
                       !rec.archived ? 0 : -1;
    if (strcmp(id_prop, "email") != 0 || ent != E_HS_CONTACTS)
        return -2;
    sbuf want, tmp;
    sb_init(&want);
    sb_init(&tmp);
    sb_jstr(&want, id);
    int rc = -1;
    const struct entity_state *es = &SB.store.e[ent];
    for (size_t i = 0; i < es->n && rc; i++) {
        const char *v = ov_field(es->by_index[i], "email");
        if (v && strcmp(v, want.p) == 0 && !es->by_index[i]->archived) {
            *index = es->by_index[i]->index;
            rc = 0;
        }
    }
    const char *at = strstr(id, "@example.com");
    if (rc && at) {
        const char *dot = at;
        while (dot > id && dot[-1] >= '0' && dot[-1] <= '9')
            dot--;
        int64_t idx = strtoll(dot, NULL, 10);
        if (dot < at && idx < es->count && !ov_field(store_find(&SB.store, ent, idx), "email") &&
            rec_get(&SB.store, ent, idx, &rec) && !rec.archived) {
            gen_email(&tmp, &SB.store, ent, idx);
            if (strcmp(tmp.p, id) == 0) {
                *index = idx;
                rc = 0;
            }
        }
    }
    sb_free(&want);
    sb_free(&tmp);
    return rc;
}

static void write_one(struct req *r, int ent, const char *id)
{
    json_object *body = parse_body(r);
    if (!body)
        return;
    json_object *props = input_props(r, body);
    json_object_put(body);
    if (!props)
        return;
    int64_t idx;
    struct override *ov;
    if (id) {
        if (find(ent, id, req_arg(r, "idProperty"), &idx)) {
            json_object_put(props);
            return hs_error(r, ERR_NOT_FOUND, 404, "resource not found");
        }
        ov = store_touch(&SB.store, ent, idx);
    } else {
        ov = store_create(&SB.store, ent);
    }
    if (!ov || apply(ent, ov, props)) {
        json_object_put(props);
        return hs_error(r, ERR_BAD_REQUEST, 400, "too many properties");
    }
    struct rec rec;
    rec_get(&SB.store, ent, ov->index, &rec);
    struct props p;
    write_props(&p, ent, props);
    sbuf tmp;
    sb_init(&tmp);
    object(r, &rec, &p, &tmp);
    sb_free(&tmp);
    props_free(&p);
    json_object_put(props);
    r->status = id ? 200 : 201;
}

static void archive_one(struct req *r, int ent, const char *id)
{
    int64_t idx;
    if (find(ent, id, NULL, &idx) == 0) {
        struct override *ov = store_touch(&SB.store, ent, idx);
        if (ov) {
            ov->archived = 1;
            ov_written(&SB.store, ent, ov);
        }
    }
    /* HubSpot answers 204 for an id it does not know, too. */
    r->status = 204;
}

static void batch(struct req *r, int ent, const char *op)
{
    int create = strcmp(op, "create") == 0, update = strcmp(op, "update") == 0;
    int upsert = strcmp(op, "upsert") == 0, read = strcmp(op, "read") == 0;
    int archive = strcmp(op, "archive") == 0;
    if (!create && !update && !upsert && !read && !archive)
        return hs_error(r, ERR_NOT_FOUND, 404, "unknown batch operation");
    json_object *body = parse_body(r), *inputs;
    if (!body)
        return;
    if (!json_object_object_get_ex(body, "inputs", &inputs) || !json_object_is_type(inputs, json_type_array)) {
        json_object_put(body);
        return hs_error(r, ERR_BAD_REQUEST, 400, "inputs must be an array");
    }
    size_t n = json_object_array_length(inputs);
    if (n > BATCH_MAX) {
        json_object_put(body);
        return hs_error(r, ERR_BAD_REQUEST, 400, "Batch input cannot exceed 100 inputs.");
    }
    const char *id_prop = NULL;
    json_object *v;
    if (json_object_object_get_ex(body, "idProperty", &v))
        id_prop = json_object_get_string(v);

    /* Validate everything first: a batch applies all or reports errors. */
    sbuf started, missing;
    sb_init(&started);
    sb_init(&missing);
    time_fmt(&started, now_ms(), TS_MS_Z);
    int64_t idx[BATCH_MAX];
    int isnew[BATCH_MAX] = {0}, ok[BATCH_MAX] = {0};
    const char *ips[BATCH_MAX];
    size_t nmissing = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *in = json_object_array_get_idx(inputs, i), *jid, *jp;
        if (!json_object_is_type(in, json_type_object) ||
            (json_object_object_get_ex(in, "properties", &jp) && !json_object_is_type(jp, json_type_object))) {
            json_object_put(body);
            sb_free(&started);
            sb_free(&missing);
            return hs_error(r, ERR_BAD_REQUEST, 400, "each input must be an object with object properties");
        }
        const char *ip = id_prop;
        if (json_object_object_get_ex(in, "idProperty", &v))
            ip = json_object_get_string(v);
        ips[i] = ip;
        if (create) {
            ok[i] = 1;
            continue;
        }
        const char *id = json_object_object_get_ex(in, "id", &jid) ? json_object_get_string(jid) : "";
        int rc = find(ent, id, ip, &idx[i]);
        if (rc == -2) {
            json_object_put(body);
            sb_free(&started);
            sb_free(&missing);
            return hs_error(r, ERR_BAD_REQUEST, 400, "the sandbox looks records up by id or contact email only");
        }
        if (rc == 0) {
            ok[i] = 1;
        } else if (upsert) {
            ok[i] = isnew[i] = 1;
        } else {
            if (nmissing++)
                sb_putc(&missing, ',');
            sb_jstr(&missing, id);
        }
    }
    if (archive) {
        for (size_t i = 0; i < n; i++) {
            if (!ok[i])
                continue;
            struct override *ov = store_touch(&SB.store, ent, idx[i]);
            if (ov) {
                ov->archived = 1;
                ov_written(&SB.store, ent, ov);
            }
        }
        json_object_put(body);
        sb_free(&started);
        sb_free(&missing);
        r->status = 204;
        return;
    }
    struct props p;
    json_object *rprops = NULL;
    if (read && json_object_object_get_ex(body, "properties", &rprops) &&
        json_object_is_type(rprops, json_type_array)) {
        sbuf list;
        sb_init(&list);
        for (size_t i = 0; i < json_object_array_length(rprops); i++) {
            if (i)
                sb_putc(&list, ',');
            sb_puts(&list, json_object_get_string(json_object_array_get_idx(rprops, i)));
        }
        props_init(&p, ent, list.p);
        sb_free(&list);
    } else {
        props_init(&p, ent, NULL);
    }
    sbuf tmp;
    sb_init(&tmp);
    sb_puts(&r->out, "{\"status\":\"COMPLETE\",\"results\":[");
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        json_object *in = json_object_array_get_idx(inputs, i);
        struct override *ov = NULL;
        if (!read) {
            json_object *props = input_props(r, in); /* validated above */
            ov = create || isnew[i] ? store_create(&SB.store, ent) : store_touch(&SB.store, ent, idx[i]);
            if (ov && isnew[i] && ips[i] && strcmp(ips[i], "email") == 0) {
                json_object *jid;
                if (json_object_object_get_ex(in, "id", &jid))
                    ov_set_field(ov, "email", json_object_to_json_string_ext(jid, JSON_FLAGS));
            }
            if (ov)
                apply(ent, ov, props);
            json_object_put(props);
            if (!ov)
                continue;
            idx[i] = ov->index;
            /* Echo what was written, as HubSpot's batch responses do. */
            json_object *wp;
            if (json_object_object_get_ex(in, "properties", &wp) && json_object_is_type(wp, json_type_object)) {
                props_free(&p);
                write_props(&p, ent, wp);
            }
        }
        struct rec rec;
        if (!rec_get(&SB.store, ent, idx[i], &rec))
            continue;
        if (written++)
            sb_putc(&r->out, ',');
        object(r, &rec, &p, &tmp);
        if (upsert) {
            r->out.len--; /* reopen the object for "new" */
            sb_printf(&r->out, ",\"new\":%s}", isnew[i] ? "true" : "false");
        }
    }
    sb_puts(&r->out, "],\"startedAt\":\"");
    sb_puts(&r->out, started.p);
    sb_puts(&r->out, "\",\"completedAt\":\"");
    time_fmt(&r->out, now_ms(), TS_MS_Z);
    sb_putc(&r->out, '"');
    if (nmissing) {
        sb_printf(&r->out, ",\"numErrors\":1,\"errors\":[{\"status\":\"error\",\"category\":\"OBJECT_NOT_FOUND\","
                           "\"message\":\"Could not get some %s objects, they may be deleted or not exist.\","
                           "\"context\":{\"ids\":[%s]}}]", ENTITIES[ent].name, missing.p);
    }
    sb_putc(&r->out, '}');
    r->status = nmissing ? 207 : create ? 201 : 200;
    r->is_page = read;
    sb_free(&tmp);
    sb_free(&started);
    sb_free(&missing);
    props_free(&p);
    json_object_put(body);
}

static void hs_handle(struct req *r)
{
    static const char pre[] = "/crm/v3/objects/";
    if (hs_oauth_path(r->path))
        return hs_oauth(r);
    if (strncmp(r->path, pre, sizeof pre - 1) != 0)
        return hs_error(r, ERR_NOT_FOUND, 404, "unknown path");
    const char *type = r->path + sizeof pre - 1;
    const char *slash = strchr(type, '/');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(slash ? (size_t)(slash - type) : strlen(type)), type);
    int ent = ent_by_name(SYS_HUBSPOT, name);
    if (ent < 0) {
        sbuf m;
        sb_init(&m);
        sb_printf(&m, "Unable to infer object type from: %s", name);
        hs_error(r, ERR_BAD_REQUEST, 400, m.p);
        sb_free(&m);
        return;
    }
    const char *m = r->method;
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
    if (!slash || !slash[1]) {
        if (get)
            return list(r, ent);
        if (post)
            return write_one(r, ent, NULL);
    } else if (strcmp(slash, "/search") == 0) {
        if (post)
            return search(r, ent);
    } else if (strncmp(slash, "/batch/", 7) == 0 && !strchr(slash + 7, '/')) {
        if (post)
            return batch(r, ent, slash + 7);
    } else if (!strchr(slash + 1, '/')) {
        if (get)
            return get_one(r, ent, slash + 1);
        if (strcmp(m, "PATCH") == 0)
            return write_one(r, ent, slash + 1);
        if (strcmp(m, "DELETE") == 0)
            return archive_one(r, ent, slash + 1);
    } else {
        return hs_error(r, ERR_NOT_FOUND, 404, "unknown path");
    }
    hs_error(r, ERR_BAD_REQUEST, 405, "method not allowed");
}

const struct system_ops HUBSPOT_OPS = {
    .prefix = "/hubspot",
    .auth_ok = hs_auth,
    .error = hs_error,
    .limits = hs_limits,
    .handle = hs_handle,
};
