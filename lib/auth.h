/* Internal: the token side of authentication, used by the REST engine.
 *
 * api_key, basic and none need nothing here. oauth2 uses the stored
 * access token (refreshed ahead of expiry); oauth2_client_credentials,
 * jwt_bearer and session_token obtain a token at runtime. Whatever the
 * flow, the current token is in c->token ({"access_token", ...}) for the
 * manifest's {token.*} placeholders. */
#ifndef IG_AUTH_H
#define IG_AUTH_H

#include "engine.h"

/* Make c->token current for c's auth method (no-op for static methods).
 * A renewal uses the credentials stored now, which may have been set since
 * c was opened: c->credentials is then replaced by those along with the
 * token (doc/oauth.md, "Single flight"). */
int ig_auth_prepare(ig_conn *c);

/* After a 401 on a request made with c->token: obtain a fresh token once.
 * INTEG_OK means retry the request; anything else means give up. */
int ig_auth_after_401(ig_conn *c);

#endif
