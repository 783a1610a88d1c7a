/* Internal: a proactive request budget per integration (token bucket),
 * configured from the manifest's rate_limit and corrected from the
 * provider's response headers. Thread-safe. Time comes from the caller, so
 * tests drive it with an injected clock. */
#ifndef IG_RATELIMIT_H
#define IG_RATELIMIT_H

#include <json-c/json.h>
#include <stdint.h>

typedef struct ig_bucket ig_bucket;

/* From a manifest "rate_limit" object ({"requests", "per_seconds", "daily",
 * "headers": {"limit", "remaining", "reset", "reset_unit"}}); NULL or an
 * empty object gives an unlimited bucket. */
int ig_bucket_new(json_object *rate_limit, int64_t now_ms, ig_bucket **out);
void ig_bucket_free(ig_bucket *b);

/* Take one token. Returns 0 when a request may go now, else the number of
 * milliseconds to wait before asking again. */
int64_t ig_bucket_take(ig_bucket *b, int64_t now_ms);

/* Correct the budget from one response's headers (`get_header` returns a
 * header's value by case-insensitive name, or NULL). Understands the
 * manifest's header names and the common schemes: X-RateLimit-Remaining /
 * -Reset, X-HubSpot-RateLimit-Secondly-Remaining / -Interval-Milliseconds,
 * X-Shopify-Shop-Api-Call-Limit ("32/40"), Sforce-Limit-Info
 * ("api-usage=25/15000"), RateLimit-Remaining / RateLimit-Reset. */
void ig_bucket_observe(ig_bucket *b, int64_t now_ms,
                       const char *(*get_header)(void *payload, const char *name), void *payload);

/* After a 429 with Retry-After (ms): nobody sends before now + ms. */
void ig_bucket_pause(ig_bucket *b, int64_t now_ms, int64_t ms);

#endif
