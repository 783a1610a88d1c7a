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
    char *body;
    size_t body_len;
    const char *method;
} ig_req;

void ig_req_free(ig_req *r);

/* Set (or replace, case-insensitively) a header. */
int ig_req_header(ig_req *r, const char *name, const char *value);

/* Templates of a manifest headers/query object; a value naming an unset
 * placeholder is left out. */
int ig_req_headers(ig_req *r, json_object *headers, ig_tmpl_lookup lookup, void *payload);
int ig_req_query(ig_req *r, json_object *query, ig_tmpl_lookup lookup, void *payload);

/* The auth method's "apply" (after ig_auth_prepare makes the token current). */
int ig_req_auth(ig_req *r, ig_conn *c, ig_tmpl_lookup lookup, void *payload);

/* Send once with the manifest's rate-limit signals; `flags` as for
 * ig_http_send_ex. A final status >= 300 is mapped by ig_http_status_error;
 * an exhausted budget signal is INTEG_ERATELIMIT. */
int ig_req_send_once(ig_conn *c, ig_req *r, const char *what, unsigned flags, ig_http_response *resp);

#endif
