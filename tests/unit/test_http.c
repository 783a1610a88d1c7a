/* The HTTP transport and the rate limiter, against an in-process loopback
 * HTTP server (libmicrohttpd) scripted per test. Time is injected: retries
 * and rate-limit waits advance a fake clock instead of sleeping. */
#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#include "http.h"
#include "json.h"
#include "ratelimit.h"

/* ------------------------------------------------------------ fake clock */

typedef struct fclock {
    ig_clock clock;
    pthread_mutex_t mu;
    int64_t now;
    int64_t slept;
    int n_sleeps;
    int64_t sleeps[64];
    uint32_t rnd;
} fclock;

static int64_t fc_now(void *p)
{
    fclock *f = p;
    pthread_mutex_lock(&f->mu);
    int64_t n = f->now;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void fc_sleep(void *p, int64_t ms)
{
    fclock *f = p;
    pthread_mutex_lock(&f->mu);
    f->now += ms;
    f->slept += ms;
    if (f->n_sleeps < 64)
        f->sleeps[f->n_sleeps] = ms;
    f->n_sleeps++;
    pthread_mutex_unlock(&f->mu);
}

static uint32_t fc_random(void *p) { return ((fclock *)p)->rnd; }

static void fc_init(fclock *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->now = 1700000000000LL;
    f->rnd = 0x80000000u; /* the middle of every jitter range */
    f->clock.now_ms = fc_now;
    f->clock.sleep_ms = fc_sleep;
    f->clock.random = fc_random;
    f->clock.payload = f;
}

static void fc_done(fclock *f) { pthread_mutex_destroy(&f->mu); }

static double real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- server */

typedef struct reply {
    int status;
    const char *body;
    size_t body_len;           /* 0: strlen(body) */
    const char *headers[16];   /* name, value, name, value, ..., NULL */
    int delay_ms;
    size_t chunked_bytes;      /* >0: a chunked body of that many 'x' */
    char storage[1024];        /* for headers the script formats */
} reply;

typedef struct server server;
typedef void (*script_fn)(server *s, int n, const char *method, const char *url, reply *r);

struct server {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    int requests;
    int connections;
    script_fn script;
    int arg;                   /* a per-test knob for the script */
    char last_auth[256];
    char last_url[512];
    char last_method[16];
    char last_ua[128];
    char last_accept_encoding[128];
    char last_token[128];      /* ?access_token= */
    char last_body[256];
    size_t last_body_len;
    char last_shop_token[128]; /* X-Shopify-Access-Token */
    char last_api_token[128];  /* x-api-token (Pipedrive) */
    char last_cookie[128];
    char last_trace[64];       /* X-Trace: a header that is no secret */
    char last_content_type[64];
    char target[256];          /* a Location for the script to send */
};

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&s->mu);
        s->connections++;
        pthread_mutex_unlock(&s->mu);
    }
}

static ssize_t chunk_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t total = *(size_t *)cls;
    if (pos >= total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = total - pos < max ? total - pos : max;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static void copy_val(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v ? v : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    if (*con_cls == NULL) {
        *con_cls = (void *)1;
        pthread_mutex_lock(&s->mu);
        s->last_body_len = 0;
        s->last_body[0] = '\0';
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*upload_size) {
        pthread_mutex_lock(&s->mu);
        size_t room = sizeof s->last_body - 1 - s->last_body_len;
        size_t n = *upload_size < room ? *upload_size : room;
        memcpy(s->last_body + s->last_body_len, upload, n);
        s->last_body_len += n;
        s->last_body[s->last_body_len] = '\0';
        pthread_mutex_unlock(&s->mu);
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&s->mu);
    int n = s->requests++;
    copy_val(s->last_auth, sizeof s->last_auth,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
    copy_val(s->last_ua, sizeof s->last_ua,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent"));
    copy_val(s->last_accept_encoding, sizeof s->last_accept_encoding,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding"));
    copy_val(s->last_token, sizeof s->last_token,
             MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "access_token"));
    copy_val(s->last_url, sizeof s->last_url, url);
    copy_val(s->last_method, sizeof s->last_method, method);
    copy_val(s->last_shop_token, sizeof s->last_shop_token,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Shopify-Access-Token"));
    copy_val(s->last_api_token, sizeof s->last_api_token,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-token"));
    copy_val(s->last_cookie, sizeof s->last_cookie,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie"));
    copy_val(s->last_trace, sizeof s->last_trace,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Trace"));
    copy_val(s->last_content_type, sizeof s->last_content_type,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
    pthread_mutex_unlock(&s->mu);

    reply *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->status = 200;
    r->body = "ok";
    if (s->script)
        s->script(s, n, method, url, r);
    if (r->delay_ms)
        usleep((useconds_t)r->delay_ms * 1000);
    struct MHD_Response *resp;
    if (r->chunked_bytes) {
        size_t *total = malloc(sizeof *total);
        *total = r->chunked_bytes;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, chunk_reader, total,
                                                 free);
    } else {
        size_t len = r->body_len ? r->body_len : strlen(r->body);
        resp = MHD_create_response_from_buffer(len, (void *)r->body, MHD_RESPMEM_MUST_COPY);
    }
    for (int i = 0; i < 14 && r->headers[i]; i += 2)
        MHD_add_response_header(resp, r->headers[i], r->headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    free(r);
    return ret;
}

static int server_start(server *s, script_fn script)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->script = script;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s, MHD_OPTION_END);
    if (!s->d)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s->port ? 0 : -1;
}

static void server_stop(server *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    s->d = NULL;
    pthread_mutex_destroy(&s->mu);
}

static int server_requests(server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int server_connections(server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->connections;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void url_of(const server *s, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%u%s", s->port, path);
}

/* Options for a loopback peer: private addresses allowed, fake clock. */
static ig_http_opts test_opts(fclock *f)
{
    ig_http_opts o;
    ig_http_opts_from_json(NULL, &o);
    o.allow_private_networks = 1;
    o.clock = &f->clock;
    o.max_retries = 3;
    o.timeout_ms = 5000;
    return o;
}

static int get(ig_http *h, const char *url, ig_bucket *b, ig_http_response *r)
{
    ig_http_request req = {"GET", url, NULL, 0, NULL, 0};
    return ig_http_send(h, &req, b, NULL, NULL, r);
}

/* ------------------------------------------------------------ the scripts */

static void s_hello(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)s;
    (void)n;
    (void)method;
    (void)url;
    r->body = "{\"hello\":\"world\"}";
    r->headers[0] = "Content-Type";
    r->headers[1] = "application/json";
    r->headers[2] = "X-Test";
    r->headers[3] = "yes";
}

static void test_get_ok(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_hello) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/v1/things?limit=10", url, sizeof url);
    ig_http_header hdrs[] = {{"Authorization", "Bearer abc123"}, {"X-Empty", ""}};
    ig_http_request req = {"GET", url, hdrs, 2, NULL, 0};
    ig_http_response r;
    CHECK_OK(ig_http_send(h, &req, NULL, NULL, NULL, &r));
    CHECK(r.status == 200);
    CHECK_STR(r.body, "{\"hello\":\"world\"}");
    CHECK(r.body_len == strlen("{\"hello\":\"world\"}"));
    CHECK_STR(ig_http_response_header(&r, "x-test"), "yes");
    CHECK_STR(ig_http_response_header(&r, "CONTENT-TYPE"), "application/json");
    CHECK(ig_http_response_header(&r, "X-Missing") == NULL);
    CHECK(r.attempts == 1);
    CHECK_STR(r.effective_url, url);
    CHECK_STR(s.last_auth, "Bearer abc123");
    CHECK_STR(s.last_url, "/v1/things");
    CHECK(strncmp(s.last_ua, "libintegrations/", 16) == 0);
    CHECK(f.n_sleeps == 0);
    ig_http_response_free(&r);
    ig_http_response_free(&r); /* idempotent after free */

    /* A body goes out with the method asked for. */
    const char *json = "{\"name\":\"Ada\"}";
    ig_http_header ct[] = {{"Content-Type", "application/json"}};
    const char *methods[] = {"POST", "PATCH", "PUT", "DELETE"};
    for (int i = 0; i < 4; i++) {
        ig_http_request post = {methods[i], url, ct, 1, json, strlen(json)};
        CHECK_OK(ig_http_send(h, &post, NULL, NULL, NULL, &r));
        CHECK(r.status == 200);
        CHECK_STR(s.last_method, methods[i]);
        CHECK_STR(s.last_body, json);
        ig_http_response_free(&r);
    }
    /* Header injection is refused without echoing the value. */
    ig_http_header bad[] = {{"X-Evil", "a\r\nX-Injected: 1"}};
    ig_http_request breq = {"GET", url, bad, 1, NULL, 0};
    CHECK_RC(ig_http_send(h, &breq, NULL, NULL, NULL, &r), INTEG_EINVAL);
    CHECK(!strstr(integ_errmsg(), "Injected"));
    ig_http_request lower = {"get", url, NULL, 0, NULL, 0};
    CHECK_RC(ig_http_send(h, &lower, NULL, NULL, NULL, &r), INTEG_EINVAL);
    ig_http_request ftp = {"GET", "ftp://127.0.0.1/x", NULL, 0, NULL, 0};
    CHECK_RC(ig_http_send(h, &ftp, NULL, NULL, NULL, &r), INTEG_EINVAL);
    CHECK_MSG("only http and https");
    ig_http_request junk = {"GET", "not a url", NULL, 0, NULL, 0};
    CHECK_RC(ig_http_send(h, &junk, NULL, NULL, NULL, &r), INTEG_EINVAL);
    CHECK(r.body == NULL && r.headers == NULL);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_429_then_ok(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)method;
    (void)url;
    if (n < s->arg) {
        r->status = 429;
        r->body = "{\"message\":\"slow down\"}";
        r->headers[0] = "Retry-After";
        r->headers[1] = "3";
    } else {
        r->body = "done";
    }
}

static void test_429_retry_after_seconds(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_429_then_ok) == 0);
    s.arg = 1;
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/limited", url, sizeof url);
    ig_http_response r;
    double t0 = real_ms();
    CHECK_OK(get(h, url, NULL, &r));
    double took = real_ms() - t0;
    CHECK(r.status == 200);
    CHECK(r.attempts == 2);
    CHECK_STR(r.body, "done");
    CHECK(f.n_sleeps == 1);
    CHECK(f.slept == 3000);
    CHECK(took < 2000); /* nobody really waited 3 s */
    CHECK(server_requests(&s) == 2);
    ig_http_response_free(&r);

    /* With a bucket: the 429's Retry-After pauses it for everyone. */
    ig_bucket *b = NULL;
    CHECK_OK(ig_bucket_new(NULL, f.now, &b));
    s.arg = 3; /* requests 2 (429), 3..4 (429), ... first three are 429 */
    pthread_mutex_lock(&s.mu);
    s.requests = 0;
    pthread_mutex_unlock(&s.mu);
    f.slept = 0;
    f.n_sleeps = 0;
    CHECK_OK(get(h, url, b, &r));
    CHECK(r.attempts == 4);
    CHECK(f.slept == 9000);
    ig_http_response_free(&r);
    ig_bucket_free(b);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_429_date(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)method;
    (void)url;
    if (n == 0) {
        /* The fake clock says 1700000000 s; ask for 7 s more. */
        time_t t = 1700000000 + s->arg;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(r->storage, sizeof r->storage, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        r->status = 429;
        r->headers[0] = "Retry-After";
        r->headers[1] = r->storage;
    }
}

static void test_429_http_date(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_429_date) == 0);
    s.arg = 7;
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/date", url, sizeof url);
    ig_http_response r;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.attempts == 2);
    CHECK(f.slept == 7000);
    ig_http_response_free(&r);

    /* Capped at 5 minutes however long the server asks for. */
    pthread_mutex_lock(&s.mu);
    s.requests = 0;
    pthread_mutex_unlock(&s.mu);
    s.arg = 3600;
    f.slept = 0;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(f.slept == 300000);
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_always(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    (void)url;
    r->status = s->arg;
    if (s->arg == 429) {
        r->body = "{\"status\":\"error\",\"message\":\"You have reached your secondly limit.\","
                  "\"policyName\":\"SECONDLY\"}";
    } else {
        r->body = "{\"message\":\"internal trouble\"}";
    }
}

static void test_429_forever(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_always) == 0);
    s.arg = 429;
    ig_http_opts o = test_opts(&f);
    o.max_retries = 2;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/busy", url, sizeof url);
    ig_http_response r;
    CHECK_RC(get(h, url, NULL, &r), INTEG_ERATELIMIT);
    CHECK(server_requests(&s) == 3);
    CHECK(r.attempts == 3);
    CHECK(r.body == NULL);
    CHECK_MSG("HTTP 429 after 3 attempts");
    CHECK_MSG("You have reached your secondly limit.");
    /* No Retry-After: exponential backoff with full jitter (mid-range). */
    CHECK(f.n_sleeps == 2);
    CHECK(f.sleeps[0] == 250 && f.sleeps[1] == 500);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_503_twice(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)s;
    (void)method;
    (void)url;
    if (n < 2) {
        r->status = 503;
        r->body = "unavailable";
    } else {
        r->body = "back";
    }
}

static void test_503_backoff(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_503_twice) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/flaky", url, sizeof url);
    ig_http_response r;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.status == 200 && r.attempts == 3);
    CHECK(f.n_sleeps == 2);
    /* Attempt k waits in [0, min(30 s, 500 ms * 2^k)]. */
    CHECK(f.sleeps[0] >= 0 && f.sleeps[0] <= 500);
    CHECK(f.sleeps[1] >= 0 && f.sleeps[1] <= 1000);
    CHECK(f.sleeps[0] == 250 && f.sleeps[1] == 500);
    ig_http_response_free(&r);

    /* The extremes of the random source hit the ends of the range. */
    pthread_mutex_lock(&s.mu);
    s.requests = 0;
    pthread_mutex_unlock(&s.mu);
    f.n_sleeps = 0;
    f.rnd = 0xffffffffu;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(f.sleeps[0] == 500 && f.sleeps[1] == 1000);
    ig_http_response_free(&r);
    pthread_mutex_lock(&s.mu);
    s.requests = 0;
    pthread_mutex_unlock(&s.mu);
    f.n_sleeps = 0;
    f.rnd = 0;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(f.sleeps[0] == 0 && f.sleeps[1] == 0);
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void test_500_forever(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_always) == 0);
    s.arg = 500;
    ig_http_opts o = test_opts(&f);
    o.max_retries = 1;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/broken", url, sizeof url);
    ig_http_response r;
    CHECK_RC(get(h, url, NULL, &r), INTEG_EREMOTE);
    CHECK(server_requests(&s) == 2);
    CHECK_MSG("HTTP 500 after 2 attempts: internal trouble");
    CHECK_MSG("/broken");

    /* 501 is final: handed to the caller on the first attempt. */
    pthread_mutex_lock(&s.mu);
    s.requests = 0;
    pthread_mutex_unlock(&s.mu);
    s.arg = 501;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.status == 501 && r.attempts == 1);
    CHECK_RC(ig_http_status_error(&r, "thing"), INTEG_EREMOTE);
    ig_http_response_free(&r);

    /* max_retries = 0: exactly one attempt. */
    ig_http_free(h);
    o.max_retries = 0;
    CHECK_OK(ig_http_new(&o, &h));
    pthread_mutex_lock(&s.mu);
    s.requests = 0;
    pthread_mutex_unlock(&s.mu);
    s.arg = 503;
    CHECK_RC(get(h, url, NULL, &r), INTEG_EREMOTE);
    CHECK(server_requests(&s) == 1);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_401(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)s;
    (void)n;
    (void)method;
    (void)url;
    r->status = 401;
    r->body = "{\"status\":\"error\",\"message\":\"Authentication credentials not found.\","
              "\"correlationId\":\"4b8b4bd0\",\"category\":\"INVALID_AUTHENTICATION\"}";
}

static void test_401_status_error(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_401) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/crm/v3/objects/contacts", url, sizeof url);
    ig_http_response r;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.status == 401 && r.attempts == 1);
    CHECK_RC(ig_http_status_error(&r, "HubSpot contacts list"), INTEG_EAUTH);
    CHECK_STR(integ_errmsg(), "HubSpot contacts list: HTTP 401: Authentication credentials not found.");
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

/* ig_http_status_error on responses made by hand. */
static int status_err(long status, const char *body, const char *what)
{
    ig_http_response r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.body = (char *)body;
    r.body_len = body ? strlen(body) : 0;
    return ig_http_status_error(&r, what);
}

static void test_status_error_bodies(void)
{
    CHECK_RC(status_err(200, "{}", "x"), INTEG_OK);
    CHECK_RC(status_err(204, NULL, "x"), INTEG_OK);
    CHECK_RC(status_err(302, NULL, "x"), INTEG_OK);
    CHECK_RC(status_err(404, "{\"message\":\"Object not found\"}", "get"), INTEG_ENOTFOUND);
    CHECK_STR(integ_errmsg(), "get: HTTP 404: Object not found");
    CHECK_RC(status_err(409, "{\"detail\":\"version mismatch\"}", "put"), INTEG_ECONFLICT);
    CHECK_STR(integ_errmsg(), "put: HTTP 409: version mismatch");
    CHECK_RC(status_err(429, "", "list"), INTEG_ERATELIMIT);
    CHECK_STR(integ_errmsg(), "list: HTTP 429");
    CHECK_RC(status_err(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has "
                             "been expired or revoked.\"}",
                        "token refresh"),
             INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "token refresh: HTTP 400: invalid_grant: Token has been expired or revoked.");
    CHECK_RC(status_err(403, "[{\"message\":\"TotalRequests Limit exceeded.\",\"errorCode\":"
                             "\"REQUEST_LIMIT_EXCEEDED\"}]",
                        "Salesforce query"),
             INTEG_EAUTH);
    CHECK_STR(integ_errmsg(), "Salesforce query: HTTP 403: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.");
    CHECK_RC(status_err(401, "{\"error\":{\"code\":\"InvalidAuthenticationToken\",\"message\":"
                             "\"Access token is empty.\"}}",
                        "Graph"),
             INTEG_EAUTH);
    CHECK_STR(integ_errmsg(), "Graph: HTTP 401: Access token is empty.");
    CHECK_RC(status_err(400, "{\"errors\":[{\"message\":\"Field 'x' doesn't exist\"}]}", "gql"),
             INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "gql: HTTP 400: Field 'x' doesn't exist");
    CHECK_RC(status_err(422, "{\"errors\":[{\"title\":\"Invalid email\",\"status\":\"422\"}]}", "j"),
             INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "j: HTTP 422: Invalid email");
    CHECK_RC(status_err(422, "{\"errors\":{\"title\":[\"can't be blank\"]}}", "shop"), INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "shop: HTTP 422: title: can't be blank");
    CHECK_RC(status_err(401, "{\"errors\":\"[API] Invalid API key or access token\"}", "shop"),
             INTEG_EAUTH);
    CHECK_STR(integ_errmsg(), "shop: HTTP 401: [API] Invalid API key or access token");
    CHECK_RC(status_err(400, "{\"ErrorCode\":4010,\"Message\":\"Try again in 5 seconds\"}", "visma"),
             INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "visma: HTTP 400: Try again in 5 seconds");
    CHECK_RC(status_err(400, "{\"title\":\"Bad input\"}", "t"), INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "t: HTTP 400: Bad input");
    CHECK_RC(status_err(502, "<html><head><title>502 Bad Gateway</title></head><body>x</body></html>",
                        "proxy"),
             INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "proxy: HTTP 502: 502 Bad Gateway");
    CHECK_RC(status_err(500, "plain\r\ntext\terror", NULL), INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "HTTP 500: plain text error");
    CHECK_RC(status_err(500, "{\"unrelated\":true}", "u"), INTEG_EREMOTE);
    CHECK_STR(integ_errmsg(), "u: HTTP 500: {\"unrelated\":true}");

    /* Long messages: one line, at most 300 bytes of the remote's text. */
    char big[2000];
    strcpy(big, "{\"message\":\"");
    size_t o = strlen(big);
    for (int i = 0; i < 900; i++)
        big[o++] = (char)('a' + i % 26);
    strcpy(big + o, "\\nsecond line\"}");
    CHECK_RC(status_err(400, big, "w"), INTEG_EREMOTE);
    const char *m = integ_errmsg();
    CHECK(strlen(m) <= strlen("w: HTTP 400: ") + 300);
    CHECK(strchr(m, '\n') == NULL);
    CHECK(strstr(m, "...") != NULL);
    /* Plain text: the first 200 bytes. */
    char text[1000];
    memset(text, 'z', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    CHECK_RC(status_err(500, text, NULL), INTEG_EREMOTE);
    CHECK(strlen(integ_errmsg()) <= strlen("HTTP 500: ") + 200);
}

/* Salesforce: 403 REQUEST_LIMIT_EXCEEDED. Shopify GraphQL: 200 THROTTLED. */
static void s_provider_limits(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)s;
    (void)method;
    if (strstr(url, "salesforce")) {
        if (n % 2 == 0) {
            r->status = 403;
            r->body = "[{\"message\":\"TotalRequests Limit exceeded.\",\"errorCode\":"
                      "\"REQUEST_LIMIT_EXCEEDED\"}]";
        } else {
            r->body = "{\"records\":[]}";
        }
    } else {
        if (n % 2 == 0)
            r->body = "{\"errors\":[{\"message\":\"Throttled\",\"extensions\":{\"code\":"
                      "\"THROTTLED\"}}]}";
        else
            r->body = "{\"data\":{}}";
    }
}

static ig_http_class classify_limits(void *payload, const ig_http_response *r)
{
    int *calls = payload;
    (*calls)++;
    if (r->status == 403 && strstr(r->body, "REQUEST_LIMIT_EXCEEDED"))
        return IG_HTTP_RATE_LIMITED;
    if (r->status == 200 && strstr(r->body, "\"THROTTLED\""))
        return IG_HTTP_RETRY;
    return IG_HTTP_OK;
}

static void test_custom_classifier(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_provider_limits) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/salesforce/query", url, sizeof url);
    int calls = 0;
    ig_http_request req = {"GET", url, NULL, 0, NULL, 0};
    ig_http_response r;
    CHECK_OK(ig_http_send(h, &req, NULL, classify_limits, &calls, &r));
    CHECK(r.status == 200 && r.attempts == 2 && calls == 2);
    CHECK_STR(r.body, "{\"records\":[]}");
    ig_http_response_free(&r);

    url_of(&s, "/admin/api/graphql.json", url, sizeof url);
    const char *q = "{\"query\":\"{ shop { name } }\"}";
    ig_http_request gql = {"POST", url, NULL, 0, q, strlen(q)};
    calls = 0;
    CHECK_OK(ig_http_send(h, &gql, NULL, classify_limits, &calls, &r));
    CHECK(r.status == 200 && r.attempts == 2 && calls == 2);
    CHECK_STR(r.body, "{\"data\":{}}");
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd); /* bound but never listening: connections are refused */
    return port;
}

static void test_connection_refused(void)
{
    fclock f;
    fc_init(&f);
    ig_http_opts o = test_opts(&f);
    o.max_retries = 2;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    unsigned port = closed_port();
    CHECK(port > 0);
    char url[256], want[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", port);
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    ig_http_response r;
    CHECK_RC(get(h, url, NULL, &r), INTEG_ENETWORK);
    CHECK_MSG(want);
    CHECK_MSG("connection refused");
    CHECK_MSG("3 attempts");
    CHECK(r.attempts == 3);
    CHECK(f.n_sleeps == 2); /* refused connections are retried */
    ig_http_free(h);
    fc_done(&f);
}

static void s_slow(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    (void)url;
    r->delay_ms = s->arg;
    r->body = "late";
}

static void test_timeout(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_slow) == 0);
    s.arg = 700;
    ig_http_opts o = test_opts(&f);
    o.timeout_ms = 200;
    o.max_retries = 1;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/slow", url, sizeof url);
    ig_http_response r;
    double t0 = real_ms();
    CHECK_RC(get(h, url, NULL, &r), INTEG_ENETWORK);
    double took = real_ms() - t0;
    CHECK_MSG("timed out");
    CHECK_MSG("2 attempts");
    CHECK(r.attempts == 2);
    CHECK(f.n_sleeps == 1);
    CHECK(took < 3000);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_big(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    static char body[5001];
    memset(body, 'b', 5000);
    body[5000] = '\0';
    if (strstr(url, "chunked"))
        r->chunked_bytes = (size_t)s->arg;
    else
        r->body = body;
}

static void test_size_cap(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_big) == 0);
    s.arg = 100000;
    ig_http_opts o = test_opts(&f);
    o.max_response_bytes = 1000;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    ig_http_response r;
    url_of(&s, "/big", url, sizeof url);
    CHECK_RC(get(h, url, NULL, &r), INTEG_EREMOTE);
    CHECK_MSG("response larger than 1000 bytes");
    CHECK(server_requests(&s) == 1); /* not retried */
    url_of(&s, "/chunked", url, sizeof url); /* no Content-Length: the write callback stops it */
    CHECK_RC(get(h, url, NULL, &r), INTEG_EREMOTE);
    CHECK_MSG("response larger than 1000 bytes");
    /* Exactly at the cap is fine. */
    s.arg = 1000;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.body_len == 1000);
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void test_private_refused(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_hello) == 0);
    ig_http_opts o = test_opts(&f);
    o.allow_private_networks = 0;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256], want[64];
    ig_http_response r;

    url_of(&s, "/", url, sizeof url);
    snprintf(want, sizeof want, "refused to connect to 127.0.0.1:%u", s.port);
    CHECK_RC(get(h, url, NULL, &r), INTEG_EINVAL);
    CHECK_MSG(want);
    CHECK_MSG("private/loopback address (set http.allow_private_networks to allow)");
    CHECK(r.attempts == 0);

    /* A name that resolves to loopback: refused after resolution, and the
     * message names the address, not the name. */
    snprintf(url, sizeof url, "http://localhost:%u/", s.port);
    CHECK_RC(get(h, url, NULL, &r), INTEG_EINVAL);
    CHECK_MSG("refused to connect to ");
    CHECK(strstr(integ_errmsg(), "127.0.0.1:") || strstr(integ_errmsg(), "[::1]:"));
    CHECK(r.attempts == 1);
    CHECK(f.n_sleeps == 0); /* a refusal is not retried */

    CHECK(server_requests(&s) == 0);
    CHECK(server_connections(&s) == 0);

    /* Every literal form of a private address is refused before connecting. */
    const char *urls[] = {
        "http://10.0.0.1/", "http://10.255.255.255:8443/x", "https://172.16.0.1/",
        "http://172.31.255.254/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/", "http://100.127.255.255/", "http://0.0.0.0/", "http://0.1.2.3/",
        "http://224.0.0.1/", "http://239.255.255.250/", "http://240.0.0.1/",
        "http://255.255.255.255/", "http://127.1.2.3/", "http://2130706433/", "http://0x7f.1/",
        "http://[::1]/", "http://[::]/", "http://[fc00::1]/", "http://[fd12:3456::1]/",
        "http://[fe80::1]/", "http://[ff02::1]/", "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::a00:1]/", "http://[64:ff9b::7f00:1]/",
        "http://[::ffff:169.254.169.254]/", "http://[2002:c0a8:0101::1]/",
    };
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        int rc = get(h, urls[i], NULL, &r);
        if (rc != INTEG_EINVAL || !strstr(integ_errmsg(), "refused to connect to"))
            fprintf(stderr, "  not refused: %s -> %d %s\n", urls[i], rc, integ_errmsg());
        CHECK(rc == INTEG_EINVAL);
    }
    CHECK_RC(get(h, "http://10.0.0.1:443/", NULL, &r), INTEG_EINVAL);
    CHECK_STR(integ_errmsg(), "refused to connect to 10.0.0.1:443: private/loopback address (set "
                              "http.allow_private_networks to allow); GET http://10.0.0.1:443/");
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void s_redirect(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    if (strstr(url, "/start")) {
        r->status = 302;
        r->headers[0] = "Location";
        r->headers[1] = s->arg == 1   ? "/final?x=1"
                        : s->arg == 2 ? "http://10.0.0.1:8080/internal"
                        : s->arg == 3 ? "http://localhost:1234/"
                        : s->arg == 4 ? "ftp://example.com/file"
                                      : "/start";
        r->headers[2] = "X-First";
        r->headers[3] = "1";
        r->body = "moved";
    } else {
        r->headers[0] = "X-Second";
        r->headers[1] = "2";
        r->body = "final";
    }
}

static void test_redirects(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_redirect) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256], want[300];
    ig_http_response r;
    url_of(&s, "/start", url, sizeof url);
    s.arg = 1;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.status == 200);
    CHECK_STR(r.body, "final");
    url_of(&s, "/final?x=1", want, sizeof want);
    CHECK_STR(r.effective_url, want);
    /* Only the final response's headers. */
    CHECK(ig_http_response_header(&r, "X-First") == NULL);
    CHECK_STR(ig_http_response_header(&r, "X-Second"), "2");
    CHECK(r.attempts == 1);
    ig_http_response_free(&r);

    s.arg = 0; /* a loop */
    CHECK_RC(get(h, url, NULL, &r), INTEG_EREMOTE);
    CHECK_MSG("more than 5 redirects");
    ig_http_free(h);

    /* max_redirects = 0: the 302 itself is the answer. */
    o.max_redirects = 0;
    CHECK_OK(ig_http_new(&o, &h));
    s.arg = 2;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.status == 302);
    CHECK_STR(ig_http_response_header(&r, "Location"), "http://10.0.0.1:8080/internal");
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

/* Through a proxy (the loopback server plays it) the socket check sees only
 * the proxy; redirect targets are still checked. */
static void test_redirect_checked(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_redirect) == 0);
    ig_http_opts o = test_opts(&f);
    o.allow_private_networks = 0;
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", s.port);
    o.proxy = proxy;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    ig_http_response r;
    const char *url = "http://api.example.test/start";

    s.arg = 1; /* same host: followed */
    CHECK_OK(get(h, url, NULL, &r));
    CHECK(r.status == 200);
    CHECK_STR(r.effective_url, "http://api.example.test/final?x=1");
    ig_http_response_free(&r);
    CHECK(server_requests(&s) == 2);

    s.arg = 2;
    CHECK_RC(get(h, url, NULL, &r), INTEG_EINVAL);
    CHECK_MSG("refused to connect to 10.0.0.1:8080");
    CHECK(server_requests(&s) == 3); /* the redirect was not followed */

    s.arg = 3;
    CHECK_RC(get(h, url, NULL, &r), INTEG_EINVAL);
    CHECK_MSG("refused to connect to localhost:1234");
    CHECK(server_requests(&s) == 4);

    s.arg = 4;
    CHECK_RC(get(h, url, NULL, &r), INTEG_EINVAL);
    CHECK_MSG("non-http(s)");

    /* Literal private targets are refused up front, proxy or not. */
    CHECK_RC(get(h, "http://192.168.0.10/admin", NULL, &r), INTEG_EINVAL);
    CHECK_RC(get(h, "http://localhost/admin", NULL, &r), INTEG_EINVAL);
    CHECK(server_requests(&s) == 5);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

/* Two loopback listeners on different ports are two origins. The first:
 * /start answers s->arg (a 3xx) with Location s->target, /same answers it
 * with a Location on itself; anything else is 200. */
static void s_origin_a(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    if (strcmp(url, "/start") == 0 || strcmp(url, "/same") == 0) {
        r->status = s->arg;
        r->headers[0] = "Location";
        r->headers[1] = strcmp(url, "/start") == 0 ? s->target : "/final";
        r->body = "moved";
    } else {
        r->body = "final-a";
    }
}

/* The second: /bounce redirects to s->target; anything else is 200. */
static void s_origin_b(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    if (strcmp(url, "/bounce") == 0) {
        r->status = 302;
        r->headers[0] = "Location";
        r->headers[1] = s->target;
    } else {
        r->body = "landed-b";
    }
}

static void check_no_secret_at(const server *s, const char *what)
{
    if (s->last_auth[0] || s->last_shop_token[0] || s->last_api_token[0] || s->last_cookie[0] ||
        strstr(s->last_body, "SECRET")) {
        fprintf(stderr, "  %s: a credential reached the other origin: auth='%s' shop='%s' "
                        "api='%s' cookie='%s' body='%s'\n",
                what, s->last_auth, s->last_shop_token, s->last_api_token, s->last_cookie,
                s->last_body);
        CHECK(0);
    }
}

static void test_redirect_cross_origin(void)
{
    server a, b;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&a, s_origin_a) == 0);
    CHECK(server_start(&b, s_origin_b) == 0);
    CHECK(a.port != b.port);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char start[256], same[256], landing[256], host_b[64];
    url_of(&a, "/start", start, sizeof start);
    url_of(&a, "/same", same, sizeof same);
    url_of(&b, "/landing", landing, sizeof landing);
    snprintf(host_b, sizeof host_b, "127.0.0.1:%u", b.port);
    snprintf(a.target, sizeof a.target, "%s", landing);
    ig_http_header creds[] = {{"Authorization", "Bearer sk_live_AUTH_2"},
                              {"X-Shopify-Access-Token", "shpat_SECRET_3"},
                              {"x-api-token", "pd_SECRET_4"},
                              {"Cookie", "session=SECRET_5"},
                              {"X-Trace", "trace-1"},
                              {"Content-Type", "application/x-www-form-urlencoded"}};
    size_t nc = sizeof creds / sizeof *creds;
    const char *body = "grant_type=client_credentials&client_secret=SECRET_6";
    ig_http_response r;

    /* Followed to the other origin, with no credential header; the others
     * are kept. */
    static const int all[] = {301, 302, 303, 307, 308};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        a.arg = all[i];
        ig_http_request req = {"GET", start, creds, nc, NULL, 0};
        CHECK_OK(ig_http_send(h, &req, NULL, NULL, NULL, &r));
        CHECK(r.status == 200);
        CHECK_STR(r.body, "landed-b");
        CHECK_STR(r.effective_url, landing);
        CHECK(r.attempts == 1);
        CHECK_STR(a.last_shop_token, "shpat_SECRET_3"); /* the first origin had them */
        CHECK_STR(a.last_api_token, "pd_SECRET_4");
        CHECK_STR(b.last_method, "GET");
        CHECK_STR(b.last_trace, "trace-1");
        check_no_secret_at(&b, "GET");
        ig_http_response_free(&r);
    }
    CHECK(server_requests(&b) == 5);

    /* A body is never resent to another origin: 307 and 308 (which keep
     * method and body), and a PUT after 301/302, are refused. */
    static const int keep[] = {307, 308};
    for (size_t i = 0; i < 2; i++) {
        a.arg = keep[i];
        ig_http_request req = {"POST", start, creds, nc, body, strlen(body)};
        CHECK_RC(ig_http_send(h, &req, NULL, NULL, NULL, &r), INTEG_EINVAL);
        CHECK_MSG("refused to send the request body to another origin");
        CHECK_MSG(host_b);
        CHECK(!strstr(integ_errmsg(), "SECRET"));
        CHECK_STR(a.last_body, body);
        CHECK(r.attempts == 1);
    }
    a.arg = 302;
    ig_http_request put = {"PUT", start, creds, nc, body, strlen(body)};
    CHECK_RC(ig_http_send(h, &put, NULL, NULL, NULL, &r), INTEG_EINVAL);
    CHECK_MSG("refused to send the request body to another origin: HTTP 302 redirect to");
    CHECK(server_requests(&b) == 5); /* nothing reached it */

    /* 303, and 301/302 after POST: a GET without the body (or its headers). */
    static const int to_get[] = {301, 302, 303};
    for (size_t i = 0; i < 3; i++) {
        a.arg = to_get[i];
        ig_http_request req = {"POST", start, creds, nc, body, strlen(body)};
        CHECK_OK(ig_http_send(h, &req, NULL, NULL, NULL, &r));
        CHECK_STR(r.body, "landed-b");
        CHECK_STR(b.last_method, "GET");
        CHECK(b.last_body_len == 0);
        CHECK_STR(b.last_content_type, "");
        check_no_secret_at(&b, "POST then GET");
        ig_http_response_free(&r);
    }
    CHECK(server_requests(&b) == 8);

    /* Dropped for good: back on the first origin after a detour, still
     * without them. */
    url_of(&b, "/bounce", a.target, sizeof a.target);
    url_of(&a, "/final", b.target, sizeof b.target);
    a.arg = 302;
    ig_http_request round = {"GET", start, creds, nc, NULL, 0};
    CHECK_OK(ig_http_send(h, &round, NULL, NULL, NULL, &r));
    CHECK_STR(r.body, "final-a");
    CHECK_STR(a.last_url, "/final");
    CHECK_STR(a.last_trace, "trace-1");
    check_no_secret_at(&a, "round trip");
    ig_http_response_free(&r);

    /* The same origin: followed with every header; 307/308 resend method
     * and body, 303 turns a POST into a GET. */
    a.arg = 302;
    ig_http_request get_same = {"GET", same, creds, nc, NULL, 0};
    CHECK_OK(ig_http_send(h, &get_same, NULL, NULL, NULL, &r));
    CHECK_STR(r.body, "final-a");
    CHECK_STR(a.last_url, "/final");
    CHECK_STR(a.last_auth, "Bearer sk_live_AUTH_2");
    CHECK_STR(a.last_shop_token, "shpat_SECRET_3");
    CHECK_STR(a.last_api_token, "pd_SECRET_4");
    CHECK_STR(a.last_cookie, "session=SECRET_5");
    ig_http_response_free(&r);
    for (size_t i = 0; i < 2; i++) {
        a.arg = keep[i];
        ig_http_request req = {"POST", same, creds, nc, body, strlen(body)};
        CHECK_OK(ig_http_send(h, &req, NULL, NULL, NULL, &r));
        CHECK_STR(a.last_url, "/final");
        CHECK_STR(a.last_method, "POST");
        CHECK_STR(a.last_body, body);
        CHECK_STR(a.last_shop_token, "shpat_SECRET_3");
        ig_http_response_free(&r);
    }
    a.arg = 303;
    ig_http_request post_same = {"POST", same, creds, nc, body, strlen(body)};
    CHECK_OK(ig_http_send(h, &post_same, NULL, NULL, NULL, &r));
    CHECK_STR(a.last_method, "GET");
    CHECK(a.last_body_len == 0);
    CHECK_STR(a.last_content_type, "");
    CHECK_STR(a.last_auth, "Bearer sk_live_AUTH_2");
    ig_http_response_free(&r);
    CHECK(server_requests(&b) == 9); /* the detour only */

    ig_http_free(h);
    server_stop(&a);
    server_stop(&b);
    fc_done(&f);
}

/* The plan of one hop, for what a loopback server cannot show (TLS). */
static void test_redirect_plan(void)
{
    ig_http_opts o;
    ig_http_opts_from_json(NULL, &o); /* private networks refused */
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    ig_http_redirect p;
    const char *base = "https://api.example.com/v1/x?access_token=SECRET_7";

    /* https -> http is refused, to the same host or another, any status. */
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 302, "http://api.example.com/v1/y", &p),
             INTEG_EINVAL);
    CHECK_MSG("refused to follow a redirect from https to http (http://api.example.com/v1/y); "
              "GET https://api.example.com/v1/x?access_token=REDACTED");
    CHECK(p.url == NULL);
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 301, "http://other.example.net/", &p),
             INTEG_EINVAL);
    CHECK_MSG("from https to http");
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 308, "HTTP://api.example.com:443/", &p),
             INTEG_EINVAL);
    CHECK_MSG("from https to http");

    /* The same origin: relative, absolute, explicit default port, case. */
    CHECK_OK(ig_http_redirect_plan(h, base, "GET", 0, 302, "/v1/y?page=2", &p));
    CHECK_STR(p.url, "https://api.example.com/v1/y?page=2");
    CHECK(!p.cross_origin && !p.drop_body);
    CHECK_STR(p.method, "GET");
    free(p.url);
    CHECK_OK(ig_http_redirect_plan(h, base, "GET", 0, 301, "https://API.example.com:443/z", &p));
    CHECK(!p.cross_origin);
    free(p.url);

    /* Another origin: host, port, scheme (an upgrade is followed, but
     * still without the credentials). */
    const char *other[] = {"https://other.example.net/z", "https://api.example.com:8443/z",
                           "//cdn.example.net/file"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(ig_http_redirect_plan(h, base, "GET", 0, 302, other[i], &p));
        CHECK(p.cross_origin);
        free(p.url);
    }
    CHECK_OK(ig_http_redirect_plan(h, "http://api.example.com/x", "GET", 0, 301,
                                   "https://api.example.com/x", &p));
    CHECK(p.cross_origin);
    CHECK_STR(p.url, "https://api.example.com/x");
    free(p.url);

    /* Methods and bodies. */
    CHECK_OK(ig_http_redirect_plan(h, base, "POST", 1, 303, "/done", &p));
    CHECK(p.drop_body && !p.cross_origin);
    CHECK_STR(p.method, "GET");
    free(p.url);
    CHECK_OK(ig_http_redirect_plan(h, base, "POST", 1, 302, "https://other.example.net/", &p));
    CHECK(p.drop_body && p.cross_origin);
    CHECK_STR(p.method, "GET");
    free(p.url);
    CHECK_OK(ig_http_redirect_plan(h, base, "POST", 1, 307, "/again", &p));
    CHECK(!p.drop_body);
    CHECK_STR(p.method, "POST");
    free(p.url);
    CHECK_OK(ig_http_redirect_plan(h, base, "DELETE", 0, 301, "https://other.example.net/", &p));
    CHECK_STR(p.method, "DELETE");
    free(p.url);
    CHECK_OK(ig_http_redirect_plan(h, base, "HEAD", 0, 303, "/x", &p));
    CHECK_STR(p.method, "HEAD");
    free(p.url);
    CHECK_OK(ig_http_redirect_plan(h, base, "POST", 0, 307, "https://other.example.net/", &p));
    CHECK_STR(p.method, "POST"); /* no body, nothing to leak */
    free(p.url);
    CHECK_RC(ig_http_redirect_plan(h, base, "POST", 1, 307, "https://other.example.net/token", &p),
             INTEG_EINVAL);
    CHECK_MSG("refused to send the request body to another origin: HTTP 307 redirect to "
              "https://other.example.net/token");
    CHECK_RC(ig_http_redirect_plan(h, base, "PATCH", 1, 308, "https://other.example.net/", &p),
             INTEG_EINVAL);
    CHECK_RC(ig_http_redirect_plan(h, base, "PUT", 1, 302, "https://other.example.net/", &p),
             INTEG_EINVAL);
    CHECK(p.url == NULL);

    /* Every hop gets the first request's checks. */
    CHECK_RC(ig_http_redirect_plan(h, "http://api.example.com/", "GET", 0, 302,
                                   "http://10.0.0.1:8080/internal", &p),
             INTEG_EINVAL);
    CHECK_MSG("refused to connect to 10.0.0.1:8080: private/loopback address");
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 302, "https://169.254.169.254/latest", &p),
             INTEG_EINVAL);
    CHECK_MSG("refused to connect to 169.254.169.254:443");
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 302, "ftp://example.com/f", &p),
             INTEG_EINVAL);
    CHECK_MSG("non-http(s) URL (ftp://example.com/f)");
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 302, "http://[::1", &p), INTEG_EREMOTE);
    CHECK_MSG("invalid Location");
    CHECK_RC(ig_http_redirect_plan(h, base, "GET", 0, 300, "/x", &p), INTEG_EINVAL);
    ig_http_free(h);

    o.allow_private_networks = 1;
    CHECK_OK(ig_http_new(&o, &h));
    CHECK_OK(ig_http_redirect_plan(h, base, "GET", 0, 302, "https://10.0.0.1/x", &p));
    CHECK(p.cross_origin);
    free(p.url);
    ig_http_free(h);
}

static void s_echo_secrets(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)n;
    (void)method;
    (void)url;
    r->status = 500;
    snprintf(r->storage, sizeof r->storage,
             "{\"message\":\"bad auth '%s' for token %s via "
             "https://x.test/cb?access_token=%s&code=42\"}",
             s->last_auth, s->last_token, s->last_token);
    r->body = r->storage;
}

static void check_no_secret(const char *what)
{
    const char *m = integ_errmsg();
    if (strstr(m, "SeCrEt-TOKEN-1") || strstr(m, "sk_live_AUTH_2")) {
        fprintf(stderr, "  %s: secret in message: %s\n", what, m);
        CHECK(0);
    }
}

static void test_secrets_redacted(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_echo_secrets) == 0);
    ig_http_opts o = test_opts(&f);
    o.max_retries = 1;
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    ig_http_header auth[] = {{"Authorization", "Bearer sk_live_AUTH_2"},
                             {"X-Api-Key", "sk_live_AUTH_2"}};
    char url[256];
    ig_http_response r;

    /* 5xx with the server echoing both secrets in its message. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x?access_token=SeCrEt-TOKEN-1&page=2", s.port);
    ig_http_request req = {"GET", url, auth, 2, NULL, 0};
    CHECK_RC(ig_http_send(h, &req, NULL, NULL, NULL, &r), INTEG_EREMOTE);
    CHECK_STR(s.last_token, "SeCrEt-TOKEN-1");
    CHECK_STR(s.last_auth, "Bearer sk_live_AUTH_2");
    check_no_secret("5xx");
    CHECK_MSG("access_token=REDACTED&page=2");

    /* The caller's own status mapping of such a body. */
    ig_http_free(h);
    o.max_retries = 0;
    CHECK_OK(ig_http_new(&o, &h));
    ig_http_response fake;
    memset(&fake, 0, sizeof fake);
    fake.status = 401;
    fake.body = (char *)"{\"message\":\"Invalid header 'Authorization: Bearer sk_live_AUTH_2' "
                        "for ?client_id=1&access_token=SeCrEt-TOKEN-1\"}";
    fake.body_len = strlen(fake.body);
    CHECK_RC(ig_http_status_error(&fake, "list"), INTEG_EAUTH);
    check_no_secret("status_error");
    CHECK_MSG("client_id=1");

    /* No response at all. */
    unsigned port = closed_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x?apikey=SeCrEt-TOKEN-1&access_token=SeCrEt-TOKEN-1", port);
    req.url = url;
    CHECK_RC(ig_http_send(h, &req, NULL, NULL, NULL, &r), INTEG_ENETWORK);
    check_no_secret("refused");
    CHECK_MSG("apikey=REDACTED&access_token=REDACTED");

    /* Private-address refusal, with credentials in the user info too. */
    ig_http_free(h);
    o.allow_private_networks = 0;
    CHECK_OK(ig_http_new(&o, &h));
    snprintf(url, sizeof url, "http://user:SeCrEt-TOKEN-1@127.0.0.1:%u/x?signature=SeCrEt-TOKEN-1", s.port);
    req.url = url;
    CHECK_RC(ig_http_send(h, &req, NULL, NULL, NULL, &r), INTEG_EINVAL);
    check_no_secret("private");
    snprintf(url, sizeof url, "ftp://127.0.0.1/x?token=SeCrEt-TOKEN-1");
    CHECK_RC(ig_http_send(h, &req, NULL, NULL, NULL, &r), INTEG_EINVAL);
    check_no_secret("scheme");
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static void test_keepalive(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_hello) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/ka", url, sizeof url);
    for (int i = 0; i < 20; i++) {
        ig_http_response r;
        CHECK_OK(get(h, url, NULL, &r));
        CHECK(r.status == 200);
        ig_http_response_free(&r);
    }
    CHECK(server_requests(&s) == 20);
    CHECK(server_connections(&s) == 1);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

typedef struct worker {
    ig_http *h;
    const char *url;
    ig_bucket *bucket;
    int ok;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    for (int i = 0; i < 10; i++) {
        ig_http_response r;
        if (get(w->h, w->url, w->bucket, &r) == INTEG_OK && r.status == 200 &&
            strcmp(r.body, "{\"hello\":\"world\"}") == 0)
            w->ok++;
        ig_http_response_free(&r);
    }
    return NULL;
}

static void test_concurrent(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_hello) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    ig_bucket *b = NULL;
    json_object *rl = json_tokener_parse("{\"requests\": 1000, \"per_seconds\": 1}");
    CHECK_OK(ig_bucket_new(rl, f.now, &b));
    json_object_put(rl);
    char url[256];
    url_of(&s, "/c", url, sizeof url);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){h, url, b, 0};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].ok == 10);
    }
    CHECK(server_requests(&s) == 40);
    CHECK(server_connections(&s) >= 1 && server_connections(&s) <= 4);
    ig_bucket_free(b);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

static const unsigned char k_gzip[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9,
    0xc9, 0x57, 0x48, 0xaf, 0xca, 0x2c, 0x50, 0x28, 0xcf, 0x2f, 0xca, 0x49, 0xd1, 0x51,
    0xc8, 0x20, 0x28, 0x02, 0x00, 0x74, 0x50, 0x75, 0xcf, 0x34, 0x00, 0x00, 0x00};

static void s_gzip(server *s, int n, const char *method, const char *url, reply *r)
{
    (void)s;
    (void)n;
    (void)method;
    (void)url;
    r->body = (const char *)k_gzip;
    r->body_len = sizeof k_gzip;
    r->headers[0] = "Content-Encoding";
    r->headers[1] = "gzip";
}

static void test_gzip(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_gzip) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    char url[256];
    url_of(&s, "/gz", url, sizeof url);
    ig_http_response r;
    CHECK_OK(get(h, url, NULL, &r));
    CHECK_STR(r.body, "hello gzip world, hello gzip world, hello gzip world");
    CHECK(strstr(s.last_accept_encoding, "gzip") != NULL);
    ig_http_response_free(&r);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

/* A bucket in front of the requests: waits happen on the injected clock. */
static void test_send_with_bucket(void)
{
    server s;
    fclock f;
    fc_init(&f);
    CHECK(server_start(&s, s_hello) == 0);
    ig_http_opts o = test_opts(&f);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h));
    json_object *rl = json_tokener_parse("{\"requests\": 2, \"per_seconds\": 1}");
    ig_bucket *b = NULL;
    CHECK_OK(ig_bucket_new(rl, f.now, &b));
    json_object_put(rl);
    char url[256];
    url_of(&s, "/b", url, sizeof url);
    ig_http_response r;
    for (int i = 0; i < 4; i++) {
        CHECK_OK(get(h, url, b, &r));
        ig_http_response_free(&r);
    }
    /* Two at once, then one every 500 ms. */
    CHECK(f.slept == 1000);
    ig_bucket_free(b);

    /* A budget gone for longer than five minutes fails fast. */
    rl = json_tokener_parse("{\"daily\": 1}");
    CHECK_OK(ig_bucket_new(rl, f.now, &b));
    json_object_put(rl);
    CHECK_OK(get(h, url, b, &r));
    ig_http_response_free(&r);
    int before = server_requests(&s);
    CHECK_RC(get(h, url, b, &r), INTEG_ERATELIMIT);
    CHECK_MSG("rate-limit budget exhausted");
    CHECK(server_requests(&s) == before);
    ig_bucket_free(b);
    ig_http_free(h);
    server_stop(&s);
    fc_done(&f);
}

/* ------------------------------------------------------------------- URLs */

static char *url_str(ig_url *u)
{
    static char buf[1024];
    char *s = NULL;
    buf[0] = '\0';
    if (ig_url_get(u, &s) == INTEG_OK) {
        snprintf(buf, sizeof buf, "%s", s);
        free(s);
    }
    return buf;
}

/* libcurl 7.88 writes percent-escapes in lower case, later versions in
 * upper case: both mean the same (RFC 3986 6.2.2.1). */
static int same_url(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        int esc = a[0] == '%';
        if (*a != *b)
            return 0;
        if (esc && a[1] && a[2] && b[1] && b[2]) {
            if (toupper((unsigned char)a[1]) != toupper((unsigned char)b[1]) ||
                toupper((unsigned char)a[2]) != toupper((unsigned char)b[2]))
                return 0;
            a += 2;
            b += 2;
        }
    }
    return *a == *b;
}

#define CHECK_URL(u, want)                                                                   \
    do {                                                                                     \
        const char *t_got_ = url_str(u);                                                     \
        if (!same_url(t_got_, (want))) {                                                     \
            fprintf(stderr, "  %s:%d: URL \"%s\", want \"%s\"\n", __FILE__, __LINE__, t_got_, \
                    (want));                                                                 \
            t_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

static void test_url_helpers(void)
{
    ig_url *u = NULL;
    CHECK_OK(ig_url_parse("https://api.example.com/v3", &u));
    CHECK_OK(ig_url_append_path(u, "objects/contacts"));
    CHECK_URL(u, "https://api.example.com/v3/objects/contacts");
    CHECK_OK(ig_url_append_path(u, "/search/"));
    CHECK_URL(u, "https://api.example.com/v3/objects/contacts/search/");
    CHECK_OK(ig_url_append_path(u, "a b?#%zz/ü"));
    CHECK_URL(u, "https://api.example.com/v3/objects/contacts/search/a%20b%3F%23%25zz/%C3%BC");
    ig_url_free(u);

    CHECK_OK(ig_url_parse("https://api.example.com/base/", &u));
    CHECK_OK(ig_url_append_path(u, "/x"));
    CHECK_URL(u, "https://api.example.com/base/x");
    CHECK_OK(ig_url_append_path(u, "accounts(00000000-0000)"));
    CHECK_URL(u, "https://api.example.com/base/x/accounts(00000000-0000)");
    CHECK_RC(ig_url_append_path(u, "../admin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "a/./b"), INTEG_EINVAL);
    /* Percent-encoded dots are dots to a server that decodes first. */
    CHECK_RC(ig_url_append_path(u, "%2e%2e/x"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "%2e%2e/%2e%2e/admin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "a/%2E/b"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, ".%2E"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "x/%2e"), INTEG_EINVAL);
    CHECK_MSG("path: '.' and '..' segments are not allowed");
    /* So is an encoded slash or a backslash around them. */
    CHECK_RC(ig_url_append_path(u, "..%2Fadmin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "a%2f%2e%2e%2fadmin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "..\\admin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "a%5C..%5cadmin"), INTEG_EINVAL);
    /* Or with ";params" (dropped by Tomcat and Jetty before resolving), or
     * encoded twice (for servers that decode twice). */
    CHECK_RC(ig_url_append_path(u, "..;x/admin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "a/.%3Bjsessionid=1/b"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "%252e%252e/admin"), INTEG_EINVAL);
    CHECK_RC(ig_url_append_path(u, "a%252f..%255Cadmin"), INTEG_EINVAL);
    CHECK_MSG("path: '.' and '..' segments are not allowed");
    CHECK_URL(u, "https://api.example.com/base/x/accounts(00000000-0000)"); /* unchanged */
    /* Dots inside a segment, or three of them, are just characters. */
    CHECK_OK(ig_url_append_path(u, "a%2eb"));
    CHECK_URL(u, "https://api.example.com/base/x/accounts(00000000-0000)/a%2eb");
    CHECK_OK(ig_url_append_path(u, "%2e%2e%2e/.x/v1.2"));
    CHECK_URL(u, "https://api.example.com/base/x/accounts(00000000-0000)/a%2eb/%2e%2e%2e/.x/v1.2");
    /* A name before the parameters, or a double-encoded dot inside one. */
    CHECK_OK(ig_url_append_path(u, "x;..%3B/a%252eb"));
    CHECK_URL(u, "https://api.example.com/base/x/accounts(00000000-0000)/a%2eb/%2e%2e%2e/.x/v1.2/x;..%3B/a%252eb");
    ig_url_free(u);
    CHECK_OK(ig_url_parse("https://api.example.com/base/", &u));
    CHECK_OK(ig_url_append_path(u, "/x"));
    CHECK_OK(ig_url_append_path(u, "accounts(00000000-0000)"));
    CHECK_OK(ig_url_append_path(u, "id%2Fwith%2Fslash"));
    CHECK_URL(u, "https://api.example.com/base/x/accounts(00000000-0000)/id%2Fwith%2Fslash");
    ig_url_free(u);

    CHECK_OK(ig_url_parse("https://api.example.com", &u));
    CHECK_OK(ig_url_append_path(u, "v1"));
    CHECK_URL(u, "https://api.example.com/v1");

    /* Query: encoded on the way in, decoded on the way out. */
    CHECK_OK(ig_url_add_query(u, "q", "name = \"Ada & Bob\""));
    CHECK_OK(ig_url_add_query(u, "a=b", "ü+/"));
    CHECK_OK(ig_url_add_query(u, "limit", "10"));
    CHECK_URL(u, "https://api.example.com/v1?q=name%20%3D%20%22Ada%20%26%20Bob%22&a%3Db=%C3%BC%2B%2F&limit=10");
    char buf[64];
    CHECK_STR(ig_url_get_query_param(u, "q", buf, sizeof buf), "name = \"Ada & Bob\"");
    CHECK_STR(ig_url_get_query_param(u, "a=b", buf, sizeof buf), "ü+/");
    CHECK_STR(ig_url_get_query_param(u, "limit", buf, sizeof buf), "10");
    CHECK(ig_url_get_query_param(u, "missing", buf, sizeof buf) == NULL);
    CHECK(ig_url_get_query_param(u, "q", buf, 5) == NULL); /* does not fit */
    CHECK_OK(ig_url_set_query(u, "limit", "100"));
    CHECK_OK(ig_url_set_query(u, "after", "abc=="));
    CHECK_URL(u, "https://api.example.com/v1?q=name%20%3D%20%22Ada%20%26%20Bob%22&a%3Db=%C3%BC%2B%2F&limit=100&after=abc%3D%3D");
    CHECK_STR(ig_url_get_query_param(u, "after", buf, sizeof buf), "abc==");
    ig_url_free(u);

    /* Parsing what servers send: '+' is a space, flags without '=' are "". */
    CHECK_OK(ig_url_parse("https://x.test/p?a=1+2&flag&b=%41%zz&a=second", &u));
    CHECK_STR(ig_url_get_query_param(u, "a", buf, sizeof buf), "1 2");
    CHECK_STR(ig_url_get_query_param(u, "flag", buf, sizeof buf), "");
    CHECK_STR(ig_url_get_query_param(u, "b", buf, sizeof buf), "A%zz");
    CHECK_OK(ig_url_set_query(u, "a", "3"));
    CHECK_URL(u, "https://x.test/p?flag&b=%41%zz&a=3");

    /* Relative links (next-page links). */
    CHECK_OK(ig_url_resolve(u, "?page=2"));
    CHECK_URL(u, "https://x.test/p?page=2");
    CHECK_OK(ig_url_resolve(u, "/x?y=1"));
    CHECK_URL(u, "https://x.test/x?y=1");
    CHECK_OK(ig_url_resolve(u, "next/page"));
    CHECK_URL(u, "https://x.test/next/page");
    CHECK_OK(ig_url_resolve(u, "https://other.test/abs?cursor=z"));
    CHECK_URL(u, "https://other.test/abs?cursor=z");
    CHECK_RC(ig_url_resolve(u, "ftp://evil.test/"), INTEG_EINVAL);
    CHECK_URL(u, "https://other.test/abs?cursor=z"); /* unchanged */
    ig_url_free(u);

    CHECK_RC(ig_url_parse("ftp://x.test/", &u), INTEG_EINVAL);
    CHECK(u == NULL);
    CHECK_RC(ig_url_parse("not a url", &u), INTEG_EINVAL);
    CHECK_RC(ig_url_parse("/relative", &u), INTEG_EINVAL);
    CHECK_RC(ig_url_parse(NULL, &u), INTEG_EINVAL);
    ig_url_free(NULL);
}

static void test_opts_from_json(void)
{
    ig_http_opts o;
    CHECK_OK(ig_http_opts_from_json(NULL, &o));
    CHECK(o.timeout_ms == 30000 && o.connect_timeout_ms == 10000 && o.max_retries == 4);
    CHECK(o.ca_file == NULL && o.proxy == NULL && o.user_agent == NULL);
    CHECK(o.allow_private_networks == 0 && o.max_redirects == 5 && o.clock == NULL);
    CHECK(o.max_response_bytes == (size_t)64 * 1024 * 1024);
    json_object *j = json_tokener_parse(
        "{\"timeout_ms\": 1500, \"connect_timeout_ms\": 700, \"max_retries\": 0, "
        "\"ca_file\": \"/etc/ca.pem\", \"proxy\": \"http://proxy:3128\", "
        "\"user_agent\": \"acme/1\", \"allow_private_networks\": true}");
    CHECK_OK(ig_http_opts_from_json(j, &o));
    CHECK(o.timeout_ms == 1500 && o.connect_timeout_ms == 700 && o.max_retries == 0);
    CHECK_STR(o.ca_file, "/etc/ca.pem");
    CHECK_STR(o.proxy, "http://proxy:3128");
    CHECK_STR(o.user_agent, "acme/1");
    CHECK(o.allow_private_networks == 1);
    ig_http *h = NULL;
    CHECK_OK(ig_http_new(&o, &h)); /* strings are copied: j may go */
    json_object_put(j);
    ig_http_free(h);

    const char *bad[] = {"{\"timeout_ms\": -1}", "{\"timeout_ms\": \"10\"}",
                         "{\"max_retries\": 1000}", "{\"proxy\": 5}",
                         "{\"allow_private_networks\": 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = json_tokener_parse(bad[i]);
        CHECK_RC(ig_http_opts_from_json(j, &o), INTEG_EINVAL);
        CHECK_MSG("options.http.");
        json_object_put(j);
    }
    j = json_tokener_parse("[]");
    CHECK_RC(ig_http_opts_from_json(j, &o), INTEG_EINVAL);
    json_object_put(j);

    o.max_retries = -1;
    CHECK_RC(ig_http_new(&o, &h), INTEG_EINVAL);
    CHECK(h == NULL);
    CHECK_OK(ig_http_new(NULL, &h)); /* all defaults */
    ig_http_free(h);
    ig_http_free(NULL);
}

/* ----------------------------------------------------------- rate limiter */

typedef struct hdrs {
    const char *kv[16];
} hdrs;

static const char *hget(void *p, const char *name)
{
    hdrs *h = p;
    for (int i = 0; i < 16 && h->kv[i]; i += 2)
        if (strcasecmp(h->kv[i], name) == 0)
            return h->kv[i + 1];
    return NULL;
}

static ig_bucket *bucket(const char *json, int64_t now)
{
    json_object *j = json ? json_tokener_parse(json) : NULL;
    ig_bucket *b = NULL;
    CHECK_OK(ig_bucket_new(j, now, &b));
    json_object_put(j);
    return b;
}

/* How many takes succeed at `now` before the bucket says wait. */
static int drain(ig_bucket *b, int64_t now, int max)
{
    int n = 0;
    while (n < max && ig_bucket_take(b, now) == 0)
        n++;
    return n;
}

static void test_bucket_refill(void)
{
    int64_t t = 1000000;
    ig_bucket *b = bucket("{\"requests\": 10, \"per_seconds\": 2}", t);
    CHECK(drain(b, t, 100) == 10);                 /* burst = requests */
    CHECK(ig_bucket_take(b, t) == 200);            /* 5 tokens/s: one per 200 ms */
    CHECK(ig_bucket_take(b, t + 100) == 100);
    CHECK(ig_bucket_take(b, t + 200) == 0);
    CHECK(ig_bucket_take(b, t + 200) == 200);
    CHECK(drain(b, t + 1200, 100) == 5);           /* 1 s later: 5 more */
    CHECK(drain(b, t + 100000, 100) == 10);        /* never more than capacity */
    CHECK(ig_bucket_take(b, t + 50000) > 0);       /* a clock stepping back adds nothing */
    ig_bucket_free(b);

    b = bucket(NULL, t); /* unlimited */
    CHECK(drain(b, t, 1000) == 1000);
    ig_bucket_free(b);
    b = bucket("{}", t);
    CHECK(drain(b, t, 1000) == 1000);
    ig_bucket_free(b);
    CHECK(ig_bucket_take(NULL, t) == 0);

    json_object *bad = json_tokener_parse("[1]");
    ig_bucket *x = NULL;
    CHECK_RC(ig_bucket_new(bad, t, &x), INTEG_EINVAL);
    json_object_put(bad);
    bad = json_tokener_parse("{\"headers\": {\"reset_unit\": \"fortnights\"}}");
    CHECK_RC(ig_bucket_new(bad, t, &x), INTEG_EINVAL);
    CHECK(x == NULL);
    json_object_put(bad);
}

static void test_bucket_pause(void)
{
    int64_t t = 5000000;
    ig_bucket *b = bucket(NULL, t);
    ig_bucket_pause(b, t, 3000);
    CHECK(ig_bucket_take(b, t) == 3000);
    CHECK(ig_bucket_take(b, t + 2500) == 500);
    ig_bucket_pause(b, t + 2500, 100); /* a shorter pause never shortens one in force */
    CHECK(ig_bucket_take(b, t + 2600) == 400);
    CHECK(ig_bucket_take(b, t + 3000) == 0);
    ig_bucket_free(b);

    b = bucket("{\"requests\": 1, \"per_seconds\": 1}", t);
    ig_bucket_pause(b, t, 5000);
    CHECK(ig_bucket_take(b, t + 4000) == 1000);
    CHECK(ig_bucket_take(b, t + 5000) == 0);
    CHECK(ig_bucket_take(b, t + 5000) == 1000); /* then the rate applies */
    ig_bucket_free(b);
}

static void test_bucket_daily(void)
{
    int64_t t = 1000000;
    ig_bucket *b = bucket("{\"requests\": 100, \"per_seconds\": 1, \"daily\": 5}", t);
    CHECK(drain(b, t, 100) == 5);
    int64_t w = ig_bucket_take(b, t);
    CHECK(w > 17000000 && w <= 17280000); /* a day / 5 */
    CHECK(drain(b, t + 86400000, 100) == 5);
    ig_bucket_free(b);
}

static void test_bucket_observe_headers(void)
{
    int64_t t = 1700000000000LL;
    /* X-RateLimit-*: Reset in seconds per the manifest (Visma.net, Pipedrive). */
    ig_bucket *b = bucket("{\"requests\": 20, \"per_seconds\": 2, \"headers\": {\"limit\": "
                          "\"x-ratelimit-limit\", \"remaining\": \"x-ratelimit-remaining\", "
                          "\"reset\": \"x-ratelimit-reset\", \"reset_unit\": \"seconds\"}}",
                          t);
    hdrs h1 = {{"X-RateLimit-Limit", "20", "X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "2"}};
    ig_bucket_observe(b, t, hget, &h1);
    CHECK(drain(b, t, 100) == 3); /* lowered to the server's count */
    hdrs h2 = {{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "2"}};
    ig_bucket_observe(b, t, hget, &h2);
    CHECK(ig_bucket_take(b, t) == 2000);
    hdrs h3 = {{"X-RateLimit-Remaining", "50"}}; /* more than we think: ignored */
    ig_bucket_observe(b, t + 2000, hget, &h3);
    CHECK(drain(b, t + 2000, 100) == 20);
    ig_bucket_free(b);

    /* SendGrid: epoch seconds. */
    b = bucket("{\"headers\": {\"remaining\": \"X-RateLimit-Remaining\", \"reset\": "
               "\"X-RateLimit-Reset\", \"reset_unit\": \"epoch\"}}",
               t);
    hdrs sg = {{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000042"}};
    ig_bucket_observe(b, t, hget, &sg);
    CHECK(ig_bucket_take(b, t) == 42000);
    ig_bucket_free(b);

    /* Milliseconds. */
    b = bucket("{\"headers\": {\"remaining\": \"R\", \"reset\": \"Z\", \"reset_unit\": \"ms\"}}", t);
    hdrs ms = {{"R", "0", "Z", "1500"}};
    ig_bucket_observe(b, t, hget, &ms);
    CHECK(ig_bucket_take(b, t) == 1500);
    ig_bucket_free(b);

    /* No manifest names: the common schemes are still understood. */
    b = bucket(NULL, t);
    hdrs gh = {{"x-ratelimit-remaining", "0", "x-ratelimit-reset", "1700000010"}}; /* epoch */
    ig_bucket_observe(b, t, hget, &gh);
    CHECK(ig_bucket_take(b, t) == 10000);
    ig_bucket_free(b);
    b = bucket(NULL, t);
    hdrs ietf = {{"RateLimit-Remaining", "0", "RateLimit-Reset", "7"}};
    ig_bucket_observe(b, t, hget, &ietf);
    CHECK(ig_bucket_take(b, t) == 7000);
    ig_bucket_free(b);
    b = bucket(NULL, t);
    hdrs tl = {{"X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", "30"}}; /* Tripletex */
    ig_bucket_observe(b, t, hget, &tl);
    CHECK(ig_bucket_take(b, t) == 30000);
    ig_bucket_free(b);
    b = bucket(NULL, t);
    hdrs junk = {{"X-RateLimit-Remaining", "lots", "X-RateLimit-Reset", "-5"}};
    ig_bucket_observe(b, t, hget, &junk);
    CHECK(ig_bucket_take(b, t) == 0);
    ig_bucket_free(b);
}

static void test_bucket_observe_hubspot(void)
{
    int64_t t = 1700000000000LL;
    ig_bucket *b = bucket(
        "{\"requests\": 100, \"per_seconds\": 10, \"daily\": 250000, \"headers\": {\"limit\": "
        "\"X-HubSpot-RateLimit-Secondly\", \"remaining\": \"X-HubSpot-RateLimit-Secondly-Remaining\", "
        "\"daily_limit\": \"X-HubSpot-RateLimit-Daily\", \"daily_remaining\": "
        "\"X-HubSpot-RateLimit-Daily-Remaining\"}}",
        t);
    hdrs h1 = {{"X-HubSpot-RateLimit-Secondly", "10", "X-HubSpot-RateLimit-Secondly-Remaining",
                "0", "X-HubSpot-RateLimit-Daily", "250000", "X-HubSpot-RateLimit-Daily-Remaining",
                "249000"}};
    ig_bucket_observe(b, t, hget, &h1);
    CHECK(ig_bucket_take(b, t) == 1000); /* the second is used up */
    CHECK(ig_bucket_take(b, t + 1000) == 0);
    ig_bucket_free(b);

    /* The 10-second window and its interval header. */
    b = bucket("{\"requests\": 100, \"per_seconds\": 10}", t);
    hdrs h2 = {{"X-HubSpot-RateLimit-Max", "100", "X-HubSpot-RateLimit-Remaining", "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds", "10000"}};
    ig_bucket_observe(b, t, hget, &h2);
    CHECK(ig_bucket_take(b, t) == 10000);
    ig_bucket_free(b);

    /* Daily remaining lowers the daily budget. */
    b = bucket("{\"daily\": 250000}", t);
    hdrs h3 = {{"X-HubSpot-RateLimit-Daily", "250000", "X-HubSpot-RateLimit-Daily-Remaining", "2"}};
    ig_bucket_observe(b, t, hget, &h3);
    CHECK(drain(b, t, 100) == 2);
    CHECK(ig_bucket_take(b, t) > 0);
    ig_bucket_free(b);
}

static void test_bucket_observe_shopify_salesforce(void)
{
    int64_t t = 1700000000000LL;
    ig_bucket *b = bucket("{\"requests\": 40, \"per_seconds\": 20, \"headers\": {\"usage\": "
                          "\"X-Shopify-Shop-Api-Call-Limit\", \"usage_format\": \"used/limit\"}}",
                          t);
    hdrs s1 = {{"X-Shopify-Shop-Api-Call-Limit", "37/40"}};
    ig_bucket_observe(b, t, hget, &s1);
    CHECK(drain(b, t, 100) == 3);
    hdrs s2 = {{"X-Shopify-Shop-Api-Call-Limit", "40/40"}};
    ig_bucket_observe(b, t, hget, &s2);
    CHECK(ig_bucket_take(b, t) == 500); /* 2/s leak */
    ig_bucket_free(b);

    /* Unnamed in the manifest, still understood. */
    b = bucket("{\"requests\": 40, \"per_seconds\": 20}", t);
    ig_bucket_observe(b, t, hget, &s1);
    CHECK(drain(b, t, 100) == 3);
    ig_bucket_free(b);

    /* Salesforce: the daily allocation, adopted from the header. */
    b = bucket("{\"headers\": {\"usage\": \"Sforce-Limit-Info\", \"usage_format\": "
               "\"api-usage=used/limit\"}}",
               t);
    hdrs f1 = {{"Sforce-Limit-Info", "api-usage=14998/15000"}};
    ig_bucket_observe(b, t, hget, &f1);
    CHECK(drain(b, t, 100) == 2);
    int64_t w = ig_bucket_take(b, t);
    CHECK(w > 5000 && w <= 5760); /* a day / 15000 */
    ig_bucket_free(b);
    b = bucket(NULL, t);
    hdrs f2 = {{"Sforce-Limit-Info", "per-app-api-usage=1/250(appName=x), api-usage=15000/15000"}};
    ig_bucket_observe(b, t, hget, &f2);
    CHECK(ig_bucket_take(b, t) > 0);
    ig_bucket_free(b);

    /* Pipedrive's daily counter without a known limit. */
    b = bucket(NULL, t);
    hdrs p = {{"x-daily-requests-left", "0"}};
    ig_bucket_observe(b, t, hget, &p);
    CHECK(ig_bucket_take(b, t) > 300000);
    ig_bucket_free(b);
    ig_bucket_observe(NULL, t, hget, &p);
    ig_bucket_pause(NULL, t, 10);
}

/* observe() corrects a bucket shared by threads without tearing. */
typedef struct btask {
    ig_bucket *b;
    int64_t t;
    int taken;
} btask;

static void *bucket_worker(void *p)
{
    btask *k = p;
    hdrs h = {{"X-RateLimit-Remaining", "1000000"}};
    for (int i = 0; i < 1000; i++) {
        if (ig_bucket_take(k->b, k->t) == 0)
            k->taken++;
        ig_bucket_observe(k->b, k->t, hget, &h);
    }
    return NULL;
}

static void test_bucket_threads(void)
{
    ig_bucket *b = bucket("{\"requests\": 500, \"per_seconds\": 100}", 0);
    pthread_t t[4];
    btask k[4];
    for (int i = 0; i < 4; i++) {
        k[i] = (btask){b, 0, 0};
        pthread_create(&t[i], NULL, bucket_worker, &k[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += k[i].taken;
    }
    CHECK(total == 500);
    ig_bucket_free(b);
}

int main(void)
{
    RUN(test_get_ok);
    RUN(test_429_retry_after_seconds);
    RUN(test_429_http_date);
    RUN(test_429_forever);
    RUN(test_503_backoff);
    RUN(test_500_forever);
    RUN(test_401_status_error);
    RUN(test_status_error_bodies);
    RUN(test_custom_classifier);
    RUN(test_connection_refused);
    RUN(test_timeout);
    RUN(test_size_cap);
    RUN(test_private_refused);
    RUN(test_redirects);
    RUN(test_redirect_checked);
    RUN(test_redirect_cross_origin);
    RUN(test_redirect_plan);
    RUN(test_secrets_redacted);
    RUN(test_keepalive);
    RUN(test_concurrent);
    RUN(test_gzip);
    RUN(test_send_with_bucket);
    RUN(test_url_helpers);
    RUN(test_opts_from_json);
    RUN(test_bucket_refill);
    RUN(test_bucket_pause);
    RUN(test_bucket_daily);
    RUN(test_bucket_observe_headers);
    RUN(test_bucket_observe_hubspot);
    RUN(test_bucket_observe_shopify_salesforce);
    RUN(test_bucket_threads);
    TEST_END();
}
