/* Shopify Admin REST: customers, products and orders with Link-header cursor
 * pagination (page_info), updated_at_min/max, since_id, fields and, for
 * orders, the status filter that defaults to "open"; POST/PUT/DELETE.
 * Reference: apis.md section 10. */
#include "sandbox.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const SINGULAR[] = {"customer", "product", "order"};

enum status { ST_OPEN, ST_CLOSED, ST_CANCELLED, ST_ANY };
static const char *const STATUS_NAMES[] = {"open", "closed", "cancelled", "any"};

static enum status order_status(const struct store *st, int64_t i)
{
    uint64_t h = rec_hash(st, E_SH_ORDERS, i, 40) % 20;
    return h == 0 ? ST_CANCELLED : h <= 4 ? ST_CLOSED : ST_OPEN;
}

static int status_pred(const struct store *st, const struct rec *r, const void *arg)
{
    enum status want = *(const enum status *)arg;
    if (r->ov && r->ov->created)
        return want == ST_ANY || want == ST_OPEN;
    return want == ST_ANY || order_status(st, r->index) == want;
}

/* ---- records ---------------------------------------------------------------- */

static void address(sbuf *b, const struct store *st, int ent, int64_t i, int64_t cust_id)
{
    const char *country;
    const char *city = gen_city(st, ent, i, &country);
    uint64_t h = rec_hash(st, ent, i, 41);
    sb_printf(b, "{\"id\":%lld,\"customer_id\":%lld,\"first_name\":", (long long)(9001000000001LL + i),
              (long long)cust_id);
    sb_jstr(b, gen_first(st, ent, i));
    sb_puts(b, ",\"last_name\":");
    sb_jstr(b, gen_last(st, ent, i));
    sb_printf(b, ",\"company\":null,\"address1\":\"%u Storgata\",\"address2\":null,\"city\":",
              (unsigned)(h % 200 + 1));
    sb_jstr(b, city);
    sb_puts(b, ",\"province\":null,\"country\":");
    sb_jstr(b, country);
    sb_printf(b, ",\"zip\":\"%04u\",\"phone\":null,\"name\":", (unsigned)(h / 200 % 9000 + 100));
    char name[128];
    snprintf(name, sizeof name, "%s %s", gen_first(st, ent, i), gen_last(st, ent, i));
    sb_jstr(b, name);
    sb_puts(b, ",\"default\":true}");
}

static void customer(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index, id = ENTITIES[ent].id_base + i;
    uint64_t h = rec_hash(st, ent, i, 42);
    em_int(e, "id", id);
    sb_reset(tmp);
    gen_email(tmp, st, ent, i);
    em_str(e, "email", tmp->p);
    em_time(e, "created_at", r->created, TS_SHOP);
    em_time(e, "updated_at", r->updated, TS_SHOP);
    em_str(e, "first_name", gen_first(st, ent, i));
    em_str(e, "last_name", gen_last(st, ent, i));
    em_int(e, "orders_count", (int64_t)(h % 12));
    em_str(e, "state", h % 10 == 0 ? "disabled" : "enabled");
    em_money(e, "total_spent", (int64_t)(h % 12) * gen_amount(st, ent, i) / 10, 1);
    em_null(e, "last_order_id");
    em_null(e, "note");
    em_bool(e, "verified_email", h % 7 != 0);
    em_null(e, "multipass_identifier");
    em_bool(e, "tax_exempt", 0);
    em_str(e, "tags", h % 3 == 0 ? "vip" : "");
    em_null(e, "last_order_name");
    em_str(e, "currency", "NOK");
    sb_reset(tmp);
    gen_phone(tmp, st, ent, i);
    em_str(e, "phone", tmp->p);
    if (em_key(e, "addresses")) {
        sb_putc(e->b, '[');
        address(e->b, st, ent, i, id);
        sb_putc(e->b, ']');
    }
    if (em_key(e, "tax_exemptions"))
        sb_puts(e->b, "[]");
    if (em_key(e, "admin_graphql_api_id"))
        sb_printf(e->b, "\"gid://shopify/Customer/%lld\"", (long long)id);
    if (em_key(e, "default_address"))
        address(e->b, st, ent, i, id);
    em_rest(e);
}

static const char *const PRODUCT_NOUN[] = {"Wool Sweater", "Rain Jacket", "Coffee Mug", "Desk Lamp",
                                           "Trail Shoes", "Notebook", "Backpack", "Tea Kettle",
                                           "Scarf", "Water Bottle"};
static const char *const PRODUCT_ADJ[] = {"Classic", "Nordic", "Organic", "Compact", "Deluxe",
                                          "Everyday", "Vintage", "Ultralight"};

static void product(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index, id = ENTITIES[ent].id_base + i;
    uint64_t h = rec_hash(st, ent, i, 43);
    const char *adj = gen_pick(st, ent, i, 44, PRODUCT_ADJ, 8);
    const char *noun = gen_pick(st, ent, i, 45, PRODUCT_NOUN, 10);
    sb_reset(tmp);
    sb_printf(tmp, "%s %s %lld", adj, noun, (long long)i);
    em_int(e, "id", id);
    em_str(e, "title", tmp->p);
    if (em_key(e, "body_html"))
        sb_printf(e->b, "\"\\u003cp\\u003eA %s %s.\\u003c/p\\u003e\"", adj, noun);
    em_str(e, "vendor", gen_company(st, ent, i, tmp));
    em_str(e, "product_type", noun);
    em_time(e, "created_at", r->created, TS_SHOP);
    if (em_key(e, "handle")) {
        sb_putc(e->b, '"');
        for (const char *p = adj; *p; p++)
            sb_putc(e->b, (char)tolower((unsigned char)*p));
        sb_putc(e->b, '-');
        for (const char *p = noun; *p; p++)
            sb_putc(e->b, *p == ' ' ? '-' : (char)tolower((unsigned char)*p));
        sb_printf(e->b, "-%lld\"", (long long)i);
    }
    em_time(e, "updated_at", r->updated, TS_SHOP);
    em_time(e, "published_at", r->created, TS_SHOP);
    em_null(e, "template_suffix");
    em_str(e, "published_scope", "global");
    em_str(e, "tags", h % 2 ? "new, featured" : "");
    em_str(e, "status", h % 11 == 0 ? "draft" : "active");
    if (em_key(e, "admin_graphql_api_id"))
        sb_printf(e->b, "\"gid://shopify/Product/%lld\"", (long long)id);
    int64_t vid = 44001000000001LL + i;
    if (em_key(e, "variants")) {
        sb_printf(e->b, "[{\"id\":%lld,\"product_id\":%lld,\"title\":\"Default Title\",\"price\":\"",
                  (long long)vid, (long long)id);
        int64_t c = gen_amount(st, ent, i) / 100;
        sb_printf(e->b, "%lld.%02lld\",\"sku\":\"SKU-%06lld\",\"position\":1,\"inventory_policy\":\"deny\","
                        "\"inventory_quantity\":%u,\"created_at\":\"",
                  (long long)(c / 100), (long long)(c % 100), (long long)i, (unsigned)(h % 500));
        time_fmt(e->b, r->created, TS_SHOP);
        sb_puts(e->b, "\",\"updated_at\":\"");
        time_fmt(e->b, r->updated, TS_SHOP);
        sb_printf(e->b, "\",\"admin_graphql_api_id\":\"gid://shopify/ProductVariant/%lld\"}]", (long long)vid);
    }
    if (em_key(e, "options"))
        sb_printf(e->b, "[{\"id\":%lld,\"product_id\":%lld,\"name\":\"Title\",\"position\":1,"
                        "\"values\":[\"Default Title\"]}]", (long long)(55001000000001LL + i), (long long)id);
    if (em_key(e, "images"))
        sb_puts(e->b, "[]");
    em_null(e, "image");
    em_rest(e);
}

static void order(const struct store *st, const struct rec *r, struct emit *e, sbuf *tmp)
{
    int ent = r->ent;
    int64_t i = r->index, id = ENTITIES[ent].id_base + i;
    uint64_t h = rec_hash(st, ent, i, 46);
    enum status s = order_status(st, i);
    int64_t total = gen_amount(st, ent, i), tax = total / 5, sub = total - tax;
    em_int(e, "id", id);
    if (em_key(e, "admin_graphql_api_id"))
        sb_printf(e->b, "\"gid://shopify/Order/%lld\"", (long long)id);
    if (s == ST_CANCELLED) {
        em_str(e, "cancel_reason", "customer");
        em_time(e, "cancelled_at", r->updated, TS_SHOP);
    } else {
        em_null(e, "cancel_reason");
        em_null(e, "cancelled_at");
    }
    if (s == ST_CLOSED)
        em_time(e, "closed_at", r->updated, TS_SHOP);
    else
        em_null(e, "closed_at");
    em_bool(e, "confirmed", 1);
    em_time(e, "created_at", r->created, TS_SHOP);
    em_str(e, "currency", "NOK");
    em_money(e, "current_total_price", total, 1);
    int64_t ncust = st->e[E_SH_CUSTOMERS].count;
    int64_t ci = ncust ? (int64_t)(h % (uint64_t)ncust) : -1;
    sb_reset(tmp);
    if (ci >= 0)
        gen_email(tmp, st, E_SH_CUSTOMERS, ci);
    em_str(e, "email", ci >= 0 ? tmp->p : NULL);
    em_str(e, "financial_status", s == ST_CANCELLED ? "refunded" : h % 4 ? "paid" : "pending");
    if (s == ST_CLOSED)
        em_str(e, "fulfillment_status", "fulfilled");
    else
        em_null(e, "fulfillment_status");
    if (em_key(e, "name"))
        sb_printf(e->b, "\"#%lld\"", (long long)(1001 + i));
    em_int(e, "order_number", 1001 + i);
    em_time(e, "processed_at", r->created, TS_SHOP);
    em_money(e, "subtotal_price", sub, 1);
    em_str(e, "tags", "");
    em_bool(e, "test", 0);
    em_money(e, "total_price", total, 1);
    em_money(e, "total_tax", tax, 1);
    em_time(e, "updated_at", r->updated, TS_SHOP);
    if (em_key(e, "customer")) {
        if (ci < 0) {
            sb_puts(e->b, "null");
        } else {
            sb_printf(e->b, "{\"id\":%lld,\"email\":", (long long)(ENTITIES[E_SH_CUSTOMERS].id_base + ci));
            sb_jstr(e->b, tmp->p);
            sb_puts(e->b, ",\"first_name\":");
            sb_jstr(e->b, gen_first(st, E_SH_CUSTOMERS, ci));
            sb_puts(e->b, ",\"last_name\":");
            sb_jstr(e->b, gen_last(st, E_SH_CUSTOMERS, ci));
            sb_putc(e->b, '}');
        }
    }
    if (em_key(e, "line_items")) {
        int64_t np = st->e[E_SH_PRODUCTS].count;
        int64_t pi = np ? (int64_t)(h / 7 % (uint64_t)np) : 0;
        unsigned qty = (unsigned)(h % 3 + 1);
        sb_printf(e->b, "[{\"id\":%lld,\"product_id\":", (long long)(66001000000001LL + i));
        if (np)
            sb_int(e->b, ENTITIES[E_SH_PRODUCTS].id_base + pi);
        else
            sb_puts(e->b, "null");
        sb_printf(e->b, ",\"title\":\"%s %s\",\"quantity\":%u,\"price\":\"%lld.%02lld\","
                        "\"sku\":\"SKU-%06lld\"}]",
                  gen_pick(st, E_SH_PRODUCTS, pi, 44, PRODUCT_ADJ, 8),
                  gen_pick(st, E_SH_PRODUCTS, pi, 45, PRODUCT_NOUN, 10), qty,
                  (long long)(sub / qty / 100), (long long)(sub / qty % 100), (long long)pi);
    }
    em_rest(e);
}

static void record(struct req *r, const struct rec *rec, const struct sel *fields, sbuf *tmp)
{
    struct emit e;
    sb_putc(&r->out, '{');
    em_begin(&e, &r->out, fields, rec->ov);
    e.keep = rec->ent == E_SH_ORDERS ? "id,created_at,updated_at,admin_graphql_api_id,name,order_number,"
                                       "processed_at,currency,confirmed,test,cancel_reason,cancelled_at,closed_at"
                                     : "id,created_at,updated_at,admin_graphql_api_id,currency,published_scope";
    if (rec->ent == E_SH_CUSTOMERS)
        customer(&SB.store, rec, &e, tmp);
    else if (rec->ent == E_SH_PRODUCTS)
        product(&SB.store, rec, &e, tmp);
    else
        order(&SB.store, rec, &e, tmp);
    sb_putc(&r->out, '}');
}

/* ---- errors and limits ------------------------------------------------------ */

static void sh_error(struct req *r, enum err_kind kind, unsigned status, const char *msg)
{
    sbuf *b = &r->out;
    sb_reset(b);
    r->status = status;
    switch (kind) {
    case ERR_UNAUTHORIZED:
        sb_puts(b, "{\"errors\":\"[API] Invalid API key or access token (unrecognized login or wrong password)\"}");
        break;
    case ERR_RATE_LIMIT:
        req_header(r, "Retry-After", "%lld.0", (long long)r->retry_after);
        sb_puts(b, "{\"errors\":\"Exceeded 2 calls per second for api client. Reduce request rates to "
                   "resume uninterrupted service.\"}");
        break;
    case ERR_NOT_FOUND:
        sb_puts(b, "{\"errors\":\"Not Found\"}");
        break;
    case ERR_BAD_REQUEST:
        sb_puts(b, "{\"errors\":");
        sb_jstr(b, msg ? msg : "Bad Request");
        sb_putc(b, '}');
        break;
    default:
        sb_puts(b, status == 503 ? "{\"errors\":\"Service Unavailable\"}"
                                 : "{\"errors\":\"Internal Server Error\"}");
        break;
    }
}

static int sh_limits(struct req *r, struct sys_limits *l, ms_t now, int64_t *retry_s)
{
    /* Leaky bucket: 40 requests, drained at 2 per second. */
    if (l->bucket_at)
        l->bucket -= (double)(now - l->bucket_at) * 2.0 / 1000.0;
    if (l->bucket < 0)
        l->bucket = 0;
    l->bucket_at = now;
    int over = l->bucket + 1 > 40.0;
    if (!over)
        l->bucket += 1;
    int used = (int)(l->bucket + 0.999);
    req_header(r, "X-Shopify-Shop-Api-Call-Limit", "%d/40", used > 40 ? 40 : used);
    if (over)
        *retry_s = 1;
    return over;
}

static int sh_auth(struct req *r)
{
    const char *t = req_hdr(r, "X-Shopify-Access-Token");
    return t && token_ok(t, strlen(t));
}

/* ---- list, count, get -------------------------------------------------------- */

struct pi_check {
    const char *bad;
};

static void pi_arg(void *cls, const char *k, const char *v)
{
    (void)v;
    struct pi_check *c = cls;
    if (!c->bad && strcmp(k, "page_info") && strcmp(k, "limit") && strcmp(k, "fields"))
        c->bad = k;
}

struct filters {
    ms_t umin, umax;
    int64_t since;              /* index to start after, or -1 */
    enum status status;
};

static const char *read_filters(struct req *r, int ent, struct filters *f)
{
    f->umin = MS_MIN;
    f->umax = MS_MAX;
    f->since = -1;
    f->status = ent == E_SH_ORDERS ? ST_OPEN : ST_ANY;
    const char *v;
    if ((v = req_arg(r, "updated_at_min")) && time_parse(v, &f->umin))
        return "updated_at_min: invalid date";
    if ((v = req_arg(r, "updated_at_max")) && time_parse(v, &f->umax))
        return "updated_at_max: invalid date";
    if ((v = req_arg(r, "since_id"))) {
        int64_t idx;
        if (ent_id_parse(ent, v, &idx)) {
            /* An id below the first record: everything qualifies. */
            if (strspn(v, "0123456789") != strlen(v) || !*v)
                return "since_id: invalid value";
            idx = -1;
        }
        f->since = idx;
    }
    if (ent == E_SH_ORDERS && (v = req_arg(r, "status"))) {
        int k;
        for (k = 0; k < 4 && strcmp(v, STATUS_NAMES[k]); k++)
            ;
        if (k == 4)
            return "status: invalid value";
        f->status = (enum status)k;
    }
    return NULL;
}

static void filters_query(const struct filters *f, struct query *q)
{
    q->lo = f->umin;
    q->hi = f->umax;
    if (f->since >= 0) {
        q->has_after = 1;
        q->after_i = f->since;
    }
    if (q->ent == E_SH_ORDERS && f->status != ST_ANY) {
        q->pred = status_pred;
        q->pred_arg = &f->status;
    }
}

/* page_info: base64url JSON carrying the filters, direction and edge id. */
static void page_info(sbuf *out, const struct filters *f, int next, int64_t edge_index)
{
    sbuf j;
    sb_init(&j);
    sb_printf(&j, "{\"direction\":\"%s\",\"%s\":%lld", next ? "next" : "prev",
              next ? "last_id" : "first_id", (long long)edge_index);
    if (f->umin != MS_MIN)
        sb_printf(&j, ",\"updated_at_min\":%lld", (long long)f->umin);
    if (f->umax != MS_MAX)
        sb_printf(&j, ",\"updated_at_max\":%lld", (long long)f->umax);
    if (f->status != ST_ANY)
        sb_printf(&j, ",\"status\":\"%s\"", STATUS_NAMES[f->status]);
    sb_putc(&j, '}');
    sb_b64(out, j.p, j.len, 1);
    sb_free(&j);
}

static int page_info_parse(const char *s, struct filters *f, int *next, int64_t *edge)
{
    sbuf raw;
    sb_init(&raw);
    int rc = -1;
    json_object *o = NULL, *v;
    if (b64_decode(s, &raw) == 0 && (o = json_tokener_parse(raw.p)) &&
        json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "direction", &v)) {
        *next = strcmp(json_object_get_string(v), "next") == 0;
        if (json_object_object_get_ex(o, *next ? "last_id" : "first_id", &v)) {
            *edge = json_object_get_int64(v);
            f->umin = json_object_object_get_ex(o, "updated_at_min", &v) ? json_object_get_int64(v) : MS_MIN;
            f->umax = json_object_object_get_ex(o, "updated_at_max", &v) ? json_object_get_int64(v) : MS_MAX;
            f->status = ST_ANY;
            f->since = -1;
            if (json_object_object_get_ex(o, "status", &v))
                for (int k = 0; k < 4; k++)
                    if (strcmp(json_object_get_string(v), STATUS_NAMES[k]) == 0)
                        f->status = (enum status)k;
            rc = 0;
        }
    }
    json_object_put(o);
    sb_free(&raw);
    return rc;
}

static void link(sbuf *h, struct req *r, const char *ver, int ent, int64_t limit, const char *fields,
                 const struct filters *f, int next, int64_t edge)
{
    if (h->len)
        sb_puts(h, ", ");
    sb_printf(h, "<%s/shopify/admin/api/%s/%s.json?", r->base, ver, ENTITIES[ent].name);
    if (fields) {
        sb_puts(h, "fields=");
        sb_urlenc(h, fields);
        sb_putc(h, '&');
    }
    sb_puts(h, "page_info=");
    page_info(h, f, next, edge);
    sb_printf(h, "&limit=%lld>; rel=\"%s\"", (long long)limit, next ? "next" : "previous");
}

#define MAX_PAGE 250

static void list(struct req *r, const char *ver, int ent)
{
    int64_t limit;
    if (parse_limit(req_arg(r, "limit"), 50, MAX_PAGE, &limit))
        return sh_error(r, ERR_BAD_REQUEST, 400, "limit: invalid value");
    const char *pi = req_arg(r, "page_info");
    const char *fields_arg = req_arg(r, "fields");
    struct filters f;
    struct query q;
    query_init(&q, ent);
    int forward = 1;
    if (pi) {
        struct pi_check c = {NULL};
        req_args(r, pi_arg, &c);
        if (c.bad) {
            sbuf m;
            sb_init(&m);
            sb_printf(&m, "%s cannot be passed when page_info is present. See "
                          "https://shopify.dev/api/usage/pagination-rest for more information.", c.bad);
            sh_error(r, ERR_BAD_REQUEST, 400, m.p);
            sb_free(&m);
            return;
        }
        int64_t edge;
        if (page_info_parse(pi, &f, &forward, &edge))
            return sh_error(r, ERR_BAD_REQUEST, 400, "page_info: Invalid value.");
        filters_query(&f, &q);
        q.has_after = 1;
        q.after_i = edge;
        q.desc = !forward;
    } else {
        const char *err = read_filters(r, ent, &f);
        if (err)
            return sh_error(r, ERR_BAD_REQUEST, 400, err);
        filters_query(&f, &q);
    }

    /* Collect the page (backwards for a "previous" page), then render it in
     * ascending id order as Shopify does. */
    struct rec page[MAX_PAGE + 1];
    struct iter it;
    iter_init(&it, &SB.store, &q);
    int64_t n = 0;
    while (n < limit + 1 && iter_next(&it, &page[n]))
        n++;
    int more = n > limit;
    if (more)
        n = limit;
    if (!forward)
        for (int64_t a = 0, b = n - 1; a < b; a++, b--) {
            struct rec t = page[a];
            page[a] = page[b];
            page[b] = t;
        }
    int has_next = forward ? more : 1;
    int has_prev = forward ? 0 : more;
    if (forward && n) {
        /* Anything before the first record?  One step backwards tells. */
        struct query back = q;
        back.desc = 1;
        back.has_after = 1;
        back.after_i = page[0].index;
        struct iter bit;
        struct rec tmp;
        iter_init(&bit, &SB.store, &back);
        has_prev = iter_next(&bit, &tmp);
    }
    if (!forward && n == 0)
        has_next = 0;

    struct sel fields;
    sel_parse(&fields, fields_arg);
    sbuf tmp, lh;
    sb_init(&tmp);
    sb_init(&lh);
    sb_printf(&r->out, "{\"%s\":[", ENTITIES[ent].name);
    for (int64_t k = 0; k < n; k++) {
        if (k)
            sb_putc(&r->out, ',');
        record(r, &page[k], &fields, &tmp);
    }
    sb_puts(&r->out, "]}");
    if (n && has_prev)
        link(&lh, r, ver, ent, limit, fields_arg, &f, 0, page[0].index);
    if (n && has_next)
        link(&lh, r, ver, ent, limit, fields_arg, &f, 1, page[n - 1].index);
    if (lh.len)
        req_header(r, "Link", "%s", lh.p);
    sb_free(&lh);
    sb_free(&tmp);
    sel_free(&fields);
    r->status = 200;
    r->is_page = 1;
}

static void count(struct req *r, int ent)
{
    struct filters f;
    const char *err = read_filters(r, ent, &f);
    if (err)
        return sh_error(r, ERR_BAD_REQUEST, 400, err);
    struct query q;
    query_init(&q, ent);
    filters_query(&f, &q);
    q.has_after = 0;
    sb_printf(&r->out, "{\"count\":%lld}", (long long)query_count(&SB.store, &q));
    r->status = 200;
}

static void get_one(struct req *r, int ent, const char *id)
{
    int64_t idx;
    struct rec rec;
    if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived)
        return sh_error(r, ERR_NOT_FOUND, 404, NULL);
    struct sel fields;
    sel_parse(&fields, req_arg(r, "fields"));
    sbuf tmp;
    sb_init(&tmp);
    sb_printf(&r->out, "{\"%s\":", SINGULAR[ent - E_SH_CUSTOMERS]);
    record(r, &rec, &fields, &tmp);
    sb_putc(&r->out, '}');
    sb_free(&tmp);
    sel_free(&fields);
    r->status = 200;
    r->is_page = 1;
}

static void shop(struct req *r)
{
    sb_printf(&r->out,
              "{\"shop\":{\"id\":60001000001,\"name\":\"Sandbox Shop\",\"email\":\"owner@sandbox.example\","
              "\"domain\":\"sandbox.myshopify.com\",\"province\":\"\",\"country\":\"NO\","
              "\"address1\":\"Storgata 1\",\"zip\":\"0155\",\"city\":\"Oslo\",\"phone\":\"+47 22 00 00 00\","
              "\"created_at\":\"2023-06-01T09:00:00-04:00\",\"updated_at\":\"2024-01-01T00:00:00-04:00\","
              "\"country_code\":\"NO\",\"country_name\":\"Norway\",\"currency\":\"NOK\","
              "\"customer_email\":\"owner@sandbox.example\",\"timezone\":\"(GMT-05:00) Eastern Time (US & Canada)\","
              "\"iana_timezone\":\"America/New_York\",\"shop_owner\":\"Sandbox Owner\","
              "\"money_format\":\"kr {{amount}}\",\"weight_unit\":\"kg\",\"plan_name\":\"basic\","
              "\"plan_display_name\":\"Basic\",\"myshopify_domain\":\"sandbox.myshopify.com\","
              "\"primary_locale\":\"en\",\"has_storefront\":true,\"password_enabled\":false}}");
    r->status = 200;
}


/* ---- writes ------------------------------------------------------------------ */

#define READ_ONLY "id,created_at,updated_at,admin_graphql_api_id"

static void write(struct req *r, int ent, const char *id)
{
    const char *root = SINGULAR[ent - E_SH_CUSTOMERS];
    json_object *body = json_tokener_parse(r->body), *in = NULL;
    if (!body || !json_object_object_get_ex(body, root, &in) || !json_object_is_type(in, json_type_object)) {
        json_object_put(body);
        r->status = 400;
        sb_printf(&r->out, "{\"errors\":{\"%s\":\"Required parameter missing or invalid\"}}", root);
        return;
    }
    int64_t idx;
    struct rec rec;
    struct override *ov;
    if (id) {
        if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived) {
            json_object_put(body);
            return sh_error(r, ERR_NOT_FOUND, 404, NULL);
        }
        ov = store_touch(&SB.store, ent, idx);
    } else {
        ov = store_create(&SB.store, ent);
    }
    if (!ov || ov_set_json(ov, in, READ_ONLY)) {
        json_object_put(body);
        return sh_error(r, ERR_BAD_REQUEST, 422, "too many fields");
    }
    json_object_put(body);
    ov_written(&SB.store, ent, ov);
    rec_get(&SB.store, ent, ov->index, &rec);
    sbuf tmp;
    sb_init(&tmp);
    sb_printf(&r->out, "{\"%s\":", root);
    record(r, &rec, NULL, &tmp);
    sb_putc(&r->out, '}');
    sb_free(&tmp);
    r->status = id ? 200 : 201;
}

static void remove_one(struct req *r, int ent, const char *id)
{
    int64_t idx;
    struct rec rec;
    if (ent_id_parse(ent, id, &idx) || !rec_get(&SB.store, ent, idx, &rec) || rec.archived)
        return sh_error(r, ERR_NOT_FOUND, 404, NULL);
    struct override *ov = store_touch(&SB.store, ent, idx);
    if (ov) {
        ov->archived = 1;
        ov_written(&SB.store, ent, ov);
    }
    sb_puts(&r->out, "{}");
    r->status = 200;
}

static int valid_version(const char *v, size_t n)
{
    return n == 7 && isdigit((unsigned char)v[0]) && isdigit((unsigned char)v[1]) &&
           isdigit((unsigned char)v[2]) && isdigit((unsigned char)v[3]) && v[4] == '-' &&
           isdigit((unsigned char)v[5]) && isdigit((unsigned char)v[6]);
}

static void sh_handle(struct req *r)
{
    static const char pre[] = "/admin/api/";
    if (strncmp(r->path, pre, sizeof pre - 1) != 0)
        return sh_error(r, ERR_NOT_FOUND, 404, NULL);
    const char *ver = r->path + sizeof pre - 1;
    const char *slash = strchr(ver, '/');
    if (!slash || !valid_version(ver, (size_t)(slash - ver)))
        return sh_error(r, ERR_NOT_FOUND, 404, NULL);
    char version[8];
    memcpy(version, ver, 7);
    version[7] = '\0';
    req_header(r, "X-Shopify-API-Version", "%s", version);
    const char *rest = slash + 1;
    size_t len = strlen(rest);
    const char *m = r->method;
    int get = strcmp(m, "GET") == 0;
    if (strcmp(rest, "shop.json") == 0 && get)
        return shop(r);
    if (len < 6 || strcmp(rest + len - 5, ".json") != 0)
        return sh_error(r, ERR_NOT_FOUND, 404, NULL);
    char res[64], sub[64] = "";
    const char *s2 = strchr(rest, '/');
    if (s2) {
        snprintf(res, sizeof res, "%.*s", (int)(s2 - rest), rest);
        snprintf(sub, sizeof sub, "%.*s", (int)(len - (size_t)(s2 - rest) - 6), s2 + 1);
    } else {
        snprintf(res, sizeof res, "%.*s", (int)(len - 5), rest);
    }
    int ent = ent_by_name(SYS_SHOPIFY, res);
    if (ent < 0 || strchr(sub, '/'))
        return sh_error(r, ERR_NOT_FOUND, 404, NULL);
    if (!s2) {
        if (get)
            return list(r, version, ent);
        if (strcmp(m, "POST") == 0)
            return write(r, ent, NULL);
    } else if (strcmp(sub, "count") == 0) {
        if (get)
            return count(r, ent);
    } else {
        if (get)
            return get_one(r, ent, sub);
        if (strcmp(m, "PUT") == 0)
            return write(r, ent, sub);
        if (strcmp(m, "DELETE") == 0)
            return remove_one(r, ent, sub);
    }
    r->status = 406;
    sb_reset(&r->out);
}

const struct system_ops SHOPIFY_OPS = {
    .prefix = "/shopify",
    .auth_ok = sh_auth,
    .error = sh_error,
    .limits = sh_limits,
    .handle = sh_handle,
};
