/* HTTP plumbing: routing to the four systems, fault injection, simulated
 * rate-limit counters, statistics and the /_sandbox control API. */
#include "sandbox.h"
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct sandbox SB;

static const struct system_ops *const OPS[SYS_COUNT] = {
    [SYS_HUBSPOT] = &HUBSPOT_OPS,
    [SYS_SHOPIFY] = &SHOPIFY_OPS,
    [SYS_PIPEDRIVE] = &PIPEDRIVE_OPS,
    [SYS_DYNAMICS] = &DYNAMICS_OPS,
};

enum { INJ_FAIL_AFTER, INJ_UNAUTHORIZED, INJ_RATE_LIMIT, INJ_ENFORCED, INJ_ERROR,
       INJ_TRUNCATE, INJ_SLOW, INJ_COUNT };
static const char *const INJ_NAMES[INJ_COUNT] = {
    "fail_after", "unauthorized", "rate_limit", "enforced_limit", "error", "truncate", "slow",
};

/* ---- configuration ------------------------------------------------------- */

void faults_default(struct faults *f)
{
    memset(f, 0, sizeof *f);
    f->retry_after = 1;
    f->system = -1;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    if (strcmp(s, "true") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(s, "false") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

int faults_set(struct faults *f, const char *key, const char *val, char *err, size_t errlen)
{
    if (strcmp(key, "system") == 0) {
        if (!val || strcmp(val, "all") == 0 || strcmp(val, "*") == 0) {
            f->system = -1;
            return 0;
        }
        f->system = sys_by_name(val);
        if (f->system < 0) {
            snprintf(err, errlen, "unknown system '%s'", val);
            return -1;
        }
        return 0;
    }
    int64_t v;
    if (parse_i64(val, &v)) {
        snprintf(err, errlen, "fault '%s' needs a non-negative integer", key);
        return -1;
    }
    if (strcmp(key, "rate_limit_every") == 0) f->rate_limit_every = v;
    else if (strcmp(key, "error_every") == 0) f->error_every = v;
    else if (strcmp(key, "truncate_every") == 0) f->truncate_every = v;
    else if (strcmp(key, "fail_after") == 0) f->fail_after = v;
    else if (strcmp(key, "slow_ms") == 0) f->slow_ms = v > 600000 ? 600000 : v;
    else if (strcmp(key, "retry_after") == 0) f->retry_after = v;
    else if (strcmp(key, "unauthorized") == 0) f->unauthorized = v != 0;
    else if (strcmp(key, "enforce_limits") == 0) f->enforce_limits = v != 0;
    else {
        snprintf(err, errlen, "unknown fault '%s'", key);
        return -1;
    }
    return 0;
}

/* Splits "k=v,k=v" and hands each pair to fn. */
static int each_pair(const char *spec, int (*fn)(void *, const char *, const char *, char *, size_t),
                     void *cls, char *err, size_t errlen)
{
    char *copy = strdup(spec ? spec : "");
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t || strcmp(t, "none") == 0)
            continue;
        char *eq = strchr(t, '=');
        if (!eq) {
            snprintf(err, errlen, "'%s' is not key=value", t);
            rc = -1;
            break;
        }
        *eq = '\0';
        if ((rc = fn(cls, t, eq + 1, err, errlen)))
            break;
    }
    free(copy);
    return rc;
}

static int fault_pair(void *cls, const char *k, const char *v, char *err, size_t errlen)
{
    return faults_set(cls, k, v, err, errlen);
}

int faults_parse(struct faults *f, const char *spec, char *err, size_t errlen)
{
    return each_pair(spec, fault_pair, f, err, errlen);
}

static int record_pair(void *cls, const char *k, const char *v, char *err, size_t errlen)
{
    int64_t *counts = cls, n;
    if (parse_i64(v, &n) || n > MAX_RECORDS) {
        snprintf(err, errlen, "record count for '%s' must be 0..%lld", k, (long long)MAX_RECORDS);
        return -1;
    }
    /* "all", "hubspot", "hubspot:*" or "hubspot:contacts" */
    char sys[32] = "", ent[64] = "";
    const char *colon = strchr(k, ':');
    if (colon) {
        snprintf(sys, sizeof sys, "%.*s", (int)(colon - k), k);
        snprintf(ent, sizeof ent, "%s", colon + 1);
    } else {
        snprintf(sys, sizeof sys, "%s", k);
        snprintf(ent, sizeof ent, "*");
    }
    int s = strcmp(sys, "all") == 0 || strcmp(sys, "*") == 0 ? -1 : sys_by_name(sys);
    if (s < 0 && strcmp(sys, "all") && strcmp(sys, "*")) {
        snprintf(err, errlen, "unknown system '%s'", sys);
        return -1;
    }
    int hit = 0;
    for (int e = 0; e < E_COUNT; e++) {
        if (s >= 0 && (int)ENTITIES[e].sys != s)
            continue;
        if (strcmp(ent, "*") && strcmp(ent, ENTITIES[e].name))
            continue;
        counts[e] = n;
        hit = 1;
    }
    if (!hit) {
        snprintf(err, errlen, "unknown entity '%s'", k);
        return -1;
    }
    return 0;
}

int records_parse(int64_t counts[E_COUNT], const char *spec, char *err, size_t errlen)
{
    return each_pair(spec, record_pair, counts, err, errlen);
}

/* ---- request helpers ----------------------------------------------------- */

int64_t window_hit(struct window *w, int64_t len_ms, ms_t now)
{
    int64_t start = now - now % len_ms;
    if (w->start != start) {
        w->start = start;
        w->count = 0;
    }
    return ++w->count;
}

void req_header(struct req *r, const char *name, const char *fmt, ...)
{
    if (r->nheaders >= MAX_HEADERS)
        return;
    char *val = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&val, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Replace an earlier value: the error path may re-send Retry-After. */
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->hname[i], name) == 0) {
            free(r->hval[i]);
            r->hval[i] = val;
            return;
        }
    }
    r->hname[r->nheaders] = strdup(name);
    if (!r->hname[r->nheaders]) {
        free(val);
        return;
    }
    r->hval[r->nheaders++] = val;
}

const char *req_arg(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_hdr(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct args_cb {
    void (*fn)(void *, const char *, const char *);
    void *cls;
};

static enum MHD_Result args_iter(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    struct args_cb *a = cls;
    a->fn(a->cls, k, v);
    return MHD_YES;
}

void req_args(struct req *r, void (*fn)(void *, const char *, const char *), void *cls)
{
    struct args_cb a = {fn, cls};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, args_iter, &a);
}

int token_ok(const char *given, size_t len)
{
    if (!given || len != SB.token_len)
        return 0;
    return sodium_memcmp(given, SB.token, len) == 0;
}

int bearer_ok(struct req *r)
{
    const char *a = req_hdr(r, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    return token_ok(a, strlen(a));
}

void correlation_id(sbuf *b, uint64_t seq)
{
    uint64_t h = mix64(seq ^ 0xc0ffee), g = mix64(h);
    sb_printf(b, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(h >> 32), (unsigned)(h >> 16) & 0xffff,
              (unsigned)h & 0xfff, (unsigned)(g >> 52), (unsigned long long)(g & 0xffffffffffffULL));
}

int parse_limit(const char *s, int64_t def, int64_t max, int64_t *out)
{
    if (!s || !*s) {
        *out = def;
        return 0;
    }
    int64_t v;
    if (parse_i64(s, &v) || v < 1)
        return -1;
    /* The vendors cap silently rather than reject: so do we. */
    *out = v > max ? max : v;
    return 0;
}

/* ---- statistics ---------------------------------------------------------- */

#define MAX_ROUTES 256

static struct {
    char *name[MAX_ROUTES];
    uint64_t count[MAX_ROUTES];
    size_t n;
    uint64_t other;
    uint64_t status[600];
} STATS;

/* "GET /hubspot/crm/v3/objects/contacts/1234" -> ".../contacts/{id}", so the
 * table stays bounded however many records are fetched one by one. */
static void route_name(sbuf *b, const char *method, const char *url)
{
    sb_puts(b, method);
    sb_putc(b, ' ');
    const char *p = url;
    while (*p) {
        if (*p == '(') {
            const char *close = strchr(p, ')');
            sb_puts(b, "({id})");
            p = close ? close + 1 : p + strlen(p);
            continue;
        }
        if (*p == '/' && isdigit((unsigned char)p[1])) {
            const char *seg = p + 1, *end = seg;
            while (*end && *end != '/')
                end++;
            size_t dl = strspn(seg, "0123456789");
            if (seg + dl == end || (strncmp(seg + dl, ".json", 5) == 0 && seg + dl + 5 == end)) {
                sb_puts(b, "/{id}");
                sb_put(b, seg + dl, (size_t)(end - seg - (ptrdiff_t)dl));
                p = end;
                continue;
            }
        }
        sb_putc(b, *p++);
    }
}

static void stats_count(const char *method, const char *url, unsigned status)
{
    sbuf b;
    sb_init(&b);
    route_name(&b, method, url);
    pthread_mutex_lock(&SB.mu);
    if (status < 600)
        STATS.status[status]++;
    size_t i;
    for (i = 0; i < STATS.n; i++)
        if (strcmp(STATS.name[i], b.p) == 0)
            break;
    if (i == STATS.n && STATS.n < MAX_ROUTES) {
        STATS.name[i] = sb_steal(&b, NULL);
        STATS.count[i] = 0;
        STATS.n++;
    }
    if (i < STATS.n)
        STATS.count[i]++;
    else
        STATS.other++;
    pthread_mutex_unlock(&SB.mu);
    sb_free(&b);
}

static void stats_clear(void)
{
    for (size_t i = 0; i < STATS.n; i++)
        free(STATS.name[i]);
    memset(&STATS, 0, sizeof STATS);
}

/* ---- control API ---------------------------------------------------------- */

static void ctl_json(struct req *r, unsigned status, json_object *o)
{
    r->status = status;
    sb_puts(&r->out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static void ctl_error(struct req *r, unsigned status, const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    ctl_json(r, status, o);
}

static json_object *faults_json(const struct faults *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "rate_limit_every", json_object_new_int64(f->rate_limit_every));
    json_object_object_add(o, "retry_after", json_object_new_int64(f->retry_after));
    json_object_object_add(o, "error_every", json_object_new_int64(f->error_every));
    json_object_object_add(o, "unauthorized", json_object_new_int(f->unauthorized));
    json_object_object_add(o, "slow_ms", json_object_new_int64(f->slow_ms));
    json_object_object_add(o, "truncate_every", json_object_new_int64(f->truncate_every));
    json_object_object_add(o, "fail_after", json_object_new_int64(f->fail_after));
    json_object_object_add(o, "enforce_limits", json_object_new_int(f->enforce_limits));
    json_object_object_add(o, "system",
                           json_object_new_string(f->system < 0 ? "all" : SYSTEM_NAMES[f->system]));
    return o;
}

static void ctl_config_get(struct req *r)
{
    json_object *o = json_object_new_object();
    json_object *rec = json_object_new_object();
    size_t overrides = 0;
    pthread_rwlock_rdlock(&SB.store.lock);
    for (int e = 0; e < E_COUNT; e++) {
        char k[64];
        snprintf(k, sizeof k, "%s:%s", SYSTEM_NAMES[ENTITIES[e].sys], ENTITIES[e].name);
        json_object_object_add(rec, k, json_object_new_int64(SB.store.e[e].count));
        overrides += SB.store.e[e].n;
    }
    uint64_t seed = SB.store.seed;
    pthread_rwlock_unlock(&SB.store.lock);
    pthread_mutex_lock(&SB.mu);
    json_object *f = faults_json(&SB.faults);
    pthread_mutex_unlock(&SB.mu);
    json_object_object_add(o, "port", json_object_new_int((int)SB.port));
    json_object_object_add(o, "seed", json_object_new_int64((int64_t)seed));
    json_object_object_add(o, "records", rec);
    json_object_object_add(o, "overrides", json_object_new_int64((int64_t)overrides));
    json_object_object_add(o, "faults", f);
    ctl_json(r, 200, o);
}

static void apply_counts(const int64_t counts[E_COUNT])
{
    pthread_rwlock_wrlock(&SB.store.lock);
    for (int e = 0; e < E_COUNT; e++)
        if (counts[e] != SB.store.e[e].count)
            store_set_count(&SB.store, e, counts[e]);
    pthread_rwlock_unlock(&SB.store.lock);
}

static void ctl_config_post(struct req *r, json_object *body)
{
    char err[160] = "";
    json_object *jf = NULL, *jr = NULL;
    struct faults f;
    int set_faults = 0;
    pthread_mutex_lock(&SB.mu);
    f = SB.faults;
    pthread_mutex_unlock(&SB.mu);

    /* "faults" replaces the whole fault set, so a test states exactly what
     * it wants; an empty object or "none" turns everything off. */
    if (json_object_object_get_ex(body, "faults", &jf)) {
        set_faults = 1;
        faults_default(&f);
        if (json_object_is_type(jf, json_type_string)) {
            if (faults_parse(&f, json_object_get_string(jf), err, sizeof err))
                return ctl_error(r, 400, err);
        } else if (json_object_is_type(jf, json_type_object)) {
            json_object_object_foreach(jf, k, v) {
                if (faults_set(&f, k, json_object_get_string(v), err, sizeof err))
                    return ctl_error(r, 400, err);
            }
        } else if (!json_object_is_type(jf, json_type_null)) {
            return ctl_error(r, 400, "'faults' must be an object or a spec string");
        }
    }
    int64_t counts[E_COUNT];
    pthread_rwlock_rdlock(&SB.store.lock);
    for (int e = 0; e < E_COUNT; e++)
        counts[e] = SB.store.e[e].count;
    pthread_rwlock_unlock(&SB.store.lock);
    if (json_object_object_get_ex(body, "records", &jr)) {
        if (json_object_is_type(jr, json_type_string)) {
            if (records_parse(counts, json_object_get_string(jr), err, sizeof err))
                return ctl_error(r, 400, err);
        } else if (json_object_is_type(jr, json_type_object)) {
            json_object_object_foreach(jr, k, v) {
                if (record_pair(counts, k, json_object_get_string(v), err, sizeof err))
                    return ctl_error(r, 400, err);
            }
        } else {
            return ctl_error(r, 400, "'records' must be an object or a spec string");
        }
    }
    if (set_faults) {
        pthread_mutex_lock(&SB.mu);
        SB.faults = f;
        SB.fault_n = 0;
        SB.fault_pages = 0;
        pthread_mutex_unlock(&SB.mu);
    }
    apply_counts(counts);
    ctl_config_get(r);
}

static void ctl_touch(struct req *r, json_object *body)
{
    json_object *v;
    const char *sysname = json_object_object_get_ex(body, "system", &v) ? json_object_get_string(v) : NULL;
    const char *entname = json_object_object_get_ex(body, "entity", &v) ? json_object_get_string(v) : NULL;
    int s = sys_by_name(sysname);
    int e = s < 0 ? -1 : ent_by_name((enum sys)s, entname);
    if (e < 0)
        return ctl_error(r, 400, "unknown system/entity");
    int64_t index = -1;
    if (json_object_object_get_ex(body, "index", &v)) {
        index = json_object_get_int64(v);
    } else if (json_object_object_get_ex(body, "id", &v)) {
        if (ent_id_parse(e, json_object_get_string(v), &index))
            return ctl_error(r, 400, "bad id");
    } else {
        return ctl_error(r, 400, "need 'index' or 'id'");
    }
    ms_t when = -1;
    if (json_object_object_get_ex(body, "updated_at", &v)) {
        if (time_parse(json_object_get_string(v), &when) || when < 0)
            return ctl_error(r, 400, "bad updated_at");
        /* Whole seconds: Pipedrive, Shopify and Dataverse show no more. */
        when = when / 1000 * 1000;
    }
    json_object *fields = NULL;
    if (json_object_object_get_ex(body, "fields", &fields) &&
        !json_object_is_type(fields, json_type_object))
        return ctl_error(r, 400, "'fields' must be an object");

    pthread_rwlock_wrlock(&SB.store.lock);
    struct rec rec;
    if (!rec_get(&SB.store, e, index, &rec)) {
        pthread_rwlock_unlock(&SB.store.lock);
        return ctl_error(r, 404, "no such record");
    }
    struct override *ov = store_touch(&SB.store, e, index);
    if (!ov) {
        pthread_rwlock_unlock(&SB.store.lock);
        return ctl_error(r, 500, "out of memory");
    }
    /* Without an explicit time the record moves to "now", but never back:
     * with very large counts generated times can lie in the future. */
    if (when < 0)
        when = store_bump(rec.updated);
    ov->updated = when;
    ov->version++;
    if (json_object_object_get_ex(body, "archived", &v))
        ov->archived = json_object_get_boolean(v);
    int full = 0;
    if (fields) {
        json_object_object_foreach(fields, k, fv) {
            if (ov_set_field(ov, k, json_object_to_json_string_ext(fv, JSON_FLAGS)))
                full = 1;
        }
    }
    store_resort(&SB.store, e);
    pthread_rwlock_unlock(&SB.store.lock);
    if (full)
        return ctl_error(r, 400, "too many overridden fields");

    json_object *o = json_object_new_object();
    sbuf b;
    sb_init(&b);
    ent_id_fmt(&b, e, index);
    json_object_object_add(o, "system", json_object_new_string(SYSTEM_NAMES[s]));
    json_object_object_add(o, "entity", json_object_new_string(ENTITIES[e].name));
    json_object_object_add(o, "index", json_object_new_int64(index));
    json_object_object_add(o, "id", json_object_new_string(b.p));
    sb_reset(&b);
    time_fmt(&b, when, TS_Z);
    json_object_object_add(o, "updated_at", json_object_new_string(b.p));
    sb_free(&b);
    ctl_json(r, 200, o);
}

static void ctl_stats(struct req *r)
{
    json_object *o = json_object_new_object();
    json_object *paths = json_object_new_object();
    json_object *status = json_object_new_object();
    json_object *inj = json_object_new_object();
    pthread_mutex_lock(&SB.mu);
    json_object_object_add(o, "requests", json_object_new_int64((int64_t)SB.requests));
    for (size_t i = 0; i < STATS.n; i++)
        json_object_object_add(paths, STATS.name[i], json_object_new_int64((int64_t)STATS.count[i]));
    if (STATS.other)
        json_object_object_add(paths, "(other)", json_object_new_int64((int64_t)STATS.other));
    for (int s = 0; s < 600; s++) {
        if (STATS.status[s]) {
            char k[8];
            snprintf(k, sizeof k, "%d", s);
            json_object_object_add(status, k, json_object_new_int64((int64_t)STATS.status[s]));
        }
    }
    for (int i = 0; i < INJ_COUNT; i++)
        json_object_object_add(inj, INJ_NAMES[i], json_object_new_int64((int64_t)SB.injected[i]));
    json_object_object_add(o, "by_path", paths);
    json_object_object_add(o, "by_status", status);
    json_object_object_add(o, "faults_injected", inj);
    json_object_object_add(o, "fault_counter", json_object_new_int64((int64_t)SB.fault_n));
    json_object_object_add(o, "pages_served", json_object_new_int64((int64_t)SB.fault_pages));
    json_object_object_add(o, "connections", json_object_new_int64((int64_t)SB.conn_total));
    json_object_object_add(o, "open_connections", json_object_new_int64(SB.conn_open));
    pthread_mutex_unlock(&SB.mu);
    ctl_json(r, 200, o);
}

static void ctl_reset(struct req *r)
{
    pthread_rwlock_wrlock(&SB.store.lock);
    store_clear_overrides(&SB.store);
    for (int e = 0; e < E_COUNT; e++)
        SB.store.e[e].count = SB.start_counts[e];
    pthread_rwlock_unlock(&SB.store.lock);
    pthread_mutex_lock(&SB.mu);
    SB.faults = SB.start_faults;
    SB.fault_n = SB.fault_pages = 0;
    SB.requests = 0;
    memset(SB.injected, 0, sizeof SB.injected);
    memset(SB.limits, 0, sizeof SB.limits);
    stats_clear();
    pthread_mutex_unlock(&SB.mu);
    sb_puts(&r->out, "{\"ok\":true}");
    r->status = 200;
}

static void control(struct req *r, const char *what)
{
    int get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
    json_object *body = NULL;
    if (post) {
        body = r->body_len ? json_tokener_parse(r->body) : json_object_new_object();
        if (!body || !json_object_is_type(body, json_type_object)) {
            json_object_put(body);
            return ctl_error(r, 400, "body must be a JSON object");
        }
    }
    if (get && strcmp(what, "stats") == 0) ctl_stats(r);
    else if (get && strcmp(what, "config") == 0) ctl_config_get(r);
    else if (post && strcmp(what, "config") == 0) ctl_config_post(r, body);
    else if (post && strcmp(what, "touch") == 0) ctl_touch(r, body);
    else if (post && strcmp(what, "reset") == 0) ctl_reset(r);
    else ctl_error(r, 404, "unknown control endpoint");
    json_object_put(body);
}

/* ---- the request pipeline ------------------------------------------------- */

struct conn_ctx {
    sbuf body;
    int too_big;
};

#define MAX_BODY (8u << 20)

static void set_base(struct req *r)
{
    const char *host = req_hdr(r, "Host");
    /* Links are absolute, built from the Host the client used, as the
     * vendors do; anything odd falls back to our own address. */
    if (host && *host && strlen(host) < 100 &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
            strlen(host))
        snprintf(r->base, sizeof r->base, "http://%s", host);
    else
        snprintf(r->base, sizeof r->base, "http://127.0.0.1:%u", SB.port);
}

static void api(struct req *r)
{
    const struct system_ops *ops = OPS[r->sys];
    ms_t now = now_ms();
    int64_t enforced_retry = 1;

    pthread_mutex_lock(&SB.mu);
    r->seq = ++SB.seq;
    SB.requests++;
    struct faults f = SB.faults;
    int scoped = f.system < 0 || f.system == r->sys;
    uint64_t n = scoped ? ++SB.fault_n : 0;
    int failed = scoped && f.fail_after && SB.fault_pages >= (uint64_t)f.fail_after;
    int over = SB.unlimited ? 0 : ops->limits(r, &SB.limits[r->sys], now, &enforced_retry);
    pthread_mutex_unlock(&SB.mu);

    int inj = -1;
    if (failed) {
        inj = INJ_FAIL_AFTER;
        ops->error(r, ERR_UNAVAILABLE, 503, NULL);
    } else if ((scoped && f.unauthorized) || !ops->auth_ok(r)) {
        if (scoped && f.unauthorized)
            inj = INJ_UNAUTHORIZED;
        ops->error(r, ERR_UNAUTHORIZED, 401, NULL);
    } else if (scoped && f.rate_limit_every && n % (uint64_t)f.rate_limit_every == 0) {
        inj = INJ_RATE_LIMIT;
        r->retry_after = f.retry_after;
        ops->error(r, ERR_RATE_LIMIT, 429, NULL);
    } else if (f.enforce_limits && over) {
        inj = INJ_ENFORCED;
        r->retry_after = enforced_retry;
        ops->error(r, ERR_RATE_LIMIT, 429, NULL);
    } else if (scoped && f.error_every && n % (uint64_t)f.error_every == 0) {
        inj = INJ_ERROR;
        /* Alternate, so clients see both of the usual transient codes. */
        unsigned code = (n / (uint64_t)f.error_every) % 2 ? 500 : 503;
        ops->error(r, code == 500 ? ERR_SERVER : ERR_UNAVAILABLE, code, NULL);
    } else {
        /* Writes change overrides: they exclude readers for their duration. */
        if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
            pthread_rwlock_rdlock(&SB.store.lock);
        else
            pthread_rwlock_wrlock(&SB.store.lock);
        ops->handle(r);
        pthread_rwlock_unlock(&SB.store.lock);
    }
    int ok = r->status >= 200 && r->status < 300;
    if (ok && scoped && f.truncate_every && n % (uint64_t)f.truncate_every == 0 && r->out.len) {
        inj = INJ_TRUNCATE;
        r->out.len /= 2;
        r->out.p[r->out.len] = '\0';
    }
    pthread_mutex_lock(&SB.mu);
    if (ok && r->is_page && scoped)
        SB.fault_pages++;
    if (inj >= 0)
        SB.injected[inj]++;
    if (scoped && f.slow_ms)
        SB.injected[INJ_SLOW]++;
    pthread_mutex_unlock(&SB.mu);
    if (scoped && f.slow_ms) {
        struct timespec ts = {f.slow_ms / 1000, (long)(f.slow_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR)
            ;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls)
{
    (void)cls;
    (void)version;
    struct conn_ctx *ctx = *req_cls;
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        sb_init(&ctx->body);
        *req_cls = ctx;
        return MHD_YES;
    }
    if (*upload_size) {
        if (ctx->body.len + *upload_size > MAX_BODY)
            ctx->too_big = 1;
        else
            sb_put(&ctx->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }

    struct req r;
    memset(&r, 0, sizeof r);
    r.conn = conn;
    r.method = method;
    r.body = ctx->body.p ? ctx->body.p : "";
    r.body_len = ctx->body.len;
    r.status = 404;
    r.ctype = "application/json;charset=utf-8";
    r.sys = -1;
    sb_init(&r.out);
    set_base(&r);

    if (ctx->too_big) {
        r.status = 413;
        sb_puts(&r.out, "{\"error\":\"request body too large\"}");
    } else if (strncmp(url, "/_sandbox/", 10) == 0) {
        r.ctype = "application/json";
        control(&r, url + 10);
    } else {
        for (int s = 0; s < SYS_COUNT; s++) {
            size_t pl = strlen(OPS[s]->prefix);
            if (strncmp(url, OPS[s]->prefix, pl) == 0 && (url[pl] == '/' || url[pl] == '\0')) {
                r.sys = s;
                r.path = url + pl;
                break;
            }
        }
        if (r.sys >= 0) {
            api(&r);
            stats_count(method, url, r.status);
        } else {
            r.ctype = "application/json";
            sb_puts(&r.out, "{\"error\":\"unknown system: use /hubspot, /shopify, /pipedrive or /dynamics\"}");
        }
    }
    if (SB.verbose)
        fprintf(stderr, "sandbox: %s %s -> %u\n", method, url, r.status);

    size_t len;
    char *body = sb_steal(&r.out, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    enum MHD_Result ret = MHD_NO;
    if (resp) {
        if (len)
            MHD_add_response_header(resp, "Content-Type", r.ctype);
        for (size_t i = 0; i < r.nheaders; i++)
            MHD_add_response_header(resp, r.hname[i], r.hval[i]);
        ret = MHD_queue_response(conn, r.status, resp);
        MHD_destroy_response(resp);
    } else {
        free(body);
    }
    for (size_t i = 0; i < r.nheaders; i++) {
        free(r.hname[i]);
        free(r.hval[i]);
    }
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_ctx *ctx = *req_cls;
    if (ctx) {
        sb_free(&ctx->body);
        free(ctx);
        *req_cls = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)socket_ctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        /* MHD writes headers and body separately: without TCP_NODELAY,
         * Nagle holds the body until the client's delayed ACK (40 ms a
         * response on keep-alive connections). Real APIs don't stall so. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) {
            int one = 1;
            setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    pthread_mutex_lock(&SB.mu);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        SB.conn_total++;
        SB.conn_open++;
    } else {
        SB.conn_open--;
    }
    pthread_mutex_unlock(&SB.mu);
}

struct MHD_Daemon *server_start(unsigned port)
{
    /* Bind first, so SB.port is known before MHD starts any thread. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 256) ||
        getsockname(fd, (struct sockaddr *)&sa, &len)) {
        close(fd);
        return NULL;
    }
    SB.port = ntohs(sa.sin_port);
    /* A thread per connection: keep-alive clients get a dedicated worker and
     * slow_ms delays one connection without stalling the others. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | (SB.verbose ? MHD_USE_ERROR_LOG : 0),
        0, NULL, NULL, on_request, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
        MHD_OPTION_END);
    if (!d)
        close(fd);
    return d;
}

void server_free(void)
{
    stats_clear();
}
