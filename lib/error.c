/* The thread-local last-error message and the fixed code texts. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "integrations/integrations.h"

static _Thread_local char tl_msg[IG_ERRMSG_MAX];

int ig_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    return code;
}

void ig_err_clear(void) { tl_msg[0] = '\0'; }

void ig_err_save(ig_err_saved *s) { memcpy(s->msg, tl_msg, strlen(tl_msg) + 1); }

void ig_err_restore(const ig_err_saved *s) { memcpy(tl_msg, s->msg, strlen(s->msg) + 1); }

const char *ig_errmsg(void) { return tl_msg; }

int ig_err_prefix(int code, const char *prefix)
{
    size_t pl = strlen(prefix), ml = strlen(tl_msg);
    if (pl > IG_ERRMSG_MAX - 3)
        pl = IG_ERRMSG_MAX - 3;
    if (pl + 2 + ml > IG_ERRMSG_MAX - 1)
        ml = IG_ERRMSG_MAX - 1 - pl - 2;
    memmove(tl_msg + pl + 2, tl_msg, ml);
    memcpy(tl_msg, prefix, pl);
    tl_msg[pl] = ':';
    tl_msg[pl + 1] = ' ';
    tl_msg[pl + 2 + ml] = '\0';
    return code;
}

INTEG_API int integ_error_set(int code, const char *message)
{
    snprintf(tl_msg, sizeof tl_msg, "%s", message ? message : "");
    return code;
}

INTEG_API const char *integ_errmsg(void) { return tl_msg; }

INTEG_API const char *integ_strerror(int code)
{
    switch (code) {
    case INTEG_OK: return "success";
    case INTEG_EINVAL: return "invalid argument";
    case INTEG_ENOTFOUND: return "not found";
    case INTEG_EEXISTS: return "already exists";
    case INTEG_EPERM: return "permission denied";
    case INTEG_EAUTH: return "authentication failed at the remote system";
    case INTEG_ERATELIMIT: return "rate limited: retries exhausted";
    case INTEG_ENETWORK: return "network failure";
    case INTEG_EREMOTE: return "remote system error";
    case INTEG_ESIGNATURE: return "invalid webhook signature";
    case INTEG_EREPLAY: return "stale or replayed delivery";
    case INTEG_ECONFLICT: return "conflict";
    case INTEG_EMAPPING: return "data mapping error";
    case INTEG_ESTORE: return "storage failure";
    case INTEG_ECRYPTO: return "wrong key or tampered ciphertext";
    case INTEG_ENOMEM: return "out of memory";
    case INTEG_ECANCELED: return "canceled";
    case INTEG_EUNSUPPORTED: return "not supported";
    case INTEG_EINTERNAL: return "internal error (a bug: please report)";
    default: return "unknown error code";
    }
}
