/* Internal: the thread-local last-error message. */
#ifndef IG_ERROR_H
#define IG_ERROR_H

#include "integrations/common.h"

/* Set the calling thread's message (printf-style) and return `code`. */
int ig_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clear the message at the start of a public call. */
void ig_err_clear(void);

/* A copy of the message, kept across a best-effort step whose failure is
 * ignored (the caller's message must survive it). */
#define IG_ERRMSG_MAX 1024
typedef struct ig_err_saved {
    char msg[IG_ERRMSG_MAX];
} ig_err_saved;
void ig_err_save(ig_err_saved *s);
void ig_err_restore(const ig_err_saved *s);

/* The current message ("" when none). */
const char *ig_errmsg(void);

/* Prefix the current message with "prefix: " (keeps the code's meaning). */
int ig_err_prefix(int code, const char *prefix);

/* Argument guard used by every public entry point: never aborts. */
#define IG_CHECK_ARG(cond, name)                                                   \
    do {                                                                           \
        if (!(cond))                                                               \
            return ig_err(INTEG_EINVAL, "invalid argument: %s", name);             \
    } while (0)

#endif
