/* Pipedrive API v2: persons, organizations and deals with cursor pagination
 * (additional_data.next_cursor), sort_by id/update_time/add_time and the
 * updated_since/updated_until filters; POST/PATCH/DELETE.
 * Reference: apis.md section 3. */
#include "sandbox.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERROR_INFO "Please check developers.pipedrive.com for more information about Pipedrive API."

static void pd_error(struct req *r, enum err_kind kind, unsigned status, const char *msg)
{
    sbuf *b = &r->out;
    sb_reset(b);
    r->status = status;
    const char *text;
    switch (kind) {
    case ERR_UNAUTHORIZED: text = "unauthorized access"; break;
    case ERR_RATE_LIMIT:
        req_header(r, "Retry-After", "%lld", (long long)r->retry_after);
        text = "Request over limit";
        break;
    case ERR_NOT_FOUND: text = msg ? msg : "Not found"; break;
    case ERR_BAD_REQUEST:
        sb_puts(b, "{\"success\":false,\"error\":");
        sb_jstr(b, msg ? msg : "Bad request");
        sb_puts(b, ",\"code\":\"ERR_SCHEMA_VALIDATION_FAILED\",\"error_info\":\"" ERROR_INFO
                   "\",\"data\":null,\"additional_data\":null}");
        return;
    default: text = status == 503 ? "Service unavailable" : "Internal server error"; break;
    }
    sb_puts(b, "{\"success\":false,\"error\":");
    sb_jstr(b, text);
    sb_printf(b, ",\"errorCode\":%u,\"error_info\":\"" ERROR_INFO "\"}", status);
}

static int is_bearer(struct req *r)
{
    const char *a = req_hdr(r, "Authorization");
    return a && strncasecmp(a, "Bearer ", 7) == 0;
}

static int pd_limits(struct req *r, struct sys_limits *l, ms_t now, int64_t *retry_s)
{
    /* Burst limit per 2-second window: Essential plan, api_token 20 and
     * OAuth 80. */
    int64_t limit = is_bearer(r) ? 80 : 20;
    int64_t n = window_hit(&l->w1, 2000, now);
    int64_t reset = (l->w1.start + 2000 - now + 999) / 1000;
    req_header(r, "x-ratelimit-limit", "%lld", (long long)limit);
    req_header(r, "x-ratelimit-remaining", "%lld", (long long)(n > limit ? 0 : limit - n));
    req_header(r, "x-ratelimit-reset", "%lld", (long long)(reset < 1 ? 1 : reset));
    *retry_s = reset < 1 ? 1 : reset;
    return n > limit;
}

static int pd_auth(struct req *r)
{
    const char *t = req_hdr(r, "x-api-token");
    if (t)
        return token_ok(t, strlen(t));
    t = req_arg(r, "api_token");
    if (t)
        return token_ok(t, strlen(t));
    r->bearer = 1;
    return bearer_ok(r);
}

/* ---- records ---------------------------------------------------------------- */

static const char *const DEAL_STATUS[] = {"open", "open", "open", "won", "lost"};

static void person(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index;
    uint64_t h = rec_hash(st, ent, i, 50);
    char name[128];
    snprintf(name, sizeof name, "%s %s", gen_first(st, ent, i), gen_last(st, ent, i));
    em_int(e, "id", ENTITIES[ent].id_base + i);
    em_str(e, "name", name);
    em_str(e, "first_name", gen_first(st, ent, i));
    em_str(e, "last_name", gen_last(st, ent, i));
    em_int(e, "owner_id", 12000 + (int64_t)(h % 5));
    int64_t norg = st->e[E_PD_ORGANIZATIONS].count;
    if (norg && h % 4)
        em_int(e, "org_id", ENTITIES[E_PD_ORGANIZATIONS].id_base + (int64_t)(h / 4 % (uint64_t)norg));
    else
        em_null(e, "org_id");
    em_time(e, "add_time", r->created, TS_Z);
    em_time(e, "update_time", r->updated, TS_Z);
    if (em_key(e, "emails")) {
        sb_reset(tmp);
        gen_email(tmp, st, ent, i);
        sb_puts(e->b, "[{\"value\":");
        sb_jstr(e->b, tmp->p);
        sb_puts(e->b, ",\"primary\":true,\"label\":\"work\"}]");
    }
    if (em_key(e, "phones")) {
        sb_reset(tmp);
        gen_phone(tmp, st, ent, i);
        sb_puts(e->b, "[{\"value\":");
        sb_jstr(e->b, tmp->p);
        sb_puts(e->b, ",\"primary\":true,\"label\":\"mobile\"}]");
    }
    em_bool(e, "is_deleted", r->archived);
    em_int(e, "visible_to", 3);
    if (em_key(e, "label_ids"))
        sb_puts(e->b, "[]");
    em_null(e, "picture_id");
    if (em_key(e, "custom_fields"))
        sb_puts(e->b, "{}");
    em_rest(e);
}

static void organization(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index;
    uint64_t h = rec_hash(st, ent, i, 51);
    const char *country;
    const char *city = gen_city(st, ent, i, &country);
    em_int(e, "id", ENTITIES[ent].id_base + i);
    em_str(e, "name", gen_company(st, ent, i, tmp));
    em_int(e, "owner_id", 12000 + (int64_t)(h % 5));
    em_time(e, "add_time", r->created, TS_Z);
    em_time(e, "update_time", r->updated, TS_Z);
    em_bool(e, "is_deleted", r->archived);
    em_int(e, "visible_to", 3);
    if (em_key(e, "label_ids"))
        sb_puts(e->b, "[]");
    if (em_key(e, "address")) {
        unsigned num = (unsigned)(h % 120 + 1), zip = (unsigned)(h / 120 % 9000 + 100);
        char full[200];
        snprintf(full, sizeof full, "Storgata %u, %04u %s, %s", num, zip, city, country);
        sb_puts(e->b, "{\"value\":");
        sb_jstr(e->b, full);
        sb_printf(e->b, ",\"street_number\":\"%u\",\"route\":\"Storgata\",\"sublocality\":null,"
                        "\"locality\":", num);
        sb_jstr(e->b, city);
        sb_puts(e->b, ",\"admin_area_level_1\":null,\"admin_area_level_2\":null,\"country\":");
        sb_jstr(e->b, country);
        sb_printf(e->b, ",\"postal_code\":\"%04u\",\"formatted_address\":", zip);
        sb_jstr(e->b, full);
        sb_putc(e->b, '}');
    }
    if (em_key(e, "custom_fields"))
        sb_puts(e->b, "{}");
    em_rest(e);
}

static void deal(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index;
    uint64_t h = rec_hash(st, ent, i, 52);
    const char *status = DEAL_STATUS[h % 5];
    char title[160];
    snprintf(title, sizeof title, "%s deal", gen_company(st, ent, i, tmp));
    em_int(e, "id", ENTITIES[ent].id_base + i);
    em_str(e, "title", title);
    em_int(e, "creator_user_id", 12000 + (int64_t)(h / 5 % 5));
    em_int(e, "owner_id", 12000 + (int64_t)(h / 25 % 5));
    if (em_key(e, "value")) {
        int64_t c = gen_amount(st, ent, i);
        sb_printf(e->b, "%lld.%02lld", (long long)(c / 100), (long long)(c % 100));
    }
    em_str(e, "currency", h % 3 ? "NOK" : "EUR");
    int64_t np = st->e[E_PD_PERSONS].count, no = st->e[E_PD_ORGANIZATIONS].count;
    if (np)
        em_int(e, "person_id", 1 + (int64_t)(h / 7 % (uint64_t)np));
    else
        em_null(e, "person_id");
    if (no)
        em_int(e, "org_id", 1 + (int64_t)(h / 11 % (uint64_t)no));
    else
        em_null(e, "org_id");
    em_int(e, "pipeline_id", 1);
    em_int(e, "stage_id", 1 + (int64_t)(h / 13 % 6));
    em_str(e, "status", status);
    em_time(e, "add_time", r->created, TS_Z);
    em_time(e, "update_time", r->updated, TS_Z);
    em_time(e, "stage_change_time", r->updated, TS_Z);
    em_bool(e, "is_deleted", r->archived);
    em_null(e, "probability");
    em_null(e, "lost_reason");
    em_int(e, "visible_to", 3);
    if (strcmp(status, "open") == 0)
        em_null(e, "close_time");
    else
        em_time(e, "close_time", r->updated, TS_Z);
    if (strcmp(status, "won") == 0)
        em_time(e, "won_time", r->updated, TS_Z);
    else
        em_null(e, "won_time");
    if (strcmp(status, "lost") == 0)
        em_time(e, "lost_time", r->updated, TS_Z);
    else
        em_null(e, "lost_time");
    em_time(e, "expected_close_date", r->created + 120LL * 86400 * 1000, TS_DATE);
    if (em_key(e, "label_ids"))
        sb_puts(e->b, "[]");
    if (em_key(e, "custom_fields"))
        sb_puts(e->b, "{}");
    em_rest(e);
}

static void record(struct req *r, const struct rec *rec, sbuf *tmp)
{
    struct emit e;
    sb_putc(&r->out, '{');
    em_begin(&e, &r->out, NULL, rec->ov);
    e.keep = "id,add_time,update_time,is_deleted,visible_to";
    if (rec->ent == E_PD_PERSONS)
        person(&SB.store, rec, &e, tmp);
    else if (rec->ent == E_PD_ORGANIZATIONS)
        organization(&SB.store, rec, &e, tmp);
    else
        deal(&SB.store, rec, &e, tmp);
    sb_putc(&r->out, '}');
}

/* ---- list and get ------------------------------------------------------------ */

/* The cursor: base64 of the last record's sort key, as opaque as Pipedrive's. */
static void cursor_fmt(sbuf *out, const struct rec *last, enum order order)
{
    char j[96];
    int n = order == ORD_TIME
                ? snprintf(j, sizeof j, "{\"id\":%lld,\"update_time\":%lld}", (long long)last->index,
                           (long long)last->updated)
                : snprintf(j, sizeof j, "{\"id\":%lld}", (long long)last->index);
    sb_b64(out, j, (size_t)n, 0);
}

static int cursor_parse(const char *s, struct query *q)
{
    sbuf raw;
    sb_init(&raw);
    int rc = -1;
    json_object *o = NULL, *v;
    if (b64_decode(s, &raw) == 0 && (o = json_tokener_parse(raw.p)) &&
        json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "id", &v)) {
        q->after_i = json_object_get_int64(v);
        if (q->order == ORD_TIME) {
            if (json_object_object_get_ex(o, "update_time", &v)) {
                q->after_t = json_object_get_int64(v);
                rc = 0;
            }
        } else {
            rc = 0;
        }
        q->has_after = 1;
    }
    json_object_put(o);
    sb_free(&raw);
    return rc;
}

static void list(struct req *r, int ent)
{
    int64_t limit;
    if (parse_limit(req_arg(r, "limit"), 100, 500, &limit))
        return pd_error(r, ERR_BAD_REQUEST, 400, "Validation failed: limit: Parameter 'limit' must be a positive integer");
    struct query q;
    query_init(&q, ent);
    const char *v;
    if ((v = req_arg(r, "sort_by"))) {
        if (strcmp(v, "update_time") == 0)
            q.order = ORD_TIME;
        /* add_time grows with the id, so it is id order. */
        else if (strcmp(v, "id") && strcmp(v, "add_time"))
            return pd_error(r, ERR_BAD_REQUEST, 400,
                            "Validation failed: sort_by: Parameter 'sort_by' must be one of id, update_time, add_time");
    }
    if ((v = req_arg(r, "sort_direction"))) {
        if (strcmp(v, "desc") == 0)
            q.desc = 1;
        else if (strcmp(v, "asc"))
            return pd_error(r, ERR_BAD_REQUEST, 400,
                            "Validation failed: sort_direction: Parameter 'sort_direction' must be one of asc, desc");
    }
    ms_t t;
    if ((v = req_arg(r, "updated_since"))) {
        if (time_parse(v, &t))
            return pd_error(r, ERR_BAD_REQUEST, 400,
                            "Validation failed: updated_since: Parameter 'updated_since' must be a valid RFC 3339 date-time");
        q.lo = t;
    }
    if ((v = req_arg(r, "updated_until"))) {
        if (time_parse(v, &t))
            return pd_error(r, ERR_BAD_REQUEST, 400,
                            "Validation failed: updated_until: Parameter 'updated_until' must be a valid RFC 3339 date-time");
        q.hi = t - 1;
    }
    if ((v = req_arg(r, "cursor")) && *v && cursor_parse(v, &q))
        return pd_error(r, ERR_BAD_REQUEST, 400, "Invalid cursor");

    sbuf tmp;
    sb_init(&tmp);
    struct iter it;
    iter_init(&it, &SB.store, &q);
    struct rec rec, last = {0};
    sb_puts(&r->out, "{\"success\":true,\"data\":[");
    int64_t n = 0;
    while (n < limit && iter_next(&it, &rec)) {
        if (n++)
            sb_putc(&r->out, ',');
        record(r, &rec, &tmp);
        last = rec;
    }
    sb_puts(&r->out, "],\"additional_data\":{\"next_cursor\":");
    if (n == limit && iter_next(&it, &rec)) {
        sb_putc(&r->out, '"');
        cursor_fmt(&r->out, &last, q.order);
        sb_putc(&r->out, '"');
    } else {
        sb_puts(&r->out, "null");
    }
    sb_puts(&r->out, "}}");
    sb_free(&tmp);
    r->status = 200;
    r->is_page = 1;
}

static void get_one(struct req *r, int ent, const char *id)
{
    int64_t idx;
    struct rec rec;
    if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived)
        return pd_error(r, ERR_NOT_FOUND, 404, "Not found");
    sbuf tmp;
    sb_init(&tmp);
    sb_puts(&r->out, "{\"success\":true,\"data\":");
    record(r, &rec, &tmp);
    sb_putc(&r->out, '}');
    sb_free(&tmp);
    r->status = 200;
    r->is_page = 1;
}


/* ---- writes ------------------------------------------------------------------ */

#define READ_ONLY "id,add_time,update_time,is_deleted"

static void write(struct req *r, int ent, const char *id)
{
    json_object *body = json_tokener_parse(r->body);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        return pd_error(r, ERR_BAD_REQUEST, 400, "Validation failed: body must be a JSON object");
    }
    const char *required = ent == E_PD_DEALS ? "title" : "name";
    json_object *v;
    if (!id && !json_object_object_get_ex(body, required, &v)) {
        json_object_put(body);
        sbuf m;
        sb_init(&m);
        sb_printf(&m, "Validation failed: %s: Missing required field '%s'", required, required);
        pd_error(r, ERR_BAD_REQUEST, 400, m.p);
        sb_free(&m);
        return;
    }
    int64_t idx;
    struct rec rec;
    struct override *ov;
    if (id) {
        if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived) {
            json_object_put(body);
            return pd_error(r, ERR_NOT_FOUND, 404, "Not found");
        }
        ov = store_touch(&SB.store, ent, idx);
    } else {
        ov = store_create(&SB.store, ent);
    }
    if (!ov || ov_set_json(ov, body, READ_ONLY)) {
        json_object_put(body);
        return pd_error(r, ERR_BAD_REQUEST, 400, "Validation failed: too many fields");
    }
    json_object_put(body);
    ov_written(&SB.store, ent, ov);
    rec_get(&SB.store, ent, ov->index, &rec);
    sbuf tmp;
    sb_init(&tmp);
    sb_puts(&r->out, "{\"success\":true,\"data\":");
    record(r, &rec, &tmp);
    sb_putc(&r->out, '}');
    sb_free(&tmp);
    r->status = 200;
}

static void remove_one(struct req *r, int ent, const char *id)
{
    int64_t idx;
    struct rec rec;
    if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived)
        return pd_error(r, ERR_NOT_FOUND, 404, "Not found");
    struct override *ov = store_touch(&SB.store, ent, idx);
    if (ov) {
        ov->archived = 1;
        ov_written(&SB.store, ent, ov);
    }
    sb_printf(&r->out, "{\"success\":true,\"data\":{\"id\":%lld}}", (long long)(ENTITIES[ent].id_base + idx));
    r->status = 200;
}

static void pd_handle(struct req *r)
{
    static const char pre[] = "/api/v2/";
    if (strncmp(r->path, pre, sizeof pre - 1) != 0)
        return pd_error(r, ERR_NOT_FOUND, 404, "Unknown method .");
    const char *type = r->path + sizeof pre - 1;
    const char *slash = strchr(type, '/');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(slash ? (size_t)(slash - type) : strlen(type)), type);
    int ent = ent_by_name(SYS_PIPEDRIVE, name);
    if (ent < 0 || (slash && (!slash[1] || strchr(slash + 1, '/'))))
        return pd_error(r, ERR_NOT_FOUND, 404, "Unknown method .");
    const char *m = r->method;
    if (!slash) {
        if (strcmp(m, "GET") == 0)
            return list(r, ent);
        if (strcmp(m, "POST") == 0)
            return write(r, ent, NULL);
    } else {
        if (strcmp(m, "GET") == 0)
            return get_one(r, ent, slash + 1);
        if (strcmp(m, "PATCH") == 0)
            return write(r, ent, slash + 1);
        if (strcmp(m, "DELETE") == 0)
            return remove_one(r, ent, slash + 1);
    }
    pd_error(r, ERR_NOT_FOUND, 404, "Unknown method .");
}

const struct system_ops PIPEDRIVE_OPS = {
    .prefix = "/pipedrive",
    .auth_ok = pd_auth,
    .error = pd_error,
    .limits = pd_limits,
    .handle = pd_handle,
};
