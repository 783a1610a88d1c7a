/* The HTTP transport over libcurl's easy interface.
 *
 * Connections: each pooled easy handle keeps its own connection cache, and
 * the pool hands out the most recently returned handle first, so a thread
 * doing sequential requests keeps reusing one keep-alive connection. The
 * share object holds only the DNS cache and TLS sessions: libcurl does not
 * support sharing the connection cache between concurrently running
 * threads (CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT).
 *
 * Outbound safety is enforced where the address is known for certain: in
 * the open-socket callback, after DNS resolution, for every connection
 * (redirects included), so DNS rebinding cannot slip past a check made on
 * the name. IP literals and localhost names are also refused up front and
 * in redirect Location headers, which is the only check possible when a
 * proxy does the resolving.
 *
 * Redirects are followed here, not by libcurl (CURLOPT_FOLLOWLOCATION is
 * off): libcurl drops only Authorization and Cookie on a change of host,
 * while requests carry credentials in other headers too (X-Shopify-Access-
 * Token, x-api-token, X-Api-Key). Each hop is planned by plan_redirect():
 * a change of scheme, host or port drops every header is_secret_header()
 * flags, a body is never sent to another origin, https -> http is refused,
 * and the next URL gets the same checks as the first one. */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "crypto.h"
#include "error.h"
#include "http.h"
#include "json.h"
#include "util.h"

#ifndef INTEG_VERSION
#define INTEG_VERSION "0"
#endif

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RETRIES 4
#define DEFAULT_MAX_RESPONSE ((size_t)64 * 1024 * 1024)
#define DEFAULT_MAX_REDIRECTS 5
#define MAX_RETRIES_LIMIT 20
#define MAX_REDIRECTS_LIMIT 50

#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 30000
#define RETRY_AFTER_CAP_MS 300000
/* Longer waits for our own budget fail the call instead of parking a
 * worker thread (the scheduler retries later). */
#define MAX_BUCKET_WAIT_MS 300000
#define MAX_BUCKET_SPINS 1000

#define MAX_HEADERS 500
#define MAX_HEADER_BYTES (256 * 1024)
#define POOL_MAX_IDLE 64
#define MSG_MAX 1024
#define REMOTE_MSG_MAX 300
#define REMOTE_TEXT_MAX 200
#define MAX_SECRETS 16

/* ------------------------------------------------------------------ clock */

static int64_t sys_now_ms(void *payload)
{
    (void)payload;
    return ig_now_ms();
}

static void sys_sleep_ms(void *payload, int64_t ms)
{
    (void)payload;
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static uint32_t sys_random(void *payload)
{
    (void)payload;
    return randombytes_random();
}

const ig_clock ig_clock_system = {sys_now_ms, sys_sleep_ms, sys_random, NULL};

/* ---------------------------------------------------------------- options */

static void opts_defaults(ig_http_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    o->max_retries = DEFAULT_MAX_RETRIES;
    o->max_response_bytes = DEFAULT_MAX_RESPONSE;
    o->max_redirects = DEFAULT_MAX_REDIRECTS;
}

static int opt_int(json_object *j, const char *key, int64_t max, int64_t *io)
{
    json_object *v = ig_json_get(j, key);
    if (!v)
        return INTEG_OK;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
        json_object_get_int64(v) > max)
        return ig_err(INTEG_EINVAL, "options.http.%s: must be an integer from 0 to %lld", key,
                      (long long)max);
    *io = json_object_get_int64(v);
    return INTEG_OK;
}

static int opt_str(json_object *j, const char *key, const char **io)
{
    json_object *v = ig_json_get(j, key);
    if (!v)
        return INTEG_OK;
    if (!json_object_is_type(v, json_type_string))
        return ig_err(INTEG_EINVAL, "options.http.%s: must be a string", key);
    /* An empty string means "not set", like an absent key. */
    const char *s = json_object_get_string(v);
    *io = *s ? s : NULL;
    return INTEG_OK;
}

int ig_http_opts_from_json(json_object *http_options, ig_http_opts *out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    ig_http_opts o;
    opts_defaults(&o);
    json_object *j = http_options;
    if (j) {
        if (!json_object_is_type(j, json_type_object))
            return ig_err(INTEG_EINVAL, "options.http: must be an object");
        int64_t timeout = o.timeout_ms, connect = o.connect_timeout_ms, retries = o.max_retries;
        int rc;
        if ((rc = opt_int(j, "timeout_ms", 3600000, &timeout)) ||
            (rc = opt_int(j, "connect_timeout_ms", 3600000, &connect)) ||
            (rc = opt_int(j, "max_retries", MAX_RETRIES_LIMIT, &retries)) ||
            (rc = opt_str(j, "ca_file", &o.ca_file)) || (rc = opt_str(j, "proxy", &o.proxy)) ||
            (rc = opt_str(j, "user_agent", &o.user_agent)))
            return rc;
        /* 0 keeps the default rather than meaning "no timeout". */
        if (timeout > 0)
            o.timeout_ms = (long)timeout;
        if (connect > 0)
            o.connect_timeout_ms = (long)connect;
        o.max_retries = (int)retries;
        json_object *apn = ig_json_get(j, "allow_private_networks");
        if (apn) {
            if (!json_object_is_type(apn, json_type_boolean))
                return ig_err(INTEG_EINVAL,
                              "options.http.allow_private_networks: must be a boolean");
            o.allow_private_networks = json_object_get_boolean(apn);
        }
    }
    *out = o;
    return INTEG_OK;
}

/* ---------------------------------------------------------------- handle */

struct ig_http {
    ig_http_opts opts; /* string fields point at the copies below */
    char *ca_file, *proxy, *user_agent;
    const ig_clock *clock;

    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    int n_share_mu;

    pthread_mutex_t pool_mu;
    int pool_mu_ok;
    CURL **idle; /* a stack: the last returned handle has the warmest connection */
    size_t n_idle, cap_idle;
};

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *userptr)
{
    (void)e;
    (void)access;
    ig_http *h = userptr;
    if ((int)data >= 0 && (int)data < h->n_share_mu)
        pthread_mutex_lock(&h->share_mu[data]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *userptr)
{
    (void)e;
    ig_http *h = userptr;
    if ((int)data >= 0 && (int)data < h->n_share_mu)
        pthread_mutex_unlock(&h->share_mu[data]);
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s || !*s)
        return 0;
    *out = strdup(s);
    return *out ? 0 : -1;
}

int ig_http_new(const ig_http_opts *opts, ig_http **out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    *out = NULL;
    int rc = ig_global_init();
    if (rc)
        return rc;
    ig_http_opts d;
    opts_defaults(&d);
    const ig_http_opts *o = opts ? opts : &d;
    if (o->timeout_ms < 0 || o->connect_timeout_ms < 0)
        return ig_err(INTEG_EINVAL, "http: timeouts must be >= 0");
    if (o->max_retries < 0 || o->max_retries > MAX_RETRIES_LIMIT)
        return ig_err(INTEG_EINVAL, "http.max_retries: must be from 0 to %d", MAX_RETRIES_LIMIT);
    if (o->max_redirects < 0 || o->max_redirects > MAX_REDIRECTS_LIMIT)
        return ig_err(INTEG_EINVAL, "http.max_redirects: must be from 0 to %d",
                      MAX_REDIRECTS_LIMIT);

    ig_http *h = calloc(1, sizeof *h);
    if (!h)
        return ig_err(INTEG_ENOMEM, "out of memory");
    h->opts = *o;
    if (h->opts.timeout_ms == 0)
        h->opts.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (h->opts.connect_timeout_ms == 0)
        h->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (h->opts.max_response_bytes == 0)
        h->opts.max_response_bytes = DEFAULT_MAX_RESPONSE;
    if (h->opts.max_response_bytes > SIZE_MAX / 2) /* room for the NUL and doubling */
        h->opts.max_response_bytes = SIZE_MAX / 2;
    h->clock = o->clock ? o->clock : &ig_clock_system;
    h->opts.clock = h->clock;
    if (dup_opt(o->ca_file, &h->ca_file) || dup_opt(o->proxy, &h->proxy) ||
        dup_opt(o->user_agent && *o->user_agent ? o->user_agent
                                                : "libintegrations/" INTEG_VERSION,
                &h->user_agent)) {
        ig_http_free(h);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    h->opts.ca_file = h->ca_file;
    h->opts.proxy = h->proxy;
    h->opts.user_agent = h->user_agent;

    if (pthread_mutex_init(&h->pool_mu, NULL) != 0) {
        ig_http_free(h);
        return ig_err(INTEG_EINTERNAL, "http: mutex init failed");
    }
    h->pool_mu_ok = 1;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        if (pthread_mutex_init(&h->share_mu[i], NULL) != 0) {
            ig_http_free(h);
            return ig_err(INTEG_EINTERNAL, "http: mutex init failed");
        }
        h->n_share_mu = i + 1;
    }
    h->share = curl_share_init();
    if (!h->share || curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) ||
        curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
        curl_share_setopt(h->share, CURLSHOPT_USERDATA, (void *)h) ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) {
        ig_http_free(h);
        return ig_err(INTEG_EINTERNAL, "http: could not set up the libcurl share");
    }
    *out = h;
    return INTEG_OK;
}

void ig_http_free(ig_http *h)
{
    if (!h)
        return;
    /* Easy handles first: they detach from the share on cleanup. */
    for (size_t i = 0; i < h->n_idle; i++)
        curl_easy_cleanup(h->idle[i]);
    free(h->idle);
    if (h->share)
        curl_share_cleanup(h->share);
    for (int i = 0; i < h->n_share_mu; i++)
        pthread_mutex_destroy(&h->share_mu[i]);
    if (h->pool_mu_ok)
        pthread_mutex_destroy(&h->pool_mu);
    free(h->ca_file);
    free(h->proxy);
    free(h->user_agent);
    free(h);
}

static CURL *pool_take(ig_http *h)
{
    CURL *e = NULL;
    pthread_mutex_lock(&h->pool_mu);
    if (h->n_idle > 0)
        e = h->idle[--h->n_idle];
    pthread_mutex_unlock(&h->pool_mu);
    return e ? e : curl_easy_init();
}

static void pool_give(ig_http *h, CURL *e)
{
    /* Drop pointers into the caller's stack frame now; live connections
     * survive the reset. */
    curl_easy_reset(e);
    pthread_mutex_lock(&h->pool_mu);
    if (h->n_idle == h->cap_idle && h->cap_idle < POOL_MAX_IDLE) {
        size_t cap = h->cap_idle ? h->cap_idle * 2 : 4;
        CURL **n = realloc(h->idle, cap * sizeof *n);
        if (n) {
            h->idle = n;
            h->cap_idle = cap;
        }
    }
    if (h->n_idle < h->cap_idle) {
        h->idle[h->n_idle++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&h->pool_mu);
    if (e)
        curl_easy_cleanup(e);
}

/* -------------------------------------------------------------- text bits */

typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (b->cap == 0)
        return;
    size_t room = b->cap - 1 - b->len;
    if (n > room)
        n = room;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode a query component ('+' is a space). Returns the decoded length,
 * or (size_t)-1 when it does not fit in cap bytes with the NUL or holds
 * a NUL byte. */
static size_t query_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+')
            c = ' ';
        else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return (size_t)-1;
        out[o++] = (char)c;
    }
    if (cap)
        out[o] = '\0';
    return o;
}

int ig_url_unreserved(int c)
{
    return c < 0x80 && (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~');
}

char *ig_pct_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (ig_url_unreserved(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Query parameter names whose values are credentials. */
static int is_secret_name(const char *raw, size_t n)
{
    static const char *const exact[] = {"key", "code", "sig", "auth", "pwd", "jwt", "assertion",
                                        "session", "sessionid", NULL};
    static const char *const parts[] = {"token", "secret", "password", "passwd", "signature",
                                        "apikey", "api_key", "api-key", "credential", NULL};
    char name[128];
    if (query_decode(raw, n, name, sizeof name) == (size_t)-1)
        return 1; /* unreadable: better hidden */
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (int i = 0; exact[i]; i++)
        if (strcmp(name, exact[i]) == 0)
            return 1;
    for (int i = 0; parts[i]; i++)
        if (strstr(name, parts[i]))
            return 1;
    return 0;
}

/* Append query `q` with the values of secret-named parameters replaced. */
static void sb_add_redacted_query(sbuf *b, const char *q)
{
    const char *p = q;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t name_len = eq ? (size_t)(eq - p) : n;
        if (eq && is_secret_name(p, name_len)) {
            sb_addn(b, p, name_len);
            sb_add(b, "=REDACTED");
        } else {
            sb_addn(b, p, n);
        }
        if (!end)
            break;
        sb_add(b, "&");
        p = end + 1;
    }
}

/* A URL fit for a message: no user info, no fragment, secret query values
 * redacted. */
static void display_url(const char *url, char *out, size_t cap)
{
    sbuf b = {out, cap, 0};
    out[0] = '\0';
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    if (!u || !url ||
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_GUESS_SCHEME) ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0)) {
        sb_add(&b, "(unparseable URL)");
    } else {
        sb_add(&b, scheme);
        sb_add(&b, "://");
        sb_add(&b, host);
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
            sb_add(&b, ":");
            sb_add(&b, port);
        }
        if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
            sb_add(&b, path);
        if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && *query) {
            sb_add(&b, "?");
            sb_add_redacted_query(&b, query);
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
}

/* Known secret values of one request, scrubbed from its messages by value. */
typedef struct secrets {
    char *v[MAX_SECRETS];
    size_t n;
} secrets;

static void secrets_add(secrets *s, const char *v, size_t n)
{
    /* Very short values would scrub ordinary words. */
    if (n < 4 || s->n >= MAX_SECRETS)
        return;
    char *c = malloc(n + 1);
    if (!c)
        return;
    memcpy(c, v, n);
    c[n] = '\0';
    s->v[s->n++] = c;
}

static void secrets_free(secrets *s)
{
    for (size_t i = 0; i < s->n; i++) {
        sodium_memzero(s->v[i], strlen(s->v[i]));
        free(s->v[i]);
    }
    s->n = 0;
}

static int is_secret_header(const char *name)
{
    static const char *const parts[] = {"authorization", "token", "secret", "key", "cookie",
                                        "signature",     "password", "auth", NULL};
    /* The whole name, however long: a redirect drops what this flags. */
    for (int k = 0; parts[k]; k++)
        if (strcasestr(name, parts[k]))
            return 1;
    return 0;
}

static void collect_secrets(const ig_http_request *req, secrets *s)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *v = req->headers[i].value;
        if (!v || !req->headers[i].name || !is_secret_header(req->headers[i].name))
            continue;
        secrets_add(s, v, strlen(v));
        const char *sp = strchr(v, ' '); /* "Bearer <token>": the token alone too */
        if (sp)
            secrets_add(s, sp + 1, strlen(sp + 1));
    }
    const char *q = strchr(req->url, '?');
    if (!q)
        return;
    const char *p = q + 1;
    while (*p && *p != '#') {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        if (eq && is_secret_name(p, (size_t)(eq - p))) {
            size_t vn = n - (size_t)(eq + 1 - p);
            secrets_add(s, eq + 1, vn);
            char dec[512];
            size_t dn = query_decode(eq + 1, vn, dec, sizeof dec);
            if (dn != (size_t)-1)
                secrets_add(s, dec, dn);
            sodium_memzero(dec, sizeof dec);
        }
        p += n;
        if (*p == '&')
            p++;
    }
}

static int ci_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Redact credentials in free text: known values, "Bearer x" / "Basic x",
 * and secret-named "name=value" pairs. In place. */
static void redact_text(char *msg, size_t cap, const secrets *s)
{
    char tmp[MSG_MAX];
    /* Known values first: they may appear anywhere. */
    static const char rep[] = "REDACTED";
    for (size_t i = 0; s && i < s->n; i++) {
        size_t vl = strlen(s->v[i]);
        char *from = msg, *hit;
        while ((hit = strstr(from, s->v[i]))) {
            size_t pos = (size_t)(hit - msg);
            if (pos + sizeof rep > cap) {
                *hit = '\0';
                break;
            }
            size_t tail = strlen(hit + vl);
            if (pos + sizeof rep + tail > cap)
                tail = cap - pos - sizeof rep;
            memmove(hit + sizeof rep - 1, hit + vl, tail);
            memcpy(hit, rep, sizeof rep - 1);
            hit[sizeof rep - 1 + tail] = '\0';
            from = hit + sizeof rep - 1;
        }
    }
    sbuf b = {tmp, sizeof tmp < cap ? sizeof tmp : cap, 0};
    tmp[0] = '\0';
    const char *p = msg;
    while (*p) {
        int boundary = p == msg || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        if (boundary && (ci_prefix(p, "Bearer ") || ci_prefix(p, "Basic "))) {
            const char *sp = strchr(p, ' ') + 1;
            const char *end = sp + strcspn(sp, " \t\"',;)]}");
            if (end > sp) {
                sb_addn(&b, p, (size_t)(sp - p));
                sb_add(&b, "REDACTED");
                p = end;
                continue;
            }
        }
        if (boundary && (isalnum((unsigned char)*p) || *p == '_')) {
            size_t nl = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789_-.%");
            if (p[nl] == '=' && is_secret_name(p, nl)) {
                const char *v = p + nl + 1;
                const char *end = v + strcspn(v, "& \t\"',;)#\r\n");
                sb_addn(&b, p, nl + 1);
                sb_add(&b, "REDACTED");
                p = end;
                continue;
            }
            sb_addn(&b, p, nl);
            p += nl;
            continue;
        }
        sb_addn(&b, p, 1);
        p++;
    }
    snprintf(msg, cap, "%s", tmp);
}

/* One line, at most `max` bytes (cut on a UTF-8 boundary, "..." added). */
static void one_line(char *s, size_t max)
{
    char *o = s;
    int space = 1; /* drops leading blanks */
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space)
                *o++ = ' ';
            space = 1;
        } else {
            *o++ = (char)c;
            space = 0;
        }
    }
    while (o > s && o[-1] == ' ')
        o--;
    *o = '\0';
    size_t n = (size_t)(o - s);
    if (n > max) {
        size_t cut = max - 3;
        while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
            cut--;
        memcpy(s + cut, "...", 4);
    }
}

/* ------------------------------------------------------------ address check */

static int v4_private(uint32_t a)
{
    unsigned top = a >> 24;
    return top == 0 || top == 10 || top == 127 ||
           (a & 0xffc00000u) == 0x64400000u || /* 100.64/10 CGNAT */
           (a & 0xffff0000u) == 0xa9fe0000u || /* 169.254/16 link-local, metadata */
           (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
           (a & 0xffff0000u) == 0xc0a80000u || /* 192.168/16 */
           top >= 224;                         /* multicast, reserved, broadcast */
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int v6_private(const unsigned char b[16])
{
    static const unsigned char zero[12];
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if ((b[0] & 0xfe) == 0xfc)                       /* fc00::/7 unique local */
        return 1;
    if (b[0] == 0xfe && (b[1] & 0x80) == 0x80)       /* fe80::/10, fec0::/10 */
        return 1;
    if (b[0] == 0xff)                                /* multicast */
        return 1;
    if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) /* v4-mapped */
        return v4_private(v4_at(b + 12));
    if (memcmp(b, zero, 8) == 0 && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
        return v4_private(v4_at(b + 12));            /* v4-translated */
    if (memcmp(b, zero, 12) == 0)                    /* ::, ::1, v4-compatible */
        return 1;
    if (memcmp(b, nat64, 12) == 0)                   /* 64:ff9b::/96 NAT64 */
        return v4_private(v4_at(b + 12));
    if (b[0] == 0x20 && b[1] == 0x02)                /* 2002::/16 6to4 */
        return v4_private(v4_at(b + 2));
    return 0;
}

/* 1 if the socket address must be refused; `txt` gets "addr:port". */
static int sockaddr_refused(const struct sockaddr *sa, char *txt, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(txt, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
        return v4_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(txt, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
        return v6_private(in6->sin6_addr.s6_addr);
    }
    snprintf(txt, cap, "an address of family %d", (int)sa->sa_family);
    return 1;
}

/* A URL host (as CURLU gives it: IPv6 in brackets) that is certainly
 * private without resolving it. Names count only when `names` is set
 * (through a proxy the socket check cannot see the destination). */
static int host_refused(const char *host, int names)
{
    unsigned char buf[16];
    char tmp[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        char *zone = strchr(tmp, '%');
        if (zone)
            *zone = '\0';
        return inet_pton(AF_INET6, tmp, buf) == 1 ? v6_private(buf) : 1;
    }
    if (inet_pton(AF_INET, host, buf) == 1)
        return v4_private(v4_at(buf));
    if (!names)
        return 0;
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return 1;
    const char *suffix = ".localhost";
    size_t sl = strlen(suffix);
    return n > sl && (strcasecmp(host + n - sl, suffix) == 0 ||
                      (n > sl + 1 && host[n - 1] == '.' &&
                       strncasecmp(host + n - sl - 1, suffix, sl) == 0));
}

static int scheme_ok(const char *scheme)
{
    return scheme && (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
}

/* Check a parsed URL's scheme and (literal) host. Returns 0 when fine,
 * 1 for a bad scheme, 2 for a refused host ("host:port" in txt). */
static int check_curlu(CURLU *u, int allow_private, int names, char *txt, size_t cap)
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    int r = 0;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) || !scheme_ok(scheme)) {
        r = 1;
    } else if (!allow_private && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
               host_refused(host, names)) {
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        snprintf(txt, cap, "%s:%s", host, port ? port : "?");
        r = 2;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return r;
}

/* ---------------------------------------------------------------- transfer */

typedef struct xfer {
    ig_http *h;
    CURL *easy;
    int via_proxy;

    char *body;
    size_t len, cap;
    int too_large; /* body over the cap */
    int oom;

    ig_http_header *hdrs;
    size_t n_hdrs, cap_hdrs, hdr_bytes;
    char *location;
    int hops;    /* redirects followed before the current request */

    int refused;       /* 1: private address */
    char refused_what[INET6_ADDRSTRLEN + 64];
    char errbuf[CURL_ERROR_SIZE];
} xfer;

static void free_headers(ig_http_header *hdrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)hdrs[i].name); /* the value lives in the same block */
    free(hdrs);
}

static void xfer_clear_headers(xfer *x)
{
    free_headers(x->hdrs, x->n_hdrs);
    x->hdrs = NULL;
    x->n_hdrs = x->cap_hdrs = 0;
    free(x->location);
    x->location = NULL;
}

static void xfer_free(xfer *x)
{
    xfer_clear_headers(x);
    free(x->body);
    x->body = NULL;
}

/* Forget a redirect response before the next hop's request. */
static void xfer_next_hop(xfer *x)
{
    xfer_free(x);
    x->len = x->cap = x->hdr_bytes = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nmemb;
    size_t max = x->h->opts.max_response_bytes;
    if (n > max - x->len) {
        x->too_large = 1;
        return 0;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(x->body, cap);
        if (!b) {
            x->oom = 1;
            return 0;
        }
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    x->body[x->len] = '\0';
    return n;
}

static int add_header(xfer *x, const char *name, size_t nl, const char *value, size_t vl)
{
    if (x->n_hdrs >= MAX_HEADERS)
        return 0; /* excess ignored; the byte cap bounds memory */
    if (x->n_hdrs == x->cap_hdrs) {
        size_t cap = x->cap_hdrs ? x->cap_hdrs * 2 : 16;
        ig_http_header *n = realloc(x->hdrs, cap * sizeof *n);
        if (!n)
            return -1;
        x->hdrs = n;
        x->cap_hdrs = cap;
    }
    char *blk = malloc(nl + vl + 2);
    if (!blk)
        return -1;
    memcpy(blk, name, nl);
    blk[nl] = '\0';
    memcpy(blk + nl + 1, value, vl);
    blk[nl + 1 + vl] = '\0';
    x->hdrs[x->n_hdrs].name = blk;
    x->hdrs[x->n_hdrs].value = blk + nl + 1;
    x->n_hdrs++;
    return 0;
}

/* An obsolete folded line continues the previous header's value. */
static int extend_header(xfer *x, const char *more, size_t ml)
{
    if (x->n_hdrs == 0)
        return 0;
    ig_http_header *last = &x->hdrs[x->n_hdrs - 1];
    size_t nl = strlen(last->name), vl = strlen(last->value);
    char *blk = realloc((char *)last->name, nl + 1 + vl + 1 + ml + 1);
    if (!blk)
        return -1;
    char *v = blk + nl + 1;
    v[vl] = ' ';
    memcpy(v + vl + 1, more, ml);
    v[vl + 1 + ml] = '\0';
    last->name = blk;
    last->value = v;
    return 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    xfer *x = userdata;
    size_t n = size * nmemb, l = n;
    x->hdr_bytes += n;
    if (x->hdr_bytes > MAX_HEADER_BYTES) {
        x->too_large = 2;
        return 0;
    }
    while (l > 0 && (data[l - 1] == '\r' || data[l - 1] == '\n'))
        l--;
    if (l >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or a 1xx): its headers only. */
        xfer_clear_headers(x);
        return n;
    }
    if (l == 0)
        return n;
    if (data[0] == ' ' || data[0] == '\t') {
        size_t s = 0;
        while (s < l && (data[s] == ' ' || data[s] == '\t'))
            s++;
        if (extend_header(x, data + s, l - s)) {
            x->oom = 1;
            return 0;
        }
        return n;
    }
    const char *colon = memchr(data, ':', l);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - data);
    while (nl > 0 && (data[nl - 1] == ' ' || data[nl - 1] == '\t'))
        nl--;
    const char *v = colon + 1, *end = data + l;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (nl == 0)
        return n;
    if (add_header(x, data, nl, v, (size_t)(end - v))) {
        x->oom = 1;
        return 0;
    }
    if (nl == 8 && strncasecmp(data, "Location", 8) == 0) {
        free(x->location);
        x->location = strndup(v, (size_t)(end - v));
    }
    return n;
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    xfer *x = clientp;
    if (purpose == CURLSOCKTYPE_IPCXN && !x->via_proxy && !x->h->opts.allow_private_networks) {
        char txt[sizeof x->refused_what];
        if (sockaddr_refused(&a->addr, txt, sizeof txt)) {
            if (!x->refused) {
                x->refused = 1;
                snprintf(x->refused_what, sizeof x->refused_what, "%s", txt);
            }
            return CURL_SOCKET_BAD;
        }
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static CURLcode set_options(ig_http *h, CURL *e, const ig_http_request *req,
                            struct curl_slist *hdrs, xfer *x)
{
    CURLcode c = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(e, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_SHARE, h->share);
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_TIMEOUT_MS, h->opts.timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, h->opts.connect_timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        SET(CURLOPT_CAINFO, h->ca_file);
    /* "" disables proxies, including the environment's http_proxy. */
    SET(CURLOPT_PROXY, h->proxy ? h->proxy : "");
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_USERAGENT, h->user_agent);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    /* Redirects are followed by run_attempt, hop by hop (plan_redirect). */
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->opts.max_response_bytes);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    SET(CURLOPT_OPENSOCKETDATA, x);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_HTTPHEADER, hdrs);

    const char *m = req->method;
    if (strcmp(m, "GET") == 0 && !req->body) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0 && !req->body) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (req->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
            strcmp(m, "PATCH") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
        if (strcmp(m, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, m);
    }
#undef SET
    return c;
}

static const char *resp_header_cb(void *payload, const char *name)
{
    return ig_http_response_header(payload, name);
}

static int should_retry_code(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* "host:port" of the failed transfer: the peer libcurl talked to, else the
 * URL's. */
static void peer_of(CURL *e, const char *url, char *out, size_t cap)
{
    char *ip = NULL;
    long port = 0;
    if (curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip && *ip &&
        curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port) == CURLE_OK && port > 0) {
        snprintf(out, cap, strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, port);
        return;
    }
    snprintf(out, cap, "(unknown host)");
    CURLU *u = curl_url();
    char *host = NULL, *p = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK)
        snprintf(out, cap, "%s:%s", host, p);
    curl_free(host);
    curl_free(p);
    curl_url_cleanup(u);
}

/* Message for a transfer that got no usable response. */
static void transport_message(const xfer *x, CURLcode c, long os_errno, const char *url,
                              char *out, size_t cap)
{
    char peer[300];
    peer_of(x->easy, url, peer, sizeof peer);
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(c);
    switch (c) {
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            snprintf(out, cap, "connection refused to %s: %s", peer, detail);
        else
            snprintf(out, cap, "could not connect to %s: %s", peer, detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, cap, "timed out after %ld ms talking to %s: %s", x->h->opts.timeout_ms,
                 peer, detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, cap, "%s", detail); /* libcurl names the host */
        break;
    case CURLE_COULDNT_RESOLVE_PROXY:
        snprintf(out, cap, "could not resolve the proxy: %s", detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(out, cap, "TLS failure with %s: %s", peer, detail);
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        snprintf(out, cap, "connection to %s broken: %s", peer, detail);
        break;
    default:
        snprintf(out, cap, "%s: %s", curl_easy_strerror(c), detail);
        break;
    }
}

/* Milliseconds the server asked us to wait, or -1. */
static int64_t retry_after_ms(const ig_http_response *r, int64_t now_ms)
{
    const char *v = ig_http_response_header(r, "Retry-After");
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        const char *p = v;
        int64_t secs = 0;
        while (isdigit((unsigned char)*p)) {
            if (secs < RETRY_AFTER_CAP_MS / 1000 + 1)
                secs = secs * 10 + (*p - '0');
            p++;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            return -1;
        int64_t ms = secs * 1000;
        return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t ms = (int64_t)t * 1000 - now_ms;
    if (ms < 0)
        ms = 0;
    return ms > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : ms;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static int64_t backoff_ms(const ig_clock *clk, int attempt)
{
    int64_t ceiling = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    uint64_t r = clk->random(clk->payload);
    return (int64_t)((r * (uint64_t)(ceiling + 1)) >> 32);
}

static ig_http_class default_class(const ig_http_response *r)
{
    if (r->status == 429)
        return IG_HTTP_RATE_LIMITED;
    if (r->status >= 500 && r->status <= 599 && r->status != 501)
        return IG_HTTP_RETRY;
    return IG_HTTP_OK;
}

static void remote_message(const ig_http_response *r, char *out, size_t cap);

static int valid_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)m[i]))
            return 0;
    return 1;
}

static int valid_header_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == ':' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static void wipe_slist(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        sodium_memzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* What a redirect drops from the request's headers (build_headers). */
enum {
    DROP_SECRET = 1, /* to another origin: every is_secret_header(), and Host */
    DROP_BODY = 2    /* the body is not sent again: Content-*, Transfer-Encoding */
};

static int dropped_header(const char *name, unsigned drop)
{
    if ((drop & DROP_SECRET) && (is_secret_header(name) || strcasecmp(name, "Host") == 0))
        return 1;
    return (drop & DROP_BODY) &&
           (ci_prefix(name, "Content-") || strcasecmp(name, "Transfer-Encoding") == 0);
}

static int build_headers(const ig_http_request *req, unsigned drop, struct curl_slist **out)
{
    struct curl_slist *l = NULL, *t;
    *out = NULL;
    /* No 100-continue round trip (and its one-second stall) for large bodies. */
    if (!(t = curl_slist_append(l, "Expect:")))
        return ig_err(INTEG_ENOMEM, "out of memory");
    l = t;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name, *value = req->headers[i].value;
        if (!valid_header_name(name)) {
            wipe_slist(l);
            return ig_err(INTEG_EINVAL, "request header %zu: invalid name", i);
        }
        if (dropped_header(name, drop))
            continue;
        if (!value)
            value = "";
        if (strpbrk(value, "\r\n")) {
            wipe_slist(l);
            /* Never echo the value: it may be a credential. */
            return ig_err(INTEG_EINVAL, "request header '%s': value contains a line break", name);
        }
        size_t n = strlen(name) + strlen(value) + 3;
        char *line = malloc(n);
        if (!line) {
            wipe_slist(l);
            return ig_err(INTEG_ENOMEM, "out of memory");
        }
        /* "Name;" is libcurl's way to send a header with an empty value. */
        if (*value)
            snprintf(line, n, "%s: %s", name, value);
        else
            snprintf(line, n, "%s;", name);
        t = curl_slist_append(l, line);
        sodium_memzero(line, n);
        free(line);
        if (!t) {
            wipe_slist(l);
            return ig_err(INTEG_ENOMEM, "out of memory");
        }
        l = t;
    }
    *out = l;
    return INTEG_OK;
}

/* Set the thread's message from `msg`, scrubbed of this request's secrets. */
static int fail(int code, const secrets *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(int code, const secrets *s, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    redact_text(msg, sizeof msg, s);
    return ig_err(code, "%s", msg);
}

/* The refusal of a private or loopback address `what` (the URL checks, or
 * the socket check when a hop connects) for `method` `shown`. */
static int fail_private(const secrets *s, const char *what, const char *method, const char *shown)
{
    return fail(INTEG_EINVAL, s,
                "refused to connect to %s: private/loopback address (set "
                "http.allow_private_networks to allow); %s %s",
                what, method, shown);
}

typedef struct attempt_result {
    CURLcode code;
    long os_errno;
} attempt_result;

/* ------------------------------------------------------------- redirects */

static int is_followed_status(long s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

/* 1 if both URLs have the same scheme, host and port (a missing port is
 * the scheme's default): the same origin. */
static int same_origin(CURLU *a, CURLU *b)
{
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    int same = 1;
    for (size_t i = 0; same && i < sizeof parts / sizeof *parts; i++) {
        unsigned flags = parts[i] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
        char *x = NULL, *y = NULL;
        if (curl_url_get(a, parts[i], &x, flags) != CURLUE_OK ||
            curl_url_get(b, parts[i], &y, flags) != CURLUE_OK || strcasecmp(x, y) != 0)
            same = 0;
        curl_free(x);
        curl_free(y);
    }
    return same;
}

static int scheme_is(CURLU *u, const char *want)
{
    char *s = NULL;
    int r = curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK && strcasecmp(s, want) == 0;
    curl_free(s);
    return r;
}

/* The next hop after a `status` redirect to `location` from a `method`
 * request to `url` (see ig_http_redirect_plan in http.h). Messages name
 * the original request (`req_method`, `shown`) and are scrubbed of `sec`. */
static int plan_redirect(const ig_http *h, const char *url, const char *method, int has_body,
                         long status, const char *location, ig_http_redirect *out,
                         const secrets *sec, const char *req_method, const char *shown)
{
    memset(out, 0, sizeof *out);
    CURLU *from = curl_url(), *to = NULL;
    char *next = NULL;
    char target[600], refused[INET6_ADDRSTRLEN + 64];
    int rc = INTEG_OK;
    if (!from) {
        rc = ig_err(INTEG_ENOMEM, "out of memory");
        goto done;
    }
    CURLUcode uc = curl_url_set(from, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        rc = uc == CURLUE_OUT_OF_MEMORY
                 ? ig_err(INTEG_ENOMEM, "out of memory")
                 : fail(INTEG_EINVAL, sec, "invalid URL %s: %s", shown, curl_url_strerror(uc));
        goto done;
    }
    /* Resolved as libcurl resolves a Location it follows. */
    to = curl_url_dup(from);
    uc = to ? curl_url_set(to, CURLUPART_URL, location,
                           CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE | CURLU_ALLOW_SPACE)
            : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK)
        uc = curl_url_get(to, CURLUPART_URL, &next, 0);
    if (uc != CURLUE_OK) {
        rc = uc == CURLUE_OUT_OF_MEMORY
                 ? ig_err(INTEG_ENOMEM, "out of memory")
                 : fail(INTEG_EREMOTE, sec, "%s %s: HTTP %ld redirect with an invalid Location: %s",
                        req_method, shown, status, curl_url_strerror(uc));
        goto done;
    }
    display_url(next, target, sizeof target);
    /* The checks a first request gets (ig_http_send_ex); the socket check
     * follows when the hop connects. */
    int chk = check_curlu(to, h->opts.allow_private_networks, h->proxy != NULL, refused,
                          sizeof refused);
    if (chk == 1) {
        rc = fail(INTEG_EINVAL, sec, "refused to follow a redirect to a non-http(s) URL (%s); %s %s",
                  target, req_method, shown);
        goto done;
    }
    if (chk == 2) {
        rc = fail_private(sec, refused, req_method, shown);
        goto done;
    }
    if (scheme_is(from, "https") && scheme_is(to, "http")) {
        rc = fail(INTEG_EINVAL, sec, "refused to follow a redirect from https to http (%s); %s %s",
                  target, req_method, shown);
        goto done;
    }
    out->cross_origin = !same_origin(from, to);
    out->method = method;
    if ((status == 303 && strcmp(method, "HEAD") != 0) ||
        ((status == 301 || status == 302) && strcmp(method, "POST") == 0)) {
        out->method = "GET";
        out->drop_body = 1;
    }
    if (has_body && !out->drop_body && out->cross_origin) {
        /* It may hold credentials (an OAuth client_secret): never resent
         * to a host the caller did not choose. */
        rc = fail(INTEG_EINVAL, sec,
                  "refused to send the request body to another origin: HTTP %ld redirect to %s; "
                  "%s %s",
                  status, target, req_method, shown);
        goto done;
    }
    if (!(out->url = strdup(next)))
        rc = ig_err(INTEG_ENOMEM, "out of memory");
done:
    if (rc)
        memset(out, 0, sizeof *out);
    curl_free(next);
    curl_url_cleanup(to);
    curl_url_cleanup(from);
    return rc;
}

int ig_http_redirect_plan(const ig_http *h, const char *url, const char *method, int has_body,
                          long status, const char *location, ig_http_redirect *out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    memset(out, 0, sizeof *out);
    if (!h || !url || !method || !location)
        return ig_err(INTEG_EINVAL, "invalid argument: %s",
                      !h ? "http" : !url ? "url" : !method ? "method" : "location");
    if (!is_followed_status(status))
        return ig_err(INTEG_EINVAL, "HTTP %ld: not a redirect that is followed", status);
    char shown[600];
    display_url(url, shown, sizeof shown);
    return plan_redirect(h, url, method, has_body, status, location, out, NULL, method, shown);
}

/* The final response of a transfer, moved from x into *resp. */
static int take_response(CURL *e, xfer *x, const char *url, ig_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    char *eff = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
    resp->effective_url = strdup(eff ? eff : url);
    if (!x->body)
        x->body = calloc(1, 1);
    if (!resp->effective_url || !x->body) {
        free(resp->effective_url);
        resp->effective_url = NULL;
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    resp->body = x->body;
    resp->body_len = x->len;
    resp->headers = x->hdrs;
    resp->n_headers = x->n_hdrs;
    x->body = NULL;
    x->hdrs = NULL;
    x->n_hdrs = x->cap_hdrs = 0;
    return INTEG_OK;
}

/* One request on a pooled handle, following redirects hop by hop (each
 * planned by plan_redirect; at most max_redirects). On CURLE_OK, *resp is
 * the final response; otherwise ar has the failed hop's code. The handle
 * stays in x->easy (for the message) and the caller gives it back. */
static int run_attempt(ig_http *h, const ig_http_request *req, struct curl_slist *hdrs, xfer *x,
                       attempt_result *ar, ig_http_response *resp, const secrets *sec,
                       const char *shown)
{
    ar->code = CURLE_OK;
    ar->os_errno = 0;
    CURL *e = pool_take(h);
    if (!e)
        return ig_err(INTEG_ENOMEM, "http: could not create a libcurl handle");
    x->easy = e;
    ig_http_request cur = *req;   /* this hop's URL, method and body */
    char *cur_url = NULL;         /* owned once a redirect was followed */
    struct curl_slist *cur_hdrs = hdrs, *own_hdrs = NULL;
    unsigned drop = 0;            /* DROP_*: only ever grows along the chain */
    int64_t spent_ms = 0;         /* by earlier hops, out of timeout_ms */
    int rc = INTEG_OK;
    for (;;) {
        curl_easy_reset(e);
        CURLcode c = set_options(h, e, &cur, cur_hdrs, x);
        if (c == CURLE_OK && x->hops > 0) {
            /* timeout_ms bounds the whole chain, as it did under libcurl. */
            long left = h->opts.timeout_ms - (long)spent_ms;
            c = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left > 0 ? left : 1L);
        }
        if (c != CURLE_OK) {
            rc = fail(INTEG_EINTERNAL, sec, "http: libcurl rejected an option: %s",
                      curl_easy_strerror(c));
            break;
        }
        x->errbuf[0] = '\0';
        c = curl_easy_perform(e);
        ar->code = c;
        if (c != CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &ar->os_errno);
            break;
        }
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (h->opts.max_redirects == 0 || !is_followed_status(status) || !x->location ||
            !*x->location) {
            rc = take_response(e, x, cur.url, resp);
            break;
        }
        if (x->hops >= h->opts.max_redirects) {
            rc = fail(INTEG_EREMOTE, sec, "%s %s: more than %d redirects", req->method, shown,
                      h->opts.max_redirects);
            break;
        }
        ig_http_redirect plan;
        rc = plan_redirect(h, cur.url, cur.method, cur.body && cur.body_len > 0, status,
                           x->location, &plan, sec, req->method, shown);
        if (rc)
            break;
        unsigned want = drop | (plan.cross_origin ? DROP_SECRET : 0) |
                        (plan.drop_body ? DROP_BODY : 0);
        if (want != drop) {
            struct curl_slist *l = NULL;
            if ((rc = build_headers(req, want, &l))) {
                free(plan.url);
                break;
            }
            wipe_slist(own_hdrs);
            own_hdrs = cur_hdrs = l;
            drop = want;
        }
        curl_off_t us = 0;
        if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK && us > 0)
            spent_ms += (int64_t)(us / 1000);
        free(cur_url);
        cur.url = cur_url = plan.url;
        cur.method = plan.method;
        if (plan.drop_body) {
            cur.body = NULL;
            cur.body_len = 0;
        }
        xfer_next_hop(x);
        x->hops++;
    }
    /* The handle must not keep pointers to what is freed here. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    wipe_slist(own_hdrs);
    free(cur_url);
    return rc;
}

static int wait_bucket(ig_http *h, ig_bucket *bucket, const secrets *sec, const char *shown,
                       const char *method)
{
    const ig_clock *clk = h->clock;
    for (int spins = 0; bucket; spins++) {
        int64_t w = ig_bucket_take(bucket, clk->now_ms(clk->payload));
        if (w <= 0)
            return INTEG_OK;
        if (w > MAX_BUCKET_WAIT_MS || spins >= MAX_BUCKET_SPINS)
            return fail(INTEG_ERATELIMIT, sec,
                        "%s %s: rate-limit budget exhausted: next request allowed in %lld s",
                        method, shown, (long long)((w + 999) / 1000));
        clk->sleep_ms(clk->payload, w);
    }
    return INTEG_OK;
}

int ig_http_send(ig_http *h, const ig_http_request *req, ig_bucket *bucket,
                 ig_http_classifier classify, void *classify_payload, ig_http_response *out)
{
    return ig_http_send_ex(h, req, 0, bucket, classify, classify_payload, out);
}

/* A non-idempotent request may be sent again only when the server cannot
 * have acted on it: nothing of the request was written (the connection was
 * refused, or the connect or TLS handshake timed out). */
static int nothing_sent(CURL *e, CURLcode code)
{
    if (code == CURLE_COULDNT_CONNECT)
        return 1;
    long issued = -1;
    if (!e || curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &issued) != CURLE_OK)
        return 0;
    return issued == 0;
}

int ig_http_send_ex(ig_http *h, const ig_http_request *req, unsigned flags, ig_bucket *bucket,
                    ig_http_classifier classify, void *classify_payload, ig_http_response *out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    memset(out, 0, sizeof *out);
    if (!h)
        return ig_err(INTEG_EINVAL, "invalid argument: http");
    if (!req || !req->url || !req->method)
        return ig_err(INTEG_EINVAL, "invalid argument: request");
    if (!valid_method(req->method))
        return ig_err(INTEG_EINVAL, "request method: must be an upper-case HTTP method");
    if (!req->body && req->body_len)
        return ig_err(INTEG_EINVAL, "request body: NULL with a non-zero length");
    if (req->n_headers && !req->headers)
        return ig_err(INTEG_EINVAL, "request headers: NULL with a non-zero count");

    secrets sec = {{0}, 0};
    collect_secrets(req, &sec);
    char shown[600];
    display_url(req->url, shown, sizeof shown);
    int via_proxy = h->proxy != NULL;

    CURLU *u = curl_url();
    if (!u) {
        secrets_free(&sec);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, req->url, CURLU_NON_SUPPORT_SCHEME);
    char refused[sizeof ((xfer *)0)->refused_what];
    int chk = uc == CURLUE_OK ? check_curlu(u, h->opts.allow_private_networks, via_proxy, refused,
                                            sizeof refused)
                              : 0;
    curl_url_cleanup(u);
    int rc = INTEG_OK;
    if (uc != CURLUE_OK)
        rc = fail(INTEG_EINVAL, &sec, "invalid URL %s: %s", shown, curl_url_strerror(uc));
    else if (chk == 1)
        rc = fail(INTEG_EINVAL, &sec, "only http and https URLs are allowed: %s", shown);
    else if (chk == 2)
        rc = fail_private(&sec, refused, req->method, shown);
    struct curl_slist *hdrs = NULL;
    if (rc == INTEG_OK)
        rc = build_headers(req, 0, &hdrs);
    if (rc) {
        secrets_free(&sec);
        return rc;
    }

    const ig_clock *clk = h->clock;
    int max_attempts = 1 + h->opts.max_retries;
    int sent = 0;
    for (int attempt = 0;; attempt++) {
        if ((rc = wait_bucket(h, bucket, &sec, shown, req->method)))
            break;
        xfer x;
        memset(&x, 0, sizeof x);
        x.h = h;
        x.via_proxy = via_proxy;
        attempt_result ar = {CURLE_OK, 0};
        ig_http_response resp;
        memset(&resp, 0, sizeof resp);
        rc = run_attempt(h, req, hdrs, &x, &ar, &resp, &sec, shown);
        sent = attempt + 1;
        if (rc) {
            if (x.easy)
                pool_give(h, x.easy);
            xfer_free(&x);
            break;
        }
        if (ar.code != CURLE_OK) {
            char detail[MSG_MAX];
            int retry = 0;
            if (x.refused == 1)
                rc = fail_private(&sec, x.refused_what, req->method, shown);
            else if (x.oom)
                rc = ig_err(INTEG_ENOMEM, "out of memory");
            else if (x.too_large == 1 || ar.code == CURLE_FILESIZE_EXCEEDED)
                rc = fail(INTEG_EREMOTE, &sec, "%s %s: response larger than %zu bytes",
                          req->method, shown, h->opts.max_response_bytes);
            else if (x.too_large == 2)
                rc = fail(INTEG_EREMOTE, &sec, "%s %s: response headers larger than %d bytes",
                          req->method, shown, MAX_HEADER_BYTES);
            else if (should_retry_code(ar.code) && sent < max_attempts &&
                     (!(flags & IG_HTTP_NON_IDEMPOTENT) ||
                      /* after a redirect the first server has it */
                      (x.hops == 0 && nothing_sent(x.easy, ar.code))))
                retry = 1;
            else {
                transport_message(&x, ar.code, ar.os_errno, req->url, detail, sizeof detail);
                rc = fail(INTEG_ENETWORK, &sec, "%s (%s %s, %d attempt%s)", detail, req->method,
                          shown, sent, sent == 1 ? "" : "s");
            }
            pool_give(h, x.easy);
            xfer_free(&x);
            if (!retry)
                break;
            clk->sleep_ms(clk->payload, backoff_ms(clk, attempt));
            continue;
        }
        pool_give(h, x.easy);
        xfer_free(&x);
        resp.attempts = sent;

        int64_t now = clk->now_ms(clk->payload);
        if (bucket)
            ig_bucket_observe(bucket, now, resp_header_cb, &resp);
        ig_http_class cls = classify ? classify(classify_payload, &resp) : default_class(&resp);
        /* A 5xx other than 503 may come after the server acted: a
         * non-idempotent request is not repeated (429 and 503 are). */
        if ((flags & IG_HTTP_NON_IDEMPOTENT) && cls == IG_HTTP_RETRY && resp.status != 503)
            cls = IG_HTTP_OK;
        if (cls == IG_HTTP_OK) {
            *out = resp;
            rc = INTEG_OK;
            break;
        }
        int64_t ra = retry_after_ms(&resp, now);
        if (cls == IG_HTTP_RATE_LIMITED && ra > 0 && bucket)
            ig_bucket_pause(bucket, now, ra);
        if (sent >= max_attempts) {
            char remote[REMOTE_MSG_MAX + 8];
            remote_message(&resp, remote, sizeof remote);
            rc = fail(cls == IG_HTTP_RATE_LIMITED ? INTEG_ERATELIMIT : INTEG_EREMOTE, &sec,
                      "%s %s: HTTP %ld after %d attempt%s%s%s", req->method, shown, resp.status,
                      sent, sent == 1 ? "" : "s", remote[0] ? ": " : "", remote);
            ig_http_response_free(&resp);
            break;
        }
        ig_http_response_free(&resp);
        clk->sleep_ms(clk->payload, ra >= 0 ? ra : backoff_ms(clk, attempt));
    }
    if (rc)
        out->attempts = sent;
    wipe_slist(hdrs);
    secrets_free(&sec);
    return rc;
}

void ig_http_response_free(ig_http_response *r)
{
    if (!r)
        return;
    free(r->body);
    free_headers(r->headers, r->n_headers);
    free(r->effective_url);
    memset(r, 0, sizeof *r);
}

const char *ig_http_response_header(const ig_http_response *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ------------------------------------------------------------ status errors */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v = ig_json_get(o, key);
    return v && json_object_is_type(v, json_type_string) && *json_object_get_string(v)
               ? json_object_get_string(v)
               : NULL;
}

/* The remote's own words from a JSON error body. */
static int json_message(json_object *o, char *out, size_t cap, int depth)
{
    if (!o || depth > 4)
        return 0;
    if (json_object_is_type(o, json_type_string) && *json_object_get_string(o)) {
        snprintf(out, cap, "%s", json_object_get_string(o));
        return 1;
    }
    if (json_object_is_type(o, json_type_array))
        return json_object_array_length(o) > 0 &&
               json_message(json_object_array_get_idx(o, 0), out, cap, depth + 1);
    if (!json_object_is_type(o, json_type_object))
        return 0;
    const char *msg = jstr(o, "message");
    const char *code = jstr(o, "errorCode"); /* Salesforce */
    if (msg && code) {
        snprintf(out, cap, "%s: %s", code, msg);
        return 1;
    }
    if (msg || (msg = jstr(o, "Message"))) {
        snprintf(out, cap, "%s", msg);
        return 1;
    }
    const char *desc = jstr(o, "error_description"), *err = jstr(o, "error");
    if (desc) {
        if (err)
            snprintf(out, cap, "%s: %s", err, desc);
        else
            snprintf(out, cap, "%s", desc);
        return 1;
    }
    json_object *e = ig_json_get(o, "error");
    if (e && json_message(e, out, cap, depth + 1))
        return 1;
    json_object *errs = ig_json_get(o, "errors");
    if (errs && json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0) {
        json_object *first = json_object_array_get_idx(errs, 0);
        const char *t = jstr(first, "title");
        if ((t || (t = jstr(first, "detail"))) && !jstr(first, "message")) {
            snprintf(out, cap, "%s", t);
            return 1;
        }
        if (json_message(first, out, cap, depth + 1))
            return 1;
    } else if (errs && json_object_is_type(errs, json_type_object)) {
        /* Shopify/Rails: {"errors": {"title": ["can't be blank"]}} */
        json_object_object_foreach(errs, k, v)
        {
            char inner[REMOTE_MSG_MAX + 1];
            if (json_message(v, inner, sizeof inner, depth + 1)) {
                snprintf(out, cap, "%s: %s", k, inner);
                return 1;
            }
        }
    } else if (errs && json_message(errs, out, cap, depth + 1)) {
        return 1;
    }
    static const char *const more[] = {"detail", "title", "error_message", "errorMessage",
                                       "faultstring", NULL};
    for (int i = 0; more[i]; i++)
        if ((msg = jstr(o, more[i]))) {
            snprintf(out, cap, "%s", msg);
            return 1;
        }
    json_object *fault = ig_json_get(o, "fault");
    return fault && json_object_is_type(fault, json_type_object) &&
           json_message(fault, out, cap, depth + 1);
}

/* Text bodies: the first bytes, with HTML reduced to its <title> or text. */
static void text_message(const char *body, size_t len, char *out, size_t cap)
{
    size_t n = len < REMOTE_TEXT_MAX * 4 ? len : REMOTE_TEXT_MAX * 4;
    sbuf b = {out, cap, 0};
    out[0] = '\0';
    const char *t = NULL;
    if (n > 0 && (t = strcasestr(body, "<title>")) && (size_t)(t - body) < len) {
        t += 7;
        const char *end = strcasestr(t, "</title>");
        if (end) {
            sb_addn(&b, t, (size_t)(end - t) < REMOTE_TEXT_MAX ? (size_t)(end - t)
                                                                 : REMOTE_TEXT_MAX);
            return;
        }
    }
    int in_tag = 0;
    size_t taken = 0;
    for (size_t i = 0; i < n && taken < REMOTE_TEXT_MAX; i++) {
        char c = body[i];
        if (body[0] == '<' && c == '<') {
            in_tag = 1;
            sb_add(&b, " ");
            continue;
        }
        if (in_tag) {
            if (c == '>')
                in_tag = 0;
            continue;
        }
        if (c == '\0')
            break;
        sb_addn(&b, &c, 1);
        taken++;
    }
}

static void remote_message(const ig_http_response *r, char *out, size_t cap)
{
    out[0] = '\0';
    if (!r->body || r->body_len == 0)
        return;
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL;
    if (tok) {
        size_t n = r->body_len;
        /* json-c takes an int length. */
        if (n < (size_t)1 << 30)
            o = json_tokener_parse_ex(tok, r->body, (int)n);
        json_tokener_free(tok);
    }
    char msg[MSG_MAX];
    msg[0] = '\0';
    if (!(o && json_message(o, msg, sizeof msg, 0)))
        text_message(r->body, r->body_len, msg, sizeof msg);
    json_object_put(o);
    redact_text(msg, sizeof msg, NULL);
    one_line(msg, cap - 1 < REMOTE_MSG_MAX ? cap - 1 : REMOTE_MSG_MAX);
    snprintf(out, cap, "%s", msg);
}

int ig_http_status_error(const ig_http_response *r, const char *what)
{
    if (!r)
        return ig_err(INTEG_EINVAL, "invalid argument: response");
    long s = r->status;
    if (s >= 200 && s <= 399)
        return INTEG_OK;
    int code = s == 401 || s == 403 ? INTEG_EAUTH
               : s == 404           ? INTEG_ENOTFOUND
               : s == 409           ? INTEG_ECONFLICT
               : s == 429           ? INTEG_ERATELIMIT
                                    : INTEG_EREMOTE;
    char remote[REMOTE_MSG_MAX + 8];
    remote_message(r, remote, sizeof remote);
    return ig_err(code, "%s%sHTTP %ld%s%s", what && *what ? what : "", what && *what ? ": " : "",
                  s, remote[0] ? ": " : "", remote);
}

/* -------------------------------------------------------------------- URLs */

struct ig_url {
    CURLU *u;
};

static int url_error(CURLUcode uc, const char *what)
{
    if (uc == CURLUE_OUT_OF_MEMORY)
        return ig_err(INTEG_ENOMEM, "out of memory");
    return ig_err(INTEG_EINVAL, "%s: %s", what, curl_url_strerror(uc));
}

static int url_scheme_check(CURLU *u)
{
    char *scheme = NULL;
    int ok = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK && scheme_ok(scheme);
    curl_free(scheme);
    return ok ? INTEG_OK : ig_err(INTEG_EINVAL, "URL: only http and https URLs are allowed");
}

int ig_url_parse(const char *base, ig_url **out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    *out = NULL;
    if (!base)
        return ig_err(INTEG_EINVAL, "invalid argument: base");
    ig_url *u = calloc(1, sizeof *u);
    if (!u || !(u->u = curl_url())) {
        free(u);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    CURLUcode uc = curl_url_set(u->u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME);
    int rc = uc ? url_error(uc, "URL") : url_scheme_check(u->u);
    if (rc) {
        ig_url_free(u);
        return rc;
    }
    *out = u;
    return INTEG_OK;
}

int ig_url_resolve(ig_url *u, const char *relative)
{
    if (!u || !relative)
        return ig_err(INTEG_EINVAL, "invalid argument: %s", u ? "relative" : "url");
    /* Work on a copy so a bad link leaves the URL as it was. */
    CURLU *d = curl_url_dup(u->u);
    if (!d)
        return ig_err(INTEG_ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(d, CURLUPART_URL, relative, CURLU_NON_SUPPORT_SCHEME);
    int rc = uc ? url_error(uc, "relative URL") : url_scheme_check(d);
    if (rc) {
        curl_url_cleanup(d);
        return rc;
    }
    curl_url_cleanup(u->u);
    u->u = d;
    return INTEG_OK;
}

/* Characters kept as they are in a path: unreserved, sub-delims, ':' '@'
 * (RFC 3986 pchar) and '/'. */
static int path_char_ok(unsigned char c)
{
    return ig_url_unreserved(c) || (c < 0x80 && strchr("!$&'()*+,;=:@/", c));
}

/* p at "%XX" (or "%25XX", encoded twice, for servers that decode twice):
 * the length of that escape when XX is hex `hi` followed by one of `lo`
 * (either case), else 0. */
static size_t escape_of(const char *p, char hi, const char *lo)
{
    if (p[0] != '%')
        return 0;
    size_t n = 1;
    if (p[1] == '2' && p[2] == '5')
        n = 3; /* "%25" is an escaped '%' */
    if (p[n] == hi && p[n + 1] && strchr(lo, p[n + 1]))
        return n + 2;
    return 0;
}

/* The length of a path separator at p in any spelling a server may decode
 * to one ('/', '\\', %2f, %5c, and those encoded twice), else 0. */
static size_t path_separator_len(const char *p)
{
    if (*p == '/' || *p == '\\')
        return 1;
    size_t n = escape_of(p, '2', "fF");
    return n ? n : escape_of(p, '5', "cC");
}

int ig_url_append_path(ig_url *u, const char *path)
{
    if (!u || !path)
        return ig_err(INTEG_EINVAL, "invalid argument: %s", u ? "path" : "url");
    /* Dot segments would let an id climb out of the API's path. Existing
     * escapes are kept, and servers that decode before resolving dot
     * segments read "%2e" as '.', and some "%2f" or '\' as '/' (some
     * decode twice: "%252e"); Tomcat and Jetty drop a segment's ";params"
     * first. A segment that reads "." or ".." in any of these spellings is
     * refused. */
    for (const char *p = path; *p;) {
        size_t dots = 0, sep = 0, n;
        int other = 0, params = 0;
        while (*p && !(sep = path_separator_len(p))) {
            if (*p == ';' || escape_of(p, '3', "bB")) {
                params = 1; /* the rest of the segment is its parameters */
                p += *p == ';' ? 1 : escape_of(p, '3', "bB");
            } else if (*p == '.') {
                dots += !params;
                p++;
            } else if ((n = escape_of(p, '2', "eE"))) {
                dots += !params;
                p += n;
            } else {
                other |= !params;
                p++;
            }
        }
        if (!other && (dots == 1 || dots == 2))
            return ig_err(INTEG_EINVAL, "path: '.' and '..' segments are not allowed");
        p += sep;
    }
    while (*path == '/')
        path++;
    if (!*path)
        return INTEG_OK;
    char *cur = NULL;
    CURLUcode uc = curl_url_get(u->u, CURLUPART_PATH, &cur, 0);
    if (uc)
        return url_error(uc, "URL path");
    size_t cl = strlen(cur);
    while (cl > 0 && cur[cl - 1] == '/')
        cl--;
    size_t pl = strlen(path);
    char *joined = malloc(cl + 1 + pl * 3 + 1);
    if (!joined) {
        curl_free(cur);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    memcpy(joined, cur, cl);
    curl_free(cur);
    char *o = joined + cl;
    *o++ = '/';
    static const char hex[] = "0123456789ABCDEF";
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        /* An existing %XX escape is kept: callers may pass encoded ids. */
        if (path_char_ok(c) || (c == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    uc = curl_url_set(u->u, CURLUPART_PATH, joined, 0);
    free(joined);
    return uc ? url_error(uc, "URL path") : INTEG_OK;
}

/* Query names and values are encoded here rather than with
 * CURLU_URLENCODE: with CURLU_APPENDQUERY libcurl leaves the first '='
 * unencoded, which would split a name that contains one. */
static char *encode_pair(const char *name, const char *value)
{
    char *n = ig_pct_encode(name), *v = value ? ig_pct_encode(value) : NULL;
    char *pair = NULL;
    if (n && (v || !value)) {
        size_t len = strlen(n) + (v ? strlen(v) + 1 : 0) + 1;
        pair = malloc(len);
        if (pair)
            snprintf(pair, len, v ? "%s=%s" : "%s", n, v ? v : "");
    }
    free(n);
    free(v);
    return pair;
}

int ig_url_add_query(ig_url *u, const char *name, const char *value)
{
    if (!u || !name || !*name)
        return ig_err(INTEG_EINVAL, "invalid argument: %s", u ? "name" : "url");
    char *pair = encode_pair(name, value);
    if (!pair)
        return ig_err(INTEG_ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(u->u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY);
    free(pair);
    return uc ? url_error(uc, "URL query") : INTEG_OK;
}

/* 1 if the raw pair p[0..n) has the decoded name `name`. */
static int pair_has_name(const char *p, size_t n, const char *name)
{
    const char *eq = memchr(p, '=', n);
    size_t nl = eq ? (size_t)(eq - p) : n;
    char dec[256];
    size_t dl = query_decode(p, nl, dec, sizeof dec);
    return dl != (size_t)-1 && strcmp(dec, name) == 0;
}

int ig_url_set_query(ig_url *u, const char *name, const char *value)
{
    if (!u || !name || !*name)
        return ig_err(INTEG_EINVAL, "invalid argument: %s", u ? "name" : "url");
    char *pair = encode_pair(name, value);
    if (!pair)
        return ig_err(INTEG_ENOMEM, "out of memory");
    char *q = NULL;
    if (curl_url_get(u->u, CURLUPART_QUERY, &q, 0) != CURLUE_OK)
        q = NULL;
    size_t ql = q ? strlen(q) : 0;
    char *nq = malloc(ql + strlen(pair) + 2);
    if (!nq) {
        curl_free(q);
        free(pair);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    size_t o = 0;
    for (const char *p = q; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n > 0 && !pair_has_name(p, n, name)) {
            memcpy(nq + o, p, n);
            o += n;
            nq[o++] = '&';
        }
        p += n;
        if (*p == '&')
            p++;
    }
    strcpy(nq + o, pair);
    curl_free(q);
    free(pair);
    CURLUcode uc = curl_url_set(u->u, CURLUPART_QUERY, nq, 0);
    free(nq);
    return uc ? url_error(uc, "URL query") : INTEG_OK;
}

int ig_url_get(ig_url *u, char **out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    *out = NULL;
    if (!u)
        return ig_err(INTEG_EINVAL, "invalid argument: url");
    char *s = NULL;
    CURLUcode uc = curl_url_get(u->u, CURLUPART_URL, &s, 0);
    if (uc)
        return url_error(uc, "URL");
    *out = strdup(s);
    curl_free(s);
    return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

const char *ig_url_get_query_param(ig_url *u, const char *name, char *buf, size_t cap)
{
    if (!u || !name || !buf || cap == 0)
        return NULL;
    char *q = NULL;
    if (curl_url_get(u->u, CURLUPART_QUERY, &q, 0) != CURLUE_OK)
        return NULL;
    const char *found = NULL;
    for (const char *p = q; *p;) {
        size_t n = strcspn(p, "&");
        if (n > 0 && pair_has_name(p, n, name)) {
            const char *eq = memchr(p, '=', n);
            size_t vl = eq ? n - (size_t)(eq + 1 - p) : 0;
            if (query_decode(eq ? eq + 1 : p + n, vl, buf, cap) != (size_t)-1)
                found = buf;
            break;
        }
        p += n;
        if (*p == '&')
            p++;
    }
    curl_free(q);
    return found;
}

void ig_url_free(ig_url *u)
{
    if (!u)
        return;
    curl_url_cleanup(u->u);
    free(u);
}
