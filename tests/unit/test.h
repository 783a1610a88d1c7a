/* A minimal test harness: each tests/unit/test_*.c is one executable whose
 * main() calls RUN(test_fn) for each case. A failed CHECK prints the file,
 * line and expression, marks the case failed and carries on; the process
 * exits non-zero if any case failed (meson counts the executable). */
#ifndef TEST_H
#define TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integrations/integrations.h"

static int t_failed_checks;
static int t_cases_failed;
static int t_cases_run;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
            t_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

/* Check a call's return code; on mismatch print the library's message. */
#define CHECK_RC(expr, want)                                                                 \
    do {                                                                                     \
        int t_rc_ = (expr);                                                                  \
        if (t_rc_ != (want)) {                                                               \
            fprintf(stderr, "  %s:%d: %s returned %d (%s), want %d; errmsg: %s\n", __FILE__, \
                    __LINE__, #expr, t_rc_, integ_strerror(t_rc_), (int)(want),              \
                    integ_errmsg());                                                         \
            t_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, INTEG_OK)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *t_a_ = (a), *t_b_ = (b);                                                 \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                                     \
            fprintf(stderr, "  %s:%d: CHECK_STR failed: %s = \"%s\", want \"%s\"\n",        \
                    __FILE__, __LINE__, #a, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
            t_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

/* The error message must contain `needle`. */
#define CHECK_MSG(needle)                                                                    \
    do {                                                                                     \
        if (!strstr(integ_errmsg(), (needle))) {                                             \
            fprintf(stderr, "  %s:%d: errmsg \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,     \
                    integ_errmsg(), (needle));                                               \
            t_failed_checks++;                                                               \
        }                                                                                    \
    } while (0)

#define RUN(fn)                                                                              \
    do {                                                                                     \
        int t_before_ = t_failed_checks;                                                     \
        t_cases_run++;                                                                       \
        fn();                                                                                \
        if (t_failed_checks != t_before_) {                                                  \
            t_cases_failed++;                                                                \
            fprintf(stderr, "FAIL %s\n", #fn);                                               \
        } else {                                                                             \
            printf("ok   %s\n", #fn);                                                        \
        }                                                                                    \
    } while (0)

#define TEST_END()                                                                           \
    do {                                                                                     \
        printf("%d cases, %d failed\n", t_cases_run, t_cases_failed);                        \
        return t_cases_failed ? 1 : 0;                                                       \
    } while (0)

/* A fixed, well-formed test master key (base64 of 32 bytes). Test-only. */
#define TEST_MASTER_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

#endif
