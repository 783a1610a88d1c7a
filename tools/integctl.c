/* integctl: a small command line for hosts and operators.
 *
 *   integctl keygen                      print a new master key (base64)
 *   integctl catalog [CATEGORY]          the catalog as JSON
 *   integctl definition KEY              one definition as JSON
 *   integctl --help | -h                 this usage, on stdout
 *
 * catalog and definition read the built-in catalog: they open a private
 * in-memory store with a throwaway key, so they need no master key and
 * create no file. To read a store's catalog instead (with its registered and
 * adapters_dir definitions), name it in INTEG_OPTIONS, a JSON options object
 * as for integ_ctx_open: {"store": "sqlite:app.db", ...}; its master key then
 * comes from those options or INTEG_MASTER_KEY, as for any host. Options
 * without "store" (e.g. {"adapters_dir": "..."}) apply to the in-memory store.
 *
 * Exit status: 0 success, 1 the library failed (message on stderr), 2 bad
 * usage (usage on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "integrations/integrations.h"

static const char usage_text[] =
    "usage: integctl keygen | catalog [CATEGORY] | definition KEY | --help\n"
    "  keygen               print a new master key (base64 of 32 random bytes)\n"
    "  catalog [CATEGORY]   the built-in catalog as JSON, optionally one category\n"
    "  definition KEY       one definition as JSON (e.g. hubspot-crm)\n"
    "catalog and definition need no master key and create no file; set\n"
    "INTEG_OPTIONS='{\"store\": \"sqlite:PATH\"}' to read a store's catalog instead.\n";

static int usage(FILE *to, int status)
{
    fputs(usage_text, to);
    return status;
}

static int fail(int rc)
{
    fprintf(stderr, "integctl: %s (%s)\n", integ_errmsg(), integ_strerror(rc));
    return 1;
}

/* o as compact JSON text (malloc'd), or NULL when !ok or out of memory; o
 * (may be NULL) is put either way. */
static char *json_text(json_object *o, int ok)
{
    const char *text = ok ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
    char *copy = text ? strdup(text) : NULL;
    json_object_put(o);
    return copy;
}

/* The options for integ_ctx_open: INTEG_OPTIONS as given when it names a
 * store; otherwise those options plus a private in-memory store and, unless
 * they give one, a throwaway master key (it seals nothing that outlives the
 * process). NULL on failure (message printed). */
static char *context_options(void)
{
    const char *env = getenv("INTEG_OPTIONS");
    json_object *opts = NULL;
    if (env && *env) {
        opts = json_tokener_parse(env);
        if (!opts || !json_object_is_type(opts, json_type_object)) {
            fprintf(stderr, "integctl: INTEG_OPTIONS is not a JSON object\n");
            json_object_put(opts);
            return NULL;
        }
    } else {
        opts = json_object_new_object();
    }
    if (!opts) {
        fprintf(stderr, "integctl: out of memory\n");
        return NULL;
    }
    char *key = NULL;
    int ok = 1;
    if (!json_object_object_get_ex(opts, "store", NULL)) {
        ok = json_object_object_add(opts, "store", json_object_new_string("sqlite::memory:")) == 0;
        if (ok && !json_object_object_get_ex(opts, "master_key", NULL) &&
            !json_object_object_get_ex(opts, "master_key_file", NULL)) {
            int rc = integ_generate_master_key(&key);
            if (rc) {
                fail(rc);
                json_object_put(opts);
                return NULL;
            }
            ok = json_object_object_add(opts, "master_key", json_object_new_string(key)) == 0;
            integ_free(key);
        }
    }
    char *copy = json_text(opts, ok);
    if (!copy)
        fprintf(stderr, "integctl: out of memory\n");
    return copy;
}

/* {"category": CATEGORY}, escaped by json-c. NULL when out of memory. */
static char *category_filter(const char *category)
{
    json_object *f = json_object_new_object();
    int ok = f && json_object_object_add(f, "category", json_object_new_string(category)) == 0;
    return json_text(f, ok);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, 2);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        return argc == 2 ? usage(stdout, 0) : usage(stderr, 2);

    char *out = NULL;
    int rc;
    if (!strcmp(cmd, "keygen")) {
        if (argc != 2)
            return usage(stderr, 2);
        if ((rc = integ_generate_master_key(&out)))
            return fail(rc);
        printf("%s\n", out);
        integ_free(out);
        return 0;
    }
    int catalog = !strcmp(cmd, "catalog") && argc <= 3;
    int definition = !strcmp(cmd, "definition") && argc == 3;
    if (!catalog && !definition)
        return usage(stderr, 2);

    char *filter = NULL;
    if (catalog && argc == 3 && !(filter = category_filter(argv[2]))) {
        fprintf(stderr, "integctl: out of memory\n");
        return 1;
    }
    char *opts = context_options();
    if (!opts) {
        free(filter);
        return 1;
    }
    integ_ctx *ctx = NULL;
    rc = integ_ctx_open(&ctx, opts);
    free(opts);
    if (rc) {
        free(filter);
        return fail(rc);
    }
    if (catalog)
        rc = integ_definitions_list(ctx, filter, &out);
    else
        rc = integ_definition_get(ctx, argv[2], &out);
    free(filter);
    if (rc) {
        rc = fail(rc);
        integ_ctx_close(ctx);
        return rc;
    }
    printf("%s\n", out);
    integ_free(out);
    integ_ctx_close(ctx);
    return 0;
}
