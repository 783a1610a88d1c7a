/* Internal: building and sending one manifest request (rest_request.c). */
#ifndef IG_REST_REQUEST_H
#define IG_REST_REQUEST_H

#include <json-c/json.h>

#include "engine.h"
#include "http.h"
#include "template.h"

#define IG_REQ_MAX_HEADERS 32

/* A request being built: owned strings for headers, URL, body. */
typedef struct ig_req {
    char *names[IG_REQ_MAX_HEADERS];
    char *values[IG_REQ_MAX_HEADERS]; /* wiped when freed: they may hold credentials */
    size_t n;
    ig_url *url;
    char *body;                       /* wiped when freed or replaced (a login's password) */
    size_t body_len;
    const char *method;
} ig_req;

void ig_req_free(ig_req *r);

/* Start a request (r is overwritten): `method` (GET when NULL) to `path`, a
 * template rendered with lookup: relative to the connection's base URL, or
 * an absolute http(s) URL; then "Accept: application/json" and the
 * manifest's own headers (ig_req_headers of its "headers", rendered with
 * the same lookup: they name only {config.x}). A path naming an unset
 * value is INTEG_EINVAL prefixed with `what`. Callers that want {id}
 * percent-encoded in the path make their lookup say so for this call. */
int ig_req_begin(ig_req *r, ig_conn *c, const char *method, const char *path, ig_tmpl_lookup lookup,
                 void *payload, const char *what);

/* The same to `url` taken as it is (a next link), resolved against the
 * base URL; lookup renders the manifest's headers. */
int ig_req_begin_url(ig_req *r, ig_conn *c, const char *method, const char *url, ig_tmpl_lookup lookup,
                     void *payload);

/* The body: JSON (NULL: none) with "Content-Type: application/json", or
 * `len` bytes of `content_type`. Replaces any earlier body. */
int ig_req_json_body(ig_req *r, json_object *body);
int ig_req_body(ig_req *r, const void *body, size_t len, const char *content_type);

/* Set (or replace, case-insensitively) a header. */
int ig_req_header(ig_req *r, const char *name, const char *value);

/* Templates of a manifest headers/query object; a value naming an unset
 * placeholder is left out. Rendered values are wiped after use. */
int ig_req_headers(ig_req *r, json_object *headers, ig_tmpl_lookup lookup, void *payload);
int ig_req_query(ig_req *r, json_object *query, ig_tmpl_lookup lookup, void *payload);

/* The auth method's "apply" (after ig_auth_prepare makes the token current). */
int ig_req_auth(ig_req *r, ig_conn *c, ig_tmpl_lookup lookup, void *payload);

/* Send once with the manifest's rate-limit signals; `flags` as for
 * ig_http_send_ex. A final status >= 300 is mapped by ig_http_status_error;
 * an exhausted budget signal is INTEG_ERATELIMIT. */
int ig_req_send_once(ig_conn *c, ig_req *r, const char *what, unsigned flags, ig_http_response *resp);

/* ig_req_send_once, and after a 401 on a token-based method one fresh token
 * (refresh, re-login, new client-credentials token: ig_auth_after_401), the
 * auth applied again with lookup and the request sent once more. A 401
 * means the server did not act, so this is safe for creates too. */
int ig_req_send(ig_conn *c, ig_req *r, ig_tmpl_lookup lookup, void *payload, const char *what, unsigned flags,
                ig_http_response *resp);

#endif
