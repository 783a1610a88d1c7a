/* Internal: webhook signature verification (integ_webhook_verify, see
 * doc/webhooks.md) and the request helpers the receiving code shares with it.
 *
 * Headers are passed as two parallel arrays of NUL-terminated strings; names
 * match case-insensitively (ASCII). A header value is used trimmed of
 * surrounding spaces, tabs, CR and LF. */
#ifndef IG_WEBHOOK_VERIFY_H
#define IG_WEBHOOK_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* A header value the verifier reads that is longer than this is INTEG_EINVAL. */
#define IG_WH_MAX_HEADER_BYTES 8192
/* More headers than this in one request is INTEG_EINVAL. */
#define IG_WH_MAX_HEADERS 1024
/* A URL longer than this is INTEG_EINVAL. */
#define IG_WH_MAX_URL_BYTES 16384
/* At most this many space-separated secrets (rotation). */
#define IG_WH_MAX_SECRETS 16
/* The default timestamp tolerance when tolerance_s is 0. */
#define IG_WH_DEFAULT_TOLERANCE_S 300

/* 1 if `scheme` is one of the names integ_webhook_verify accepts. */
int ig_wh_scheme_known(const char *scheme);

/* "standard, standard-ed25519, ..." for error messages. Static storage. */
const char *ig_wh_scheme_list(void);

/* The raw (untrimmed) value of the first header called `name`
 * (case-insensitive), or NULL. NULL entries in the arrays are skipped. */
const char *ig_wh_header(const char *const *names, const char *const *values, size_t n,
                         const char *name);

/* The provider's delivery id, for de-duplication, copied (trimmed,
 * NUL-terminated) into out[out_size]. From a header where the provider sends
 * one (standard: svix-id / webhook-id; github: X-GitHub-Delivery; shopify:
 * X-Shopify-Webhook-Id / Shopify-Webhook-Id; woocommerce:
 * X-WC-Webhook-Delivery-ID; twilio: I-Twilio-Idempotency-Token), else from
 * the JSON body (stripe: "id"; slack: "event_id"). Returns 1 when found, 0
 * when the scheme has none or it is absent, empty or longer than out_size-1:
 * the receiver then falls back to a hash of the body. Call it after
 * integ_webhook_verify succeeded. */
int ig_wh_delivery_id(const char *scheme, const char *const *names, const char *const *values,
                      size_t n, const unsigned char *body, size_t body_len, char *out,
                      size_t out_size);

/* Handshakes: requests integ_webhook_verify answers INTEG_OK without a
 * signature, which the receiver must answer itself and never queue. */
enum ig_wh_handshake_kind {
    IG_WH_NOT_HANDSHAKE = 0,
    IG_WH_HANDSHAKE_MSGRAPH = 1,    /* answer 200 text/plain with the validationToken */
    IG_WH_HANDSHAKE_WOOCOMMERCE = 2 /* the unsigned creation ping: answer 200 */
};
int ig_wh_handshake(const char *scheme, const char *method, const char *url,
                    const char *const *names, const char *const *values, size_t n,
                    const unsigned char *body, size_t body_len);

/* The first query parameter `name` of `url`, form-decoded (%XX and '+'),
 * malloc'd into *out (NULL when absent). INTEG_OK or INTEG_ENOMEM. For the
 * msgraph handshake: ig_wh_query_param(url, "validationToken", &token). */
int ig_wh_query_param(const char *url, const char *name, char **out);

#endif
