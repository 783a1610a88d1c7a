/* Dataverse Web API (OData v4): accounts, contacts and salesorders with
 * Prefer: odata.maxpagesize, @odata.nextLink carrying a $skiptoken paging
 * cookie, $select, $filter on modifiedon, $orderby, $top and $count;
 * POST/PATCH/DELETE with OData-EntityId and Prefer: return=representation.
 * Reference: apis.md section 6a. */
#include "sandbox.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PAGE 5000

static const struct {
    int ent;
    const char *type;       /* for error messages */
    const char *pk;
    const char *columns;    /* what $select may name */
} SETS[] = {
    {E_DY_ACCOUNTS, "account", "accountid",
     "accountid,name,accountnumber,websiteurl,telephone1,emailaddress1,address1_city,address1_country,"
     "address1_postalcode,revenue,numberofemployees,statecode,statuscode,createdon,modifiedon,versionnumber"},
    {E_DY_CONTACTS, "contact", "contactid",
     "contactid,firstname,lastname,fullname,emailaddress1,telephone1,jobtitle,address1_city,"
     "address1_country,_parentcustomerid_value,statecode,statuscode,createdon,modifiedon,versionnumber"},
    {E_DY_SALESORDERS, "salesorder", "salesorderid",
     "salesorderid,ordernumber,name,totalamount,statecode,statuscode,_customerid_value,createdon,"
     "modifiedon,versionnumber"},
};

static int set_of(int ent)
{
    for (int i = 0; i < 3; i++)
        if (SETS[i].ent == ent)
            return i;
    return 0;
}

static void dy_error(struct req *r, enum err_kind kind, unsigned status, const char *msg)
{
    sbuf *b = &r->out;
    sb_reset(b);
    r->status = status;
    const char *code = "0x80060888", *text = msg;
    switch (kind) {
    case ERR_UNAUTHORIZED:
        /* Dataverse answers 401 with an empty body and this challenge. */
        req_header(r, "WWW-Authenticate",
                   "Bearer authorization_uri=https://login.microsoftonline.com/sandbox-tenant/oauth2/authorize, "
                   "resource_id=%s/dynamics/", r->base);
        return;
    case ERR_RATE_LIMIT:
        req_header(r, "Retry-After", "%lld", (long long)r->retry_after);
        code = "0x80072322";
        text = "Number of requests exceeded the limit of 6000 over time window of 300 seconds.";
        break;
    case ERR_NOT_FOUND:
        code = "0x80040217";
        break;
    case ERR_BAD_REQUEST:
        break;
    default:
        code = "0x80040216";
        text = status == 503 ? "Service Unavailable" : "An unexpected error occurred.";
        break;
    }
    sb_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    sb_jstr(b, text ? text : "Bad Request");
    sb_puts(b, "}}");
}

static int dy_limits(struct req *r, struct sys_limits *l, ms_t now, int64_t *retry_s)
{
    /* Service protection: 6,000 requests per 5-minute window per user. */
    int64_t n = window_hit(&l->w1, 300000, now);
    req_header(r, "x-ms-ratelimit-burst-remaining-xrm-requests", "%lld", (long long)(n > 6000 ? 0 : 6000 - n));
    req_header(r, "x-ms-ratelimit-time-remaining-xrm-requests", "%lld.00",
               (long long)(n * 20 > 1200000 ? 0 : 1200000 - n * 20));
    *retry_s = (l->w1.start + 300000 - now + 999) / 1000;
    return n > 6000;
}

static int dy_auth(struct req *r)
{
    return bearer_ok(r);
}

/* ---- records ---------------------------------------------------------------- */

static void em_guid(struct emit *e, const char *name, int ent, int64_t idx)
{
    if (em_key(e, name)) {
        sb_putc(e->b, '"');
        guid_fmt(e->b, ent, idx);
        sb_putc(e->b, '"');
    }
}

static const char *const JOBS[] = {"Purchasing Manager", "CFO", "Owner", "IT Director", "Accountant",
                                   "Sales Representative"};

static void fields(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index;
    uint64_t h = rec_hash(st, ent, i, 60);
    const char *country;
    const char *city = gen_city(st, ent, i, &country);
    if (ent == E_DY_ACCOUNTS) {
        const char *name = gen_company(st, ent, i, tmp);
        em_str(e, "name", name);
        if (em_key(e, "accountnumber"))
            sb_printf(e->b, "\"ACC-%06lld\"", (long long)i);
        if (em_key(e, "websiteurl")) {
            sb_puts(e->b, "\"https://www.");
            for (const char *p = name; *p && *p != ' '; p++)
                sb_putc(e->b, (char)tolower((unsigned char)*p));
            sb_printf(e->b, "%lld.example.com\"", (long long)i);
        }
        sb_reset(tmp);
        gen_phone(tmp, st, ent, i);
        em_str(e, "telephone1", tmp->p);
        if (em_key(e, "emailaddress1"))
            sb_printf(e->b, "\"post@account%lld.example.com\"", (long long)i);
        em_str(e, "address1_city", city);
        em_str(e, "address1_country", country);
        if (em_key(e, "address1_postalcode"))
            sb_printf(e->b, "\"%04u\"", (unsigned)(h % 9000 + 100));
        em_money(e, "revenue", gen_amount(st, ent, i) * 100, 0);
        em_int(e, "numberofemployees", (int64_t)(h / 9000 % 5000 + 1));
        em_int(e, "statecode", 0);
        em_int(e, "statuscode", 1);
    } else if (ent == E_DY_CONTACTS) {
        char full[128];
        snprintf(full, sizeof full, "%s %s", gen_first(st, ent, i), gen_last(st, ent, i));
        em_str(e, "firstname", gen_first(st, ent, i));
        em_str(e, "lastname", gen_last(st, ent, i));
        em_str(e, "fullname", full);
        sb_reset(tmp);
        gen_email(tmp, st, ent, i);
        em_str(e, "emailaddress1", tmp->p);
        sb_reset(tmp);
        gen_phone(tmp, st, ent, i);
        em_str(e, "telephone1", tmp->p);
        em_str(e, "jobtitle", gen_pick(st, ent, i, 61, JOBS, 6));
        em_str(e, "address1_city", city);
        em_str(e, "address1_country", country);
        int64_t na = st->e[E_DY_ACCOUNTS].count;
        if (na && h % 5)
            em_guid(e, "_parentcustomerid_value", E_DY_ACCOUNTS, (int64_t)(h / 5 % (uint64_t)na));
        else
            em_null(e, "_parentcustomerid_value");
        em_int(e, "statecode", 0);
        em_int(e, "statuscode", 1);
    } else {
        int state = (int)(h % 4); /* active, submitted, canceled, fulfilled */
        static const int status_of[] = {1, 3, 4, 100001};
        if (em_key(e, "ordernumber"))
            sb_printf(e->b, "\"ORD-%05lld-%c%c%c%u\"", (long long)(1000 + i), 'A' + (int)(h % 26),
                      'A' + (int)(h / 26 % 26), 'A' + (int)(h / 676 % 26), (unsigned)(h / 17576 % 10));
        char name[160];
        snprintf(name, sizeof name, "Order %lld for %s", (long long)(1000 + i), gen_company(st, ent, i, tmp));
        em_str(e, "name", name);
        em_money(e, "totalamount", gen_amount(st, ent, i), 0);
        em_int(e, "statecode", state);
        em_int(e, "statuscode", status_of[state]);
        int64_t na = st->e[E_DY_ACCOUNTS].count;
        if (na)
            em_guid(e, "_customerid_value", E_DY_ACCOUNTS, (int64_t)(h / 4 % (uint64_t)na));
        else
            em_null(e, "_customerid_value");
    }
    em_time(e, "createdon", r->created, TS_Z);
    em_time(e, "modifiedon", r->updated, TS_Z);
    em_int(e, "versionnumber", (r->index + 1) * 1000 + r->version);
    em_rest(e);
}

static void record(struct req *r, const struct rec *rec, const struct sel *sel, sbuf *tmp)
{
    sbuf *b = &r->out;
    sb_printf(b, "{\"@odata.etag\":\"W/\\\"%lld\\\"\",", (long long)((rec->index + 1) * 1000 + rec->version));
    struct emit e;
    em_begin(&e, b, sel, rec->ov);
    e.keep = "createdon,modifiedon,versionnumber,statecode,statuscode";
    fields(&SB.store, rec, &e, tmp);
    /* The primary key comes back whatever $select says. */
    if (!e.first)
        sb_putc(b, ',');
    sb_printf(b, "\"%s\":\"", SETS[set_of(rec->ent)].pk);
    guid_fmt(b, rec->ent, rec->index);
    sb_puts(b, "\"}");
}

/* ---- query options ------------------------------------------------------------ */

static void url_decode(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char h[3] = {p[1], p[2], 0};
            *w++ = (char)strtol(h, NULL, 16);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

static int column_ok(int ent, const char *name)
{
    return list_has(SETS[set_of(ent)].columns, name);
}

static void no_property(sbuf *m, int ent, const char *name)
{
    sb_printf(m, "Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.", name,
              SETS[set_of(ent)].type);
}

/* "modifiedon gt 2024-01-01T00:00:00Z and modifiedon le ..." */
static int parse_filter(int ent, const char *f, struct query *q, sbuf *err)
{
    char *copy = strdup(f);
    if (!copy)
        return -1;
    for (char *p = copy; *p; p++)
        if (*p == '+' && p > copy && isdigit((unsigned char)p[-1]) == 0)
            *p = ' ';
    int rc = 0;
    char *rest = copy;
    while (rest && *rest) {
        char *and = strcasestr(rest, " and ");
        if (and)
            *and = '\0';
        char prop[64], op[8], val[64];
        char extra;
        while (*rest == ' ' || *rest == '(')
            rest++;
        size_t l = strlen(rest);
        while (l && (rest[l - 1] == ' ' || rest[l - 1] == ')'))
            rest[--l] = '\0';
        if (sscanf(rest, "%63s %7s %63s %c", prop, op, val, &extra) != 3) {
            sb_printf(err, "The sandbox supports $filter clauses like 'modifiedon gt <date-time>' "
                           "joined by 'and', not '%s'.", rest);
            rc = -1;
            break;
        }
        if (!column_ok(ent, prop)) {
            no_property(err, ent, prop);
            rc = -1;
            break;
        }
        if (strcmp(prop, "statecode") == 0 && strcmp(op, "eq") == 0) {
            /* Every generated record is active (statecode 0) but orders. */
            if (strcmp(val, "0") != 0 || ent == E_DY_SALESORDERS) {
                sb_puts(err, "The sandbox filters statecode only with 'eq 0' on accounts and contacts.");
                rc = -1;
                break;
            }
        } else if (strcmp(prop, "modifiedon") == 0) {
            ms_t t;
            if (time_parse(val, &t)) {
                sb_printf(err, "The DateTimeOffset text '%s' should be in format "
                               "'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?'.", val);
                rc = -1;
                break;
            }
            if (strcmp(op, "gt") == 0) { if (t + 1 > q->lo) q->lo = t + 1; }
            else if (strcmp(op, "ge") == 0) { if (t > q->lo) q->lo = t; }
            else if (strcmp(op, "lt") == 0) { if (t - 1 < q->hi) q->hi = t - 1; }
            else if (strcmp(op, "le") == 0) { if (t < q->hi) q->hi = t; }
            else if (strcmp(op, "eq") == 0) {
                if (t > q->lo) q->lo = t;
                if (t < q->hi) q->hi = t;
            } else {
                sb_printf(err, "Unsupported operator '%s'.", op);
                rc = -1;
                break;
            }
        } else {
            sb_printf(err, "The sandbox filters on modifiedon (and statecode eq 0) only, not '%s'.", prop);
            rc = -1;
            break;
        }
        rest = and ? and + 5 : NULL;
    }
    free(copy);
    return rc;
}

static int parse_orderby(int ent, const char *s, struct query *q, sbuf *err)
{
    char prop[64], dir[8] = "asc", extra;
    char copy[160];
    snprintf(copy, sizeof copy, "%s", s);
    for (char *p = copy; *p; p++)
        if (*p == '+')
            *p = ' ';
    int n = sscanf(copy, "%63s %7s %c", prop, dir, &extra);
    if (n < 1 || n > 2 || strchr(prop, ',')) {
        sb_puts(err, "The sandbox orders by one column: modifiedon, createdon or the primary key.");
        return -1;
    }
    if (strcmp(prop, "modifiedon") == 0)
        q->order = ORD_TIME;
    else if (strcmp(prop, "createdon") == 0 || strcmp(prop, SETS[set_of(ent)].pk) == 0)
        q->order = ORD_INDEX;
    else if (!column_ok(ent, prop)) {
        no_property(err, ent, prop);
        return -1;
    } else {
        sb_puts(err, "The sandbox orders by one column: modifiedon, createdon or the primary key.");
        return -1;
    }
    if (strcasecmp(dir, "desc") == 0)
        q->desc = 1;
    else if (strcasecmp(dir, "asc") != 0) {
        sb_printf(err, "Invalid sort direction '%s'.", dir);
        return -1;
    }
    return 0;
}

static int64_t max_page_size(struct req *r, int *given)
{
    const char *prefer = req_hdr(r, "Prefer");
    *given = 0;
    if (!prefer)
        return MAX_PAGE;
    const char *p = strcasestr(prefer, "odata.maxpagesize");
    if (!p)
        return MAX_PAGE;
    p += strlen("odata.maxpagesize");
    while (*p == ' ' || *p == '=' || *p == '"')
        p++;
    long long v = strtoll(p, NULL, 10);
    if (v < 1)
        return MAX_PAGE;
    *given = 1;
    return v > MAX_PAGE ? MAX_PAGE : v;
}

/* The paging cookie: Dataverse nests a URL-encoded XML cookie holding the
 * last row's sort values; the client must treat it as opaque. */
static void skiptoken(sbuf *out, const struct rec *last, enum order order, int page)
{
    sbuf inner, cookie;
    sb_init(&inner);
    sb_init(&cookie);
    sb_printf(&inner, "<cookie page=\"%d\">", page);
    if (order == ORD_TIME) {
        sb_puts(&inner, "<modifiedon last=\"");
        time_fmt(&inner, last->updated, TS_Z);
        sb_puts(&inner, "\" />");
    }
    sb_printf(&inner, "<%s last=\"{", SETS[set_of(last->ent)].pk);
    guid_fmt(&inner, last->ent, last->index);
    sb_puts(&inner, "}\" /></cookie>");
    sb_printf(&cookie, "<cookie pagenumber=\"%d\" pagingcookie=\"", page + 1);
    sb_urlenc(&cookie, inner.p);
    sb_puts(&cookie, "\" istracking=\"False\" />");
    sb_urlenc(out, cookie.p);
    sb_free(&inner);
    sb_free(&cookie);
}

static int attr(const char *s, const char *name, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=\"", name);
    const char *p = strstr(s, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= outlen)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}

static int skiptoken_parse(int ent, const char *tok, struct query *q, int *page)
{
    char pc[2048], val[64];
    if (attr(tok, "pagingcookie", pc, sizeof pc))
        return -1;
    url_decode(pc);
    if (attr(pc, "page", val, sizeof val))
        return -1;
    *page = atoi(val);
    char key[80];
    snprintf(key, sizeof key, "<%s last", SETS[set_of(ent)].pk);
    const char *k = strstr(pc, key);
    if (!k || attr(k, "last", val, sizeof val) || strlen(val) != 38)
        return -1;
    val[37] = '\0';
    if (guid_parse(ent, val + 1, &q->after_i))
        return -1;
    if (q->order == ORD_TIME) {
        const char *m = strstr(pc, "<modifiedon last");
        if (!m || attr(m, "last", val, sizeof val) || time_parse(val, &q->after_t))
            return -1;
    }
    q->has_after = 1;
    return 0;
}

struct link_ctx {
    sbuf *b;
    int first;
    const char *bad;
};

static void link_arg(void *cls, const char *k, const char *v)
{
    struct link_ctx *c = cls;
    if (strcmp(k, "$skiptoken") == 0)
        return;
    sb_putc(c->b, c->first ? '?' : '&');
    c->first = 0;
    sb_urlenc(c->b, k);
    if (v) {
        sb_putc(c->b, '=');
        sb_urlenc(c->b, v);
    }
}

static void check_arg(void *cls, const char *k, const char *v)
{
    (void)v;
    struct link_ctx *c = cls;
    static const char *const known[] = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken"};
    if (c->bad || k[0] != '$')
        return;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(k, known[i]) == 0)
            return;
    c->bad = k;
}

static void list(struct req *r, const char *ver, int ent)
{
    sbuf err;
    sb_init(&err);
    struct link_ctx chk = {NULL, 1, NULL};
    req_args(r, check_arg, &chk);
    if (chk.bad) {
        if (strcmp(chk.bad, "$skip") == 0)
            sb_puts(&err, "Skip Clause is not supported in CRM");
        else
            sb_printf(&err, "The query parameter '%s' is not supported by the sandbox.", chk.bad);
        goto bad;
    }
    struct query q;
    query_init(&q, ent);
    const char *v;
    if ((v = req_arg(r, "$filter")) && parse_filter(ent, v, &q, &err))
        goto bad;
    if ((v = req_arg(r, "$orderby")) && parse_orderby(ent, v, &q, &err))
        goto bad;
    struct sel sel;
    const char *select = req_arg(r, "$select");
    sel_parse(&sel, select);
    for (size_t i = 0; i < sel.n; i++) {
        if (!column_ok(ent, sel.names[i])) {
            no_property(&err, ent, sel.names[i]);
            sel_free(&sel);
            goto bad;
        }
    }
    int given;
    int64_t size = max_page_size(r, &given), top = -1;
    if ((v = req_arg(r, "$top"))) {
        char *end;
        top = strtoll(v, &end, 10);
        if (!*v || *end || top < 0) {
            sb_printf(&err, "Invalid value '%s' for $top.", v);
            sel_free(&sel);
            goto bad;
        }
        if (top < size)
            size = top;
    }
    int page = 1;
    if ((v = req_arg(r, "$skiptoken")) && skiptoken_parse(ent, v, &q, &page)) {
        sb_puts(&err, "The paging cookie is invalid.");
        sel_free(&sel);
        goto bad;
    }
    const char *count = req_arg(r, "$count");

    sbuf *b = &r->out;
    sb_printf(b, "{\"@odata.context\":\"%s/dynamics/api/data/%s/$metadata#%s", r->base, ver, ENTITIES[ent].name);
    if (select) {
        sb_putc(b, '(');
        for (size_t i = 0; i < sel.n; i++)
            sb_printf(b, "%s%s", i ? "," : "", sel.names[i]);
        sb_putc(b, ')');
    }
    sb_putc(b, '"');
    if (count && strcmp(count, "true") == 0) {
        int64_t c = query_count(&SB.store, &q);
        /* Dataverse counts at most 5,000 rows. */
        sb_printf(b, ",\"@odata.count\":%lld", (long long)(c > 5000 ? 5000 : c));
    }
    sb_puts(b, ",\"value\":[");
    sbuf tmp;
    sb_init(&tmp);
    struct iter it;
    iter_init(&it, &SB.store, &q);
    struct rec rec, last = {0};
    int64_t n = 0;
    while (n < size && iter_next(&it, &rec)) {
        if (n++)
            sb_putc(b, ',');
        record(r, &rec, select ? &sel : NULL, &tmp);
        last = rec;
    }
    sb_putc(b, ']');
    /* With $top the result is one page: no nextLink. */
    if (top < 0 && n == size && iter_next(&it, &rec)) {
        sb_printf(b, ",\"@odata.nextLink\":\"%s/dynamics/api/data/%s/%s", r->base, ver, ENTITIES[ent].name);
        struct link_ctx lc = {b, 1, NULL};
        req_args(r, link_arg, &lc);
        sb_printf(b, "%c$skiptoken=", lc.first ? '?' : '&');
        skiptoken(b, &last, q.order, page);
        sb_putc(b, '"');
    }
    sb_putc(b, '}');
    if (given)
        req_header(r, "Preference-Applied", "odata.maxpagesize=%lld", (long long)size);
    sb_free(&tmp);
    sel_free(&sel);
    sb_free(&err);
    r->status = 200;
    r->is_page = 1;
    return;
bad:
    dy_error(r, ERR_BAD_REQUEST, 400, err.p);
    sb_free(&err);
}

static void get_one(struct req *r, const char *ver, int ent, const char *key)
{
    int64_t idx;
    struct rec rec;
    char guid[64];
    snprintf(guid, sizeof guid, "%s", key);
    if (guid_parse(ent, guid, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived) {
        sbuf m;
        sb_init(&m);
        sb_printf(&m, "%s With Id = %s Does Not Exist", SETS[set_of(ent)].type, guid);
        dy_error(r, ERR_NOT_FOUND, 404, m.p);
        sb_free(&m);
        return;
    }
    const char *select = req_arg(r, "$select");
    struct sel sel;
    sel_parse(&sel, select);
    for (size_t i = 0; i < sel.n; i++) {
        if (!column_ok(ent, sel.names[i])) {
            sbuf m;
            sb_init(&m);
            no_property(&m, ent, sel.names[i]);
            dy_error(r, ERR_BAD_REQUEST, 400, m.p);
            sb_free(&m);
            sel_free(&sel);
            return;
        }
    }
    sbuf tmp;
    sb_init(&tmp);
    sb_printf(&r->out, "{\"@odata.context\":\"%s/dynamics/api/data/%s/$metadata#%s/$entity\",", r->base, ver,
              ENTITIES[ent].name);
    size_t mark = r->out.len;
    record(r, &rec, select ? &sel : NULL, &tmp);
    /* Splice the record's members into the envelope. */
    memmove(r->out.p + mark, r->out.p + mark + 1, r->out.len - mark);
    r->out.len--;
    sb_free(&tmp);
    sel_free(&sel);
    r->status = 200;
    r->is_page = 1;
}


/* ---- writes ------------------------------------------------------------------ */

static int want_representation(struct req *r)
{
    const char *p = req_hdr(r, "Prefer");
    return p && strcasestr(p, "return=representation");
}

static void representation(struct req *r, const char *ver, const struct rec *rec)
{
    sbuf tmp;
    sb_init(&tmp);
    sb_printf(&r->out, "{\"@odata.context\":\"%s/dynamics/api/data/%s/$metadata#%s/$entity\",", r->base, ver,
              ENTITIES[rec->ent].name);
    size_t mark = r->out.len;
    record(r, rec, NULL, &tmp);
    memmove(r->out.p + mark, r->out.p + mark + 1, r->out.len - mark);
    r->out.len--;
    sb_free(&tmp);
}

static void write(struct req *r, const char *ver, int ent, const char *key)
{
    json_object *body = json_tokener_parse(r->body);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        return dy_error(r, ERR_BAD_REQUEST, 400, "The request body must be a JSON object.");
    }
    /* Columns only: annotations and @odata.bind lookups are not stored. */
    json_object_object_foreach(body, k, v) {
        (void)v;
        if (strchr(k, '@') || !column_ok(ent, k)) {
            sbuf m;
            sb_init(&m);
            if (strchr(k, '@'))
                sb_printf(&m, "The sandbox does not store '%s'.", k);
            else
                no_property(&m, ent, k);
            dy_error(r, ERR_BAD_REQUEST, 400, m.p);
            sb_free(&m);
            json_object_put(body);
            return;
        }
    }
    int64_t idx;
    struct rec rec;
    struct override *ov;
    if (key) {
        /* No create-on-PATCH: an unknown key is a 404 whatever If-Match says,
         * because sandbox GUIDs are derived from the record's position. */
        if (guid_parse(ent, key, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived) {
            json_object_put(body);
            sbuf m;
            sb_init(&m);
            sb_printf(&m, "%s With Id = %s Does Not Exist", SETS[set_of(ent)].type, key);
            dy_error(r, ERR_NOT_FOUND, 404, m.p);
            sb_free(&m);
            return;
        }
        ov = store_touch(&SB.store, ent, idx);
    } else {
        ov = store_create(&SB.store, ent);
    }
    char skip[160];
    snprintf(skip, sizeof skip, "%s,createdon,modifiedon,versionnumber", SETS[set_of(ent)].pk);
    if (!ov || ov_set_json(ov, body, skip)) {
        json_object_put(body);
        return dy_error(r, ERR_BAD_REQUEST, 400, "Too many columns.");
    }
    json_object_put(body);
    ov_written(&SB.store, ent, ov);
    rec_get(&SB.store, ent, ov->index, &rec);
    sbuf url;
    sb_init(&url);
    sb_printf(&url, "%s/dynamics/api/data/%s/%s(", r->base, ver, ENTITIES[ent].name);
    guid_fmt(&url, ent, ov->index);
    sb_putc(&url, ')');
    req_header(r, "OData-EntityId", "%s", url.p);
    sb_free(&url);
    if (want_representation(r)) {
        representation(r, ver, &rec);
        req_header(r, "Preference-Applied", "return=representation");
        r->status = key ? 200 : 201;
    } else {
        r->status = 204;
    }
}

static void remove_one(struct req *r, int ent, const char *key)
{
    int64_t idx;
    struct rec rec;
    if (guid_parse(ent, key, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived)
        return dy_error(r, ERR_NOT_FOUND, 404, "Does Not Exist");
    struct override *ov = store_touch(&SB.store, ent, idx);
    if (ov) {
        ov->archived = 1;
        ov_written(&SB.store, ent, ov);
    }
    r->status = 204;
}

static void whoami(struct req *r, const char *ver)
{
    sbuf *b = &r->out;
    sb_printf(b, "{\"@odata.context\":\"%s/dynamics/api/data/%s/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse\","
                 "\"BusinessUnitId\":\"", r->base, ver);
    guid_fmt(b, 100, 1);
    sb_puts(b, "\",\"UserId\":\"");
    guid_fmt(b, 101, 1);
    sb_puts(b, "\",\"OrganizationId\":\"");
    guid_fmt(b, 102, 1);
    sb_puts(b, "\"}");
    r->status = 200;
}

static void dy_handle(struct req *r)
{
    static const char pre[] = "/api/data/";
    req_header(r, "OData-Version", "4.0");
    r->ctype = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8";
    if (strncmp(r->path, pre, sizeof pre - 1) != 0)
        return dy_error(r, ERR_NOT_FOUND, 404, "Resource not found.");
    const char *ver = r->path + sizeof pre - 1;
    /* v9.0, v9.1 and v9.2 are all served, as Dataverse does. */
    if (strncmp(ver, "v9.", 3) != 0 || !isdigit((unsigned char)ver[3]) || ver[4] != '/')
        return dy_error(r, ERR_NOT_FOUND, 404, "Resource not found.");
    char version[8];
    snprintf(version, sizeof version, "%.4s", ver);
    const char *seg = ver + 5;
    const char *m = r->method;
    int get = strcmp(m, "GET") == 0;
    if (get && (strcmp(seg, "WhoAmI") == 0 || strcmp(seg, "WhoAmI()") == 0))
        return whoami(r, version);
    char name[64];
    size_t n = strcspn(seg, "(/");
    snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), seg);
    int ent = ent_by_name(SYS_DYNAMICS, name);
    if (ent < 0) {
        sbuf m;
        sb_init(&m);
        sb_printf(&m, "Resource not found for the segment '%s'.", name);
        dy_error(r, ERR_NOT_FOUND, 404, m.p);
        sb_free(&m);
        return;
    }
    if (seg[n] == '\0') {
        if (get)
            return list(r, version, ent);
        if (strcmp(m, "POST") == 0)
            return write(r, version, ent, NULL);
        return dy_error(r, ERR_BAD_REQUEST, 405, "Method not allowed.");
    }
    if (seg[n] == '(') {
        const char *close = strchr(seg + n, ')');
        if (close && close[1] == '\0') {
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(close - seg - (ptrdiff_t)n - 1), seg + n + 1);
            if (get)
                return get_one(r, version, ent, key);
            if (strcmp(m, "PATCH") == 0)
                return write(r, version, ent, key);
            if (strcmp(m, "DELETE") == 0)
                return remove_one(r, ent, key);
            return dy_error(r, ERR_BAD_REQUEST, 405, "Method not allowed.");
        }
    }
    dy_error(r, ERR_NOT_FOUND, 404, "Resource not found.");
}

const struct system_ops DYNAMICS_OPS = {
    .prefix = "/dynamics",
    .auth_ok = dy_auth,
    .error = dy_error,
    .limits = dy_limits,
    .handle = dy_handle,
};
