/* Internal: the audit log. */
#ifndef IG_AUDIT_H
#define IG_AUDIT_H

#include <json-c/json.h>

#include "ctx.h"

/* Append an audit entry inside the caller's write transaction. `details`
 * (may be NULL) is borrowed; it must hold no secret. tenant_id NULL means a
 * platform-level action (not visible to tenants). */
int ig_audit(integ_ctx *ctx, void *tx, const char *tenant_id, const char *user_id,
             const char *action, const char *object_type, const char *object_id,
             json_object *details);

#endif
