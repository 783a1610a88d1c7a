/* Adapter manifests: the built-in catalog validates and follows the
 * catalog conventions, the seed's create examples work verbatim, auth
 * types are inferred from credentials, and every class of manifest error
 * is reported with the JSON path of the offending field. */
#include <json-c/json.h>

#include "error.h"
#include "json.h"
#include "manifest.h"
#include "schema.h"
#include "test.h"

static const char *const k_keys[] = {
    "hubspot-crm",          "salesforce-crm",         "pipedrive-crm",
    "visma-erp",            "sap-erp",                "dynamics-erp",
    "xledger-accounting",   "tripletex-accounting",   "poweroffice-accounting",
    "shopify-ecommerce",    "woocommerce-ecommerce",  "magento-ecommerce",
    "gmail-email",          "outlook-email",          "sendgrid-email",
};
#define N_KEYS (sizeof k_keys / sizeof k_keys[0])

/* The parsed built-in manifest with this key (caller puts), or NULL. */
static json_object *builtin(const char *key)
{
    for (size_t i = 0; i < ig_builtin_manifest_count; i++) {
        json_object *m = json_tokener_parse(ig_builtin_manifests[i]);
        const char *k = ig_json_str(m, "key");
        if (k && strcmp(k, key) == 0)
            return m;
        json_object_put(m);
    }
    return NULL;
}

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fprintf(stderr, "  unparsable test JSON: %s\n", text);
    return o;
}

/* Validate `config_text` against the manifest's config_schema the way
 * integration create does (defaults applied). */
static int validate_config(json_object *m, const char *config_text, json_object **out)
{
    json_object *cfg = parse(config_text);
    int rc = ig_schema_validate(ig_json_get(m, "config_schema"), cfg, 1, "config");
    if (out)
        *out = cfg;
    else
        json_object_put(cfg);
    return rc;
}

static const char *infer(json_object *m, const char *creds_text)
{
    json_object *c = creds_text ? parse(creds_text) : NULL;
    const char *t = ig_manifest_infer_auth_type(m, c);
    json_object_put(c);
    return t;
}

/* ---------------------------------------------------------------- catalog */

static void test_builtins_validate(void)
{
    CHECK(ig_builtin_manifest_count == N_KEYS);
    for (size_t i = 0; i < ig_builtin_manifest_count; i++) {
        json_object *m = NULL;
        int rc = ig_json_parse_object(ig_builtin_manifests[i], "manifest", 0, &m);
        CHECK_OK(rc);
        if (rc)
            continue;
        rc = ig_manifest_validate(m);
        if (rc)
            fprintf(stderr, "  built-in manifest %zu (%s): %s\n", i, ig_json_str(m, "key"),
                    integ_errmsg());
        CHECK_OK(rc);
        json_object_put(m);
    }
}

static void test_builtin_keys_once(void)
{
    int seen[N_KEYS] = {0};
    for (size_t i = 0; i < ig_builtin_manifest_count; i++) {
        json_object *m = json_tokener_parse(ig_builtin_manifests[i]);
        const char *k = ig_json_str(m, "key");
        size_t j = 0;
        while (j < N_KEYS && !(k && strcmp(k, k_keys[j]) == 0))
            j++;
        if (j == N_KEYS)
            fprintf(stderr, "  unexpected built-in key %s\n", k ? k : "(none)");
        CHECK(j < N_KEYS);
        if (j < N_KEYS)
            seen[j]++;
        json_object_put(m);
    }
    for (size_t j = 0; j < N_KEYS; j++) {
        if (seen[j] != 1)
            fprintf(stderr, "  %s appears %d times\n", k_keys[j], seen[j]);
        CHECK(seen[j] == 1);
    }
}

static int int_is(json_object *o, const char *key, int64_t want)
{
    json_object *v = ig_json_get(o, key);
    return v && json_object_is_type(v, json_type_int) && json_object_get_int64(v) == want;
}

/* The conventions every catalog entry follows (doc/manifest.md). */
static void test_builtin_conventions(void)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        json_object *m = builtin(k_keys[i]);
        CHECK(m != NULL);
        if (!m)
            continue;
        int before = t_failed_checks;
        json_object *cs = ig_json_get(m, "config_schema");
        json_object *props = ig_json_get(cs, "properties");
        json_object *ap = ig_json_get(cs, "additionalProperties");
        CHECK(ap && json_object_is_type(ap, json_type_boolean) && !json_object_get_boolean(ap));

        json_object *si = ig_json_get(props, "sync_interval");
        CHECK_STR(ig_json_str(si, "type"), "integer");
        CHECK(int_is(si, "minimum", 60) && int_is(si, "maximum", 604800) && int_is(si, "default", 3600));
        json_object *as = ig_json_get(props, "auto_sync");
        CHECK_STR(ig_json_str(as, "type"), "boolean");
        CHECK(ig_json_get(as, "default") && !json_object_get_boolean(ig_json_get(as, "default")));
        json_object *en = ig_json_get(props, "entities");
        CHECK_STR(ig_json_str(en, "type"), "array");
        CHECK(ig_json_bool(en, "uniqueItems", 0));
        json_object *names = ig_json_get(ig_json_get(en, "items"), "enum");
        json_object *ents = ig_json_get(m, "entities");
        CHECK(names && ents &&
              json_object_array_length(names) == (size_t)json_object_object_length(ents));

        CHECK(ig_json_get(m, "test_request") != NULL);
        CHECK(ig_json_get(m, "rate_limit") != NULL);
        CHECK(json_object_object_get_ex(m, "webhook", NULL));

        /* Out-of-range values and typos are rejected. */
        CHECK_RC(validate_config(m, "{\"sync_interval\": 59}", NULL), INTEG_EINVAL);
        CHECK_RC(validate_config(m, "{\"sync_interval\": 604801}", NULL), INTEG_EINVAL);
        CHECK_RC(validate_config(m, "{\"sync_intervall\": 3600}", NULL), INTEG_EINVAL);
        CHECK_RC(validate_config(m, "{\"entities\": [\"no_such_entity\"]}", NULL), INTEG_EINVAL);
        if (t_failed_checks != before)
            fprintf(stderr, "  ... in %s\n", k_keys[i]);
        json_object_put(m);
    }
}

/* Every entity of the four complete adapters maps to a canonical entity
 * with a default mapping. */
static void test_complete_entity_sections(void)
{
    static const char *const complete[] = {"hubspot-crm", "shopify-ecommerce", "pipedrive-crm",
                                           "dynamics-erp"};
    for (size_t i = 0; i < sizeof complete / sizeof complete[0]; i++) {
        json_object *m = builtin(complete[i]);
        CHECK(m != NULL);
        json_object_object_foreach(ig_json_get(m, "entities"), name, ent) {
            json_object *fm = ig_json_get(ig_json_get(ent, "default_mapping"), "field_map");
            if (!fm || !json_object_object_length(fm) || !ig_json_get(ent, "incremental") ||
                !ig_json_get(ent, "pagination"))
                fprintf(stderr, "  %s.%s lacks mapping/incremental/pagination\n", complete[i], name);
            CHECK(fm && json_object_object_length(fm) > 0);
            CHECK(ig_json_get(ent, "incremental") != NULL);
            CHECK(ig_json_get(ent, "pagination") != NULL);
        }
        json_object_put(m);
    }
    json_object *hub = builtin("hubspot-crm");
    json_object *fm = ig_json_get(ig_json_get(ig_json_get(ig_json_get(hub, "entities"), "contacts"),
                                              "default_mapping"),
                                  "field_map");
    CHECK_STR(ig_json_str(fm, "email"), "properties.email");
    CHECK_STR(ig_json_str(fm, "first_name"), "properties.firstname");
    json_object_put(hub);
}

/* ------------------------------------------------------------ seed examples */

static void test_seed_hubspot(void)
{
    json_object *m = builtin("hubspot-crm");
    CHECK(m != NULL);
    json_object *cfg = NULL;
    CHECK_OK(validate_config(m,
                             "{\"sync_interval\": 3600, \"entities\": [\"contacts\", \"companies\", "
                             "\"deals\"], \"auto_sync\": true}",
                             &cfg));
    CHECK(ig_json_bool(cfg, "auto_sync", 0) == 1);
    json_object_put(cfg);
    CHECK_STR(infer(m, "{\"api_key\": \"...\"}"), "api_key");
    CHECK_STR(infer(m, "{\"access_token\": \"tok\", \"refresh_token\": \"r\"}"), "oauth2");
    CHECK(infer(m, "{}") == NULL);
    CHECK(infer(m, NULL) == NULL);
    CHECK(infer(m, "{\"api_key\": \"k\", \"extra\": 1}") == NULL);
    json_object_put(m);
}

static void test_seed_visma(void)
{
    json_object *m = builtin("visma-erp");
    CHECK(m != NULL);
    json_object *cfg = NULL;
    CHECK_OK(validate_config(m, "{\"sync_interval\": 3600}", &cfg));
    /* Defaults are filled in, so the stored config is complete. */
    CHECK(ig_json_get(cfg, "auto_sync") != NULL && ig_json_bool(cfg, "auto_sync", 1) == 0);
    json_object_put(cfg);
    CHECK_STR(infer(m, "{\"client_id\": \"...\", \"client_secret\": \"...\"}"),
              "oauth2_client_credentials");
    CHECK_STR(infer(m, "{\"client_id\": \"a\", \"client_secret\": \"b\", \"tenant_id\": "
                       "\"0190f1c2-7d3a-7b6e-9a51-3c2d4e5f6a7b\"}"),
              "oauth2_client_credentials");
    CHECK_STR(infer(m, "{\"access_token\": \"tok\"}"), "oauth2");
    CHECK(infer(m, "{\"client_id\": \"a\"}") == NULL);
    json_object_put(m);
}

static void test_infer_other_systems(void)
{
    static const struct {
        const char *key, *creds, *want;
    } cases[] = {
        {"shopify-ecommerce", "{\"api_key\": \"shpat_1\"}", "api_key"},
        {"shopify-ecommerce", "{\"access_token\": \"t\"}", "oauth2"},
        {"tripletex-accounting", "{\"consumer_token\": \"c\", \"employee_token\": \"e\"}",
         "session_token"},
        {"gmail-email",
         "{\"client_email\": \"svc@proj.iam.gserviceaccount.com\", \"private_key\": "
         "\"-----BEGIN PRIVATE KEY-----\\nMII\\n-----END PRIVATE KEY-----\\n\", \"subject\": "
         "\"ann@example.com\"}",
         "jwt_bearer"},
        {"woocommerce-ecommerce", "{\"consumer_key\": \"ck_1\", \"consumer_secret\": \"cs_2\"}",
         "basic"},
        {"magento-ecommerce", "{\"username\": \"admin\", \"password\": \"pw\"}", "session_token"},
        {"magento-ecommerce", "{\"api_key\": \"tok\"}", "api_key"},
        {"poweroffice-accounting",
         "{\"application_key\": \"a\", \"client_key\": \"c\", \"subscription_key\": \"s\"}",
         "oauth2_client_credentials"},
        {"sap-erp", "{\"username\": \"COMM_USER\", \"password\": \"pw\"}", "basic"},
        {"sap-erp", "{\"client_id\": \"a\", \"client_secret\": \"b\"}", "oauth2_client_credentials"},
        {"dynamics-erp", "{\"client_id\": \"a\", \"client_secret\": \"b\"}",
         "oauth2_client_credentials"},
        {"sendgrid-email", "{\"api_key\": \"SG.abc\"}", "api_key"},
        {"sendgrid-email", "{\"api_key\": \"abc\"}", NULL},
        {"xledger-accounting", "{\"api_key\": \"t\"}", "api_key"},
        {"pipedrive-crm", "{\"api_key\": \"t\"}", "api_key"},
        {"salesforce-crm", "{\"access_token\": \"t\", \"instance_url\": \"https://acme.my.salesforce.com\"}",
         "oauth2"},
        {"salesforce-crm", "{\"access_token\": \"t\", \"instance_url\": \"http://evil.example\"}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *m = builtin(cases[i].key);
        CHECK(m != NULL);
        const char *got = infer(m, cases[i].creds);
        int ok = cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL;
        if (!ok)
            fprintf(stderr, "  %s %s: inferred %s, want %s\n", cases[i].key, cases[i].creds,
                    got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
        CHECK(ok);
        json_object_put(m);
    }
}

static void test_infer_leaves_credentials_alone(void)
{
    json_object *m = builtin("visma-erp");
    json_object *c = parse("{\"client_id\": \"a\", \"client_secret\": \"b\"}");
    char *before = strdup(json_object_to_json_string(c));
    CHECK_STR(ig_manifest_infer_auth_type(m, c), "oauth2_client_credentials");
    CHECK_STR(json_object_to_json_string(c), before);
    free(before);
    json_object_put(c);
    CHECK(ig_manifest_infer_auth_type(NULL, NULL) == NULL);
    json_object_put(m);
}

static void test_tenant_url_config(void)
{
    static const struct {
        const char *key, *config;
        int ok;
    } cases[] = {
        {"shopify-ecommerce", "{\"shop\": \"acme.myshopify.com\"}", 1},
        {"shopify-ecommerce", "{\"shop\": \"evil.example.com\"}", 0},
        {"shopify-ecommerce", "{\"shop\": \"acme.myshopify.com/x\"}", 0},
        {"shopify-ecommerce", "{\"shop\": \"acme.myshopify.com\", \"api_version\": \"2025-13\"}", 0},
        {"shopify-ecommerce", "{}", 0},
        {"woocommerce-ecommerce", "{\"site_url\": \"https://shop.example.com\"}", 1},
        {"woocommerce-ecommerce", "{\"site_url\": \"https://example.com/store\"}", 1},
        {"woocommerce-ecommerce", "{\"site_url\": \"http://shop.example.com\"}", 0},
        {"woocommerce-ecommerce", "{\"site_url\": \"https://shop.example.com/\"}", 0},
        {"woocommerce-ecommerce", "{\"site_url\": \"https://user@evil.example\"}", 0},
        {"magento-ecommerce", "{\"site_url\": \"https://m2.example.com\"}", 1},
        {"magento-ecommerce", "{\"site_url\": \"https://m2.example.com\", \"store_code\": \"../x\"}", 0},
        {"dynamics-erp", "{\"org_url\": \"https://contoso.crm4.dynamics.com\", \"tenant\": \"contoso.onmicrosoft.com\"}", 1},
        {"dynamics-erp", "{\"org_url\": \"https://contoso.crm4.dynamics.com.evil.io\", \"tenant\": \"t\"}", 0},
        {"dynamics-erp", "{\"org_url\": \"https://evil.example\", \"tenant\": \"t\"}", 0},
        {"sap-erp", "{\"host_url\": \"https://my123456-api.s4hana.ondemand.com\"}", 1},
        {"sap-erp", "{\"host_url\": \"https://h.example/path\"}", 0},
        {"gmail-email", "{\"mailbox\": \"ann@example.com\"}", 1},
        {"gmail-email", "{\"mailbox\": \"../../admin\"}", 0},
        {"outlook-email", "{\"mailbox\": \"users/ann@contoso.com\"}", 1},
        {"outlook-email", "{\"mailbox\": \"groups/x\"}", 0},
        {"salesforce-crm", "{\"login_host\": \"test.salesforce.com\"}", 1},
        {"salesforce-crm", "{\"login_host\": \"evil.example\"}", 0},
        {"sendgrid-email", "{\"api_host\": \"api.eu.sendgrid.com\"}", 1},
        {"xledger-accounting", "{\"host\": \"demo.xledger.net\"}", 1},
        {"tripletex-accounting", "{\"company_id\": \"12345\"}", 1},
        {"tripletex-accounting", "{\"company_id\": \"1 OR 1\"}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *m = builtin(cases[i].key);
        CHECK(m != NULL);
        int rc = validate_config(m, cases[i].config, NULL);
        if ((rc == INTEG_OK) != cases[i].ok)
            fprintf(stderr, "  %s config %s: rc %d (%s), want %s\n", cases[i].key, cases[i].config,
                    rc, integ_errmsg(), cases[i].ok ? "ok" : "EINVAL");
        CHECK((rc == INTEG_OK) == cases[i].ok);
        json_object_put(m);
    }
}

/* --------------------------------------------------------------- negatives */

/* A small manifest that exercises every section; each negative case below
 * breaks exactly one thing in it. */
static const char *const k_base =
    "{\"manifest_version\": 1, \"key\": \"acme-crm\", \"name\": \"Acme\", \"category\": \"crm\","
    " \"base_url\": \"https://{config.region}.acme.example/api\","
    " \"docs_url\": \"https://docs.acme.example\","
    " \"x-vendor\": {\"anything\": true},"
    " \"auth\": {\"default\": \"oauth2\", \"methods\": {"
    "  \"oauth2\": {\"authorize_url\": \"https://login.acme.example/authorize\","
    "   \"token_url\": \"https://login.acme.example/token\", \"scopes\": [\"read\"],"
    "   \"client_auth\": \"client_secret_post\", \"pkce\": true, \"refresh\": true,"
    "   \"token_extras\": [\"api_origin\"], \"base_url\": \"{credentials.api_origin}/api\","
    "   \"apply\": {\"in\": \"header\", \"name\": \"Authorization\", \"prefix\": \"Bearer \","
    "    \"value\": \"{credentials.access_token}\"},"
    "   \"credentials_schema\": {\"type\": \"object\", \"properties\": {\"access_token\": {\"type\": \"string\"},"
    "    \"api_origin\": {\"type\": \"string\", \"format\": \"uri\", \"pattern\": \"^https://\"}},"
    "    \"required\": [\"access_token\"]}},"
    "  \"oauth2_client_credentials\": {\"token_url\": \"https://login.acme.example/token\","
    "   \"apply\": {\"in\": \"header\", \"name\": \"Authorization\", \"prefix\": \"Bearer \","
    "    \"value\": \"{token.access_token}\"},"
    "   \"credentials_schema\": {\"type\": \"object\", \"properties\": {\"client_id\": {\"type\": \"string\"},"
    "    \"client_secret\": {\"type\": \"string\"}}, \"required\": [\"client_id\", \"client_secret\"]}},"
    "  \"jwt_bearer\": {\"token_url\": \"https://login.acme.example/token\", \"alg\": \"RS256\","
    "   \"claims\": {\"iss\": \"{credentials.issuer}\"},"
    "   \"apply\": {\"in\": \"header\", \"name\": \"Authorization\", \"prefix\": \"Bearer \","
    "    \"value\": \"{token.access_token}\"},"
    "   \"credentials_schema\": {\"type\": \"object\", \"properties\": {\"issuer\": {\"type\": \"string\"},"
    "    \"private_key\": {\"type\": \"string\", \"pattern\": \"-----BEGIN\"}},"
    "    \"required\": [\"issuer\", \"private_key\"]}},"
    "  \"api_key\": {\"apply\": {\"in\": \"header\", \"name\": \"X-Api-Key\", \"value\": \"{credentials.api_key}\"},"
    "   \"credentials_schema\": {\"type\": \"object\", \"properties\": {\"api_key\": {\"type\": \"string\"}},"
    "    \"required\": [\"api_key\"], \"additionalProperties\": false}},"
    "  \"basic\": {\"apply\": {\"username\": \"{credentials.username}\", \"password\": \"{credentials.password}\"},"
    "   \"credentials_schema\": {\"type\": \"object\", \"properties\": {\"username\": {\"type\": \"string\"},"
    "    \"password\": {\"type\": \"string\"}}, \"required\": [\"username\", \"password\"],"
    "    \"additionalProperties\": false}},"
    "  \"session_token\": {\"login\": {\"method\": \"POST\", \"path\": \"/login\","
    "    \"body\": {\"user\": \"{credentials.login}\", \"pass\": \"{credentials.secret}\"}},"
    "   \"token_path\": \"$.token\", \"renew_before_s\": 60,"
    "   \"apply\": {\"in\": \"header\", \"name\": \"X-Session\", \"value\": \"{token.access_token}\"},"
    "   \"credentials_schema\": {\"type\": \"object\", \"properties\": {\"login\": {\"type\": \"string\"},"
    "    \"secret\": {\"type\": \"string\"}}, \"required\": [\"login\", \"secret\"],"
    "    \"additionalProperties\": false}},"
    "  \"none\": {}}},"
    " \"config_schema\": {\"type\": \"object\", \"properties\": {"
    "   \"region\": {\"type\": \"string\", \"pattern\": \"^[a-z]{2}[0-9]$\", \"default\": \"eu1\"},"
    "   \"site_url\": {\"type\": \"string\", \"format\": \"uri\", \"pattern\": \"^https://\"},"
    "   \"note\": {\"type\": \"string\"},"
    "   \"free\": {\"type\": \"string\", \"default\": \"x\"},"
    "   \"entities\": {\"type\": \"array\", \"uniqueItems\": true,"
    "    \"items\": {\"type\": \"string\", \"enum\": [\"contacts\", \"orders\"]}}},"
    "  \"additionalProperties\": false},"
    " \"capabilities\": [\"pull\", \"push\", \"incremental\", \"webhooks\"],"
    " \"rate_limit\": {\"requests\": 10, \"per_seconds\": 1, \"daily\": 1000,"
    "  \"headers\": {\"remaining\": \"X-Remaining\", \"reset\": \"X-Reset\", \"reset_unit\": \"seconds\"},"
    "  \"signals\": [{\"status\": 429}, {\"status\": 200, \"json_path\": \"$.errors[*].code\","
    "   \"equals\": \"THROTTLED\"}], \"retry_after\": true},"
    " \"webhook\": {\"scheme\": \"standard\", \"secret_source\": \"generated\","
    "  \"event_id\": {\"header\": \"webhook-id\"}, \"event_type\": {\"json_path\": \"$.type\"},"
    "  \"batched\": false, \"handshake\": null},"
    " \"entities\": {"
    "  \"contacts\": {\"local_entity\": \"contacts\", \"path\": \"/contacts\", \"records_path\": \"$.data\","
    "   \"id_field\": \"id\", \"updated_field\": \"updated_at\","
    "   \"list\": {\"method\": \"GET\", \"query\": {\"limit\": \"100\"}},"
    "   \"pagination\": {\"type\": \"cursor\", \"cursor_path\": \"$.next\", \"param\": \"cursor\"},"
    "   \"incremental\": {\"in\": \"query\", \"param\": \"since\", \"format\": \"rfc3339\"},"
    "   \"get\": {\"method\": \"GET\", \"path\": \"/contacts/{id}\"},"
    "   \"update\": {\"method\": \"PATCH\", \"path\": \"/contacts/{id}\", \"body\": \"{record}\"},"
    "   \"default_mapping\": {\"field_map\": {\"email\": \"email\"}}},"
    "  \"orders\": {\"local_entity\": \"orders\", \"path\": \"/orders\", \"records_path\": \"$\","
    "   \"id_field\": \"id\","
    "   \"pagination\": {\"type\": \"page\", \"param\": \"page\", \"size_param\": \"per_page\", \"size\": 50}}},"
    " \"test_request\": {\"method\": \"GET\", \"path\": \"/me\"}}";

/* Set (or, with value NULL, delete) the member at a '/'-separated path. */
static int mutate(json_object *root, const char *path, const char *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *cur = root;
    char *seg = buf;
    for (char *slash; (slash = strchr(seg, '/')); seg = slash + 1) {
        *slash = '\0';
        cur = ig_json_get(cur, seg);
        if (!cur)
            return -1;
    }
    if (!value) {
        if (!json_object_object_get_ex(cur, seg, NULL))
            return -1;
        json_object_object_del(cur, seg);
        return 0;
    }
    json_object *v = json_tokener_parse(value); /* NULL for the literal null */
    if (!v && strcmp(value, "null") != 0)
        return -1;
    json_object_object_add(cur, seg, v);
    return 0;
}

static void test_base_manifest_valid(void)
{
    json_object *m = parse(k_base);
    CHECK(m != NULL);
    CHECK_OK(ig_manifest_validate(m));
    CHECK_STR(infer(m, "{\"api_key\": \"k\"}"), "api_key");
    CHECK_STR(infer(m, "{\"issuer\": \"i\", \"private_key\": \"-----BEGIN X\"}"), "jwt_bearer");
    CHECK_STR(infer(m, "{\"login\": \"l\", \"secret\": \"s\"}"), "session_token");
    CHECK_STR(infer(m, "{\"username\": \"u\", \"password\": \"p\"}"), "basic");
    CHECK_STR(infer(m, "{}"), "none");
    CHECK_STR(infer(m, NULL), "none");
    CHECK(infer(m, "{\"unrelated\": 1}") == NULL);

    /* A whole-origin config placeholder with format uri and ^https://. */
    CHECK(mutate(m, "config_schema/required", "[\"site_url\"]") == 0);
    CHECK(mutate(m, "base_url", "\"{config.site_url}/wp-json\"") == 0);
    CHECK_OK(ig_manifest_validate(m));
    /* No webhooks at all is fine when not advertised. */
    CHECK(mutate(m, "webhook", "null") == 0);
    CHECK(mutate(m, "capabilities", "[\"pull\", \"push\", \"incremental\"]") == 0);
    CHECK_OK(ig_manifest_validate(m));
    CHECK(mutate(m, "webhook", "{\"scheme\": null}") == 0);
    CHECK_OK(ig_manifest_validate(m));
    json_object_put(m);

    CHECK_RC(ig_manifest_validate(NULL), INTEG_EINVAL);
    CHECK_MSG("manifest: must be a JSON object");
    json_object *arr = parse("[1]");
    CHECK_RC(ig_manifest_validate(arr), INTEG_EINVAL);
    json_object_put(arr);
}

static const struct {
    const char *path;  /* '/'-separated member of the base manifest */
    const char *value; /* JSON text, or NULL to delete the member */
    const char *want;  /* the error message must start with this */
} k_negative[] = {
    {"key", "\"Acme-CRM\"", "manifest.key: must match ^[a-z0-9]+(-[a-z0-9]+)*$"},
    {"key", "\"acme--crm\"", "manifest.key: must match"},
    {"key", "\"acme-erp\"", "manifest.key: must end with '-crm'"},
    {"key", "\"crm\"", "manifest.key: must end with '-crm'"},
    {"category", "\"sales\"", "manifest.category: unknown category 'sales'"},
    {"manifest_version", "2", "manifest.manifest_version: must be 1"},
    {"name", NULL, "manifest.name: required"},
    {"config_schema", NULL, "manifest.config_schema: required"},
    {"capabilities", NULL, "manifest.capabilities: required"},
    {"extra", "1", "manifest.extra: unknown top-level key"},
    {"base_url", "\"http://acme.example\"", "manifest.base_url: must be an absolute https URL"},
    {"base_url", "\"ftp://acme.example\"", "manifest.base_url: must be an absolute https URL"},
    {"docs_url", "\"http://docs.acme.example\"", "manifest.docs_url: must be an absolute https URL"},
    {"base_url", "\"https://{config.free}.acme.example\"",
     "manifest.base_url: placeholder {config.free} must be constrained by \"pattern\" or "
     "\"format\": \"uri\" in config_schema"},
    {"base_url", "\"https://acme.example/{config.note}\"",
     "manifest.base_url: placeholder {config.note} must be required or have a default in "
     "config_schema"},
    {"base_url", "\"{config.region}/api\"",
     "manifest.base_url: placeholder {config.region} is the whole origin: config_schema needs"},
    {"base_url", "\"https://acme.example/{config.nope}\"",
     "manifest.base_url: placeholder {config.nope} names no property of config_schema"},
    {"base_url", "\"{credentials.api_origin}/api\"",
     "manifest.base_url: placeholder {credentials.api_origin} is not listed in token_extras of "
     "auth method 'oauth2_client_credentials'"},
    {"base_url", "\"https://acme.example/{since}\"",
     "manifest.base_url: placeholder {since} is not allowed here"},
    {"auth/methods/oauth2/token_url", "\"http://login.acme.example/token\"",
     "manifest.auth.methods.oauth2.token_url: must be an absolute https URL"},
    {"auth/methods/oauth2/token_url", NULL, "manifest.auth.methods.oauth2.token_url: required"},
    {"auth/methods/oauth2/authorize_url", NULL,
     "manifest.auth.methods.oauth2.authorize_url: required"},
    {"auth/methods/oauth2/tokn_url", "\"https://x.example\"",
     "manifest.auth.methods.oauth2.tokn_url: unknown field"},
    {"auth/methods/oauth2/client_auth", "\"tls_client_auth\"",
     "manifest.auth.methods.oauth2.client_auth: unknown client_auth 'tls_client_auth'"},
    {"auth/methods/oauth2_client_credentials/token_url", NULL,
     "manifest.auth.methods.oauth2_client_credentials.token_url: required"},
    {"auth/methods/jwt_bearer/token_url", NULL, "manifest.auth.methods.jwt_bearer.token_url: required"},
    {"auth/methods/jwt_bearer/claims/iss", "\"{credentials.client_email}\"",
     "manifest.auth.methods.jwt_bearer.claims.iss: placeholder {credentials.client_email} names no "
     "property of credentials_schema"},
    {"auth/methods/api_key/apply/name", NULL, "manifest.auth.methods.api_key.apply.name: required"},
    {"auth/methods/api_key/apply/in", "\"body\"",
     "manifest.auth.methods.api_key.apply.in: unknown location 'body'"},
    {"auth/methods/api_key/apply/value", "\"{credentials.apikey}\"",
     "manifest.auth.methods.api_key.apply.value: placeholder {credentials.apikey} names no property "
     "of credentials_schema"},
    {"auth/methods/api_key/apply/value", "\"{token.access_token}\"",
     "manifest.auth.methods.api_key.apply.value: placeholder {token.access_token} is not available "
     "here"},
    {"auth/methods/api_key/credentials_schema", NULL,
     "manifest.auth.methods.api_key.credentials_schema: required"},
    {"auth/methods/session_token/login", NULL, "manifest.auth.methods.session_token.login: required"},
    {"auth/methods/session_token/token_path", "\"token\"",
     "manifest.auth.methods.session_token.token_path: must be a JSON path starting with '$'"},
    {"auth/methods/magic", "{}", "manifest.auth.methods.magic: unknown auth type 'magic'"},
    {"auth/default", "\"saml\"", "manifest.auth.default: 'saml' is not one of auth.methods"},
    {"auth/methods", "{}", "manifest.auth.methods: must be a non-empty object"},
    {"config_schema/type", "\"array\"", "manifest.config_schema.type: must be \"object\""},
    {"config_schema/properties/entities/items/enum", "[\"contacts\", \"invoices\"]",
     "manifest.config_schema.properties.entities.items.enum[1]: 'invoices' is not an entity of "
     "this manifest"},
    {"capabilities", "[\"pull\", \"teleport\"]",
     "manifest.capabilities[1]: unknown capability 'teleport'"},
    {"capabilities", "[\"pull\", \"pull\"]", "manifest.capabilities[1]: duplicate capability 'pull'"},
    {"capabilities", "[\"pull\", \"incremental\", \"webhooks\", \"send\"]",
     "manifest.capabilities[3]: 'send' is not implemented yet"},
    {"capabilities", "[\"pull\", \"push\", \"incremental\"]",
     "manifest.capabilities: webhook.scheme is set but 'webhooks' is not listed"},
    {"webhook", "null", "manifest.webhook.scheme: capability 'webhooks' needs a webhook scheme"},
    {"webhook/scheme", "\"svix\"", "manifest.webhook.scheme: unknown webhook scheme 'svix'"},
    {"webhook/secret_source", "\"public_key\"",
     "manifest.webhook.secret_source: scheme 'standard' cannot verify with a 'public_key' secret"},
    {"webhook/handshake", "\"msgraph_validation\"",
     "manifest.webhook.handshake: 'msgraph_validation' belongs to scheme 'msgraph'"},
    {"webhook/event_id", "{\"header\": \"a\", \"json_path\": \"$.id\"}",
     "manifest.webhook.event_id: needs exactly one of header or json_path"},
    {"rate_limit/requests", "0", "manifest.rate_limit.requests: must be a positive integer"},
    {"rate_limit/daily", "-5", "manifest.rate_limit.daily: must be a positive integer"},
    {"rate_limit/per_seconds", NULL, "manifest.rate_limit.per_seconds: required with requests"},
    {"rate_limit/headers/reset_unit", "\"minutes\"",
     "manifest.rate_limit.headers.reset_unit: unknown reset unit 'minutes'"},
    {"rate_limit/signals", "[{\"status\": 42}]",
     "manifest.rate_limit.signals[0].status: must be an HTTP status (100-599)"},
    {"entities/contacts/local_entity", "\"people\"",
     "manifest.entities.contacts.local_entity: unknown local entity 'people'"},
    {"entities/contacts/records_path", "\"data\"",
     "manifest.entities.contacts.records_path: must be a JSON path starting with '$'"},
    {"entities/contacts/pagination/type", "\"pages\"",
     "manifest.entities.contacts.pagination.type: unknown pagination type 'pages'"},
    {"entities/contacts/pagination/cursor_path", NULL,
     "manifest.entities.contacts.pagination.cursor_path: required"},
    {"entities/contacts/pagination", NULL, "manifest.entities.contacts.pagination: required"},
    {"entities/orders/pagination/size", "0",
     "manifest.entities.orders.pagination.size: must be a positive integer"},
    {"entities/contacts/incremental/format", "\"iso\"",
     "manifest.entities.contacts.incremental.format: unknown time format 'iso'"},
    {"entities/contacts/incremental/in", "\"filter\"",
     "manifest.entities.contacts.incremental.template: required when in is 'filter'"},
    {"entities/contacts/get/path", "\"/contacts/{record}\"",
     "manifest.entities.contacts.get.path: placeholder {record} is not allowed here"},
    {"entities/contacts/path", "\"contacts\"",
     "manifest.entities.contacts.path: must be a path starting with '/' or an absolute https URL"},
    {"entities/contacts/list/method", "\"DELETE\"",
     "manifest.entities.contacts.list.method: unknown HTTP method 'DELETE'"},
    {"entities/contacts/default_mapping/field_map", "{\"email\": 1}",
     "manifest.entities.contacts.default_mapping.field_map.email: must be a string"},
    {"entities/Bad-Name", "{}", "manifest.entities.Bad-Name: entity names use a-z, 0-9 and '_'"},
    {"test_request/path", "\"me\"",
     "manifest.test_request.path: must be a path starting with '/' or an absolute https URL"},
};

static void test_negative_cases(void)
{
    size_t n = sizeof k_negative / sizeof k_negative[0];
    CHECK(n >= 25);
    for (size_t i = 0; i < n; i++) {
        json_object *m = parse(k_base);
        int mrc = mutate(m, k_negative[i].path, k_negative[i].value);
        if (mrc)
            fprintf(stderr, "  case %zu: cannot mutate %s\n", i, k_negative[i].path);
        CHECK(mrc == 0);
        int rc = ig_manifest_validate(m);
        const char *msg = integ_errmsg();
        int ok = rc == INTEG_EINVAL && strncmp(msg, k_negative[i].want, strlen(k_negative[i].want)) == 0;
        if (!ok)
            fprintf(stderr, "  case %zu (%s): rc %d, message \"%s\", want \"%s\"\n", i,
                    k_negative[i].path, rc, msg, k_negative[i].want);
        CHECK(ok);
        json_object_put(m);
    }
}

struct mutation {
    const char *path;  /* '/'-separated member of the base manifest */
    const char *value; /* JSON text, or NULL to delete the member */
    const char *want;  /* the error message must start with this (NULL: valid) */
};

static void check_mutations(const struct mutation *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_object *m = parse(k_base);
        int mrc = mutate(m, cases[i].path, cases[i].value);
        if (mrc)
            fprintf(stderr, "  case %zu: cannot mutate %s\n", i, cases[i].path);
        CHECK(mrc == 0);
        int rc = ig_manifest_validate(m);
        const char *msg = rc ? integ_errmsg() : "";
        int ok = cases[i].want ? rc == INTEG_EINVAL && strncmp(msg, cases[i].want, strlen(cases[i].want)) == 0
                               : rc == INTEG_OK;
        if (!ok)
            fprintf(stderr, "  case %zu (%s = %s): rc %d, message \"%s\", want \"%s\"\n", i, cases[i].path,
                    cases[i].value ? cases[i].value : "(deleted)", rc, msg, cases[i].want ? cases[i].want : "valid");
        CHECK(ok);
        json_object_put(m);
    }
}

/* Every template is checked with the renderer's placeholder grammar
 * (lib/template.c) and the namespaces the engine provides in that place:
 * request query, headers and bodies, entity and top-level headers,
 * incremental templates, auth templates and the JWT audience. */
static void test_templates_checked(void)
{
    static const struct mutation cases[] = {
        /* Credentials and tokens only through the auth method's apply. */
        {"entities/contacts/list/query", "{\"limit\": \"100\", \"key\": \"{credentials.api_key}\"}",
         "manifest.entities.contacts.list.query.key: placeholder {credentials.api_key} is not allowed here "
         "(credentials and tokens are sent only by the auth method's apply)"},
        {"entities/contacts/headers", "{\"Authorization\": \"Bearer {credentials.access_token}\"}",
         "manifest.entities.contacts.headers.Authorization: placeholder {credentials.access_token} is not "
         "allowed here"},
        {"entities/contacts/create",
         "{\"method\": \"POST\", \"path\": \"/contacts\", \"body\": {\"t\": \"{token.access_token}\"}}",
         "manifest.entities.contacts.create.body.t: placeholder {token.access_token} is not allowed here"},
        {"test_request/headers", "{\"X-Key\": \"{credentials.api_key}\"}",
         "manifest.test_request.headers.X-Key: placeholder {credentials.api_key} is not allowed here"},
        /* Unknown namespaces and names. */
        {"headers", "{\"X-Thing\": \"{nosuch.thing}\"}",
         "manifest.headers.X-Thing: placeholder {nosuch.thing} is not allowed here"},
        {"test_request/query", "{\"x\": \"{config.nosuch}\"}",
         "manifest.test_request.query.x: placeholder {config.nosuch} names no property of config_schema"},
        {"entities/contacts/list/query", "{\"q\": \"{config.no-such}\"}",
         "manifest.entities.contacts.list.query.q: placeholder {config.no-such} names no property"},
        /* Values that exist in other requests only. */
        {"entities/contacts/create", "{\"method\": \"POST\", \"path\": \"/contacts\", \"body\": {\"id\": \"{id}\"}}",
         "manifest.entities.contacts.create.body.id: placeholder {id} is not allowed here"},
        {"entities/contacts/create",
         "{\"method\": \"POST\", \"path\": \"/contacts\", \"body\": {\"a\": [\"{since}\"]}}",
         "manifest.entities.contacts.create.body.a[0]: placeholder {since} is not allowed here"},
        {"entities/contacts/create",
         "{\"method\": \"POST\", \"path\": \"/contacts\", \"body\": {\"inputs\": \"{records}\"}}",
         "manifest.entities.contacts.create.body.inputs: placeholder {records} is not allowed here"},
        {"entities/contacts/list/query", "{\"id\": \"{id}\"}",
         "manifest.entities.contacts.list.query.id: placeholder {id} is not allowed here"},
        {"entities/contacts/get/query", "{\"r\": \"{record}\"}",
         "manifest.entities.contacts.get.query.r: placeholder {record} is not allowed here"},
        {"entities/contacts/update/headers", "{\"X-R\": \"{record}\"}",
         "manifest.entities.contacts.update.headers.X-R: placeholder {record} is not allowed here"},
        {"entities/contacts/deletes",
         "{\"method\": \"GET\", \"path\": \"/contacts\", \"query\": {\"since\": \"{since}\"}}",
         "manifest.entities.contacts.deletes.query.since: placeholder {since} is not allowed here"},
        {"test_request/query", "{\"since\": \"{since}\"}",
         "manifest.test_request.query.since: placeholder {since} is not allowed here"},
        {"entities/contacts/headers", "{\"X-Id\": \"{id}\"}",
         "manifest.entities.contacts.headers.X-Id: placeholder {id} is not allowed here"},
        {"entities/contacts/incremental/template", "\"updated ge {since} and {credentials.api_key}\"",
         "manifest.entities.contacts.incremental.template: placeholder {credentials.api_key} is not allowed"},
        {"entities/contacts/incremental/query", "{\"gmt\": \"{token.x}\"}",
         "manifest.entities.contacts.incremental.query.gmt: placeholder {token.x} is not allowed here"},
        /* A brace that opens a placeholder but does not parse is an error,
         * not literal text that silently drops the value. */
        {"entities/contacts/list/query", "{\"$filter\": \"name eq '{config.region.x}'\"}",
         "manifest.entities.contacts.list.query.$filter: malformed placeholder '{config.region.x}'"},
        {"entities/contacts/update/body", "{\"a\": \"{record }\"}",
         "manifest.entities.contacts.update.body.a: malformed placeholder '{record'"},
        {"headers", "{\"X-A\": \"{config.}\"}", "manifest.headers.X-A: malformed placeholder"},
        /* Auth templates: the renderer's grammar (names may contain '-'). */
        {"auth/methods/api_key/apply/value", "\"{credentials.api-key}\"",
         "manifest.auth.methods.api_key.apply.value: placeholder {credentials.api-key} names no property of "
         "credentials_schema"},
        {"auth/methods/api_key/apply/value", "\"{credentials.api_key.x}\"",
         "manifest.auth.methods.api_key.apply.value: malformed placeholder"},
        {"auth/methods/session_token/login/body/user", "\"{credentials.no-such-field}\"",
         "manifest.auth.methods.session_token.login.body.user: placeholder {credentials.no-such-field} names "
         "no property"},
        /* The audience is a claim template like the others; the signing key
         * never goes into the (readable) assertion. */
        {"auth/methods/jwt_bearer/audience", "\"{credentials.private_key}\"",
         "manifest.auth.methods.jwt_bearer.audience: placeholder {credentials.private_key} must not appear "
         "in a JWT claim"},
        {"auth/methods/jwt_bearer/audience", "\"{credentials.nosuch}\"",
         "manifest.auth.methods.jwt_bearer.audience: placeholder {credentials.nosuch} names no property"},
        {"auth/methods/jwt_bearer/claims/sub", "\"{credentials.private_key}\"",
         "manifest.auth.methods.jwt_bearer.claims.sub: placeholder {credentials.private_key} must not appear"},
        /* What each place does provide stays valid. */
        {"entities/contacts/list/query", "{\"limit\": \"100\", \"filter\": \"{config.free}\", \"s\": \"{since}\"}",
         NULL},
        {"entities/contacts/update/body", "{\"id\": \"{id}\", \"data\": \"{record}\", \"r\": \"{config.region}\"}",
         NULL},
        {"entities/contacts/list/body",
         "{\"query\": \"query ($a: String) { items(after: $a) { edges { node { id } } } }\", \"v\": {}}", NULL},
        {"entities/contacts/list/query", "{\"where\": \"{\\\"a\\\": 1}\", \"x\": \"{ literal }\"}", NULL},
        {"auth/methods/jwt_bearer/audience", "\"https://login.acme.example/{config.region}\"", NULL},
        {"headers", "{\"X-Region\": \"{config.region}\"}", NULL},
    };
    check_mutations(cases, sizeof cases / sizeof cases[0]);
}

/* Fields the engine does not implement are refused (not silently
 * ignored), and values are bounded where the engine computes with them. */
static void test_unimplemented_and_bounds(void)
{
    static const struct mutation cases[] = {
        {"entities/orders/pagination/start", "7", "manifest.entities.orders.pagination.start: must be 0 or 1"},
        {"entities/orders/pagination/start", "-1", "manifest.entities.orders.pagination.start: must be 0 or 1"},
        {"entities/orders/pagination/start", "0", NULL},
        {"entities/orders/pagination/start", "1", NULL},
        {"auth/methods/session_token/lifetime_s", "60",
         "manifest.auth.methods.session_token.renew_before_s: must be less than lifetime_s (60)"},
        {"auth/methods/session_token/lifetime_s", "100000000000000000",
         "manifest.auth.methods.session_token.lifetime_s: must be at most 315360000 seconds (10 years)"},
        {"auth/methods/session_token/renew_before_s", "9000000000000000000",
         "manifest.auth.methods.session_token.renew_before_s: must be at most 315360000 seconds"},
        {"auth/methods/session_token/lifetime_s", "315360000", NULL},
        {"auth/methods/session_token/lifetime_s", "61", NULL},
        {"rate_limit/concurrency", "4", "manifest.rate_limit.concurrency: not implemented"},
        {"rate_limit/headers/usage_format", "\"used/limit\"", "manifest.rate_limit.headers.usage_format: not implemented"},
        {"entities/contacts/list/async", "true", "manifest.entities.contacts.list.async: not implemented"},
        {"entities/contacts/version_field", "\"version\"", "manifest.entities.contacts.version_field: not implemented"},
        {"auth/methods/oauth2/optional_scopes", "[\"write\"]",
         "manifest.auth.methods.oauth2.optional_scopes: not implemented"},
        {"entities/contacts/send", "{\"method\": \"POST\", \"path\": \"/send\", \"body\": \"{record}\"}",
         "manifest.entities.contacts.send: not implemented"},
        {"entities/contacts/get/body", "{\"a\": 1}", "manifest.entities.contacts.get.body: not sent"},
        /* fetch_each is implemented: it needs the get request. */
        {"entities/orders/fetch_each", "true", "manifest.entities.orders.get: required with fetch_each"},
        {"entities/contacts/fetch_each", "true", NULL},
        /* private_key_jwt is implemented (lib/oauth.c) and accepted. */
        {"auth/methods/oauth2/client_auth", "\"private_key_jwt\"", NULL},
        {"auth/methods/oauth2_client_credentials/client_auth", "\"private_key_jwt\"", NULL},
    };
    check_mutations(cases, sizeof cases / sizeof cases[0]);
}

/* Schema problems come from ig_schema_check, rooted at the manifest path. */
static void test_schema_errors_are_located(void)
{
    static const struct {
        const char *path, *value, *want;
    } cases[] = {
        {"config_schema/properties/region/minLenght", "3",
         "manifest.config_schema.properties.region.minLenght:"},
        {"config_schema/properties/region/minimum", "\"abc\"",
         "manifest.config_schema.properties.region.minimum:"},
        {"auth/methods/api_key/credentials_schema/properties/api_key/type", "\"text\"",
         "manifest.auth.methods.api_key.credentials_schema.properties.api_key.type:"},
        {"config_schema/properties/region/default", "\"EU\"",
         "manifest.config_schema.properties.region.default:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *m = parse(k_base);
        CHECK(mutate(m, cases[i].path, cases[i].value) == 0);
        CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
        CHECK_MSG(cases[i].want);
        json_object_put(m);
    }
}

/* Built-in manifests stay valid after a round trip through the parser the
 * library uses, and a mutation of a real one is caught. */
static void test_builtin_mutations(void)
{
    json_object *m = builtin("shopify-ecommerce");
    CHECK(mutate(m, "config_schema/properties/shop/pattern", NULL) == 0);
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.auth.methods.oauth2.token_url: placeholder {config.shop} must be "
              "constrained");
    json_object_put(m);

    m = builtin("woocommerce-ecommerce");
    CHECK(mutate(m, "config_schema/properties/site_url/pattern", "\"^http\"") == 0);
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.base_url: placeholder {config.site_url} is the whole origin");
    json_object_put(m);

    m = builtin("salesforce-crm");
    CHECK(mutate(m, "auth/methods/oauth2/token_extras", "[]") == 0);
    CHECK_RC(ig_manifest_validate(m), INTEG_EINVAL);
    CHECK_MSG("manifest.base_url: placeholder {credentials.instance_url} is not listed in "
              "token_extras of auth method 'oauth2'");
    json_object_put(m);
}

int main(void)
{
    RUN(test_builtins_validate);
    RUN(test_builtin_keys_once);
    RUN(test_builtin_conventions);
    RUN(test_complete_entity_sections);
    RUN(test_seed_hubspot);
    RUN(test_seed_visma);
    RUN(test_infer_other_systems);
    RUN(test_infer_leaves_credentials_alone);
    RUN(test_tenant_url_config);
    RUN(test_base_manifest_valid);
    RUN(test_negative_cases);
    RUN(test_templates_checked);
    RUN(test_unimplemented_and_bounds);
    RUN(test_schema_errors_are_located);
    RUN(test_builtin_mutations);
    TEST_END();
}
