/* Internal: the HTTP transport (libcurl).
 *
 * One ig_http per context. It keeps a pool of curl easy handles (a thread
 * takes one for a request and gives it back, so connections are reused
 * with keep-alive) sharing a DNS and TLS session cache; each handle keeps
 * its own connections (libcurl does not support sharing a connection cache
 * between concurrent threads).
 * TLS verification is always on. Requests to loopback, private, link-local,
 * CGNAT, multicast, unspecified and metadata addresses (IPv4 and IPv6,
 * including v4-mapped v6) are refused after DNS resolution, on every
 * connection including redirects, unless allow_private_networks is set.
 * Redirects are followed by the library, not libcurl: credential headers
 * and bodies never go to another origin (ig_http_redirect_plan).
 * Authorization headers, tokens and query-string secrets never appear in
 * error messages. Retries: 429 honours Retry-After (delta-seconds or
 * HTTP-date), 5xx (except 501), connection resets and timeouts back off
 * exponentially with full jitter (base 500 ms, cap 30 s), up to max_retries;
 * provider-specific rate-limit signals are recognised by the request's
 * classifier. The clock, sleep and randomness are injectable so tests never
 * really wait. */
#ifndef IG_HTTP_H
#define IG_HTTP_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

typedef struct ig_clock {
    int64_t (*now_ms)(void *payload);                /* wall clock, unix ms */
    void (*sleep_ms)(void *payload, int64_t ms);     /* must return after ms (or sooner in tests) */
    uint32_t (*random)(void *payload);               /* uniform 32 bits, for jitter */
    void *payload;
} ig_clock;

/* The real clock (clock_gettime, nanosleep, libsodium randombytes). */
extern const ig_clock ig_clock_system;

typedef struct ig_http_opts {
    long timeout_ms;            /* total per attempt; default 30000 (0: the default) */
    long connect_timeout_ms;    /* default 10000 (0: the default) */
    int max_retries;            /* default 4 (so at most 5 attempts) */
    const char *ca_file;        /* NULL: the system's CA bundle */
    const char *proxy;          /* NULL: none (libcurl's env proxies are ignored) */
    const char *user_agent;     /* default "libintegrations/<version>" */
    int allow_private_networks; /* default 0 */
    size_t max_response_bytes;  /* default 64 MiB (0: the default) */
    int max_redirects;          /* default 5; 0 disables following */
    const ig_clock *clock;      /* NULL: ig_clock_system; borrowed, must outlive the ig_http */
} ig_http_opts;

typedef struct ig_http ig_http;

/* From the context option "http" (see integ_ctx_open); json may be NULL
 * (all defaults). The string fields point into the json object (borrowed):
 * ig_http_new copies them, so the json may go once the ig_http exists. */
int ig_http_opts_from_json(json_object *http_options, ig_http_opts *out);

int ig_http_new(const ig_http_opts *opts, ig_http **out);
void ig_http_free(ig_http *h);

typedef struct ig_http_header {
    const char *name;
    const char *value;
} ig_http_header;

typedef struct ig_http_request {
    const char *method;               /* "GET", "POST", "PATCH", ... */
    const char *url;                  /* absolute; build it with ig_url_* below */
    const ig_http_header *headers;    /* may include Authorization: redacted in messages */
    size_t n_headers;
    const void *body;                 /* NULL for none */
    size_t body_len;
} ig_http_request;

typedef struct ig_http_response {
    long status;
    char *body;                       /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    ig_http_header *headers;          /* owned; names as received */
    size_t n_headers;
    char *effective_url;              /* after redirects */
    int attempts;                     /* how many requests were sent */
} ig_http_response;

void ig_http_response_free(ig_http_response *r);

/* First header with that name (case-insensitive), or NULL. */
const char *ig_http_response_header(const ig_http_response *r, const char *name);

/* How a completed response is to be treated; the default classifier says
 * RATE_LIMITED for 429, RETRY for 5xx except 501, OK otherwise. */
typedef enum ig_http_class {
    IG_HTTP_OK = 0,           /* hand the response to the caller (any status) */
    IG_HTTP_RETRY = 1,        /* transient: back off and retry */
    IG_HTTP_RATE_LIMITED = 2  /* rate limited: honour Retry-After, else back off */
} ig_http_class;

typedef ig_http_class (*ig_http_classifier)(void *payload, const ig_http_response *r);

/* Send with retries. `bucket` (may be NULL) is waited on before every
 * attempt and corrected from every response; a wait longer than 5 minutes
 * fails at once with INTEG_ERATELIMIT. `classify` may be NULL.
 * On any error *out is zeroed except out->attempts.
 * Returns INTEG_OK with *out filled for any final HTTP status (the caller
 * maps 4xx with ig_http_status_error); INTEG_ENETWORK with libcurl's
 * message ("connection refused to 127.0.0.1:9 ...") when no response came;
 * INTEG_ERATELIMIT when rate-limit retries ran out; INTEG_EREMOTE when 5xx
 * retries ran out; INTEG_EINVAL for a bad request (a refused private
 * address says so). */
int ig_http_send(ig_http *h, const ig_http_request *req, ig_bucket *bucket,
                 ig_http_classifier classify, void *classify_payload, ig_http_response *out);

/* Flags of ig_http_send_ex. */
enum {
    /* The request is not idempotent (a create: POST without an idempotency
     * key). It is sent again only when the server cannot have acted on it:
     * 429 and 503 responses (rate limited, unavailable), a refused
     * connection, or a transport error before any byte of the request was
     * written. After a timeout, a reset or another 5xx the outcome is
     * unknown: the error is returned at once (INTEG_ENETWORK, or INTEG_OK
     * with the 5xx response) and the caller reconciles (doc/push.md). */
    IG_HTTP_NON_IDEMPOTENT = 1
};

/* ig_http_send with flags (0: the same as ig_http_send). */
int ig_http_send_ex(ig_http *h, const ig_http_request *req, unsigned flags, ig_bucket *bucket,
                    ig_http_classifier classify, void *classify_payload, ig_http_response *out);

/* Redirects. ig_http_send follows 301, 302, 303, 307 and 308 itself (up to
 * max_redirects; libcurl's FOLLOWLOCATION is off) and plans every hop with
 * ig_http_redirect_plan:
 * - the Location is resolved against the current URL (libcurl's URL API)
 *   and gets the checks of a first request: http/https only, no literal
 *   private or localhost host unless allow_private_networks (and the
 *   socket check on the resolved address when it connects);
 * - https -> http is refused;
 * - 303 (any method but HEAD) and 301/302 after POST continue as GET
 *   without the body; 307/308 and other 301/302 keep method and body;
 * - a change of scheme, host or port ("another origin") drops, for this
 *   hop and every later one, each header is_secret_header() flags
 *   (Authorization, Cookie, X-Shopify-Access-Token, x-api-token,
 *   X-Api-Key, ...) and Host;
 * - a non-empty body is never sent to another origin: such a redirect
 *   (307/308, or 301/302 of a PUT/PATCH) is refused.
 * A refusal is INTEG_EINVAL (an unparseable Location INTEG_EREMOTE), with
 * a message naming the target. */
typedef struct ig_http_redirect {
    char *url;          /* the next request's URL (malloc'd) */
    const char *method; /* "GET", or `method` as given */
    int drop_body;      /* the body is not sent again (nor its Content-* headers) */
    int cross_origin;   /* scheme, host or port changed: secret headers dropped */
} ig_http_redirect;

/* The plan for following a `status` response with `location` from a
 * `method` request to `url` (has_body: it carried a non-empty body).
 * status must be 301, 302, 303, 307 or 308. On success out->url is the
 * caller's to free; on error *out is zeroed. */
int ig_http_redirect_plan(const ig_http *h, const char *url, const char *method, int has_body,
                          long status, const char *location, ig_http_redirect *out);

/* Map a final response to an error: 2xx/3xx -> INTEG_OK; 401/403 ->
 * INTEG_EAUTH; 404 -> INTEG_ENOTFOUND; 409 -> INTEG_ECONFLICT; 429 ->
 * INTEG_ERATELIMIT; other -> INTEG_EREMOTE. The message carries the
 * status and the remote's own message (from JSON "message", "error",
 * "error_description", "errors[0].message", ... or the first 200 bytes of
 * text), prefixed with `what`. */
int ig_http_status_error(const ig_http_response *r, const char *what);

/* URLs through libcurl's URL API, never by hand. */
typedef struct ig_url ig_url;
int ig_url_parse(const char *base, ig_url **out);                    /* absolute URL */
int ig_url_resolve(ig_url *u, const char *relative);                 /* e.g. a relative next link */
int ig_url_append_path(ig_url *u, const char *path);                 /* joins with exactly one '/' */
int ig_url_set_query(ig_url *u, const char *name, const char *value); /* replaces, URL-encoded */
int ig_url_add_query(ig_url *u, const char *name, const char *value); /* appends, URL-encoded */
int ig_url_get(ig_url *u, char **out);                               /* malloc'd */
/* RFC 3986 unreserved (ALPHA DIGIT - . _ ~), the characters percent-
 * encoding keeps; and s with every other byte as %XX (malloc'd, NULL when
 * out of memory): a value that cannot add path segments or a query. */
int ig_url_unreserved(int c);
char *ig_pct_encode(const char *s);
/* Decoded value of the first parameter `name` in buf; NULL when absent or
 * when it does not fit in cap bytes. append_path keeps existing %XX escapes
 * and refuses "." and ".." segments. */
const char *ig_url_get_query_param(ig_url *u, const char *name, char *buf, size_t cap);
void ig_url_free(ig_url *u);

#endif
