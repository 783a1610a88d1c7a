/* The end-to-end demo on the default SQLite store (./integrations.db):
 * the catalog by category, a tenant connecting HubSpot with an API key,
 * its integrations and the audit trail. Run it through scripts/demo. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integrations/integrations.h"

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
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(arr, i)));
    }
}

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
        const char *scheme = wh ? js(wh, "scheme") : "-";
        printf("  %-24s %-22s %-26s %-14s %s\n", js(d, "key"), js(d, "name"), auth,
               scheme && strcmp(scheme, "null") ? scheme : "-", caps);
    }
}

int main(void)
{
    const char *opts = getenv("INTEG_MASTER_KEY") ? "{}" : "{\"master_key_file\": \"./integrations.key\"}";
    integ_ctx *ctx = NULL;
    integ_session *s = NULL;
    char *out = NULL;
    int rc;
    printf("libintegrations %s — demo on ./integrations.db\n", integ_version());
    if ((rc = integ_ctx_open(&ctx, opts)))
        return fail("opening the context", rc);

    if ((rc = integ_definitions_list(ctx, NULL, &out)))
        return fail("listing the catalog", rc);
    json_object *defs = json_tokener_parse(out);
    integ_free(out);
    print_catalog(defs);
    json_object_put(defs);

    if ((rc = integ_session_open(&s, ctx, "acme", "alice@acme.test", "[\"admin\"]")))
        return fail("opening a session", rc);

    /* Idempotent: the first run creates the integration, later runs rotate
     * its API key. */
    const char *token = getenv("DEMO_HUBSPOT_TOKEN") ? getenv("DEMO_HUBSPOT_TOKEN") : "pat-na1-demo-token";
    if ((rc = integ_integrations_list(s, "{\"integration_definition_id\": \"hubspot-crm\"}", &out)))
        return fail("listing integrations", rc);
    json_object *existing = json_tokener_parse(out);
    integ_free(out);
    char creds[256];
    snprintf(creds, sizeof creds, "{\"api_key\": \"%s\"}", token);
    if (json_object_array_length(existing) == 0) {
        char req[512];
        snprintf(req, sizeof req,
                 "{\"integration_definition_id\": \"hubspot-crm\", \"name\": \"HubSpot Production\", "
                 "\"credentials\": %s, \"config\": {\"sync_interval\": 3600, "
                 "\"entities\": [\"contacts\", \"companies\", \"deals\"], \"auto_sync\": true}}", creds);
        if ((rc = integ_integration_create(s, req, &out)))
            return fail("creating the HubSpot integration", rc);
        printf("\nCreated: %s\n", out);
        integ_free(out);
    } else {
        const char *id = js(json_object_array_get_idx(existing, 0), "id");
        if ((rc = integ_integration_set_credentials(s, id, creds)))
            return fail("rotating the API key", rc);
        printf("\nHubSpot integration %s exists: API key replaced\n", id);
    }
    json_object_put(existing);

    if ((rc = integ_integrations_list(s, NULL, &out)))
        return fail("listing integrations", rc);
    json_object *list = json_tokener_parse(out);
    integ_free(out);
    printf("\nIntegrations of tenant acme\n  %-38s %-20s %-12s %-10s %-13s %s\n", "id", "name", "definition",
           "status", "credentials", "config");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *it = json_object_array_get_idx(list, i);
        printf("  %-38s %-20s %-12s %-10s %-13s %s\n", js(it, "id"), js(it, "name"),
               js(it, "integration_definition_key"), js(it, "status"),
               json_object_get_boolean(json_object_object_get(it, "has_credentials")) ? "sealed" : "none",
               json_object_to_json_string_ext(json_object_object_get(it, "config"), JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(list);

    if ((rc = integ_audit_list(s, "{\"limit\": 10}", &out)))
        return fail("reading the audit trail", rc);
    json_object *audit = json_tokener_parse(out);
    integ_free(out);
    printf("\nAudit trail (newest first)\n  %-21s %-16s %-28s %s\n", "at", "user", "action", "details");
    for (size_t i = 0; i < json_object_array_length(audit); i++) {
        json_object *e = json_object_array_get_idx(audit, i);
        printf("  %-21s %-16s %-28s %s\n", js(e, "at"), js(e, "user_id"), js(e, "action"),
               json_object_to_json_string_ext(json_object_object_get(e, "details"), JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(audit);
    integ_session_close(s);
    integ_ctx_close(ctx);
    printf("\nCredentials are sealed in ./integrations.db; no read call ever returns them.\n");
    return 0;
}
