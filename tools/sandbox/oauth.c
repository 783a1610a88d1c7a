/* HubSpot-style OAuth 2.0 endpoints, so a demo can show a "Connect" flow
 * (doc/sandbox.md):
 *
 *   GET  /hubspot/oauth/authorize   approves at once and redirects (302) to
 *                                   redirect_uri with code and state
 *   POST /hubspot/oauth/v1/token    authorization_code (PKCE S256 checked
 *                                   when the authorize request had a
 *                                   challenge) and refresh_token
 *
 * Any client_id is accepted, with any non-empty client_secret (in the form
 * or as HTTP Basic). The access token handed out is the sandbox's token
 * (--token), so the API accepts it; refresh tokens are random and rotate
 * on every use. Codes live 10 minutes and are single use. */
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"

#define MAX_CODES 64
#define MAX_REFRESH 256
#define CODE_TTL_MS (10 * 60 * 1000)

struct code {
    char code[48];
    char client_id[128];
    char redirect_uri[512];
    char challenge[64];  /* "" when the request had none */
    char scope[512];
    ms_t expires;
    int used;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct code codes[MAX_CODES];
static size_t next_code;
static char refresh[MAX_REFRESH][48];
static size_t next_refresh;

static void random_token(char *out, size_t cap)
{
    unsigned char raw[24];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, cap, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void oauth_error(struct req *r, unsigned status, const char *error, const char *hs_status, const char *msg)
{
    sb_reset(&r->out);
    r->status = status;
    sbuf cid;
    sb_init(&cid);
    correlation_id(&cid, r->seq);
    /* RFC 6749 fields, plus HubSpot's own status/message/correlationId. */
    sb_puts(&r->out, "{\"error\":");
    sb_jstr(&r->out, error);
    sb_puts(&r->out, ",\"error_description\":");
    sb_jstr(&r->out, msg);
    sb_puts(&r->out, ",\"status\":");
    sb_jstr(&r->out, hs_status);
    sb_puts(&r->out, ",\"message\":");
    sb_jstr(&r->out, msg);
    sb_printf(&r->out, ",\"correlationId\":\"%s\"}", cid.p);
    sb_free(&cid);
}

static void authorize(struct req *r)
{
    const char *client_id = req_arg(r, "client_id");
    const char *redirect = req_arg(r, "redirect_uri");
    const char *state = req_arg(r, "state");
    const char *challenge = req_arg(r, "code_challenge");
    const char *method = req_arg(r, "code_challenge_method");
    const char *scope = req_arg(r, "scope");
    if (!client_id || !*client_id || strlen(client_id) >= sizeof codes[0].client_id)
        return oauth_error(r, 400, "invalid_request", "BAD_CLIENT_ID", "missing or invalid client_id");
    if (!redirect || (strncmp(redirect, "http://", 7) && strncmp(redirect, "https://", 8)) ||
        strlen(redirect) >= sizeof codes[0].redirect_uri || strchr(redirect, '#'))
        return oauth_error(r, 400, "invalid_request", "BAD_REDIRECT_URI", "missing or invalid redirect_uri");
    const char *rt = req_arg(r, "response_type");
    if (rt && strcmp(rt, "code"))
        return oauth_error(r, 400, "unsupported_response_type", "BAD_REQUEST", "response_type must be code");
    if (challenge && (strlen(challenge) != 43 || (method && strcmp(method, "S256"))))
        return oauth_error(r, 400, "invalid_request", "BAD_REQUEST", "code_challenge must be S256 (43 characters)");

    pthread_mutex_lock(&mu);
    struct code *c = &codes[next_code++ % MAX_CODES];
    memset(c, 0, sizeof *c);
    random_token(c->code, sizeof c->code);
    snprintf(c->client_id, sizeof c->client_id, "%s", client_id);
    snprintf(c->redirect_uri, sizeof c->redirect_uri, "%s", redirect);
    snprintf(c->challenge, sizeof c->challenge, "%s", challenge ? challenge : "");
    snprintf(c->scope, sizeof c->scope, "%s", scope ? scope : "");
    c->expires = now_ms() + CODE_TTL_MS;
    char code[48];
    snprintf(code, sizeof code, "%s", c->code);
    pthread_mutex_unlock(&mu);

    /* The user "approves" at once: back to the app with code and state. */
    sbuf loc;
    sb_init(&loc);
    sb_puts(&loc, redirect);
    sb_puts(&loc, strchr(redirect, '?') ? "&code=" : "?code=");
    sb_urlenc(&loc, code);
    if (state) {
        sb_puts(&loc, "&state=");
        sb_urlenc(&loc, state);
    }
    req_header(r, "Location", "%s", loc.p);
    sb_free(&loc);
    r->status = 302;
    r->ctype = "text/html; charset=utf-8";
    sb_reset(&r->out);
    sb_puts(&r->out, "<html><body>Redirecting back to the app</body></html>");
}

/* One field of an application/x-www-form-urlencoded body, decoded. */
static int form_get(const char *body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t j = 0;
            for (size_t i = nl + 1; i < len && j + 1 < cap; i++) {
                char ch = p[i];
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%' && i + 2 < len) {
                    char hex[3] = {p[i + 1], p[i + 2], 0};
                    ch = (char)strtol(hex, NULL, 16);
                    i += 2;
                }
                out[j++] = ch;
            }
            out[j] = '\0';
            return 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    out[0] = '\0';
    return 0;
}

static void issue(struct req *r, const char *scope)
{
    char rt[48];
    random_token(rt, sizeof rt);
    pthread_mutex_lock(&mu);
    snprintf(refresh[next_refresh++ % MAX_REFRESH], sizeof refresh[0], "%s", rt);
    pthread_mutex_unlock(&mu);
    sb_reset(&r->out);
    r->status = 200;
    sb_puts(&r->out, "{\"token_type\":\"bearer\",\"access_token\":");
    sb_jstr(&r->out, SB.token);
    sb_puts(&r->out, ",\"refresh_token\":");
    sb_jstr(&r->out, rt);
    sb_puts(&r->out, ",\"expires_in\":1800");
    if (scope && *scope) {
        sb_puts(&r->out, ",\"scope\":");
        sb_jstr(&r->out, scope);
    }
    sb_putc(&r->out, '}');
}

static void token(struct req *r)
{
    const char *body = r->body ? r->body : "";
    char grant[64], client_id[128], secret[256], code[64], redirect[512], verifier[160], rt[64];
    form_get(body, "grant_type", grant, sizeof grant);
    form_get(body, "client_id", client_id, sizeof client_id);
    form_get(body, "client_secret", secret, sizeof secret);
    const char *auth = req_hdr(r, "Authorization");
    if (!client_id[0] && auth && !strncasecmp(auth, "Basic ", 6)) {
        sbuf dec;
        sb_init(&dec);
        if (b64_decode(auth + 6, &dec) == 0 && dec.p && strchr(dec.p, ':')) {
            char *colon = strchr(dec.p, ':');
            snprintf(client_id, sizeof client_id, "%.*s", (int)(colon - dec.p), dec.p);
            snprintf(secret, sizeof secret, "%s", colon + 1);
        }
        sb_free(&dec);
    }
    if (!client_id[0] || !secret[0])
        return oauth_error(r, 401, "invalid_client", "BAD_CLIENT_ID", "missing client_id or client_secret");
    if (!strcmp(grant, "authorization_code")) {
        form_get(body, "code", code, sizeof code);
        form_get(body, "redirect_uri", redirect, sizeof redirect);
        int has_verifier = form_get(body, "code_verifier", verifier, sizeof verifier);
        pthread_mutex_lock(&mu);
        struct code *c = NULL;
        for (size_t i = 0; i < MAX_CODES; i++)
            if (codes[i].code[0] && !strcmp(codes[i].code, code))
                c = &codes[i];
        const char *why = NULL;
        if (!c || c->used || c->expires < now_ms())
            why = "missing or unknown auth code";
        else if (strcmp(c->client_id, client_id))
            why = "auth code was issued to another client";
        else if (strcmp(c->redirect_uri, redirect))
            why = "redirect_uri does not match the authorize request";
        else if (c->challenge[0]) {
            unsigned char h[crypto_hash_sha256_BYTES];
            char want[64];
            crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
            sodium_bin2base64(want, sizeof want, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            if (!has_verifier || strlen(verifier) < 43 || strcmp(want, c->challenge))
                why = "PKCE verification failed";
        }
        char scope[512] = "";
        if (c) {
            c->used = 1; /* a code is spent by any attempt */
            snprintf(scope, sizeof scope, "%s", c->scope);
        }
        pthread_mutex_unlock(&mu);
        if (why)
            return oauth_error(r, 400, "invalid_grant", "BAD_AUTH_CODE", why);
        return issue(r, scope);
    }
    if (!strcmp(grant, "refresh_token")) {
        form_get(body, "refresh_token", rt, sizeof rt);
        int found = 0;
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < MAX_REFRESH; i++)
            if (rt[0] && !strcmp(refresh[i], rt)) {
                refresh[i][0] = '\0'; /* rotated: single use */
                found = 1;
            }
        pthread_mutex_unlock(&mu);
        if (!found)
            return oauth_error(r, 400, "invalid_grant", "BAD_REFRESH_TOKEN", "missing or invalid refresh token");
        return issue(r, NULL);
    }
    oauth_error(r, 400, "unsupported_grant_type", "BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token");
}

int hs_oauth_path(const char *path) { return strncmp(path, "/oauth/", 7) == 0; }

void hs_oauth(struct req *r)
{
    if (!strcmp(r->path, "/oauth/authorize") && !strcmp(r->method, "GET"))
        return authorize(r);
    if (!strcmp(r->path, "/oauth/v1/token") && !strcmp(r->method, "POST"))
        return token(r);
    oauth_error(r, 404, "invalid_request", "NOT_FOUND", "unknown OAuth endpoint");
}
