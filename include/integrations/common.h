/*
 * libintegrations — shared definitions: the export macro, the error codes
 * and the opaque handle types. Included by every other public header.
 */
#ifndef INTEGRATIONS_COMMON_H
#define INTEGRATIONS_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(INTEG_BUILDING_LIBRARY) && defined(__GNUC__)
#define INTEG_API __attribute__((visibility("default")))
#else
#define INTEG_API
#endif

/**
 * Result codes. Fixed numbers, append-only: a retired code keeps its number.
 * Every fallible call returns INTEG_OK or one of the negative codes.
 */
enum integ_error_code {
    INTEG_OK = 0,
    INTEG_EINVAL = -1,        /* bad argument, malformed JSON, schema violation */
    INTEG_ENOTFOUND = -2,     /* no such object for this tenant (also: another tenant's) */
    INTEG_EEXISTS = -3,       /* already exists */
    INTEG_EPERM = -4,         /* the session lacks the permission */
    INTEG_EAUTH = -5,         /* the remote system rejected the credentials */
    INTEG_ERATELIMIT = -6,    /* retries exhausted on rate limits */
    INTEG_ENETWORK = -7,      /* transport failure or timeout */
    INTEG_EREMOTE = -8,       /* other remote error */
    INTEG_ESIGNATURE = -9,    /* webhook signature invalid */
    INTEG_EREPLAY = -10,      /* stale timestamp or duplicate delivery */
    INTEG_ECONFLICT = -11,    /* sync already running, unresolved conflict, concurrent change */
    INTEG_EMAPPING = -12,     /* data mapping error */
    INTEG_ESTORE = -13,       /* storage failure */
    INTEG_ECRYPTO = -14,      /* wrong key or tampered ciphertext */
    INTEG_ENOMEM = -15,       /* out of memory */
    INTEG_ECANCELED = -16,    /* canceled by a callback */
    INTEG_EUNSUPPORTED = -17, /* not supported by this adapter or store */
    INTEG_EINTERNAL = -99     /* a bug: please report */
};

/** A library context: one per store. Opaque. */
typedef struct integ_ctx integ_ctx;

/** Who is acting: tenant, user and roles. Opaque. */
typedef struct integ_session integ_session;

/**
 * For implementers of the extension points (stores, adapters): set the
 * calling thread's error message and return `code` unchanged, so that
 * `return integ_error_set(INTEG_ESTORE, "...");` reads naturally. The
 * message is copied (truncated to 1023 bytes). Not needed by applications.
 */
INTEG_API int integ_error_set(int code, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* INTEGRATIONS_COMMON_H */
