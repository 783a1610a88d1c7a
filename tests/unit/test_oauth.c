/* OAuth 2.0 and the other token flows.
 *
 * Against a real authorization server (oidc-provider, tests/oauth/
 * oidc_peer.mjs, started here on loopback): authorization code + PKCE with
 * the login and consent steps driven over HTTP, refresh with rotation,
 * forced refresh, revoked refresh token -> needs_reauth + event, provider
 * error on the callback, unknown / reused / expired state, a code redeemed
 * with another state's verifier, 8 threads at expiry -> one refresh,
 * client credentials with private_key_jwt, the JWT bearer grant.
 *
 * Against a scripted libmicrohttpd server: client credentials cached
 * (PowerOffice manifest), Tripletex and Magento sessions (their manifests),
 * an SAP Business One style cookie session with re-login on 401, and a sync
 * through the REST engine whose token expires mid-run.
 *
 * Without node or the npm package the oidc-provider cases are skipped (and
 * the executable exits 77 when everything else passed). */
#include <curl/curl.h>
#include <json-c/json.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <microhttpd.h>
#include <sodium.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "ctx.h"
#include "definitions.h"
#include "engine.h"
#include "json.h"
#include "oauth.h"
#include "template.h"
#include "test.h"
#include "util.h"

#define REDIRECT "http://127.0.0.1:9/callback"

/* ---- the clock: tests move time; sleeping waits a little, really ------------ */

static _Atomic int64_t fake_now;
static int64_t fk_now(void *p) { (void)p; return fake_now; }
static void fk_sleep(void *p, int64_t ms)
{
    (void)p;
    struct timespec ts = {0, (long)(ms > 5 ? 5 : ms) * 1000000L};
    nanosleep(&ts, NULL);
}
static uint32_t fk_rand(void *p) { (void)p; return 0x80000000u; }
static const ig_clock fake_clock = {fk_now, fk_sleep, fk_rand, NULL};
static void clock_reset(void) { fake_now = ig_now_ms(); }

/* ---- events ---------------------------------------------------------------- */

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static int ev_reauth;
static char ev_last[2048];
static void on_event(void *p, const char *json)
{
    (void)p;
    pthread_mutex_lock(&ev_lock);
    if (strstr(json, "\"integration.needs_reauth\""))
        ev_reauth++;
    snprintf(ev_last, sizeof ev_last, "%s", json);
    pthread_mutex_unlock(&ev_lock);
}

/* ---- the oidc-provider peer --------------------------------------------------- */

static struct {
    pid_t pid;
    int in_fd;
    char url[128];
    char *pem;
    char kid[64];
} peer;

static const char *peer_script(char *buf, size_t cap)
{
    if (cap < 16)
        return NULL;
    const char *env = getenv("INTEG_OIDC_PEER");
    if (env)
        return env;
    /* __FILE__ is absolute or relative to the build root, which is two
     * levels above this executable (BUILD/tests/test_oauth). */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (dir[0] == '/') {
        snprintf(buf, cap, "%s/../oauth/oidc_peer.mjs", dir);
        return buf;
    }
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    for (int i = 0; i < 2 && strrchr(exe, '/'); i++)
        *strrchr(exe, '/') = '\0';
    int n2 = snprintf(buf, cap, "%.1000s/%.900s/../oauth/oidc_peer.mjs", exe, dir);
    return n2 > 0 && (size_t)n2 < cap ? buf : NULL;
}

static int peer_start(void)
{
    char buf[2048];
    const char *script = peer_script(buf, sizeof buf);
    if (!script || access(script, R_OK) != 0) {
        fprintf(stderr, "  oidc peer: script not found (%s)\n", script ? script : "?");
        return -1;
    }
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp("node", "node", script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    peer.pid = pid;
    peer.in_fd = in[1];
    static char line[32768];
    size_t len = 0;
    struct pollfd pfd = {out[0], POLLIN, 0};
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        if (poll(&pfd, 1, 30000) <= 0)
            break;
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(out[0]);
    line[len] = '\0';
    json_object *o = json_tokener_parse(line);
    const char *url = json_object_get_string(json_object_object_get(o, "url"));
    const char *pem = json_object_get_string(json_object_object_get(o, "private_key_pem"));
    if (!url || !pem) {
        json_object_put(o);
        fprintf(stderr, "  oidc peer: did not start (node or oidc-provider missing?)\n");
        close(peer.in_fd);
        waitpid(pid, NULL, 0);
        peer.pid = 0;
        return -1;
    }
    snprintf(peer.url, sizeof peer.url, "%s", url);
    peer.pem = strdup(pem);
    snprintf(peer.kid, sizeof peer.kid, "%s", json_object_get_string(json_object_object_get(o, "kid")));
    json_object_put(o);
    return 0;
}

static void peer_stop(void)
{
    if (!peer.pid)
        return;
    close(peer.in_fd);
    int st;
    for (int i = 0; i < 50 && waitpid(peer.pid, &st, WNOHANG) == 0; i++)
        usleep(100000);
    if (waitpid(peer.pid, &st, WNOHANG) == 0) {
        kill(peer.pid, SIGTERM);
        waitpid(peer.pid, &st, 0);
    }
    free(peer.pem);
}

/* ---- a small HTTP client (libcurl) for driving the provider ------------------ */

struct hbuf {
    char *p;
    size_t n;
};
static size_t hb_write(char *d, size_t s, size_t n, void *u)
{
    struct hbuf *b = u;
    char *np = realloc(b->p, b->n + s * n + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->n, d, s * n);
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

/* One request, no redirects followed. Returns the status; *location and
 * *body (malloc'd, may be NULL) when asked. */
static long http(CURL *h, const char *method, const char *url, const char *form, char **location, char **body)
{
    struct hbuf b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, hb_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (form) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (location) {
        char *loc = NULL;
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
        *location = loc ? strdup(loc) : NULL;
    }
    if (body)
        *body = b.p;
    else
        free(b.p);
    return status;
}

/* Follow the authorize URL through login and consent (or abort) until the
 * provider redirects to REDIRECT; returns that URL (malloc'd) or NULL. */
static char *drive(const char *authorize_url, int abort_it)
{
    CURL *h = curl_easy_init();
    char *url = strdup(authorize_url), *result = NULL;
    for (int step = 0; step < 16 && url; step++) {
        char *loc = NULL, *body = NULL;
        http(h, "GET", url, NULL, &loc, &body);
        if (!loc && body && strstr(body, "\"prompt\"")) {
            json_object *o = json_tokener_parse(body);
            const char *prompt = json_object_get_string(json_object_object_get(o, "prompt"));
            char post[1200];
            const char *form = NULL;
            if (abort_it)
                snprintf(post, sizeof post, "%s/abort", url);
            else if (prompt && !strcmp(prompt, "login")) {
                snprintf(post, sizeof post, "%s/login", url);
                form = "login=alice";
            } else
                snprintf(post, sizeof post, "%s/confirm", url);
            json_object_put(o);
            http(h, "POST", post, form, &loc, NULL);
        }
        free(body);
        free(url);
        url = NULL;
        if (loc && !strncmp(loc, REDIRECT, strlen(REDIRECT))) {
            result = loc;
            break;
        }
        url = loc;
    }
    free(url);
    curl_easy_cleanup(h);
    return result;
}

static json_object *peer_json(const char *method, const char *path, const char *form)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", peer.url, path);
    CURL *h = curl_easy_init();
    char *body = NULL;
    http(h, method, url, form, NULL, &body);
    curl_easy_cleanup(h);
    json_object *o = body ? json_tokener_parse(body) : NULL;
    free(body);
    return o;
}

static int64_t peer_count(const char *grant)
{
    json_object *o = peer_json("GET", "/admin/counts", NULL);
    int64_t n = json_object_get_int64(json_object_object_get(o, grant));
    json_object_put(o);
    return n;
}

/* The callback's query as the host hands it over: {state, code} or
 * {state, error, error_description}. */
static char *callback_json(const char *cb_url)
{
    ig_url *u = NULL;
    json_object *o = json_object_new_object();
    if (ig_url_parse(cb_url, &u) == INTEG_OK) {
        const char *names[] = {"state", "code", "error", "error_description", "iss"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            char v[2048];
            if (ig_url_get_query_param(u, names[i], v, sizeof v))
                json_object_object_add(o, names[i], json_object_new_string(v));
        }
    }
    ig_url_free(u);
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

/* ---- fixtures ------------------------------------------------------------------- */

#define CONFIG_SCHEMA                                                                                      \
    "{\"type\":\"object\",\"properties\":{\"sync_interval\":{\"type\":\"integer\",\"minimum\":60,"         \
    "\"maximum\":604800,\"default\":3600},\"auto_sync\":{\"type\":\"boolean\",\"default\":false},"         \
    "\"entities\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"type\":\"string\",\"enum\":[\"items\"]}}}," \
    "\"additionalProperties\":false}"
#define ENTITY                                                                                             \
    "{\"items\":{\"local_entity\":\"contacts\",\"path\":\"/items\",\"records_path\":\"$.items\",\"id_field\":\"id\",\"updated_field\":\"updated\"," \
    "\"pagination\":{\"type\":\"page\",\"param\":\"page\",\"size_param\":\"per_page\",\"size\":10},"       \
    "\"default_mapping\":{\"field_map\":{\"email\":\"email\",\"first_name\":\"name\"}}}}"
#define OAUTH_CREDS                                                                                        \
    "{\"type\":\"object\",\"properties\":{\"access_token\":{\"type\":\"string\",\"minLength\":1},"         \
    "\"refresh_token\":{\"type\":\"string\",\"minLength\":1},\"token_type\":{\"type\":\"string\"},"        \
    "\"expires_at\":{\"type\":\"string\",\"format\":\"date-time\"},\"scope\":{\"type\":\"string\"}},"       \
    "\"required\":[\"access_token\"]}"
#define BEARER_TOKEN "{\"in\":\"header\",\"name\":\"Authorization\",\"prefix\":\"Bearer \",\"value\":\"{token.access_token}\"}"

static void oauth2_manifest(char *buf, size_t cap, const char *key, const char *client_auth)
{
    snprintf(buf, cap,
             "{\"manifest_version\":1,\"key\":\"%s\",\"name\":\"Test %s\",\"category\":\"crm\","
             "\"base_url\":\"https://api.example.com\",\"auth\":{\"default\":\"oauth2\",\"methods\":{\"oauth2\":{"
             "\"authorize_url\":\"https://idp.example.com/auth\",\"token_url\":\"https://idp.example.com/token\","
             "\"scopes\":[\"openid\",\"offline_access\"],\"pkce\":true,\"client_auth\":\"%s\","
             "\"authorize_params\":{\"prompt\":\"consent\"},\"refresh\":true,"
             "\"apply\":{\"in\":\"header\",\"name\":\"Authorization\",\"prefix\":\"Bearer \",\"value\":\"{credentials.access_token}\"},"
             "\"credentials_schema\":" OAUTH_CREDS "}}},"
             "\"config_schema\":" CONFIG_SCHEMA ",\"capabilities\":[\"pull\"],\"entities\":" ENTITY ","
             "\"test_request\":{\"method\":\"GET\",\"path\":\"/ping\"}}",
             key, key, client_auth);
}

struct env {
    integ_ctx *ctx;
    integ_session *s;
};

static int env_open(struct env *e, const char *overrides)
{
    memset(e, 0, sizeof *e);
    char opts[4096];
    snprintf(opts, sizeof opts,
             "{\"store\":\"sqlite::memory:\",\"master_key\":\"" TEST_MASTER_KEY "\",\"http\":{\"allow_private_networks\":true,"
             "\"max_retries\":1},\"base_url_overrides\":%s}",
             overrides ? overrides : "{}");
    if (integ_ctx_open(&e->ctx, opts) != INTEG_OK) {
        fprintf(stderr, "  open: %s\n", integ_errmsg());
        return -1;
    }
    ig_ctx_set_clock(e->ctx, &fake_clock);
    integ_ctx_set_event_cb(e->ctx, on_event, NULL);
    return integ_session_open(&e->s, e->ctx, "acme", "alice", "[\"admin\"]") == INTEG_OK ? 0 : -1;
}

static void env_close(struct env *e)
{
    integ_session_close(e->s);
    integ_ctx_close(e->ctx);
}

/* An env with the oidc-provider behind the "toidc-crm" definition. */
static int oidc_env(struct env *e)
{
    clock_reset();
    char ovr[1024], m[8192];
    snprintf(ovr, sizeof ovr,
             "{\"toidc-crm\":{\"api\":\"%s\",\"authorize_url\":\"%s/auth\",\"token_url\":\"%s/token\"},"
             "\"toidcb-crm\":{\"api\":\"%s\",\"authorize_url\":\"%s/auth\",\"token_url\":\"%s/token\"}}",
             peer.url, peer.url, peer.url, peer.url, peer.url, peer.url);
    if (env_open(e, ovr))
        return -1;
    oauth2_manifest(m, sizeof m, "toidc-crm", "client_secret_post");
    if (integ_definition_register(e->ctx, m, NULL) != INTEG_OK) {
        fprintf(stderr, "  register: %s\n", integ_errmsg());
        return -1;
    }
    oauth2_manifest(m, sizeof m, "toidcb-crm", "client_secret_basic");
    if (integ_definition_register(e->ctx, m, NULL) != INTEG_OK)
        return -1;
    if (integ_definition_set_app_credentials(e->ctx, "toidc-crm",
                                             "{\"client_id\":\"code-client\",\"client_secret\":\"code-secret\"}") ||
        integ_definition_set_app_credentials(e->ctx, "toidcb-crm",
                                             "{\"client_id\":\"code-basic-client\",\"client_secret\":\"code-basic-secret\"}"))
        return -1;
    return 0;
}

static char *begin(struct env *e, const char *key, char *state_out, size_t cap)
{
    char req[512], *out = NULL;
    snprintf(req, sizeof req, "{\"integration_definition_id\":\"%s\",\"redirect_uri\":\"" REDIRECT "\",\"name\":\"My CRM\"}", key);
    int rc = integ_oauth_begin(e->s, req, &out);
    if (rc) {
        fprintf(stderr, "  begin: %s\n", integ_errmsg());
        return NULL;
    }
    json_object *o = json_tokener_parse(out);
    integ_free(out);
    char *url = strdup(json_object_get_string(json_object_object_get(o, "authorize_url")));
    if (state_out)
        snprintf(state_out, cap, "%s", json_object_get_string(json_object_object_get(o, "state")));
    json_object_put(o);
    return url;
}

/* begin + drive + complete: the new integration's id. */
static int connect_one(struct env *e, const char *key, char id[64])
{
    char *url = begin(e, key, NULL, 0);
    char *cb = url ? drive(url, 0) : NULL;
    free(url);
    if (!cb)
        return -1;
    char *js = callback_json(cb), *out = NULL;
    free(cb);
    int rc = integ_oauth_complete(e->ctx, js, &out);
    free(js);
    if (rc) {
        fprintf(stderr, "  complete: %s\n", integ_errmsg());
        return -1;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(id, 64, "%s", json_object_get_string(json_object_object_get(o, "id")));
    json_object_put(o);
    integ_free(out);
    return 0;
}

/* An integration record's sealed field, opened (internal API). */
static json_object *stored(struct env *e, const char *id, const char *field)
{
    void *tx = NULL;
    json_object *rec = NULL, *out = NULL;
    if (ig_tx_begin(e->ctx, 0, &tx) == INTEG_OK)
        ig_tx_end(e->ctx, tx, 1, ig_store_get(e->ctx, tx, INTEG_KIND_INTEGRATION, "acme", id, &rec));
    ig_oauth_open_from(e->ctx, rec, field, &out);
    json_object_put(rec);
    return out;
}

static char *stored_str(struct env *e, const char *id, const char *field, const char *key)
{
    json_object *o = stored(e, id, field);
    const char *v = json_object_get_string(json_object_object_get(o, key));
    char *s = v ? strdup(v) : NULL;
    json_object_put(o);
    return s;
}

static int64_t stored_expiry_ms(struct env *e, const char *id)
{
    char *s = stored_str(e, id, "credentials_sealed", "expires_at");
    int64_t ms = -1;
    if (s)
        ig_parse_rfc3339(s, &ms);
    free(s);
    return ms;
}

/* Open a connection and make its token current; the token (malloc'd). */
static char *conn_token(struct env *e, const char *id, int *rc_out)
{
    ig_conn *c = NULL;
    int rc = ig_conn_open(e->ctx, "acme", id, &c);
    if (rc == INTEG_OK)
        rc = ig_auth_prepare(c);
    char *tok = NULL;
    if (rc == INTEG_OK)
        tok = strdup(json_object_get_string(json_object_object_get(c->token, "access_token")));
    if (rc_out)
        *rc_out = rc;
    ig_conn_close(c);
    return tok;
}

static int rng_cb(void *p, unsigned char *out, size_t n)
{
    (void)p;
    randombytes_buf(out, n);
    return 0;
}

static const char *jstr(json_object *o, const char *k) { return json_object_get_string(json_object_object_get(o, k)); }

/* ---- oidc-provider cases ---------------------------------------------------------- */

static void test_code_flow_pkce(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char state[128];
    char *url = begin(&e, "toidc-crm", state, sizeof state);
    CHECK(url && strstr(url, "code_challenge=") && strstr(url, "code_challenge_method=S256"));
    CHECK(url && strstr(url, "response_type=code") && strstr(url, "client_id=code-client"));
    CHECK(url && strstr(url, "scope=openid%20offline_access") && strstr(url, "prompt=consent"));
    CHECK(url && (strstr(url, "redirect_uri=http%3a%2f%2f127.0.0.1%3a9%2fcallback") ||
                  strstr(url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback")));
    CHECK(strlen(state) == 43);
    /* The store keeps a hash of the state, never the state. */
    json_object *states = json_object_new_array();
    void *tx = NULL;
    ig_tx_begin(e.ctx, 0, &tx);
    ig_store_list(e.ctx, tx, INTEG_KIND_OAUTH_STATE, NULL, states);
    ig_tx_end(e.ctx, tx, 1, 0);
    CHECK(json_object_array_length(states) == 1);
    const char *rec_text = json_object_to_json_string(states);
    CHECK(!strstr(rec_text, state));
    CHECK(strstr(rec_text, "verifier_sealed") != NULL);
    json_object_put(states);

    char *cb = url ? drive(url, 0) : NULL;
    CHECK(cb != NULL);
    char *js = cb ? callback_json(cb) : NULL, *out = NULL;
    CHECK_OK(integ_oauth_complete(e.ctx, js, &out));
    json_object *integ = out ? json_tokener_parse(out) : NULL;
    CHECK_STR(jstr(integ, "status"), "active");
    CHECK_STR(jstr(integ, "auth_type"), "oauth2");
    CHECK_STR(jstr(integ, "name"), "My CRM");
    CHECK_STR(jstr(integ, "tenant_id"), "acme");
    CHECK(json_object_get_boolean(json_object_object_get(integ, "has_credentials")));
    CHECK(out && !strstr(out, "access_token") && !strstr(out, "refresh_token"));
    const char *id = jstr(integ, "id");
    json_object *creds = id ? stored(&e, id, "credentials_sealed") : NULL;
    CHECK(jstr(creds, "access_token") && jstr(creds, "refresh_token") && jstr(creds, "expires_at"));
    CHECK_STR(jstr(creds, "scope"), "openid offline_access");
    json_object_put(creds);
    /* Reused state: the first complete consumed it. */
    char *out2 = NULL;
    CHECK_RC(integ_oauth_complete(e.ctx, js, &out2), INTEG_ENOTFOUND);
    CHECK_MSG("unknown or used state");
    CHECK(out2 == NULL);
    /* Unknown state. */
    CHECK_RC(integ_oauth_complete(e.ctx, "{\"state\":\"nope\",\"code\":\"x\"}", &out2), INTEG_ENOTFOUND);
    CHECK_RC(integ_oauth_complete(e.ctx, "{\"code\":\"x\"}", &out2), INTEG_EINVAL);
    /* Audit: begin and complete, under the user who began. */
    char *audit = NULL;
    CHECK_OK(integ_audit_list(e.s, NULL, &audit));
    CHECK(audit && strstr(audit, "\"oauth.begin\"") && strstr(audit, "\"oauth.complete\"") &&
          strstr(audit, "\"integration.create\""));
    CHECK(audit && !strstr(audit, state));
    integ_free(audit);
    /* The connection works: a token for requests, no refresh needed yet. */
    int rc = -1;
    int64_t before = peer_count("refresh_token");
    char *tok = id ? conn_token(&e, id, &rc) : NULL;
    CHECK(rc == INTEG_OK && tok);
    CHECK(peer_count("refresh_token") == before);
    free(tok);
    json_object_put(integ);
    integ_free(out);
    free(js);
    free(cb);
    free(url);
    env_close(&e);
}

static void test_client_secret_basic_and_reauthorise(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    CHECK(connect_one(&e, "toidcb-crm", id) == 0);
    char *at1 = stored_str(&e, id, "credentials_sealed", "access_token");
    /* Re-authorise the same integration: credentials replaced, same id. */
    char req[512], *out = NULL;
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"toidcb-crm\",\"redirect_uri\":\"" REDIRECT "\",\"integration_id\":\"%s\"}", id);
    CHECK_OK(integ_oauth_begin(e.s, req, &out));
    json_object *o = out ? json_tokener_parse(out) : NULL;
    char *cb = o ? drive(jstr(o, "authorize_url"), 0) : NULL;
    char *js = cb ? callback_json(cb) : NULL, *res = NULL;
    CHECK_OK(integ_oauth_complete(e.ctx, js, &res));
    json_object *r = res ? json_tokener_parse(res) : NULL;
    CHECK_STR(jstr(r, "id"), id);
    char *at2 = stored_str(&e, id, "credentials_sealed", "access_token");
    CHECK(at1 && at2 && strcmp(at1, at2) != 0);
    char *list = NULL;
    CHECK_OK(integ_integrations_list(e.s, NULL, &list));
    json_object *l = list ? json_tokener_parse(list) : NULL;
    CHECK(json_object_array_length(l) == 1);
    json_object_put(l);
    integ_free(list);
    /* Another definition's integration cannot be re-authorised here. */
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"toidc-crm\",\"redirect_uri\":\"" REDIRECT "\",\"integration_id\":\"%s\"}", id);
    char *bad = NULL;
    CHECK_RC(integ_oauth_begin(e.s, req, &bad), INTEG_EINVAL);
    /* Bad requests name the field. */
    CHECK_RC(integ_oauth_begin(e.s, "{\"integration_definition_id\":\"toidc-crm\",\"redirect_uri\":\"ftp://x/\"}", &bad),
             INTEG_EINVAL);
    CHECK_MSG("redirect_uri");
    CHECK_RC(integ_oauth_begin(e.s, "{\"integration_definition_id\":\"toidc-crm\",\"redirect_uri\":\"" REDIRECT "\","
                                     "\"config\":{\"sync_interval\":1}}", &bad), INTEG_EINVAL);
    CHECK_MSG("config.sync_interval");
    CHECK_RC(integ_oauth_begin(e.s, "{\"integration_definition_id\":\"hubspot-crm\",\"redirect_uri\":\"" REDIRECT "\"}", &bad),
             INTEG_EINVAL);
    CHECK_MSG("app credentials");
    CHECK_RC(integ_oauth_begin(e.s, "{\"integration_definition_id\":\"xledger-accounting\",\"redirect_uri\":\"" REDIRECT "\"}", &bad),
             INTEG_EINVAL);
    CHECK_MSG("no oauth2");
    integ_session *viewer = NULL;
    integ_session_open(&viewer, e.ctx, "acme", "bob", NULL);
    CHECK_RC(integ_oauth_begin(viewer, "{\"integration_definition_id\":\"toidc-crm\",\"redirect_uri\":\"" REDIRECT "\"}", &bad),
             INTEG_EPERM);
    /* Another tenant cannot re-authorise it (not found). */
    integ_session *other = NULL;
    integ_session_open(&other, e.ctx, "globex", "carol", "[\"admin\"]");
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"toidcb-crm\",\"redirect_uri\":\"" REDIRECT "\",\"integration_id\":\"%s\"}", id);
    CHECK_RC(integ_oauth_begin(other, req, &bad), INTEG_ENOTFOUND);
    integ_session_close(other);
    integ_session_close(viewer);
    free(at1);
    free(at2);
    json_object_put(r);
    integ_free(res);
    free(js);
    free(cb);
    json_object_put(o);
    integ_free(out);
    env_close(&e);
}

static void test_expired_state(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char *url = begin(&e, "toidc-crm", NULL, 0);
    char *cb = url ? drive(url, 0) : NULL;
    char *js = cb ? callback_json(cb) : NULL, *out = NULL;
    fake_now += 11 * 60 * 1000;
    CHECK_RC(integ_oauth_complete(e.ctx, js, &out), INTEG_EAUTH);
    CHECK_MSG("expired");
    /* and it is gone */
    CHECK_RC(integ_oauth_complete(e.ctx, js, &out), INTEG_ENOTFOUND);
    free(js);
    free(cb);
    free(url);
    env_close(&e);
}

static void test_provider_error_on_callback(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char *url = begin(&e, "toidc-crm", NULL, 0);
    char *cb = url ? drive(url, 1) : NULL;
    CHECK(cb && strstr(cb, "error=access_denied"));
    char *js = cb ? callback_json(cb) : NULL, *out = NULL;
    CHECK_RC(integ_oauth_complete(e.ctx, js, &out), INTEG_EAUTH);
    CHECK_MSG("access_denied");
    CHECK_MSG("The user denied the request");
    CHECK_RC(integ_oauth_complete(e.ctx, js, &out), INTEG_ENOTFOUND);
    char *audit = NULL;
    CHECK_OK(integ_audit_list(e.s, "{\"action\":\"oauth.failed\"}", &audit));
    CHECK(audit && strstr(audit, "access_denied"));
    integ_free(audit);
    free(js);
    free(cb);
    free(url);
    env_close(&e);
}

static void test_wrong_verifier(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    /* The code of flow A redeemed through state B: B's verifier does not
     * match A's challenge, and the provider refuses. */
    char state_b[128];
    char *url_a = begin(&e, "toidc-crm", NULL, 0);
    char *url_b = begin(&e, "toidc-crm", state_b, sizeof state_b);
    char *cb = url_a ? drive(url_a, 0) : NULL;
    ig_url *u = NULL;
    char code[1024] = "";
    if (cb && ig_url_parse(cb, &u) == INTEG_OK)
        ig_url_get_query_param(u, "code", code, sizeof code);
    ig_url_free(u);
    CHECK(code[0]);
    char js[2048], *out = NULL;
    snprintf(js, sizeof js, "{\"state\":\"%s\",\"code\":\"%s\"}", state_b, code);
    CHECK_RC(integ_oauth_complete(e.ctx, js, &out), INTEG_EAUTH);
    CHECK_MSG("invalid_grant");
    char *list = NULL;
    CHECK_OK(integ_integrations_list(e.s, NULL, &list));
    CHECK(list && !strcmp(list, "[]"));
    integ_free(list);
    free(cb);
    free(url_a);
    free(url_b);
    env_close(&e);
}

static void test_refresh_and_rotation(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    if (connect_one(&e, "toidc-crm", id)) {
        CHECK(!"connect");
        env_close(&e);
        return;
    }
    char *at1 = stored_str(&e, id, "credentials_sealed", "access_token");
    char *rt1 = stored_str(&e, id, "credentials_sealed", "refresh_token");
    int64_t before = peer_count("refresh_token");
    /* Inside the 5-minute skew: the next use refreshes first. */
    fake_now = stored_expiry_ms(&e, id) - 60 * 1000;
    int rc = -1;
    char *tok = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_OK);
    CHECK(peer_count("refresh_token") == before + 1);
    char *at2 = stored_str(&e, id, "credentials_sealed", "access_token");
    char *rt2 = stored_str(&e, id, "credentials_sealed", "refresh_token");
    CHECK(tok && at2 && !strcmp(tok, at2) && strcmp(at1, at2) != 0);
    CHECK(rt1 && rt2 && strcmp(rt1, rt2) != 0); /* rotated and saved */
    /* The rotated token works for the next refresh (the old one would be
     * invalid_grant: the provider rotates). */
    fake_now = stored_expiry_ms(&e, id) - 60 * 1000;
    free(tok);
    tok = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_OK && tok);
    CHECK(peer_count("refresh_token") == before + 2);
    /* Forced refresh (admin). */
    CHECK_OK(integ_oauth_refresh(e.s, id));
    CHECK(peer_count("refresh_token") == before + 3);
    char *out = NULL;
    CHECK_OK(integ_integration_get(e.s, id, &out));
    CHECK(out && strstr(out, "\"status\":\"active\""));
    integ_free(out);
    /* No secret in the audit log. */
    CHECK_OK(integ_audit_list(e.s, NULL, &out));
    CHECK(out && strstr(out, "\"oauth.refresh\"") && !strstr(out, rt2) && !strstr(out, at2));
    integ_free(out);
    free(tok);
    free(at1);
    free(at2);
    free(rt1);
    free(rt2);
    env_close(&e);
}

static void test_revoked_refresh_token(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    if (connect_one(&e, "toidc-crm", id)) {
        CHECK(!"connect");
        env_close(&e);
        return;
    }
    char *rt = stored_str(&e, id, "credentials_sealed", "refresh_token");
    char form[512];
    snprintf(form, sizeof form, "token=%s&token_type_hint=refresh_token&client_id=code-client&client_secret=code-secret", rt);
    json_object_put(peer_json("POST", "/token/revocation", form));
    int events = ev_reauth;
    CHECK_RC(integ_oauth_refresh(e.s, id), INTEG_EAUTH);
    CHECK_MSG("invalid_grant");
    CHECK(ev_reauth == events + 1);
    pthread_mutex_lock(&ev_lock);
    CHECK(strstr(ev_last, id) && strstr(ev_last, "\"tenant_id\":\"acme\"") && strstr(ev_last, "invalid_grant"));
    CHECK(!strstr(ev_last, rt));
    pthread_mutex_unlock(&ev_lock);
    char *out = NULL;
    CHECK_OK(integ_integration_get(e.s, id, &out));
    CHECK(out && strstr(out, "\"status\":\"needs_reauth\""));
    integ_free(out);
    /* Using it at expiry now fails at once, without asking the provider again. */
    int64_t before = peer_count("refresh_token");
    fake_now = stored_expiry_ms(&e, id) - 1000;
    int rc = 0;
    char *tok = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_EAUTH && !tok);
    CHECK(peer_count("refresh_token") == before);
    free(rt);
    env_close(&e);
}

struct race {
    struct env *e;
    const char *id;
    int rc;
    char *tok;
    pthread_barrier_t *bar;
};

static void *racer(void *p)
{
    struct race *r = p;
    pthread_barrier_wait(r->bar);
    r->tok = conn_token(r->e, r->id, &r->rc);
    return NULL;
}

static void test_eight_threads_one_refresh(void)
{
    struct env e;
    if (oidc_env(&e)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    if (connect_one(&e, "toidc-crm", id)) {
        CHECK(!"connect");
        env_close(&e);
        return;
    }
    fake_now = stored_expiry_ms(&e, id) + 1000; /* expired */
    int64_t before = peer_count("refresh_token");
    pthread_t th[8];
    struct race r[8];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 8);
    for (int i = 0; i < 8; i++) {
        r[i] = (struct race){&e, id, -1, NULL, &bar};
        pthread_create(&th[i], NULL, racer, &r[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    CHECK(peer_count("refresh_token") == before + 1);
    for (int i = 0; i < 8; i++) {
        CHECK(r[i].rc == INTEG_OK && r[i].tok);
        CHECK(r[i].tok && r[0].tok && !strcmp(r[i].tok, r[0].tok));
    }
    for (int i = 0; i < 8; i++)
        free(r[i].tok);
    env_close(&e);
}

static void test_client_credentials_private_key_jwt(void)
{
    clock_reset();
    char ovr[512], m[8192];
    snprintf(ovr, sizeof ovr, "{\"tcc-erp\":{\"api\":\"%s\",\"token_url\":\"%s/token\"}}", peer.url, peer.url);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    snprintf(m, sizeof m,
             "{\"manifest_version\":1,\"key\":\"tcc-erp\",\"name\":\"Test CC\",\"category\":\"erp\","
             "\"base_url\":\"https://api.example.com\",\"auth\":{\"default\":\"oauth2_client_credentials\",\"methods\":{"
             "\"oauth2_client_credentials\":{\"token_url\":\"https://idp.example.com/token\",\"scopes\":[\"api:read\"],"
             "\"apply\":" BEARER_TOKEN ",\"credentials_schema\":{\"type\":\"object\",\"properties\":{"
             "\"client_id\":{\"type\":\"string\"},\"client_secret\":{\"type\":\"string\"},\"private_key\":{\"type\":\"string\","
             "\"pattern\":\"-----BEGIN\"},\"key_id\":{\"type\":\"string\"}},\"required\":[\"client_id\"],"
             "\"additionalProperties\":false}}}},"
             "\"config_schema\":" CONFIG_SCHEMA ",\"capabilities\":[\"pull\"],\"entities\":" ENTITY "}");
    CHECK_OK(integ_definition_register(e.ctx, m, NULL));
    json_object *req = json_object_new_object(), *cr = json_object_new_object();
    json_object_object_add(req, "integration_definition_id", json_object_new_string("tcc-erp"));
    json_object_object_add(cr, "client_id", json_object_new_string("pkjwt-client"));
    json_object_object_add(cr, "private_key", json_object_new_string(peer.pem));
    json_object_object_add(cr, "key_id", json_object_new_string(peer.kid));
    json_object_object_add(req, "credentials", cr);
    char *out = NULL;
    CHECK_OK(integ_integration_create(e.s, json_object_to_json_string(req), &out));
    json_object_put(req);
    json_object *o = out ? json_tokener_parse(out) : NULL;
    char id[64];
    snprintf(id, sizeof id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    int64_t before = peer_count("client_credentials");
    int rc = -1;
    char *t1 = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_OK && t1);
    CHECK(peer_count("client_credentials") == before + 1);
    /* Cached (sealed in the record): other connections reuse it. */
    char *t2 = conn_token(&e, id, &rc);
    CHECK(t1 && t2 && !strcmp(t1, t2));
    CHECK(peer_count("client_credentials") == before + 1);
    /* The provider verified our RS256 client assertion; with a secret
     * that is wrong instead, it refuses (invalid_client) -> needs_reauth. */
    CHECK_OK(integ_integration_set_credentials(e.s, id, "{\"client_id\":\"cc-client\",\"client_secret\":\"wrong\"}"));
    int events = ev_reauth;
    char *t3 = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_EAUTH && !t3);
    CHECK_MSG("invalid_client");
    CHECK(ev_reauth == events + 1);
    free(t1);
    free(t2);
    env_close(&e);
}

/* A fresh RSA key (PEM) the provider does not know. */
static char *other_rsa_pem(void)
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    char *out = NULL;
    unsigned char buf[4096];
    if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) == 0 &&
        mbedtls_rsa_gen_key(mbedtls_pk_rsa(pk), rng_cb, NULL, 1024, 65537) == 0 &&
        mbedtls_pk_write_key_pem(&pk, buf, sizeof buf) == 0)
        out = strdup((char *)buf);
    mbedtls_pk_free(&pk);
    return out;
}

static void test_jwt_bearer(void)
{
    clock_reset();
    char ovr[512], m[8192];
    snprintf(ovr, sizeof ovr, "{\"tjwt-email\":{\"api\":\"%s\",\"token_url\":\"%s/token\"}}", peer.url, peer.url);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    snprintf(m, sizeof m,
             "{\"manifest_version\":1,\"key\":\"tjwt-email\",\"name\":\"Test JWT\",\"category\":\"email\","
             "\"base_url\":\"https://api.example.com\",\"auth\":{\"default\":\"jwt_bearer\",\"methods\":{"
             "\"jwt_bearer\":{\"token_url\":\"https://idp.example.com/token\",\"alg\":\"RS256\",\"scopes\":[\"api:read\"],"
             "\"claims\":{\"iss\":\"{credentials.client_email}\",\"sub\":\"{credentials.subject}\"},"
             "\"apply\":" BEARER_TOKEN ",\"credentials_schema\":{\"type\":\"object\",\"properties\":{"
             "\"client_email\":{\"type\":\"string\"},\"private_key\":{\"type\":\"string\",\"pattern\":\"-----BEGIN\"},"
             "\"subject\":{\"type\":\"string\"}},\"required\":[\"client_email\",\"private_key\",\"subject\"],"
             "\"additionalProperties\":false}}}},"
             "\"config_schema\":" CONFIG_SCHEMA ",\"capabilities\":[\"pull\"],\"entities\":" ENTITY "}");
    CHECK_OK(integ_definition_register(e.ctx, m, NULL));
    json_object *req = json_object_new_object(), *cr = json_object_new_object();
    json_object_object_add(req, "integration_definition_id", json_object_new_string("tjwt-email"));
    json_object_object_add(cr, "client_email", json_object_new_string("jwt-bearer-client"));
    json_object_object_add(cr, "private_key", json_object_new_string(peer.pem));
    json_object_object_add(cr, "subject", json_object_new_string("user@example.com"));
    json_object_object_add(req, "credentials", cr);
    char *out = NULL;
    CHECK_OK(integ_integration_create(e.s, json_object_to_json_string(req), &out));
    json_object_put(req);
    json_object *o = out ? json_tokener_parse(out) : NULL;
    char id[64];
    snprintf(id, sizeof id, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    int64_t before = peer_count("urn:ietf:params:oauth:grant-type:jwt-bearer");
    int rc = -1;
    char *t1 = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_OK && t1);
    CHECK(peer_count("urn:ietf:params:oauth:grant-type:jwt-bearer") == before + 1);
    /* Forced: a new assertion, a new token. */
    CHECK_OK(integ_oauth_refresh(e.s, id));
    CHECK(peer_count("urn:ietf:params:oauth:grant-type:jwt-bearer") == before + 2);
    /* Signed with another key: the provider's signature check refuses it. */
    char *pem2 = other_rsa_pem();
    CHECK(pem2 != NULL);
    json_object *cr2 = json_object_new_object();
    json_object_object_add(cr2, "client_email", json_object_new_string("jwt-bearer-client"));
    json_object_object_add(cr2, "private_key", json_object_new_string(pem2 ? pem2 : ""));
    json_object_object_add(cr2, "subject", json_object_new_string("user@example.com"));
    CHECK_OK(integ_integration_set_credentials(e.s, id, json_object_to_json_string(cr2)));
    json_object_put(cr2);
    free(pem2);
    int events = ev_reauth;
    char *t2 = conn_token(&e, id, &rc);
    CHECK(rc == INTEG_EAUTH && !t2);
    CHECK_MSG("invalid_grant");
    CHECK(ev_reauth == events + 1);
    /* A key that is not PEM: a clear local error, nothing sent. */
    int64_t sent = peer_count("urn:ietf:params:oauth:grant-type:jwt-bearer");
    CHECK_OK(integ_integration_set_credentials(e.s, id, "{\"client_email\":\"jwt-bearer-client\",\"subject\":\"u@example.com\","
                                                        "\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nnope\\n-----END PRIVATE KEY-----\\n\"}"));
    CHECK(conn_token(&e, id, &rc) == NULL && rc == INTEG_EINVAL);
    CHECK_MSG("PEM private key");
    CHECK(peer_count("urn:ietf:params:oauth:grant-type:jwt-bearer") == sent);
    free(t1);
    env_close(&e);
}

/* ---- the scripted server ---------------------------------------------------------------- */

static struct {
    char base[64];
    atomic_int po_tokens, po_api;
    atomic_int tt_logins;
    char tt_date[32];
    atomic_int mg_logins, mg_revoked;
    atomic_int b1_logins, b1_revoked;
    atomic_int o2_refreshes, o2_cur, o2_rejected_once, o2_bad_client;
    atomic_int total;
    /* /o2/token: every POST counted; o2_mode 1 rotates the refresh token and
     * answers 502 (a gateway that lost the answer), once; 2 calls o2_hook
     * then answers as usual, 3 calls o2_hook then answers invalid_grant
     * (each once). */
    atomic_int o2_posts, o2_mode;
    void (*o2_hook)(void);
    /* /cc/token: client credentials, the token names client_id and resource. */
    atomic_int cc_posts, cc_old;
} srv;

struct body_buf {
    char data[8192];
    size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *body)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

static const char *arg(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v ? v : "";
}

static int basic_is(struct MHD_Connection *c, const char *user_pass)
{
    char *b64 = ig_b64_encode((const unsigned char *)user_pass, strlen(user_pass));
    char want[512];
    snprintf(want, sizeof want, "Basic %s", b64);
    free(b64);
    return !strcmp(hdr(c, "Authorization"), want);
}

/* The value of `name` in a form body (not decoded; test values need none). */
static int form_has(const char *body, const char *pair)
{
    size_t n = strlen(pair);
    for (const char *p = body; (p = strstr(p, pair)); p += n)
        if ((p == body || p[-1] == '&') && (p[n] == '&' || p[n] == '\0'))
            return 1;
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    if (!*con_cls) {
        *con_cls = calloc(1, sizeof(struct body_buf));
        return MHD_YES;
    }
    struct body_buf *bb = *con_cls;
    if (*upload_size) {
        size_t n = *upload_size < sizeof bb->data - bb->len - 1 ? *upload_size : sizeof bb->data - bb->len - 1;
        memcpy(bb->data + bb->len, upload, n);
        bb->len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    char buf[512];
    /* PowerOffice: client credentials with Basic app:client + subscription key. */
    if (!strcmp(url, "/po/OAuth/Token") && !strcmp(method, "POST")) {
        if (!basic_is(conn, "app-key:client-key") || strcmp(hdr(conn, "Ocp-Apim-Subscription-Key"), "sub-key") ||
            !form_has(bb->data, "grant_type=client_credentials"))
            return reply(conn, 401, "{\"error\":\"invalid_client\",\"error_description\":\"bad application or client key\"}");
        snprintf(buf, sizeof buf, "{\"access_token\":\"po-%d\",\"token_type\":\"bearer\",\"expires_in\":1200}", ++srv.po_tokens);
        return reply(conn, 200, buf);
    }
    if (!strcmp(url, "/po-empty/OAuth/Token") && !strcmp(method, "POST"))
        return reply(conn, 200, "{\"token_type\":\"bearer\",\"expires_in\":1200}");
    if (!strcmp(url, "/po/v2/Customers")) {
        srv.po_api++;
        snprintf(buf, sizeof buf, "Bearer po-%d", srv.po_tokens);
        if (strcmp(hdr(conn, "Authorization"), buf) || strcmp(hdr(conn, "Ocp-Apim-Subscription-Key"), "sub-key"))
            return reply(conn, 401, "{\"message\":\"unauthorized\"}");
        return reply(conn, 200, "[]");
    }
    /* Tripletex: session from consumer + employee token; Basic 0:<token>. */
    if (strstr(url, "/tt/v2/token/session/:create") && !strcmp(method, "PUT")) {
        if (strcmp(arg(conn, "consumerToken"), "ct-1") || strcmp(arg(conn, "employeeToken"), "et-1") ||
            strlen(arg(conn, "expirationDate")) != 10 || strcmp(hdr(conn, "Authorization"), ""))
            return reply(conn, 401, "{\"status\":401,\"message\":\"bad tokens\"}");
        snprintf(srv.tt_date, sizeof srv.tt_date, "%s", arg(conn, "expirationDate"));
        snprintf(buf, sizeof buf, "{\"value\":{\"id\":%d,\"token\":\"tt-%d\",\"expirationDate\":\"%s\"}}", srv.tt_logins + 1,
                 srv.tt_logins + 1, srv.tt_date);
        srv.tt_logins++;
        return reply(conn, 200, buf);
    }
    if (strstr(url, "/tt/v2/token/session/") && strstr(url, "whoAmI")) {
        snprintf(buf, sizeof buf, "0:tt-%d", srv.tt_logins);
        if (!basic_is(conn, buf))
            return reply(conn, 401, "{\"status\":401,\"message\":\"unauthorized\"}");
        return reply(conn, 200, "{\"value\":{\"employeeId\":1}}");
    }
    /* Magento: the admin token is a JSON string. */
    if (!strcmp(url, "/mg/rest/default/V1/integration/admin/token") && !strcmp(method, "POST")) {
        json_object *b = json_tokener_parse(bb->data);
        int ok = b && !strcmp(jstr(b, "username") ? jstr(b, "username") : "", "admin") &&
                 !strcmp(jstr(b, "password") ? jstr(b, "password") : "", "pw");
        json_object_put(b);
        if (!ok)
            return reply(conn, 401, "{\"message\":\"The account sign-in was incorrect\"}");
        snprintf(buf, sizeof buf, "\"mg-%d\"", ++srv.mg_logins);
        return reply(conn, 200, buf);
    }
    if (!strcmp(url, "/mg/rest/default/V1/products")) {
        int n = 0;
        if (sscanf(hdr(conn, "Authorization"), "Bearer mg-%d", &n) != 1 || n <= srv.mg_revoked || n != srv.mg_logins)
            return reply(conn, 401, "{\"message\":\"The consumer isn't authorized to access %resources.\"}");
        return reply(conn, 200, "{\"items\":[],\"total_count\":0}");
    }
    /* SAP Business One Service Layer: login, then the B1SESSION cookie. */
    if (!strcmp(url, "/b1/b1s/v1/Login") && !strcmp(method, "POST")) {
        json_object *b = json_tokener_parse(bb->data);
        int ok = b && jstr(b, "CompanyDB") && !strcmp(jstr(b, "CompanyDB"), "SBODEMOUS") && jstr(b, "UserName") &&
                 !strcmp(jstr(b, "UserName"), "manager") && jstr(b, "Password") && !strcmp(jstr(b, "Password"), "pw");
        json_object_put(b);
        if (!ok) {
            return reply(conn, 401, "{\"error\":{\"code\":-304,\"message\":{\"value\":\"Fail to get DB Credentials\"}}}");
        }
        snprintf(buf, sizeof buf, "{\"SessionId\":\"b1-%d\",\"Version\":\"1000190\",\"SessionTimeout\":30}", ++srv.b1_logins);
        return reply(conn, 200, buf);
    }
    if (!strcmp(url, "/b1/b1s/v1/Items")) {
        const char *ck = strstr(hdr(conn, "Cookie"), "B1SESSION=b1-");
        int n = ck ? atoi(ck + 13) : 0;
        if (!ck || n <= srv.b1_revoked)
            return reply(conn, 401, "{\"error\":{\"code\":301,\"message\":{\"value\":\"Invalid session.\"}}}");
        return reply(conn, 200, "{\"value\":[]}");
    }
    /* An OAuth provider + API for a sync whose token expires mid-run. */
    if (!strcmp(url, "/cc/token") && !strcmp(method, "POST")) {
        char cid[64] = "", res[64] = "";
        const char *p = strstr(bb->data, "client_id="), *q = strstr(bb->data, "resource=");
        if (p)
            sscanf(p + 10, "%63[^&]", cid);
        if (q)
            sscanf(q + 9, "%63[^&]", res);
        if (!strcmp(cid, "OLD"))
            srv.cc_old++;
        snprintf(buf, sizeof buf, "{\"access_token\":\"cc-%s-%s-%d\",\"token_type\":\"bearer\",\"expires_in\":3600}", cid,
                 res, ++srv.cc_posts);
        return reply(conn, 200, buf);
    }
    if (!strcmp(url, "/o2/token") && !strcmp(method, "POST")) {
        char want[64];
        srv.o2_posts++;
        int mode = atomic_exchange(&srv.o2_mode, 0);
        if ((mode == 2 || mode == 3) && srv.o2_hook)
            srv.o2_hook(); /* while the library waits for this answer */
        if (mode == 3)
            return reply(conn, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"refresh token is invalid\"}");
        snprintf(want, sizeof want, "refresh_token=rt-%d", srv.o2_cur);
        if (!form_has(bb->data, "client_id=app") || !form_has(bb->data, "client_secret=app-secret")) {
            srv.o2_bad_client++;
            return reply(conn, 401, "{\"error\":\"invalid_client\"}");
        }
        /* The authorization-code grant: the code is always "o2-code". */
        if (form_has(bb->data, "grant_type=authorization_code")) {
            if (!form_has(bb->data, "code=o2-code"))
                return reply(conn, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"unknown code\"}");
            int n = ++srv.o2_cur;
            snprintf(buf, sizeof buf,
                     "{\"access_token\":\"at-%d\",\"refresh_token\":\"rt-%d\",\"expires_in\":3600,\"token_type\":\"bearer\"}", n, n);
            return reply(conn, 200, buf);
        }
        if (!form_has(bb->data, "grant_type=refresh_token") || !form_has(bb->data, want))
            return reply(conn, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"refresh token is invalid\"}");
        srv.o2_refreshes++;
        int n = ++srv.o2_cur;
        if (mode == 1) /* rotated, but the answer is lost on the way */
            return reply(conn, 502, "{\"message\":\"bad gateway\"}");
        snprintf(buf, sizeof buf,
                 "{\"access_token\":\"at-%d\",\"refresh_token\":\"rt-%d\",\"expires_in\":3600,\"token_type\":\"bearer\"}", n, n);
        return reply(conn, 200, buf);
    }
    if (!strcmp(url, "/o2/api/items")) {
        char want[64];
        snprintf(want, sizeof want, "Bearer at-%d", srv.o2_cur);
        int page = atoi(arg(conn, "page"));
        if (strcmp(hdr(conn, "Authorization"), want))
            return reply(conn, 401, "{\"message\":\"token expired\"}");
        if (page == 4 && !srv.o2_rejected_once) {
            srv.o2_rejected_once = 1; /* revoked server-side: 401 once */
            return reply(conn, 401, "{\"message\":\"token revoked\"}");
        }
        if (page == 2)
            fake_now += 3600 * 1000; /* an hour passes while the sync runs */
        json_object *doc = json_object_new_object(), *arr = json_object_new_array();
        for (int i = (page - 1) * 10 + 1; i <= page * 10 && i <= srv.total; i++) {
            json_object *r = json_object_new_object();
            char em[64], nm[32];
            snprintf(em, sizeof em, "p%d@example.com", i);
            snprintf(nm, sizeof nm, "P%d", i);
            json_object_object_add(r, "id", json_object_new_int(i));
            json_object_object_add(r, "email", json_object_new_string(em));
            json_object_object_add(r, "name", json_object_new_string(nm));
            json_object_object_add(r, "updated", json_object_new_string("2024-01-01T00:00:00Z"));
            json_object_array_add(arr, r);
        }
        json_object_object_add(doc, "items", arr);
        enum MHD_Result res = reply(conn, 200, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        json_object_put(doc);
        return res;
    }
    return reply(conn, 404, "{\"message\":\"no such path\"}");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    free(*con_cls);
    *con_cls = NULL;
}

static struct MHD_Daemon *server_start(void)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handler,
                                            NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(srv.base, sizeof srv.base, "http://127.0.0.1:%u", (unsigned)info->port);
    return d;
}

static int create(struct env *e, const char *req, char id[64])
{
    char *out = NULL;
    int rc = integ_integration_create(e->s, req, &out);
    if (rc) {
        fprintf(stderr, "  create: %s\n", integ_errmsg());
        return rc;
    }
    json_object *o = json_tokener_parse(out);
    snprintf(id, 64, "%s", jstr(o, "id"));
    json_object_put(o);
    integ_free(out);
    return 0;
}

/* integ_integration_test: 1 when the call succeeded. */
static int conn_test(struct env *e, const char *id)
{
    char *out = NULL;
    if (integ_integration_test(e->s, id, &out) != INTEG_OK)
        return 0;
    int ok = strstr(out, "\"success\":true") != NULL;
    if (!ok)
        fprintf(stderr, "  test: %s\n", out);
    integ_free(out);
    return ok;
}

/* ---- scripted cases ------------------------------------------------------------------------ */

static void test_client_credentials_cached(void)
{
    clock_reset();
    char ovr[512];
    snprintf(ovr, sizeof ovr, "{\"poweroffice-accounting\":{\"api\":\"%s/po/v2\",\"token_url\":\"%s/po/OAuth/Token\"}}",
             srv.base, srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"poweroffice-accounting\",\"credentials\":{\"application_key\":"
                        "\"app-key\",\"client_key\":\"client-key\",\"subscription_key\":\"sub-key\"}}", id));
    int t0 = srv.po_tokens;
    for (int i = 0; i < 5; i++)
        CHECK(conn_test(&e, id));
    CHECK(srv.po_tokens == t0 + 1); /* one token for many requests */
    /* The token lives 20 minutes: renewed ahead of expiry. */
    fake_now += 19 * 60 * 1000;
    CHECK(conn_test(&e, id));
    CHECK(srv.po_tokens == t0 + 2);
    CHECK(conn_test(&e, id));
    CHECK(srv.po_tokens == t0 + 2);
    /* A second context on the same store would reuse it too: the token is
     * sealed in the record, never in plaintext. */
    void *tx = NULL;
    json_object *rec = NULL;
    ig_tx_begin(e.ctx, 0, &tx);
    ig_tx_end(e.ctx, tx, 1, ig_store_get(e.ctx, tx, INTEG_KIND_INTEGRATION, "acme", id, &rec));
    char want[32];
    snprintf(want, sizeof want, "po-%d", srv.po_tokens);
    CHECK(ig_json_str(rec, "token_sealed") && !strstr(json_object_to_json_string(rec), want));
    json_object_put(rec);
    /* Wrong client key: invalid_client -> needs_reauth and an event. */
    CHECK_OK(integ_integration_set_credentials(e.s, id, "{\"application_key\":\"app-key\",\"client_key\":\"nope\","
                                                        "\"subscription_key\":\"sub-key\"}"));
    int events = ev_reauth;
    char *out = NULL;
    CHECK_OK(integ_integration_test(e.s, id, &out));
    CHECK(out && strstr(out, "\"success\":false") && strstr(out, "invalid_client"));
    integ_free(out);
    CHECK(ev_reauth == events + 1);
    env_close(&e);
}

/* Every flow reads a token response with ig_oauth_token_creds: what a
 * refresh keeps from the previous credentials, what it drops, and the error
 * for a response without an access token, naming the request. */
static void test_token_response_read(void)
{
    json_object *method = json_tokener_parse("{\"token_extras\":[\"instance_url\",\"id_token\"]}");
    json_object *prev = json_tokener_parse("{\"access_token\":\"old\",\"refresh_token\":\"rt-old\",\"token_type\":"
                                           "\"bearer\",\"scope\":\"a b\",\"expires_at\":\"2020-01-01T00:00:00Z\","
                                           "\"instance_url\":\"https://x.example.com\",\"other\":1}");
    int64_t now = 1700000000000LL, exp = -1;
    json_object *c = NULL;
    /* A refresh answer without rotation, scope or lifetime. */
    json_object *resp = json_tokener_parse("{\"access_token\":\"new\",\"id_token\":\"idt\"}");
    CHECK_OK(ig_oauth_token_creds("x token refresh", method, resp, prev, now, &c, &exp));
    CHECK_STR(ig_json_str(c, "access_token"), "new");
    CHECK_STR(ig_json_str(c, "refresh_token"), "rt-old");
    CHECK_STR(ig_json_str(c, "token_type"), "bearer");
    CHECK_STR(ig_json_str(c, "scope"), "a b");
    CHECK_STR(ig_json_str(c, "instance_url"), "https://x.example.com");
    CHECK_STR(ig_json_str(c, "id_token"), "idt");
    CHECK(!ig_json_get(c, "expires_at") && !ig_json_get(c, "other") && exp == 0);
    json_object_put(c);
    json_object_put(resp);
    /* Rotation, a string expires_in, an empty refresh_token keeps the old one. */
    resp = json_tokener_parse("{\"access_token\":\"n2\",\"refresh_token\":\"rt-new\",\"expires_in\":\"3600\","
                              "\"scope\":\"a\",\"token_type\":\"Bearer\"}");
    CHECK_OK(ig_oauth_token_creds("x token refresh", method, resp, prev, now, &c, &exp));
    CHECK_STR(ig_json_str(c, "refresh_token"), "rt-new");
    CHECK_STR(ig_json_str(c, "scope"), "a");
    CHECK_STR(ig_json_str(c, "token_type"), "Bearer");
    CHECK_STR(ig_json_str(c, "expires_at"), "2023-11-14T23:13:20Z");
    CHECK(exp == now + 3600 * 1000);
    json_object_put(c);
    json_object_put(resp);
    resp = json_tokener_parse("{\"access_token\":\"n3\",\"refresh_token\":\"\"}");
    CHECK_OK(ig_oauth_token_creds("x token refresh", method, resp, prev, now, &c, NULL));
    CHECK_STR(ig_json_str(c, "refresh_token"), "rt-old");
    json_object_put(c);
    json_object_put(resp);
    /* A first token (no previous credentials): nothing to keep. */
    resp = json_tokener_parse("{\"access_token\":\"n4\",\"expires_in\":60}");
    CHECK_OK(ig_oauth_token_creds("x token request (authorization_code)", method, resp, NULL, now, &c, &exp));
    CHECK(!ig_json_get(c, "refresh_token") && !ig_json_get(c, "scope") && !ig_json_get(c, "instance_url"));
    CHECK(exp == now + 60 * 1000);
    json_object_put(c);
    json_object_put(resp);
    /* No (or an empty) access token: INTEG_EREMOTE naming the request. */
    resp = json_tokener_parse("{\"access_token\":\"\",\"refresh_token\":\"rt\"}");
    c = prev; /* any non-NULL value: a failure sets it to NULL */
    CHECK_RC(ig_oauth_token_creds("x token refresh", method, resp, prev, now, &c, &exp), INTEG_EREMOTE);
    CHECK(c == NULL && exp == 0);
    CHECK_MSG("x token refresh: token response: no access_token");
    json_object_put(resp);
    json_object_put(prev);
    json_object_put(method);
}

/* A client-credentials token endpoint that answers 200 without a token:
 * the connection test fails naming the flow, and nothing is cached. */
static void test_client_credentials_no_access_token(void)
{
    clock_reset();
    char ovr[512];
    snprintf(ovr, sizeof ovr, "{\"poweroffice-accounting\":{\"api\":\"%s/po/v2\",\"token_url\":\"%s/po-empty/OAuth/Token\"}}",
             srv.base, srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"poweroffice-accounting\",\"credentials\":{\"application_key\":"
                        "\"app-key\",\"client_key\":\"client-key\",\"subscription_key\":\"sub-key\"}}", id));
    int events = ev_reauth, api = srv.po_api;
    char *out = NULL;
    CHECK_OK(integ_integration_test(e.s, id, &out));
    CHECK(out && strstr(out, "\"success\":false") &&
          strstr(out, "poweroffice-accounting token request (client_credentials): token response: no access_token"));
    integ_free(out);
    CHECK(ev_reauth == events); /* a broken provider answer is not the tenant's credentials */
    CHECK(srv.po_api == api);
    void *tx = NULL;
    json_object *rec = NULL;
    ig_tx_begin(e.ctx, 0, &tx);
    ig_tx_end(e.ctx, tx, 1, ig_store_get(e.ctx, tx, INTEG_KIND_INTEGRATION, "acme", id, &rec));
    CHECK(rec && !ig_json_get(rec, "token_sealed"));
    json_object_put(rec);
    env_close(&e);
}

static void test_tripletex_session(void)
{
    clock_reset();
    char ovr[256];
    snprintf(ovr, sizeof ovr, "{\"tripletex-accounting\":\"%s/tt/v2\"}", srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"tripletex-accounting\",\"credentials\":{\"consumer_token\":\"ct-1\","
                        "\"employee_token\":\"et-1\"}}", id));
    int l0 = srv.tt_logins;
    CHECK(conn_test(&e, id));
    CHECK(conn_test(&e, id));
    CHECK(srv.tt_logins == l0 + 1);
    /* expirationDate = today + lifetime_s (2 days). */
    char want[32];
    ig_rfc3339(want, fake_now + 172800000LL, 0);
    want[10] = '\0';
    CHECK_STR(srv.tt_date, want);
    /* A day later the session is within renew_before_s: a new one. */
    fake_now += 36LL * 3600 * 1000;
    CHECK(conn_test(&e, id));
    CHECK(srv.tt_logins == l0 + 2);
    CHECK(conn_test(&e, id));
    CHECK(srv.tt_logins == l0 + 2);
    env_close(&e);
}

static void test_magento_admin_token(void)
{
    clock_reset();
    char ovr[256];
    snprintf(ovr, sizeof ovr, "{\"magento-ecommerce\":\"%s/mg/rest/default/V1\"}", srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    char id[64];
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"magento-ecommerce\",\"auth_type\":\"session_token\","
                        "\"credentials\":{\"username\":\"admin\",\"password\":\"pw\"},"
                        "\"config\":{\"site_url\":\"https://shop.example.com\"}}", id));
    int l0 = srv.mg_logins;
    CHECK(conn_test(&e, id));
    CHECK(conn_test(&e, id));
    CHECK(srv.mg_logins == l0 + 1);
    /* Revoked server-side: 401, one re-login, the request retried. */
    srv.mg_revoked = srv.mg_logins;
    CHECK(conn_test(&e, id));
    CHECK(srv.mg_logins == l0 + 2);
    /* 4 hours later (lifetime_s 14400, renew 600 s before): a new token. */
    fake_now += 14400LL * 1000 - 300 * 1000;
    CHECK(conn_test(&e, id));
    CHECK(srv.mg_logins == l0 + 3);
    /* Wrong password: the login's 401 is EAUTH with Magento's message. */
    CHECK_OK(integ_integration_set_credentials(e.s, id, "{\"username\":\"admin\",\"password\":\"bad\"}"));
    char *out = NULL;
    CHECK_OK(integ_integration_test(e.s, id, &out));
    CHECK(out && strstr(out, "\"success\":false") && strstr(out, "sign-in was incorrect"));
    CHECK(out && !strstr(out, "bad\""));
    integ_free(out);
    env_close(&e);
}

static void test_sap_b1_cookie_session(void)
{
    clock_reset();
    char ovr[256], m[8192];
    snprintf(ovr, sizeof ovr, "{\"tsapb1-erp\":\"%s/b1/b1s/v1\"}", srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    snprintf(m, sizeof m,
             "{\"manifest_version\":1,\"key\":\"tsapb1-erp\",\"name\":\"Test B1\",\"category\":\"erp\","
             "\"base_url\":\"https://b1.example.com/b1s/v1\",\"auth\":{\"default\":\"session_token\",\"methods\":{"
             "\"session_token\":{\"login\":{\"method\":\"POST\",\"path\":\"/Login\",\"body\":{\"CompanyDB\":\"{config.company_db}\","
             "\"UserName\":\"{credentials.username}\",\"Password\":\"{credentials.password}\"}},"
             "\"token_path\":\"$.SessionId\",\"lifetime_s\":1800,\"renew_before_s\":300,"
             "\"apply\":{\"in\":\"cookie\",\"name\":\"B1SESSION\",\"value\":\"{token.access_token}\"},"
             "\"credentials_schema\":{\"type\":\"object\",\"properties\":{\"username\":{\"type\":\"string\"},"
             "\"password\":{\"type\":\"string\"}},\"required\":[\"username\",\"password\"],\"additionalProperties\":false}}}},"
             "\"config_schema\":{\"type\":\"object\",\"properties\":{\"company_db\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_]+$\"}},"
             "\"required\":[\"company_db\"]},"
             "\"capabilities\":[\"pull\"],\"entities\":" ENTITY ",\"test_request\":{\"method\":\"GET\",\"path\":\"/Items\"}}");
    CHECK_OK(integ_definition_register(e.ctx, m, NULL));
    char id[64];
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"tsapb1-erp\",\"credentials\":{\"username\":\"manager\","
                        "\"password\":\"pw\"},\"config\":{\"company_db\":\"SBODEMOUS\"}}", id));
    int l0 = srv.b1_logins;
    CHECK(conn_test(&e, id));
    CHECK(conn_test(&e, id));
    CHECK(srv.b1_logins == l0 + 1);
    /* The session timed out server-side: 401 -> re-login -> retried. */
    srv.b1_revoked = srv.b1_logins;
    CHECK(conn_test(&e, id));
    CHECK(srv.b1_logins == l0 + 2);
    /* A definition stored before the validator bounded lifetime_s (it is
     * not validated again when read) still logs in: the seconds are
     * clamped to 10 years before * 1000, which would overflow (UBSan). */
    json_object *def = NULL;
    void *tx = NULL;
    CHECK_OK(ig_tx_begin(e.ctx, 1, &tx));
    int rc = ig_definition_lookup(e.ctx, tx, "tsapb1-erp", &def);
    json_object *st = ig_jsonpath_get(def, "$.manifest.auth.methods.session_token");
    if (rc == INTEG_OK && st) {
        json_object_object_add(st, "lifetime_s", json_object_new_int64(INT64_MAX / 10));
        json_object_object_add(st, "renew_before_s", json_object_new_int64(INT64_MAX / 100));
        rc = ig_store_put(e.ctx, tx, INTEG_KIND_DEFINITION, def, INTEG_PUT_UPDATE);
    }
    CHECK_OK(ig_tx_end(e.ctx, tx, 1, rc));
    json_object_put(def);
    srv.b1_revoked = srv.b1_logins;
    CHECK(conn_test(&e, id));
    CHECK(srv.b1_logins >= l0 + 3);
    /* Several logins on one connection (renew_before is now the whole
     * lifetime: every request logs in again) send the same body: the
     * rendered login body held the config value itself, and wiping the
     * body zeroed the connection's company_db for the next login. */
    CHECK(conn_test(&e, id));
    env_close(&e);
}

static void test_sync_token_expires_mid_run(void)
{
    clock_reset();
    char ovr[512], m[8192];
    snprintf(ovr, sizeof ovr, "{\"to2-crm\":{\"api\":\"%s/o2/api\",\"token_url\":\"%s/o2/token\"}}", srv.base, srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    oauth2_manifest(m, sizeof m, "to2-crm", "client_secret_post");
    CHECK_OK(integ_definition_register(e.ctx, m, NULL));
    CHECK_OK(integ_definition_set_app_credentials(e.ctx, "to2-crm", "{\"client_id\":\"app\",\"client_secret\":\"app-secret\"}"));
    srv.o2_cur = 1;
    srv.o2_refreshes = 0;
    srv.o2_rejected_once = 0;
    srv.total = 45;
    char exp[32], req[512], id[64];
    ig_rfc3339(exp, fake_now + 3600 * 1000, 0);
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"to2-crm\",\"credentials\":{\"access_token\":\"at-1\",\"refresh_token\":\"rt-1\","
             "\"expires_at\":\"%s\"}}", exp);
    CHECK_OK(create(&e, req, id));
    char *out = NULL;
    CHECK_OK(integ_sync(e.s, id, "{\"entity\":\"items\"}", NULL, NULL, &out));
    json_object *r = out ? json_tokener_parse(out) : NULL;
    CHECK(json_object_get_int(json_object_object_get(r, "records_created")) == 45);
    CHECK_STR(jstr(r, "status"), "success");
    json_object_put(r);
    integ_free(out);
    /* Page 2 moved the clock an hour (refresh ahead of expiry before page
     * 3); page 4 was rejected once (refresh after the 401, then retried). */
    CHECK(srv.o2_refreshes == 2);
    CHECK(srv.o2_bad_client == 0);
    char *rt = stored_str(&e, id, "credentials_sealed", "refresh_token");
    CHECK_STR(rt, "rt-3");
    free(rt);
    /* A refresh token the provider no longer knows: needs_reauth. */
    srv.o2_cur = 99;
    fake_now += 2 * 3600 * 1000;
    int events = ev_reauth;
    CHECK_RC(integ_sync(e.s, id, "{\"entity\":\"items\",\"full\":true}", NULL, NULL, &out), INTEG_EAUTH);
    CHECK_MSG("invalid_grant");
    CHECK(ev_reauth == events + 1);
    CHECK_OK(integ_integration_get(e.s, id, &out));
    CHECK(out && strstr(out, "\"status\":\"needs_reauth\""));
    integ_free(out);
    env_close(&e);
}

/* begin (with `config`, and `integration_id` to re-authorise; either may be
 * NULL) + a callback with the scripted server's code: the integration's id. */
static int code_connect(struct env *e, const char *key, const char *config, const char *integration_id, char id[64])
{
    char req[1024], *out = NULL;
    int n = snprintf(req, sizeof req, "{\"integration_definition_id\":\"%s\",\"redirect_uri\":\"" REDIRECT "\"", key);
    if (config)
        n += snprintf(req + n, sizeof req - (size_t)n, ",\"config\":%s", config);
    if (integration_id)
        n += snprintf(req + n, sizeof req - (size_t)n, ",\"integration_id\":\"%s\"", integration_id);
    snprintf(req + n, sizeof req - (size_t)n, "}");
    int rc = integ_oauth_begin(e->s, req, &out);
    if (rc) {
        fprintf(stderr, "  begin: %s\n", integ_errmsg());
        return rc;
    }
    json_object *o = json_tokener_parse(out);
    integ_free(out);
    json_object *cb = json_object_new_object();
    json_object_object_add(cb, "state", json_object_get(json_object_object_get(o, "state")));
    json_object_object_add(cb, "code", json_object_new_string("o2-code"));
    out = NULL;
    rc = integ_oauth_complete(e->ctx, json_object_to_json_string_ext(cb, JSON_C_TO_STRING_PLAIN), &out);
    if (rc)
        fprintf(stderr, "  complete: %s\n", integ_errmsg());
    json_object_put(cb);
    json_object_put(o);
    if (rc == INTEG_OK) {
        json_object *r = json_tokener_parse(out);
        snprintf(id, 64, "%s", jstr(r, "id"));
        json_object_put(r);
    }
    integ_free(out);
    return rc;
}

/* The stored integration record (internal API: next_run_at_ms is not in
 * the public shape). */
static json_object *stored_rec(struct env *e, const char *id)
{
    void *tx = NULL;
    json_object *rec = NULL;
    if (ig_tx_begin(e->ctx, 0, &tx) == INTEG_OK)
        ig_tx_end(e->ctx, tx, 1, ig_store_get(e->ctx, tx, INTEG_KIND_INTEGRATION, "acme", id, &rec));
    return rec;
}

/* The record's next_run_at_ms; -1 when unscheduled (absent or null). */
static int64_t next_run_ms(struct env *e, const char *id)
{
    json_object *rec = stored_rec(e, id);
    json_object *v = json_object_object_get(rec, "next_run_at_ms");
    int64_t ms = v ? json_object_get_int64(v) : -1;
    json_object_put(rec);
    return ms;
}

/* One integ_run_due: how many syncs it ran for integration `id`, and in
 * *succeeded how many of them ended with status "success". */
static int run_due_syncs(struct env *e, const char *id, int *succeeded)
{
    char *out = NULL;
    *succeeded = 0;
    if (integ_run_due(e->ctx, 100, &out) != INTEG_OK) {
        fprintf(stderr, "  run_due: %s\n", integ_errmsg());
        return -1;
    }
    json_object *r = json_tokener_parse(out), *syncs = json_object_object_get(r, "syncs");
    int n = 0;
    for (size_t i = 0; i < json_object_array_length(syncs); i++) {
        json_object *o = json_object_array_get_idx(syncs, i);
        if (strcmp(jstr(o, "integration_id"), id))
            continue;
        n++;
        if (!strcmp(jstr(o, "status"), "success"))
            ++*succeeded;
        else
            fprintf(stderr, "  run_due: %s\n", json_object_to_json_string(o));
    }
    json_object_put(r);
    integ_free(out);
    return n;
}

/* An integration connected through the authorization-code callback is the
 * record integ_integration_create makes: with config auto_sync it is due at
 * once (next_run_at_ms) and integ_run_due syncs it; without, it is not
 * scheduled; re-authorising with auto_sync on schedules it. */
static void test_code_flow_auto_sync_scheduled(void)
{
    clock_reset();
    char ovr[512], m[8192];
    snprintf(ovr, sizeof ovr, "{\"to2s-crm\":{\"api\":\"%s/o2/api\",\"token_url\":\"%s/o2/token\"}}", srv.base, srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    oauth2_manifest(m, sizeof m, "to2s-crm", "client_secret_post");
    CHECK_OK(integ_definition_register(e.ctx, m, NULL));
    CHECK_OK(integ_definition_set_app_credentials(e.ctx, "to2s-crm", "{\"client_id\":\"app\",\"client_secret\":\"app-secret\"}"));
    srv.o2_cur = 0;
    srv.o2_rejected_once = 1; /* no server-side revocation here */
    srv.total = 5;
    /* The API takes only the latest token: connect the unscheduled one first. */
    char off[64] = "", on[64] = "", made[64] = "";
    CHECK_OK(code_connect(&e, "to2s-crm", "{\"sync_interval\":600}", NULL, off));
    CHECK_OK(code_connect(&e, "to2s-crm", "{\"auto_sync\":true,\"sync_interval\":600,\"entities\":[\"items\"]}", NULL, on));
    char *out = NULL;
    CHECK_OK(integ_integration_get(e.s, on, &out));
    json_object *pub = out ? json_tokener_parse(out) : NULL;
    CHECK_STR(jstr(pub, "status"), "active");
    CHECK_STR(jstr(pub, "auth_type"), "oauth2");
    CHECK(json_object_get_boolean(json_object_object_get(json_object_object_get(pub, "config"), "auto_sync")));
    CHECK(jstr(pub, "created_at") && jstr(pub, "updated_at"));
    json_object_put(pub);
    integ_free(out);
    /* auto_sync: due now; without it: not scheduled. */
    CHECK(next_run_ms(&e, on) == fake_now);
    CHECK(next_run_ms(&e, off) == -1);
    /* Field for field the record integ_integration_create makes. */
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"to2s-crm\",\"credentials\":{\"access_token\":\"x\"},"
                        "\"config\":{\"sync_interval\":600}}", made));
    json_object *a = stored_rec(&e, made), *b = stored_rec(&e, off);
    CHECK(a && b && json_object_object_length(a) == json_object_object_length(b));
    json_object_object_foreach(a, k, v)
    {
        (void)v;
        if (!json_object_object_get_ex(b, k, NULL)) {
            fprintf(stderr, "  the OAuth record lacks %s\n", k);
            CHECK(!"same fields");
        }
    }
    json_object_put(a);
    json_object_put(b);
    /* The scheduler runs the auto_sync one (its items synced) and only it. */
    int ok = 0;
    CHECK(run_due_syncs(&e, on, &ok) == 1 && ok == 1);
    CHECK(run_due_syncs(&e, off, &ok) == 0);
    CHECK(run_due_syncs(&e, made, &ok) == 0);
    int64_t next = next_run_ms(&e, on);
    CHECK(next > fake_now + 500 * 1000 && next < fake_now + 700 * 1000);
    CHECK(run_due_syncs(&e, on, &ok) == 0); /* not due again yet */
    /* Re-authorising keeps the id and, with auto_sync turned on, schedules it. */
    char again[64] = "";
    CHECK_OK(code_connect(&e, "to2s-crm", "{\"auto_sync\":true,\"sync_interval\":600}", off, again));
    CHECK_STR(again, off);
    CHECK(next_run_ms(&e, off) == fake_now);
    CHECK(run_due_syncs(&e, off, &ok) == 1 && ok == 1);
    env_close(&e);
}

/* ---- token requests, concurrent credential changes, paused ------------------------- */

/* An env with the scripted /o2 provider behind `key` and, behind `down`
 * (may be NULL), a token URL where nothing listens. */
static int o2_env(struct env *e, const char *key, const char *down)
{
    clock_reset();
    char ovr[1024], m[8192];
    int n = snprintf(ovr, sizeof ovr, "{\"%s\":{\"api\":\"%s/o2/api\",\"token_url\":\"%s/o2/token\"}", key, srv.base,
                     srv.base);
    if (down)
        n += snprintf(ovr + n, sizeof ovr - (size_t)n, ",\"%s\":{\"api\":\"%s/o2/api\",\"token_url\":\"http://127.0.0.1:1/token\"}",
                      down, srv.base);
    snprintf(ovr + n, sizeof ovr - (size_t)n, "}");
    if (env_open(e, ovr))
        return -1;
    const char *keys[2] = {key, down};
    for (int i = 0; i < 2 && keys[i]; i++) {
        oauth2_manifest(m, sizeof m, keys[i], "client_secret_post");
        if (integ_definition_register(e->ctx, m, NULL) != INTEG_OK ||
            integ_definition_set_app_credentials(e->ctx, keys[i], "{\"client_id\":\"app\",\"client_secret\":\"app-secret\"}")) {
            fprintf(stderr, "  o2_env: %s\n", integ_errmsg());
            return -1;
        }
    }
    srv.o2_mode = 0;
    srv.o2_hook = NULL;
    return 0;
}

/* An oauth2 integration of `key` whose access token expired a second ago. */
static int o2_create(struct env *e, const char *key, const char *at, const char *rt, const char *status, char id[64])
{
    char exp[32], req[768];
    ig_rfc3339(exp, fake_now - 1000, 0);
    snprintf(req, sizeof req,
             "{\"integration_definition_id\":\"%s\",%s%s%s\"credentials\":{\"access_token\":\"%s\",\"refresh_token\":\"%s\","
             "\"expires_at\":\"%s\"}}",
             key, status ? "\"status\":\"" : "", status ? status : "", status ? "\"," : "", at, rt, exp);
    return create(e, req, id);
}

static const char *rec_str(struct env *e, const char *id, const char *field, char *buf, size_t cap)
{
    json_object *rec = stored_rec(e, id);
    const char *v = jstr(rec, field);
    snprintf(buf, cap, "%s", v ? v : "(none)");
    json_object_put(rec);
    return buf;
}

/* A provider that rotates refresh tokens consumed the refresh token, and
 * its gateway answered 502. Sending the same refresh token again would be
 * invalid_grant (needs_reauth for an integration that is fine): token
 * requests are not re-sent once they may have reached the server, and the
 * failure is the transient INTEG_EREMOTE. A refused connection (nothing
 * reached the server) is still tried again. */
static void test_refresh_not_resent_after_502(void)
{
    struct env e;
    if (o2_env(&e, "to2r-crm", "to2d-crm")) {
        CHECK(!"env");
        return;
    }
    char id[64], buf[256];
    srv.o2_cur = 1;
    CHECK_OK(o2_create(&e, "to2r-crm", "at-1", "rt-1", NULL, id));
    int events = ev_reauth;
    srv.o2_posts = 0;
    srv.o2_mode = 1;
    CHECK_RC(integ_oauth_refresh(e.s, id), INTEG_EREMOTE);
    CHECK_MSG("502");
    CHECK(srv.o2_posts == 1); /* sent once: the retry would have carried the consumed rt-1 */
    CHECK(ev_reauth == events);
    CHECK_STR(rec_str(&e, id, "status", buf, sizeof buf), "active");
    CHECK_STR(rec_str(&e, id, "rejected_refresh_fp", buf, sizeof buf), "(none)");
    /* The same ahead of expiry, through a connection (the provider takes
     * rt-1 again here). */
    srv.o2_cur = 1;
    srv.o2_posts = 0;
    srv.o2_mode = 1;
    int rc = 0;
    char *tok = conn_token(&e, id, &rc);
    CHECK(tok == NULL && rc == INTEG_EREMOTE);
    CHECK(srv.o2_posts == 1);
    CHECK_STR(rec_str(&e, id, "status", buf, sizeof buf), "active");
    /* Next time it works. */
    srv.o2_cur = 1;
    tok = conn_token(&e, id, &rc);
    CHECK_OK(rc);
    CHECK_STR(tok, "at-2");
    free(tok);
    /* Nothing listens: the connection is refused, so the request is tried
     * again (max_retries 1: 2 attempts). */
    char down[64];
    CHECK_OK(o2_create(&e, "to2d-crm", "at-1", "rt-1", NULL, down));
    CHECK_RC(integ_oauth_refresh(e.s, down), INTEG_ENETWORK);
    CHECK_MSG("2 attempts");
    CHECK_STR(rec_str(&e, down, "status", buf, sizeof buf), "active");
    env_close(&e);
}

/* The keeper moves the refresh lease on while the provider is slow. */
static integ_ctx *hook_ctx;
static char hook_id[64];
static int64_t hook_lease_exp;
static void lease_hook(void)
{
    fake_now += 45 * 1000; /* the provider takes 45 s */
    struct timespec ts = {0, 700 * 1000000L};
    nanosleep(&ts, NULL);
    char lid[96];
    snprintf(lid, sizeof lid, "refresh:%s", hook_id);
    void *tx = NULL;
    json_object *l = NULL;
    if (ig_tx_begin(hook_ctx, 0, &tx) == INTEG_OK)
        ig_tx_end(hook_ctx, tx, 1, ig_store_get(hook_ctx, tx, INTEG_KIND_LEASE, NULL, lid, &l));
    hook_lease_exp = ig_json_int(l, "expires_at_ms", 0);
    json_object_put(l);
}

static void test_refresh_lease_kept(void)
{
    struct env e;
    if (o2_env(&e, "to2l-crm", NULL)) {
        CHECK(!"env");
        return;
    }
    srv.o2_cur = 1;
    CHECK_OK(o2_create(&e, "to2l-crm", "at-1", "rt-1", NULL, hook_id));
    hook_ctx = e.ctx;
    hook_lease_exp = 0;
    int64_t t0 = fake_now;
    srv.o2_hook = lease_hook;
    srv.o2_mode = 2;
    CHECK_OK(integ_oauth_refresh(e.s, hook_id));
    /* Taken until t0 + 60 s; 45 s into the request it was moved on. */
    CHECK(hook_lease_exp >= t0 + 45 * 1000 + 60 * 1000);
    srv.o2_hook = NULL;
    env_close(&e);
}

/* Client credentials: the token is obtained with the credentials and the
 * config as they are when it is obtained, and cached for those only. */
#define CC_MANIFEST                                                                                                  \
    "{\"manifest_version\":1,\"key\":\"tcc-erp\",\"name\":\"Test CC\",\"category\":\"erp\","                         \
    "\"base_url\":\"https://api.example.com\",\"auth\":{\"default\":\"oauth2_client_credentials\",\"methods\":{"     \
    "\"oauth2_client_credentials\":{\"token_url\":\"https://idp.example.com/token\",\"scopes\":[\"api\"],"           \
    "\"client_auth\":\"client_secret_post\",\"token_params\":{\"resource\":\"{config.tenant}\"},\"apply\":" BEARER_TOKEN "," \
    "\"credentials_schema\":{\"type\":\"object\",\"properties\":{\"client_id\":{\"type\":\"string\",\"minLength\":1},"  \
    "\"client_secret\":{\"type\":\"string\",\"minLength\":1}},\"required\":[\"client_id\",\"client_secret\"]}}}},"  \
    "\"config_schema\":{\"type\":\"object\",\"properties\":{\"tenant\":{\"type\":\"string\"},\"sync_interval\":"      \
    "{\"type\":\"integer\",\"minimum\":60,\"default\":3600}}},\"capabilities\":[\"pull\"],\"entities\":" ENTITY ","  \
    "\"test_request\":{\"method\":\"GET\",\"path\":\"/ping\"}}"

static void test_client_credentials_new_credentials(void)
{
    clock_reset();
    char ovr[512];
    snprintf(ovr, sizeof ovr, "{\"tcc-erp\":{\"api\":\"%s/cc/api\",\"token_url\":\"%s/cc/token\"}}", srv.base, srv.base);
    struct env e;
    if (env_open(&e, ovr)) {
        CHECK(!"env");
        return;
    }
    CHECK_OK(integ_definition_register(e.ctx, CC_MANIFEST, NULL));
    srv.cc_posts = 0;
    srv.cc_old = 0;
    char id[64];
    CHECK_OK(create(&e, "{\"integration_definition_id\":\"tcc-erp\",\"credentials\":{\"client_id\":\"OLD\","
                        "\"client_secret\":\"s1\"},\"config\":{\"tenant\":\"t1\"}}", id));
    /* A connection (a long sync) opened with the old credentials gets its
     * first token after they were replaced: with the new ones. */
    ig_conn *c1 = NULL, *c2 = NULL;
    CHECK_OK(ig_conn_open(e.ctx, "acme", id, &c1));
    CHECK_OK(integ_integration_set_credentials(e.s, id, "{\"client_id\":\"NEW\",\"client_secret\":\"s2\"}"));
    CHECK_OK(ig_auth_prepare(c1));
    CHECK_STR(jstr(c1->token, "access_token"), "cc-NEW-t1-1");
    CHECK_STR(jstr(c1->credentials, "client_id"), "NEW");
    CHECK(srv.cc_old == 0);
    /* ... and that token is the one cached for the new credentials. */
    int rc = 0;
    char *tok = conn_token(&e, id, &rc);
    CHECK_STR(tok, "cc-NEW-t1-1");
    CHECK(srv.cc_posts == 1);
    free(tok);
    /* Config the token request uses (here token_params.resource; Microsoft's
     * {config.tenant} in the token URL): a change means another token. */
    CHECK_OK(ig_conn_open(e.ctx, "acme", id, &c2));
    CHECK_OK(integ_integration_update(e.s, id, "{\"config\":{\"tenant\":\"t2\"}}", NULL));
    tok = conn_token(&e, id, &rc);
    CHECK_STR(tok, "cc-NEW-t2-2");
    free(tok);
    /* A connection opened before the change gets a token for the config it
     * runs with; connections with the new config do not take that one. */
    fake_now += 2 * 3600 * 1000;
    CHECK_OK(ig_auth_prepare(c2));
    CHECK_STR(jstr(c2->token, "access_token"), "cc-NEW-t1-3");
    tok = conn_token(&e, id, &rc);
    CHECK_STR(tok, "cc-NEW-t2-4");
    free(tok);
    tok = conn_token(&e, id, &rc);
    CHECK_STR(tok, "cc-NEW-t2-4");
    free(tok);
    CHECK(srv.cc_posts == 4 && srv.cc_old == 0);
    ig_conn_close(c1);
    ig_conn_close(c2);
    env_close(&e);
}

/* Credentials set (a re-authorisation) while a refresh waits for the
 * provider are kept: the refresh's answer is dropped, not written over
 * them, and an invalid_grant for the old refresh token marks nothing. */
static integ_session *hook_s;
static const char *hook_creds;
static void set_creds_hook(void)
{
    if (integ_integration_set_credentials(hook_s, hook_id, hook_creds) != INTEG_OK)
        fprintf(stderr, "  hook: set_credentials: %s\n", integ_errmsg());
}

static void test_credentials_set_during_refresh(void)
{
    struct env e;
    if (o2_env(&e, "to2c-crm", NULL)) {
        CHECK(!"env");
        return;
    }
    char buf[256];
    srv.o2_cur = 1;
    CHECK_OK(o2_create(&e, "to2c-crm", "at-1", "rt-1", NULL, hook_id));
    CHECK_OK(integ_session_open(&hook_s, e.ctx, "acme", "bob", "[\"admin\"]"));
    ig_conn *c = NULL;
    CHECK_OK(ig_conn_open(e.ctx, "acme", hook_id, &c));
    /* The provider rotates rt-1 and answers; meanwhile bob sets new tokens. */
    hook_creds = "{\"access_token\":\"reauth-at\",\"refresh_token\":\"reauth-rt\"}";
    srv.o2_hook = set_creds_hook;
    srv.o2_mode = 2;
    int refreshes = srv.o2_refreshes;
    CHECK_OK(ig_auth_prepare(c));
    CHECK(srv.o2_refreshes == refreshes + 1);
    CHECK_STR(jstr(c->token, "access_token"), "reauth-at"); /* the connection adopted them */
    char *s = stored_str(&e, hook_id, "credentials_sealed", "access_token");
    CHECK_STR(s, "reauth-at");
    free(s);
    s = stored_str(&e, hook_id, "credentials_sealed", "refresh_token");
    CHECK_STR(s, "reauth-rt");
    free(s);
    ig_conn_close(c);
    /* A forced refresh of rt-5 answered invalid_grant, after bob set new
     * tokens: about credentials that are gone, so no needs_reauth. */
    CHECK_OK(integ_integration_set_credentials(e.s, hook_id, "{\"access_token\":\"at-5\",\"refresh_token\":\"rt-5\"}"));
    hook_creds = "{\"access_token\":\"reauth2-at\",\"refresh_token\":\"reauth2-rt\"}";
    srv.o2_mode = 3;
    int events = ev_reauth;
    CHECK_OK(integ_oauth_refresh(e.s, hook_id));
    CHECK(ev_reauth == events);
    CHECK_STR(rec_str(&e, hook_id, "status", buf, sizeof buf), "active");
    CHECK_STR(rec_str(&e, hook_id, "rejected_refresh_fp", buf, sizeof buf), "(none)");
    CHECK_STR(rec_str(&e, hook_id, "last_error", buf, sizeof buf), "(none)");
    s = stored_str(&e, hook_id, "credentials_sealed", "refresh_token");
    CHECK_STR(s, "reauth2-rt");
    free(s);
    srv.o2_hook = NULL;
    integ_session_close(hook_s);
    hook_s = NULL;
    env_close(&e);
}

/* A person paused it: a rejected refresh token records the error but the
 * integration stays paused, and so do new credentials and a
 * re-authorisation. */
static void test_paused_stays_paused(void)
{
    struct env e;
    if (o2_env(&e, "to2p-crm", NULL)) {
        CHECK(!"env");
        return;
    }
    char id[64], again[64] = "", buf[512];
    srv.o2_cur = 50; /* rt-0 is unknown */
    CHECK_OK(o2_create(&e, "to2p-crm", "at-0", "rt-0", "paused", id));
    int events = ev_reauth;
    CHECK_RC(integ_oauth_refresh(e.s, id), INTEG_EAUTH);
    CHECK_MSG("invalid_grant");
    CHECK(ev_reauth == events + 1); /* the event and audit entry all the same */
    CHECK_STR(rec_str(&e, id, "status", buf, sizeof buf), "paused");
    CHECK(strstr(rec_str(&e, id, "last_error", buf, sizeof buf), "invalid_grant"));
    /* The same through a connection (a connection test needs no admin). */
    int rc = 0;
    fake_now += 1000;
    free(conn_token(&e, id, &rc));
    CHECK(rc == INTEG_EAUTH);
    CHECK_STR(rec_str(&e, id, "status", buf, sizeof buf), "paused");
    CHECK_OK(integ_integration_set_credentials(e.s, id, "{\"access_token\":\"at-9\",\"refresh_token\":\"rt-9\"}"));
    CHECK_STR(rec_str(&e, id, "status", buf, sizeof buf), "paused");
    CHECK_OK(code_connect(&e, "to2p-crm", NULL, id, again));
    CHECK_STR(again, id);
    CHECK_STR(rec_str(&e, id, "status", buf, sizeof buf), "paused");
    CHECK_STR(rec_str(&e, id, "last_error", buf, sizeof buf), "(none)");
    /* Unpaused by a person, it is active with the new tokens. */
    CHECK_OK(integ_integration_update(e.s, id, "{\"status\":\"active\"}", NULL));
    char *tok = conn_token(&e, id, &rc);
    CHECK_OK(rc);
    free(tok);
    env_close(&e);
}

/* ---- the sandbox's HubSpot-style OAuth endpoints (the demo's connect flow) ---- */

static void test_sandbox_hubspot_connect(void)
{
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    for (int i = 0; i < 2 && strrchr(exe, '/'); i++)
        *strrchr(exe, '/') = '\0';
    char sandbox[1100];
    snprintf(sandbox, sizeof sandbox, "%s/tools/sandbox/sandbox", exe);
    if (access(sandbox, X_OK) != 0) {
        printf("  (sandbox not built: %s)\n", sandbox);
        return;
    }
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(sandbox, sandbox, "--port", "0", "--stdin-lifetime", "--max-seconds", "120", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char line[256] = "";
    size_t len = 0;
    struct pollfd pfd = {out[0], POLLIN, 0};
    while (len < sizeof line - 1 && !memchr(line, '\n', len) && poll(&pfd, 1, 10000) > 0) {
        ssize_t k = read(out[0], line + len, sizeof line - 1 - len);
        if (k <= 0)
            break;
        len += (size_t)k;
        line[len] = '\0';
    }
    char base[128] = "";
    if (sscanf(line, "listening on %127s", base) != 1) {
        CHECK(!"sandbox did not start");
    } else {
        clock_reset();
        char ovr[1024];
        snprintf(ovr, sizeof ovr,
                 "{\"hubspot-crm\":{\"api\":\"%s/hubspot\",\"authorize_url\":\"%s/hubspot/oauth/authorize\","
                 "\"token_url\":\"%s/hubspot/oauth/v1/token\"}}", base, base, base);
        struct env e;
        if (env_open(&e, ovr) == 0) {
            CHECK_OK(integ_definition_set_app_credentials(e.ctx, "hubspot-crm",
                                                          "{\"client_id\":\"demo-app\",\"client_secret\":\"demo-secret\"}"));
            char *res = NULL;
            CHECK_OK(integ_oauth_begin(e.s, "{\"integration_definition_id\":\"hubspot-crm\",\"redirect_uri\":\"" REDIRECT "\"}", &res));
            json_object *o = res ? json_tokener_parse(res) : NULL;
            CURL *h = curl_easy_init();
            char *loc = NULL;
            long st = o ? http(h, "GET", jstr(o, "authorize_url"), NULL, &loc, NULL) : 0;
            curl_easy_cleanup(h);
            CHECK(st == 302 && loc && !strncmp(loc, REDIRECT "?code=", strlen(REDIRECT) + 6));
            char *js = loc ? callback_json(loc) : NULL, *integ = NULL;
            CHECK_OK(integ_oauth_complete(e.ctx, js, &integ));
            json_object *io = integ ? json_tokener_parse(integ) : NULL;
            const char *id = jstr(io, "id");
            CHECK(conn_test(&e, id ? id : "-"));
            /* The sandbox rotates refresh tokens: two forced refreshes work
             * only if the rotated one was saved. */
            CHECK_OK(integ_oauth_refresh(e.s, id ? id : "-"));
            CHECK_OK(integ_oauth_refresh(e.s, id ? id : "-"));
            CHECK(conn_test(&e, id ? id : "-"));
            json_object_put(io);
            integ_free(integ);
            free(js);
            free(loc);
            json_object_put(o);
            integ_free(res);
            env_close(&e);
        } else {
            CHECK(!"env");
        }
    }
    close(in[1]);
    close(out[0]);
    waitpid(pid, NULL, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    clock_reset();
    struct MHD_Daemon *d = server_start();
    RUN(test_token_response_read);
    RUN(test_client_credentials_cached);
    RUN(test_client_credentials_no_access_token);
    RUN(test_tripletex_session);
    RUN(test_magento_admin_token);
    RUN(test_sap_b1_cookie_session);
    RUN(test_sync_token_expires_mid_run);
    RUN(test_code_flow_auto_sync_scheduled);
    RUN(test_refresh_not_resent_after_502);
    RUN(test_refresh_lease_kept);
    RUN(test_client_credentials_new_credentials);
    RUN(test_credentials_set_during_refresh);
    RUN(test_paused_stays_paused);
    RUN(test_sandbox_hubspot_connect);
    int have_peer = peer_start() == 0;
    if (have_peer) {
        RUN(test_code_flow_pkce);
        RUN(test_client_secret_basic_and_reauthorise);
        RUN(test_expired_state);
        RUN(test_provider_error_on_callback);
        RUN(test_wrong_verifier);
        RUN(test_refresh_and_rotation);
        RUN(test_revoked_refresh_token);
        RUN(test_eight_threads_one_refresh);
        RUN(test_client_credentials_private_key_jwt);
        RUN(test_jwt_bearer);
        peer_stop();
    } else {
        printf("skip oidc-provider cases (node or tests/oracles/node_modules/oidc-provider missing)\n");
    }
    MHD_stop_daemon(d);
    curl_global_cleanup();
    if (!have_peer && !t_cases_failed) {
        printf("%d cases, 0 failed (oidc-provider cases skipped)\n", t_cases_run);
        return 77;
    }
    TEST_END();
}
