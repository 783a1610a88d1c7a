/* A proactive request budget: a continuous token bucket for the request
 * rate, an optional second bucket for a daily budget, and a pause deadline.
 * The provider's own counters (response headers) only ever lower what we
 * think is left: we trust the server's view when it is more pessimistic,
 * since other clients may share the same quota. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "json.h"
#include "ratelimit.h"

#define DAY_MS 86400000.0

/* Small helpers instead of libm, which the library does not link. */
static double dmin(double a, double b) { return a < b ? a : b; }
static double dceil(double x)
{
    double t = (double)(int64_t)x;
    return t < x ? t + 1.0 : t;
}
/* A bogus reset header must not freeze an integration forever. */
#define MAX_PAUSE_MS ((int64_t)24 * 3600 * 1000)
/* When the provider says "0 left" but not when that ends. */
#define DEFAULT_PAUSE_MS 1000

/* RESET_EPOCH_MS is only ever auto-detected. */
enum reset_unit { RESET_AUTO, RESET_SECONDS, RESET_EPOCH, RESET_MS, RESET_EPOCH_MS };

struct ig_bucket {
    pthread_mutex_t mu;

    int limited;          /* a request rate is configured */
    double capacity;      /* burst size = "requests" */
    double tokens;
    double rate;          /* tokens per ms */

    int daily;            /* a daily budget is known (configured or observed) */
    double daily_capacity;
    double daily_tokens;
    double daily_rate;    /* tokens per ms: a rolling 24 h approximation */

    int64_t last_ms;      /* last refill */
    int64_t paused_until; /* nobody sends before this (unix ms) */

    /* Header names from the manifest (NULL when not named). "limit" is not
     * kept: the configured rate stays the ceiling, the provider only lowers. */
    char *h_remaining, *h_reset, *h_usage, *h_daily_limit, *h_daily_remaining;
    enum reset_unit reset_unit;
};

typedef const char *(*get_header_fn)(void *payload, const char *name);

static double json_num(json_object *o, const char *key)
{
    json_object *v = ig_json_get(o, key);
    if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    double d = json_object_get_double(v);
    return isfinite(d) && d > 0 ? d : 0;
}

static int dup_header_name(json_object *headers, const char *key, char **out)
{
    const char *s = ig_json_str(headers, key);
    *out = NULL;
    if (!s || !*s)
        return INTEG_OK;
    *out = strdup(s);
    return *out ? INTEG_OK : ig_err(INTEG_ENOMEM, "out of memory");
}

int ig_bucket_new(json_object *rate_limit, int64_t now_ms, ig_bucket **out)
{
    if (!out)
        return ig_err(INTEG_EINVAL, "invalid argument: out");
    *out = NULL;
    if (rate_limit && !json_object_is_type(rate_limit, json_type_object))
        return ig_err(INTEG_EINVAL, "rate_limit: must be an object");
    ig_bucket *b = calloc(1, sizeof *b);
    if (!b)
        return ig_err(INTEG_ENOMEM, "out of memory");
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return ig_err(INTEG_EINTERNAL, "rate_limit: mutex init failed");
    }
    b->last_ms = now_ms;
    double requests = json_num(rate_limit, "requests");
    double per_seconds = json_num(rate_limit, "per_seconds");
    if (requests > 0 && per_seconds > 0) {
        b->limited = 1;
        b->capacity = requests;
        b->tokens = requests;
        b->rate = requests / (per_seconds * 1000.0);
    }
    double daily = json_num(rate_limit, "daily");
    if (daily > 0) {
        b->daily = 1;
        b->daily_capacity = b->daily_tokens = daily;
        b->daily_rate = daily / DAY_MS;
    }
    json_object *h = ig_json_get(rate_limit, "headers");
    if (h && json_object_is_type(h, json_type_object)) {
        int rc;
        if ((rc = dup_header_name(h, "remaining", &b->h_remaining)) ||
            (rc = dup_header_name(h, "reset", &b->h_reset)) ||
            (rc = dup_header_name(h, "usage", &b->h_usage)) ||
            (rc = dup_header_name(h, "daily_limit", &b->h_daily_limit)) ||
            (rc = dup_header_name(h, "daily_remaining", &b->h_daily_remaining))) {
            ig_bucket_free(b);
            return rc;
        }
        const char *unit = ig_json_str(h, "reset_unit");
        if (unit && strcmp(unit, "seconds") == 0)
            b->reset_unit = RESET_SECONDS;
        else if (unit && strcmp(unit, "epoch") == 0)
            b->reset_unit = RESET_EPOCH;
        else if (unit && strcmp(unit, "ms") == 0)
            b->reset_unit = RESET_MS;
        else if (unit) {
            ig_bucket_free(b);
            return ig_err(INTEG_EINVAL, "rate_limit.headers.reset_unit: unknown unit '%s'", unit);
        }
    }
    *out = b;
    return INTEG_OK;
}

void ig_bucket_free(ig_bucket *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->h_remaining);
    free(b->h_reset);
    free(b->h_usage);
    free(b->h_daily_limit);
    free(b->h_daily_remaining);
    free(b);
}

/* Caller holds the lock. A clock that steps backwards refills nothing
 * rather than draining the bucket. */
static void refill(ig_bucket *b, int64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;
    double elapsed = (double)(now_ms - b->last_ms);
    if (b->limited)
        b->tokens = dmin(b->capacity, b->tokens + elapsed * b->rate);
    if (b->daily)
        b->daily_tokens = dmin(b->daily_capacity, b->daily_tokens + elapsed * b->daily_rate);
    b->last_ms = now_ms;
}

static int64_t wait_for_token(double tokens, double rate)
{
    if (tokens >= 1.0)
        return 0;
    if (rate <= 0)
        return MAX_PAUSE_MS;
    double q = (1.0 - tokens) / rate;
    if (!(q < (double)MAX_PAUSE_MS))
        return MAX_PAUSE_MS;
    double w = dceil(q);
    return w < 1 ? 1 : (int64_t)w;
}

int64_t ig_bucket_take(ig_bucket *b, int64_t now_ms)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    refill(b, now_ms);
    int64_t wait = 0;
    if (now_ms < b->paused_until)
        wait = b->paused_until - now_ms;
    if (b->limited) {
        int64_t w = wait_for_token(b->tokens, b->rate);
        if (w > wait)
            wait = w;
    }
    if (b->daily) {
        int64_t w = wait_for_token(b->daily_tokens, b->daily_rate);
        if (w > wait)
            wait = w;
    }
    if (wait == 0) {
        if (b->limited)
            b->tokens -= 1.0;
        if (b->daily)
            b->daily_tokens -= 1.0;
    }
    pthread_mutex_unlock(&b->mu);
    return wait;
}

void ig_bucket_pause(ig_bucket *b, int64_t now_ms, int64_t ms)
{
    if (!b || ms <= 0)
        return;
    if (ms > MAX_PAUSE_MS)
        ms = MAX_PAUSE_MS;
    pthread_mutex_lock(&b->mu);
    if (now_ms + ms > b->paused_until)
        b->paused_until = now_ms + ms;
    pthread_mutex_unlock(&b->mu);
}

/* ---------------------------------------------------------------- observe */

/* A non-negative decimal number filling the whole value (surrounding
 * blanks allowed); -1 otherwise. */
static double parse_count(const char *s)
{
    if (!s)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    double d = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end || !isfinite(d) || d < 0)
        return -1;
    return d;
}

/* "used/limit", optionally after "<prefix>=" somewhere in a comma list
 * ("api-usage=25/15000, per-app-api-usage=17/250(appName=x)"). */
static int parse_usage(const char *s, const char *prefix, double *used, double *limit)
{
    if (!s)
        return 0;
    if (prefix) {
        size_t pl = strlen(prefix);
        const char *p = s;
        for (;;) {
            p = strcasestr(p, prefix);
            if (!p)
                return 0;
            /* "api-usage" must not match inside "per-app-api-usage". */
            int starts = p == s || p[-1] == ' ' || p[-1] == ',' || p[-1] == ';';
            if (starts && p[pl] == '=') {
                s = p + pl + 1;
                break;
            }
            p += pl;
        }
    }
    while (*s == ' ')
        s++;
    char *end;
    if (!isdigit((unsigned char)*s))
        return 0;
    double u = strtod(s, &end);
    if (*end != '/' || !isdigit((unsigned char)end[1]))
        return 0;
    double l = strtod(end + 1, &end);
    if (!isfinite(u) || !isfinite(l) || l <= 0)
        return 0;
    *used = u;
    *limit = l;
    return 1;
}

/* Absolute reset time in unix ms, or -1. AUTO follows the common
 * practice: a huge value is an epoch (ms or s), a small one a delta in s. */
static int64_t reset_at(const char *value, enum reset_unit unit, int64_t now_ms)
{
    double v = parse_count(value);
    if (v < 0)
        return -1;
    if (unit == RESET_AUTO)
        unit = v >= 1e12 ? RESET_EPOCH_MS : v >= 1e9 ? RESET_EPOCH : RESET_SECONDS;
    double at;
    switch (unit) {
    case RESET_SECONDS: at = (double)now_ms + v * 1000.0; break;
    case RESET_EPOCH: at = v * 1000.0; break;
    case RESET_MS: at = (double)now_ms + v; break;
    default: at = v; break;
    }
    if (at > (double)(now_ms + MAX_PAUSE_MS))
        at = (double)(now_ms + MAX_PAUSE_MS);
    return (int64_t)at;
}

/* Caller holds the lock. `reset` is absolute (-1 unknown). */
static void apply_window(ig_bucket *b, int64_t now_ms, double remaining, int64_t reset,
                         int64_t default_pause)
{
    if (remaining < 0)
        return;
    if (b->limited && remaining < b->tokens)
        b->tokens = remaining;
    if (remaining >= 1.0)
        return;
    int64_t until = -1;
    if (reset > now_ms)
        until = reset;
    else if (reset < 0 && !b->limited)
        /* No refill of our own to wait on: guess. */
        until = now_ms + default_pause;
    if (until > b->paused_until)
        b->paused_until = until;
}

/* Caller holds the lock. A daily budget the manifest did not configure is
 * adopted from the provider (Salesforce reports it on every response). */
static void apply_daily(ig_bucket *b, double remaining, double limit)
{
    if (remaining < 0)
        return;
    if (limit > 0 && (!b->daily || limit != b->daily_capacity)) {
        if (!b->daily)
            b->daily_tokens = limit;
        b->daily = 1;
        b->daily_capacity = limit;
        b->daily_rate = limit / DAY_MS;
    } else if (!b->daily) {
        /* Only "N left today": assume N is the whole budget. */
        double cap = remaining >= 1.0 ? remaining : 1.0;
        b->daily = 1;
        b->daily_capacity = b->daily_tokens = cap;
        b->daily_rate = cap / DAY_MS;
    }
    if (remaining < b->daily_tokens)
        b->daily_tokens = remaining;
}

static int same_name(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

static int named_by_manifest(const ig_bucket *b, const char *name)
{
    return same_name(b->h_remaining, name) || same_name(b->h_usage, name) ||
           same_name(b->h_daily_remaining, name);
}

/* Built-in schemes: (remaining header, reset header, reset unit, default
 * pause when no reset is given). */
static const struct {
    const char *remaining, *reset;
    enum reset_unit unit;
    int64_t default_pause;
} k_window_schemes[] = {
    {"X-RateLimit-Remaining", "X-RateLimit-Reset", RESET_AUTO, DEFAULT_PAUSE_MS},
    {"RateLimit-Remaining", "RateLimit-Reset", RESET_SECONDS, DEFAULT_PAUSE_MS},
    {"X-Rate-Limit-Remaining", "X-Rate-Limit-Reset", RESET_AUTO, DEFAULT_PAUSE_MS},
    {"X-HubSpot-RateLimit-Remaining", "X-HubSpot-RateLimit-Interval-Milliseconds", RESET_MS,
     10000},
    {"X-HubSpot-RateLimit-Secondly-Remaining", NULL, RESET_AUTO, 1000},
};

static void observe_locked(ig_bucket *b, int64_t now_ms, get_header_fn get, void *payload)
{
    double used, limit;
    /* Manifest-named headers first: they carry the manifest's reset unit. */
    if (b->h_usage) {
        /* Salesforce's usage header is the daily allocation. */
        int is_daily = strcasecmp(b->h_usage, "Sforce-Limit-Info") == 0;
        const char *v = get(payload, b->h_usage);
        if (parse_usage(v, NULL, &used, &limit) || parse_usage(v, "api-usage", &used, &limit)) {
            double rem = limit > used ? limit - used : 0;
            if (is_daily)
                apply_daily(b, rem, limit);
            else
                apply_window(b, now_ms, rem,
                             b->h_reset ? reset_at(get(payload, b->h_reset), b->reset_unit, now_ms)
                                        : -1,
                             DEFAULT_PAUSE_MS);
        }
    }
    if (b->h_remaining) {
        double rem = parse_count(get(payload, b->h_remaining));
        int64_t reset = -1, dflt = DEFAULT_PAUSE_MS;
        if (b->h_reset)
            reset = reset_at(get(payload, b->h_reset), b->reset_unit, now_ms);
        else if (strcasestr(b->h_remaining, "secondly"))
            reset = now_ms + 1000;
        else if (get(payload, "X-HubSpot-RateLimit-Interval-Milliseconds"))
            reset = reset_at(get(payload, "X-HubSpot-RateLimit-Interval-Milliseconds"), RESET_MS,
                             now_ms);
        apply_window(b, now_ms, rem, reset, dflt);
    }
    if (b->h_daily_remaining) {
        double lim = b->h_daily_limit ? parse_count(get(payload, b->h_daily_limit)) : -1;
        apply_daily(b, parse_count(get(payload, b->h_daily_remaining)), lim);
    }

    /* Common schemes the manifest did not name. */
    for (size_t i = 0; i < sizeof k_window_schemes / sizeof *k_window_schemes; i++) {
        const char *rn = k_window_schemes[i].remaining;
        if (named_by_manifest(b, rn))
            continue;
        double rem = parse_count(get(payload, rn));
        if (rem < 0)
            continue;
        int64_t reset = -1;
        if (k_window_schemes[i].reset)
            reset = reset_at(get(payload, k_window_schemes[i].reset), k_window_schemes[i].unit,
                             now_ms);
        else if (k_window_schemes[i].default_pause && rem < 1.0)
            reset = now_ms + k_window_schemes[i].default_pause;
        apply_window(b, now_ms, rem, reset, k_window_schemes[i].default_pause);
    }
    if (!named_by_manifest(b, "X-Shopify-Shop-Api-Call-Limit") &&
        parse_usage(get(payload, "X-Shopify-Shop-Api-Call-Limit"), NULL, &used, &limit))
        apply_window(b, now_ms, limit > used ? limit - used : 0, -1, DEFAULT_PAUSE_MS);
    if (!named_by_manifest(b, "Sforce-Limit-Info") &&
        parse_usage(get(payload, "Sforce-Limit-Info"), "api-usage", &used, &limit))
        apply_daily(b, limit > used ? limit - used : 0, limit);
    if (!named_by_manifest(b, "X-HubSpot-RateLimit-Daily-Remaining")) {
        double rem = parse_count(get(payload, "X-HubSpot-RateLimit-Daily-Remaining"));
        if (rem >= 0)
            apply_daily(b, rem, parse_count(get(payload, "X-HubSpot-RateLimit-Daily")));
    }
    if (!named_by_manifest(b, "x-daily-requests-left")) {
        double rem = parse_count(get(payload, "x-daily-requests-left"));
        if (rem >= 0)
            apply_daily(b, rem, -1);
    }
}

void ig_bucket_observe(ig_bucket *b, int64_t now_ms,
                       const char *(*get_header)(void *payload, const char *name), void *payload)
{
    if (!b || !get_header)
        return;
    pthread_mutex_lock(&b->mu);
    refill(b, now_ms);
    observe_locked(b, now_ms, get_header, payload);
    pthread_mutex_unlock(&b->mu);
}
