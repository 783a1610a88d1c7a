/* Sessions: who is acting (tenant, user, roles) and what they may do. */
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "error.h"
#include "json.h"
#include "util.h"

#define ID_MAX 128

INTEG_API int integ_session_open(integ_session **out, integ_ctx *ctx, const char *tenant_id,
                                 const char *user_id, const char *roles_json)
{
    ig_err_clear();
    IG_CHECK_ARG(out, "out");
    *out = NULL;
    IG_CHECK_ARG(ctx, "ctx");
    if (atomic_load(&ctx->closed))
        return ig_err(INTEG_EINVAL, "ctx: the context is closed");
    if (!ig_valid_token(tenant_id, ID_MAX))
        return ig_err(INTEG_EINVAL,
                      "tenant_id: must be 1-128 printable ASCII characters without spaces");
    if (!ig_valid_token(user_id, ID_MAX))
        return ig_err(INTEG_EINVAL, "user_id: must be 1-128 printable ASCII characters without spaces");
    json_object *roles = NULL;
    int rc = ig_json_parse(roles_json, "roles_json", 1, &roles);
    if (rc)
        return rc;
    if (!roles_json) {
        json_object_put(roles);
        roles = json_object_new_array();
    }
    if (!json_object_is_type(roles, json_type_array)) {
        json_object_put(roles);
        return ig_err(INTEG_EINVAL, "roles_json: must be a JSON array of strings");
    }
    for (size_t i = 0; i < json_object_array_length(roles); i++) {
        if (!json_object_is_type(json_object_array_get_idx(roles, i), json_type_string)) {
            json_object_put(roles);
            return ig_err(INTEG_EINVAL, "roles_json[%zu]: must be a string", i);
        }
    }
    integ_session *s = calloc(1, sizeof *s);
    if (!s || !(s->tenant_id = strdup(tenant_id)) || !(s->user_id = strdup(user_id))) {
        if (s) {
            free(s->tenant_id);
            free(s);
        }
        json_object_put(roles);
        return ig_err(INTEG_ENOMEM, "out of memory");
    }
    s->roles = roles;
    s->ctx = ctx;
    atomic_fetch_add(&ctx->refs, 1);
    *out = s;
    return INTEG_OK;
}

INTEG_API void integ_session_close(integ_session *s)
{
    if (!s)
        return;
    integ_ctx *ctx = s->ctx;
    free(s->tenant_id);
    free(s->user_id);
    json_object_put(s->roles);
    free(s);
    ig_ctx_unref(ctx);
}

int ig_session_check(integ_session *s)
{
    if (!s)
        return ig_err(INTEG_EINVAL, "invalid argument: session");
    return INTEG_OK;
}

int ig_session_enter(integ_session *s, char **out_json)
{
    ig_err_clear();
    if (out_json)
        *out_json = NULL;
    return ig_session_check(s);
}

static int has_role(integ_session *s, const char *role)
{
    for (size_t i = 0; i < json_object_array_length(s->roles); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(s->roles, i)), role) == 0)
            return 1;
    return 0;
}

int ig_session_require_admin(integ_session *s)
{
    integ_ctx *ctx = s->ctx;
    pthread_mutex_lock(&ctx->cb_lock);
    integ_permission_cb cb = ctx->perm_cb;
    void *payload = ctx->perm_payload;
    pthread_mutex_unlock(&ctx->cb_lock);
    int allowed = cb ? cb(payload, s->tenant_id, s->user_id, "integration", "admin") == 1
                     : (has_role(s, "admin") || has_role(s, "integration:admin"));
    if (!allowed)
        return ig_err(INTEG_EPERM, "permission denied: user '%s' of tenant '%s' lacks integration:admin",
                      s->user_id, s->tenant_id);
    return INTEG_OK;
}
