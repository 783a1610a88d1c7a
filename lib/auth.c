/* Token flows for the REST engine. This version knows the static methods;
 * the OAuth module adds the token flows (see auth.h). */
#include <string.h>

#include "auth.h"
#include "error.h"
#include "json.h"

int ig_auth_prepare(ig_conn *c)
{
    const char *t = c->auth_type ? c->auth_type : "none";
    if (!strcmp(t, "oauth2_client_credentials") || !strcmp(t, "jwt_bearer") || !strcmp(t, "session_token"))
        return ig_err(INTEG_EUNSUPPORTED,
                      "auth type '%s' needs a token flow that this version does not run yet; "
                      "store OAuth tokens (auth_type oauth2) or an API key instead",
                      t);
    return INTEG_OK;
}

int ig_auth_after_401(ig_conn *c)
{
    (void)c;
    return INTEG_EAUTH;
}
