/* integctl: a small command line for hosts and operators.
 *
 *   integctl keygen                      print a new master key (base64)
 *   integctl catalog [CATEGORY]          the catalog as JSON
 *   integctl definition KEY              one definition as JSON
 *
 * The store and key come from INTEG_OPTIONS (a JSON options object) or the
 * defaults (./integrations.db and INTEG_MASTER_KEY). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integrations/integrations.h"

static int usage(void)
{
    fprintf(stderr, "usage: integctl keygen | catalog [CATEGORY] | definition KEY\n");
    return 2;
}

static int fail(int rc)
{
    fprintf(stderr, "integctl: %s (%s)\n", integ_errmsg(), integ_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    char *out = NULL;
    int rc;
    if (!strcmp(argv[1], "keygen")) {
        if ((rc = integ_generate_master_key(&out)))
            return fail(rc);
        printf("%s\n", out);
        integ_free(out);
        return 0;
    }
    integ_ctx *ctx = NULL;
    const char *opts = getenv("INTEG_OPTIONS");
    if ((rc = integ_ctx_open(&ctx, opts)))
        return fail(rc);
    if (!strcmp(argv[1], "catalog") && argc <= 3) {
        char filter[128];
        snprintf(filter, sizeof filter, "{\"category\": \"%s\"}", argc == 3 ? argv[2] : "");
        rc = integ_definitions_list(ctx, argc == 3 ? filter : NULL, &out);
    } else if (!strcmp(argv[1], "definition") && argc == 3) {
        rc = integ_definition_get(ctx, argv[2], &out);
    } else {
        integ_ctx_close(ctx);
        return usage();
    }
    if (rc) {
        integ_ctx_close(ctx);
        return fail(rc);
    }
    printf("%s\n", out);
    integ_free(out);
    integ_ctx_close(ctx);
    return 0;
}
