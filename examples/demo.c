/* The end-to-end demo on the default SQLite store (./integrations.db).
 *
 *   demo SANDBOX_BINARY
 *
 * It starts the sandbox (emulated HubSpot, Shopify, Pipedrive, Dynamics on
 * 127.0.0.1), shows the catalog by category, connects tenant "acme" to
 * HubSpot with an API key pointed at the sandbox (base_url_overrides),
 * tests the connection, pulls 10,000 contacts with a live progress bar,
 * prints the sync log and three mapped records, runs the incremental sync
 * that skips what is unchanged, receives a signed HubSpot webhook (and its
 * duplicate, and a forged one), processes the queue, and prints the audit
 * trail. Run it through
 * scripts/demo; a second run starts incrementally from the first one's
 * checkpoint. */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <mbedtls/md.h>
#include <sodium.h>

#include "integrations/integrations.h"

#define RECORDS 10000
#define TOKEN "pat-na1-demo-token"

static int fail(const char *step, int rc)
{
    fprintf(stderr, "demo: %s failed: %s (%s)\n", step, integ_errmsg(), integ_strerror(rc));
    return 1;
}

static const char *js(json_object *o, const char *k)
{
    json_object *v = json_object_object_get(o, k);
    return v ? json_object_get_string(v) : "-";
}

static void join_array(json_object *arr, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(arr, i)));
    }
}

/* ---- the sandbox ------------------------------------------------------------ */

struct sandbox {
    pid_t pid;
    char url[128];
};

static int sandbox_start(const char *binary, struct sandbox *sb)
{
    int out[2], in[2];
    if (pipe(out) || pipe(in))
        return -1;
    sb->pid = fork();
    if (sb->pid < 0)
        return -1;
    if (sb->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(in[0], STDIN_FILENO);
        close(out[0]);
        close(out[1]);
        close(in[0]);
        close(in[1]);
        char records[64];
        snprintf(records, sizeof records, "hubspot:contacts=%d", RECORDS);
        execl(binary, binary, "--records", records, "--seed", "7", "--token", TOKEN, "--max-seconds", "900",
              "--stdin-lifetime", (char *)NULL);
        fprintf(stderr, "demo: cannot run the sandbox '%s': %s\n", binary, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(in[0]); /* keep in[1] open: the sandbox lives while we do */
    FILE *f = fdopen(out[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof line, f))
        return -1;
    /* "listening on http://127.0.0.1:PORT" */
    const char *p = strstr(line, "http://");
    if (!p)
        return -1;
    snprintf(sb->url, sizeof sb->url, "%s", p);
    sb->url[strcspn(sb->url, "\r\n")] = '\0';
    return 0;
}

static void sandbox_stop(struct sandbox *sb)
{
    if (sb->pid > 0) {
        kill(sb->pid, SIGTERM);
        waitpid(sb->pid, NULL, 0);
    }
}

/* ---- output ----------------------------------------------------------------- */

static void print_catalog(json_object *defs)
{
    const char *last = "";
    printf("\nCatalog: %zu systems\n", json_object_array_length(defs));
    for (size_t i = 0; i < json_object_array_length(defs); i++) {
        json_object *d = json_object_array_get_idx(defs, i);
        if (strcmp(last, js(d, "category")) != 0) {
            last = js(d, "category");
            printf("\n  %s\n  %-24s %-22s %-26s %-14s %s\n", last, "key", "name", "auth", "webhook", "capabilities");
        }
        char auth[128], caps[160];
        join_array(json_object_object_get(d, "auth_types"), auth, sizeof auth);
        join_array(json_object_object_get(d, "capabilities"), caps, sizeof caps);
        json_object *wh = json_object_object_get(d, "webhook");
        const char *scheme = wh && json_object_object_get(wh, "scheme") ? js(wh, "scheme") : "-";
        printf("  %-24s %-22s %-26s %-14s %s\n", js(d, "key"), js(d, "name"), auth, scheme, caps);
    }
}

static int progress_bar(void *payload, const char *progress_json)
{
    (void)payload;
    json_object *p = json_tokener_parse(progress_json);
    long done = (long)json_object_get_int64(json_object_object_get(p, "records_processed"));
    double rate = json_object_get_double(json_object_object_get(p, "records_per_second"));
    int width = 40, filled = (int)(done * width / RECORDS);
    if (filled > width)
        filled = width;
    fprintf(stderr, "\r  [%.*s%*s] %6ld/%d records, %lld pages, %.0f records/s", filled,
            "########################################", width - filled, "", done, RECORDS,
            (long long)json_object_get_int64(json_object_object_get(p, "pages")), rate);
    json_object_put(p);
    return 0;
}

static void print_result(const char *title, json_object *r)
{
    printf("\n%s\n  status %s, %s sync: %s processed, %s created, %s updated, %s skipped, %s failed in %s pages\n",
           title, js(r, "status"), js(r, "sync_type"), js(r, "records_processed"), js(r, "records_created"),
           js(r, "records_updated"), js(r, "records_skipped"), js(r, "records_failed"), js(r, "pages"));
    printf("  started %s, completed %s, by %s\n", js(r, "started_at"), js(r, "completed_at"), js(r, "user_id"));
}


/* The sandbox's control API: change a record "remotely". */
static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static int sandbox_touch(const char *base, const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/touch", base);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

/* Follow the authorize URL as the user's browser would; the sandbox
 * approves at once and redirects to redirect_uri?code=...&state=... */
static int authorize(const char *url, char *location, size_t cap)
{
    CURL *c = curl_easy_init();
    char *loc = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
    if (loc)
        snprintf(location, cap, "%s", loc);
    curl_easy_cleanup(c);
    return loc ? 0 : -1;
}

static void query_param(const char *url, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    CURLU *u = curl_url();
    char *q = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK && curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK) {
        size_t n = strlen(name);
        for (char *p = strtok(q, "&"); p; p = strtok(NULL, "&")) {
            if (!strncmp(p, name, n) && p[n] == '=') {
                int len = 0;
                char *v = curl_easy_unescape(NULL, p + n + 1, 0, &len);
                snprintf(out, cap, "%s", v ? v : "");
                curl_free(v);
            }
        }
    }
    curl_free(q);
    curl_url_cleanup(u);
}

/* ---- a webhook, signed as HubSpot signs it (v3) ----------------------------------- */

#define APP_SECRET "demo-app-client-secret"

static int deliver(integ_ctx *ctx, const char *endpoint, const char *url, const char *body, const char *secret,
                   int64_t now_ms, char **out_body)
{
    char ts[32], msg[2048], sig[128];
    unsigned char mac[32];
    snprintf(ts, sizeof ts, "%lld", (long long)now_ms);
    int n = snprintf(msg, sizeof msg, "POST%s%s%s", url, body, ts);
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), (const unsigned char *)secret, strlen(secret),
                    (const unsigned char *)msg, (size_t)n, mac);
    sodium_bin2base64(sig, sizeof sig, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    const char *names[] = {"Content-Type", "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"};
    const char *values[] = {"application/json", sig, ts};
    int status = 0;
    if (integ_webhook_receive(ctx, endpoint, "POST", url, names, values, 3, (const unsigned char *)body, strlen(body),
                              &status, out_body) != INTEG_OK)
        return -1;
    return status;
}

int main(int argc, char **argv)
{
    const char *sandbox_bin = argc > 1 ? argv[1] : "build/tools/sandbox/sandbox";
    struct sandbox sb = {0};
    printf("libintegrations %s: demo on ./integrations.db\n", integ_version());
    if (sandbox_start(sandbox_bin, &sb)) {
        fprintf(stderr, "demo: the sandbox did not start (%s)\n", sandbox_bin);
        sandbox_stop(&sb);
        return 1;
    }
    printf("sandbox: emulated HubSpot with %d contacts at %s/hubspot\n", RECORDS, sb.url);

    /* The sandbox lives on loopback: a host allows that explicitly. */
    char opts[1024];
    snprintf(opts, sizeof opts,
             "{%s\"http\": {\"allow_private_networks\": true},"
             " \"base_url_overrides\": {\"hubspot-crm\": {\"api\": \"%s/hubspot\","
             " \"authorize_url\": \"%s/hubspot/oauth/authorize\", \"token_url\": \"%s/hubspot/oauth/v1/token\"}}}",
             getenv("INTEG_MASTER_KEY") ? "" : "\"master_key_file\": \"./integrations.key\", ", sb.url, sb.url, sb.url);
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    char *out = NULL;
    int rc, status = 1;
    if ((rc = integ_ctx_open(&ctx, opts))) {
        fail("opening the context", rc);
        goto done;
    }
    if ((rc = integ_definitions_list(ctx, NULL, &out))) {
        fail("listing the catalog", rc);
        goto done;
    }
    json_object *defs = json_tokener_parse(out);
    integ_free(out);
    print_catalog(defs);
    json_object_put(defs);

    if ((rc = integ_session_open(&s, ctx, "acme", "alice@acme.test", "[\"admin\"]"))) {
        fail("opening a session", rc);
        goto done;
    }
    /* Idempotent: the first run creates the integration, later runs reuse it. */
    if ((rc = integ_integrations_list(s, "{\"integration_definition_id\": \"hubspot-crm\"}", &out))) {
        fail("listing integrations", rc);
        goto done;
    }
    json_object *existing = json_tokener_parse(out);
    integ_free(out);
    char id[64], oauth_id[64] = "";
    json_object *mine = NULL;
    for (size_t i = 0; i < json_object_array_length(existing); i++) {
        json_object *it = json_object_array_get_idx(existing, i);
        if (!strcmp(js(it, "name"), "HubSpot Production"))
            mine = it;
        else if (!strcmp(js(it, "name"), "HubSpot (OAuth)"))
            snprintf(oauth_id, sizeof oauth_id, "%s", js(it, "id"));
    }
    if (!mine) {
        const char *req = "{\"integration_definition_id\": \"hubspot-crm\", \"name\": \"HubSpot Production\", "
                          "\"credentials\": {\"api_key\": \"" TOKEN "\"}, \"config\": {\"sync_interval\": 3600, "
                          "\"entities\": [\"contacts\", \"companies\", \"deals\"], \"auto_sync\": true}}";
        if ((rc = integ_integration_create(s, req, &out))) {
            json_object_put(existing);
            fail("creating the HubSpot integration", rc);
            goto done;
        }
        json_object *it = json_tokener_parse(out);
        snprintf(id, sizeof id, "%s", js(it, "id"));
        printf("\nCreated integration %s: %s\n", id, out);
        json_object_put(it);
        integ_free(out);
    } else {
        snprintf(id, sizeof id, "%s", js(mine, "id"));
        if ((rc = integ_integration_set_credentials(s, id, "{\"api_key\": \"" TOKEN "\"}"))) {
            json_object_put(existing);
            fail("setting the API key", rc);
            goto done;
        }
        printf("\nUsing integration %s (created by an earlier run; its checkpoint makes this run incremental)\n", id);
    }
    json_object_put(existing);

    if ((rc = integ_integration_test(s, id, &out))) {
        fail("testing the connection", rc);
        goto done;
    }
    printf("Connection test: %s\n", out);
    integ_free(out);

    printf("\nPulling contacts from HubSpot (sandbox):\n");
    rc = integ_sync(s, id, "{\"entity\": \"contacts\", \"direction\": \"pull\"}", progress_bar, NULL, &out);
    fprintf(stderr, "\n");
    if (rc) {
        fail("the sync", rc);
        goto done;
    }
    json_object *r1 = json_tokener_parse(out);
    integ_free(out);
    print_result("Sync log entry:", r1);
    json_object_put(r1);

    if ((rc = integ_entities_list(s, "contacts", "{\"limit\": 3}", &out))) {
        fail("listing contacts", rc);
        goto done;
    }
    json_object *three = json_tokener_parse(out);
    integ_free(out);
    printf("\nThree mapped records (local entity \"contacts\"):\n");
    for (size_t i = 0; i < json_object_array_length(three); i++) {
        json_object *rec = json_object_array_get_idx(three, i);
        printf("  %s  %s\n", js(rec, "id"),
               json_object_to_json_string_ext(json_object_object_get(rec, "data"), JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(three);

    printf("\nRunning the same sync again (incremental from the high-water mark):\n");
    rc = integ_sync(s, id, "{\"entity\": \"contacts\"}", NULL, NULL, &out);
    if (rc) {
        fail("the incremental sync", rc);
        goto done;
    }
    json_object *r2 = json_tokener_parse(out);
    integ_free(out);
    print_result("Sync log entry:", r2);
    json_object_put(r2);

    /* Webhooks: HubSpot signs with the app's client secret (platform level). */
    printf("\nWebhooks:\n");
    if ((rc = integ_definition_set_app_credentials(ctx, "hubspot-crm",
                                                   "{\"client_id\": \"demo-app\", \"client_secret\": \"" APP_SECRET "\"}"))) {
        fail("setting the app credentials", rc);
        goto done;
    }
    if ((rc = integ_webhook_endpoints_list(s, id, &out))) {
        fail("listing webhook endpoints", rc);
        goto done;
    }
    json_object *eps = json_tokener_parse(out);
    integ_free(out);
    char ep_id[64];
    if (json_object_array_length(eps) == 0) {
        if ((rc = integ_webhook_endpoint_create(s, id, "{\"events\": [\"contact.*\"]}", &out))) {
            json_object_put(eps);
            fail("creating a webhook endpoint", rc);
            goto done;
        }
        json_object *ep = json_tokener_parse(out);
        integ_free(out);
        snprintf(ep_id, sizeof ep_id, "%s", js(ep, "id"));
        json_object_put(ep);
        printf("  endpoint %s created (scheme hubspot-v3, events contact.*)\n", ep_id);
    } else {
        snprintf(ep_id, sizeof ep_id, "%s", js(json_object_array_get_idx(eps, 0), "id"));
        printf("  endpoint %s (from an earlier run)\n", ep_id);
    }
    json_object_put(eps);
    char hook_url[256], body[256];
    snprintf(hook_url, sizeof hook_url, "https://app.example.com/api/webhooks/%s", ep_id);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    snprintf(body, sizeof body,
             "[{\"eventId\": %lld, \"subscriptionType\": \"contact.propertyChange\", \"objectId\": 1005, "
             "\"propertyName\": \"email\"}]",
             (long long)now_ms);
    /* The contact changes in HubSpot, which then notifies us. */
    sandbox_touch(sb.url, "{\"system\": \"hubspot\", \"entity\": \"contacts\", \"id\": \"1005\", "
                          "\"fields\": {\"email\": \"new.address@example.com\"}}");
    char *reply = NULL;
    int st = deliver(ctx, ep_id, hook_url, body, APP_SECRET, now_ms, &reply);
    printf("  HubSpot delivery        -> %d %s\n", st, reply ? reply : "");
    integ_free(reply);
    st = deliver(ctx, ep_id, hook_url, body, APP_SECRET, now_ms, &reply);
    printf("  the same delivery again -> %d %s\n", st, reply ? reply : "");
    integ_free(reply);
    st = deliver(ctx, ep_id, hook_url, body, "not-the-secret", now_ms, &reply);
    printf("  a forged delivery       -> %d %s (%s)\n", st, reply ? reply : "", integ_errmsg());
    integ_free(reply);
    if ((rc = integ_webhook_process(ctx, 10, &out))) {
        fail("processing webhooks", rc);
        goto done;
    }
    json_object *pr = json_tokener_parse(out);
    integ_free(out);
    json_object *ev0 = json_object_array_get_idx(json_object_object_get(pr, "events"), 0);
    printf("  processing the queue    -> %s processed: contact 1005 fetched from HubSpot, %s local record updated\n",
           js(pr, "processed"), ev0 ? js(json_object_object_get(ev0, "result"), "records_updated") : "0");
    json_object_put(pr);
    if ((rc = integ_entities_list(s, "contacts", "{\"limit\": 1}", &out)) == INTEG_OK) {
        json_object *l = json_tokener_parse(out);
        json_object *rec = json_object_array_get_idx(l, 0);
        printf("  most recently updated   -> %s %s\n", js(rec, "id"),
               json_object_to_json_string_ext(json_object_object_get(rec, "data"), JSON_C_TO_STRING_PLAIN));
        json_object_put(l);
        integ_free(out);
    }

    /* "Connect HubSpot": the OAuth authorization-code flow with PKCE. */
    printf("\nConnect flow (OAuth 2.0, authorization code + PKCE, against the sandbox):\n");
    /* A second run re-authorises the integration the first one connected. */
    char begin_req[512];
    snprintf(begin_req, sizeof begin_req,
             "{\"integration_definition_id\": \"hubspot-crm\", \"name\": \"HubSpot (OAuth)\","
             " \"redirect_uri\": \"https://app.example.com/oauth/callback\"%s%s%s}",
             oauth_id[0] ? ", \"integration_id\": \"" : "", oauth_id, oauth_id[0] ? "\"" : "");
    if ((rc = integ_oauth_begin(s, begin_req, &out))) {
        fail("starting the OAuth flow", rc);
        goto done;
    }
    json_object *begin = json_tokener_parse(out);
    integ_free(out);
    char location[2048] = "", code[512], state[512], cb[1200];
    printf("  authorize URL: %.110s...\n", js(begin, "authorize_url"));
    if (authorize(js(begin, "authorize_url"), location, sizeof location)) {
        json_object_put(begin);
        fprintf(stderr, "demo: the sandbox did not redirect\n");
        goto done;
    }
    json_object_put(begin);
    query_param(location, "code", code, sizeof code);
    query_param(location, "state", state, sizeof state);
    printf("  the provider redirected to the callback with a code and the state\n");
    snprintf(cb, sizeof cb, "{\"state\": \"%s\", \"code\": \"%s\"}", state, code);
    if ((rc = integ_oauth_complete(ctx, cb, &out))) {
        fail("completing the OAuth flow", rc);
        goto done;
    }
    json_object *connected = json_tokener_parse(out);
    integ_free(out);
    printf("  connected: integration %s \"%s\", auth %s, status %s, credentials %s\n", js(connected, "id"),
           js(connected, "name"), js(connected, "auth_type"), js(connected, "status"),
           json_object_get_boolean(json_object_object_get(connected, "has_credentials")) ? "sealed" : "none");
    rc = integ_oauth_complete(ctx, cb, &out);
    printf("  the same callback again: %s (%s)\n", integ_strerror(rc), integ_errmsg());
    if ((rc = integ_integration_test(s, js(connected, "id"), &out)) == INTEG_OK) {
        printf("  connection test with the access token: %s\n", out);
        integ_free(out);
    }
    json_object_put(connected);

    if ((rc = integ_audit_list(s, "{\"limit\": 8}", &out))) {
        fail("reading the audit trail", rc);
        goto done;
    }
    json_object *audit = json_tokener_parse(out);
    integ_free(out);
    printf("\nAudit trail (newest first)\n  %-21s %-16s %-28s %s\n", "at", "user", "action", "details");
    for (size_t i = 0; i < json_object_array_length(audit); i++) {
        json_object *e = json_object_array_get_idx(audit, i);
        printf("  %-21s %-16s %-28s %s\n", js(e, "at"), js(e, "user_id"), js(e, "action"),
               json_object_to_json_string_ext(json_object_object_get(e, "details"), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(audit);
    printf("\nCredentials are sealed in ./integrations.db; no read call ever returns them.\n");
    status = 0;
done:
    integ_session_close(s);
    integ_ctx_close(ctx);
    sandbox_stop(&sb);
    return status;
}
