/* The sandbox: four external systems (HubSpot, Shopify, Pipedrive, Dataverse)
 * emulated on loopback for the sync engine's tests, demo and benchmarks.
 *
 * Records are never stored: record i of an entity is computed from
 * (seed, entity, i), so a million records cost no memory.  Only records
 * changed through the control API or the write endpoints live in
 * memory, as "overrides" kept in two sorted arrays per entity. */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;

/* ---- growable output buffer (buf.c) ---------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
void sb_reset(sbuf *b);
void sb_put(sbuf *b, const char *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_putc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_int(sbuf *b, int64_t v);
/* A JSON string literal with its quotes; NULL gives null. */
void sb_jstr(sbuf *b, const char *s);
/* Percent-encodes everything but unreserved characters and a few OData
 * friendly ones ($ , : ' ( )), as the vendors' own links do. */
void sb_urlenc(sbuf *b, const char *s);
void sb_b64(sbuf *b, const void *data, size_t n, int url_safe);
/* Accepts both alphabets, with or without padding; NUL-terminates. */
int b64_decode(const char *s, sbuf *out);
/* Returns the buffer (caller frees) and leaves b empty. */
char *sb_steal(sbuf *b, size_t *len);

/* ---- time (buf.c) ----------------------------------------------------- */

typedef int64_t ms_t; /* milliseconds since the Unix epoch */

#define MS_MIN INT64_MIN
#define MS_MAX INT64_MAX

enum time_style {
    TS_MS_Z,      /* 2024-05-02T08:11:00.000Z  (HubSpot) */
    TS_Z,         /* 2024-05-02T08:11:00Z      (Pipedrive v2, Dataverse) */
    TS_SHOP,      /* 2024-05-02T04:11:00-04:00 (Shopify shop time zone) */
    TS_DATE,      /* 2024-05-02 */
};

/* RFC 3339 with Z or an offset and optional fraction, a bare date, or
 * (HubSpot filters) epoch milliseconds.  Returns 0 on success. */
int time_parse(const char *s, ms_t *out);
void time_fmt(sbuf *b, ms_t t, enum time_style style);
ms_t now_ms(void);

/* ---- systems and entities -------------------------------------------- */

enum sys { SYS_HUBSPOT, SYS_SHOPIFY, SYS_PIPEDRIVE, SYS_DYNAMICS, SYS_COUNT };

enum ent {
    E_HS_CONTACTS, E_HS_COMPANIES, E_HS_DEALS,
    E_SH_CUSTOMERS, E_SH_PRODUCTS, E_SH_ORDERS,
    E_PD_PERSONS, E_PD_ORGANIZATIONS, E_PD_DEALS,
    E_DY_ACCOUNTS, E_DY_CONTACTS, E_DY_SALESORDERS,
    E_COUNT
};

struct entity_def {
    enum sys sys;
    const char *name;       /* as in the URL: "contacts", "orders.json" minus .json */
    int64_t id_base;        /* numeric id of record 0 (0 for GUID systems) */
};

extern const struct entity_def ENTITIES[E_COUNT];
extern const char *const SYSTEM_NAMES[SYS_COUNT];

int sys_by_name(const char *name);
int ent_by_name(enum sys sys, const char *name);

/* Generated records have indices [0, count); records created through write
 * endpoints get indices from CREATED_BASE up, so they
 * never collide with generated ones when a count changes at runtime. */
#define MAX_RECORDS  99999999LL
#define CREATED_BASE 100000000LL
#define MAX_OV_FIELDS 64

struct field_ov {
    char *name;
    char *json;             /* the value, already serialised */
};

struct override {
    int64_t index;
    ms_t updated;
    int archived;
    int created;            /* made by a write endpoint, not generated */
    ms_t created_at;        /* only for created records */
    uint32_t version;       /* bumped on each change: etags, versionnumber */
    size_t nfields;
    struct field_ov *fields;
};

struct entity_state {
    int64_t count;
    int64_t created_n;            /* records created so far: CREATED_BASE + k */
    struct override **by_index;   /* sorted by index */
    struct override **by_time;    /* sorted by (updated, index) */
    size_t n, cap;
};

struct store {
    pthread_rwlock_t lock;        /* readers: page rendering; writers: control API */
    uint64_t seed;
    struct entity_state e[E_COUNT];
};

void store_init(struct store *st, uint64_t seed);
void store_clear_overrides(struct store *st);
void store_destroy(struct store *st);
/* Caller holds the write lock.  Returns the override (created if needed). */
struct override *store_touch(struct store *st, int ent, int64_t index);
/* Caller holds the write lock: drops overrides of generated records past the
 * new count and re-sorts the time index. */
void store_set_count(struct store *st, int ent, int64_t count);
void store_resort(struct store *st, int ent);
/* Caller holds the write lock: a new record after all others (write
 * endpoints), created and updated now. */
struct override *store_create(struct store *st, int ent);
/* "Now" in whole seconds, but strictly after `current`: a write always
 * moves a record forward, even when generated times lie in the future. */
ms_t store_bump(ms_t current);
/* Copies every member of a JSON object (json-c) into the override, skipping
 * the names in the comma list `skip`.  Returns -1 when full. */
/* After a write: bumps updated-at (not on the creating write itself),
 * the version, and re-sorts the time index.  Write lock held. */
void ov_written(struct store *st, int ent, struct override *ov);
struct json_object;
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
int ov_set_json(struct override *ov, struct json_object *obj, const char *skip);
int list_has(const char *list, const char *name);
const struct override *store_find(const struct store *st, int ent, int64_t index);
const char *ov_field(const struct override *ov, const char *name);
/* Replaces or adds a field; json is the serialised value.  -1 when full. */
int ov_set_field(struct override *ov, const char *name, const char *json);

/* Deterministic generation. */
uint64_t mix64(uint64_t x);
uint64_t rec_hash(const struct store *st, int ent, int64_t index, uint64_t salt);
ms_t base_updated(const struct store *st, int ent, int64_t index);
ms_t base_created(const struct store *st, int ent, int64_t index);
void guid_fmt(sbuf *b, int ent, int64_t index);
int guid_parse(int ent, const char *s, int64_t *index);

/* A record as rendered: generated values plus its override, if any. */
struct rec {
    int ent;
    int64_t index;
    ms_t created, updated;
    int archived;
    uint32_t version;
    const struct override *ov;
};

/* Is index a record of ent (generated and in range, or created)? */
int rec_get(const struct store *st, int ent, int64_t index, struct rec *out);
/* The provider's id for a record (number or GUID) and back. */
void ent_id_fmt(sbuf *b, int ent, int64_t index);
int ent_id_parse(int ent, const char *id, int64_t *index);

/* ---- queries (store.c) ------------------------------------------------ */

enum order { ORD_INDEX, ORD_TIME };

typedef int (*rec_pred)(const struct store *st, const struct rec *r, const void *arg);

struct query {
    int ent;
    enum order order;
    int desc;
    ms_t lo, hi;            /* inclusive bounds on updated-at */
    int archived;           /* list archived records instead of live ones */
    rec_pred pred;          /* extra filter (Shopify order status) or NULL */
    const void *pred_arg;
    int has_after;          /* keyset: start strictly after (after_t, after_i) */
    ms_t after_t;
    int64_t after_i;
};

void query_init(struct query *q, int ent);

struct iter {
    const struct store *st;
    const struct query *q;
    /* stream A: generated records, walked through an index range */
    int64_t a_next, a_end;      /* asc: next..end-1; desc: next down to end */
    size_t skip_pos;            /* cursor in by_index for skipping overrides */
    /* stream B: overrides, walked through the sorted array for the order */
    size_t b_pos;
    int has_a, has_b;
    struct rec ra, rb;
};

void iter_init(struct iter *it, const struct store *st, const struct query *q);
int iter_next(struct iter *it, struct rec *out);
int64_t query_count(const struct store *st, const struct query *q);

/* ---- faults and server state (server.c) ------------------------------- */

struct faults {
    int64_t rate_limit_every;
    int64_t error_every;
    int64_t truncate_every;
    int64_t fail_after;
    int64_t slow_ms;
    int64_t retry_after;        /* seconds, default 1 */
    int unauthorized;
    int enforce_limits;         /* turn the simulated counters into real 429s */
    int system;                 /* -1: all systems */
};

void faults_default(struct faults *f);
/* One key=value; returns 0 or -1 with err filled. */
int faults_set(struct faults *f, const char *key, const char *val, char *err, size_t errlen);
int faults_parse(struct faults *f, const char *spec, char *err, size_t errlen);
int records_parse(int64_t counts[E_COUNT], const char *spec, char *err, size_t errlen);

/* Fixed-window request counter behind the simulated rate-limit headers. */
struct window {
    int64_t start;
    int64_t count;
};
int64_t window_hit(struct window *w, int64_t len_ms, ms_t now);

struct sys_limits {
    struct window w1, w2, day;  /* system-specific meanings */
    double bucket;              /* Shopify leaky bucket level */
    ms_t bucket_at;
};

#define MAX_HEADERS 16

/* One API request and its response. */
struct req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;           /* after the system prefix */
    const char *body;           /* request body (NUL-terminated) */
    size_t body_len;
    char base[160];             /* "http://host:port" as the client called us */
    int sys;
    uint64_t seq;               /* request number, for correlation ids */
    int64_t retry_after;        /* seconds, for 429 responses */
    int is_page;                /* a successful read: counts for fail_after */
    int bearer;                 /* authenticated by OAuth bearer (Pipedrive) */
    /* response */
    unsigned status;
    sbuf out;
    const char *ctype;
    size_t nheaders;
    char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
};

void req_header(struct req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *req_arg(struct req *r, const char *name);
const char *req_hdr(struct req *r, const char *name);
/* Calls fn for every query argument in order (value may be NULL). */
void req_args(struct req *r, void (*fn)(void *cls, const char *k, const char *v), void *cls);
int token_ok(const char *given, size_t len);
/* "Bearer <token>" in Authorization, compared in constant time. */
int bearer_ok(struct req *r);
void correlation_id(sbuf *b, uint64_t seq);
int parse_limit(const char *s, int64_t def, int64_t max, int64_t *out);

enum err_kind { ERR_UNAUTHORIZED, ERR_RATE_LIMIT, ERR_SERVER, ERR_UNAVAILABLE,
                ERR_NOT_FOUND, ERR_BAD_REQUEST };

struct system_ops {
    const char *prefix;
    int (*auth_ok)(struct req *r);
    /* Body and headers for an error of this provider. */
    void (*error)(struct req *r, enum err_kind kind, unsigned status, const char *msg);
    /* Adds the simulated rate-limit headers; returns 1 when over the limit
     * (only acted upon with enforce_limits). */
    int (*limits)(struct req *r, struct sys_limits *l, ms_t now, int64_t *retry_s);
    void (*handle)(struct req *r);
};

extern const struct system_ops HUBSPOT_OPS, SHOPIFY_OPS, PIPEDRIVE_OPS, DYNAMICS_OPS;

/* HubSpot-style OAuth endpoints under /hubspot/oauth/ (oauth.c). */
int hs_oauth_path(const char *path);
void hs_oauth(struct req *r);

struct sandbox {
    struct store store;
    int unlimited;              /* --unlimited: no rate-limit headers (benchmarks) */
    pthread_mutex_t mu;         /* faults, counters and stats below */
    struct faults faults, start_faults;
    int64_t start_counts[E_COUNT];
    uint64_t fault_n;           /* requests since the faults were last set */
    uint64_t fault_pages;       /* successful reads since then */
    uint64_t seq;
    uint64_t requests;
    uint64_t conn_total;
    int64_t conn_open;
    uint64_t injected[8];       /* by fault kind */
    struct sys_limits limits[SYS_COUNT];
    char token[512];
    size_t token_len;
    unsigned port;
    int verbose;
};

extern struct sandbox SB;

/* Handlers read the store under its read lock, taken by the server. */

/* ---- field emission with selection and overrides (render.c) ----------- */

struct sel {
    int all;                    /* every field */
    size_t n;
    char *names[64];
    char *buf;
};

/* Parses a comma-separated list ("email,firstname"). */
void sel_parse(struct sel *s, const char *list);
void sel_all(struct sel *s);
void sel_free(struct sel *s);
int sel_has(const struct sel *s, const char *name);

struct emit {
    sbuf *b;
    int first;
    int blank;                  /* a created record: only stored fields and `keep` */
    const char *keep;           /* comma list of server-side fields */
    const struct sel *sel;      /* NULL: everything */
    const struct sel *extra;    /* second allowed set (HubSpot defaults) */
    const struct override *ov;
    uint64_t used;              /* override fields already written */
};

void em_begin(struct emit *e, sbuf *b, const struct sel *sel, const struct override *ov);
/* Writes "name": and returns 1 when the caller must write the value; an
 * override's value is written here instead (returns 0), as is nothing at
 * all for an unselected field (returns 0). */
int em_key(struct emit *e, const char *name);
void em_str(struct emit *e, const char *name, const char *v);
void em_int(struct emit *e, const char *name, int64_t v);
void em_bool(struct emit *e, const char *name, int v);
void em_null(struct emit *e, const char *name);
void em_time(struct emit *e, const char *name, ms_t t, enum time_style st);
void em_money(struct emit *e, const char *name, int64_t cents, int as_string);
/* Override fields the generator does not know, when selected. */
void em_rest(struct emit *e);

/* Fake but stable values. */
const char *gen_first(const struct store *st, int ent, int64_t i);
const char *gen_last(const struct store *st, int ent, int64_t i);
const char *gen_city(const struct store *st, int ent, int64_t i, const char **country);
const char *gen_company(const struct store *st, int ent, int64_t i, sbuf *tmp);
void gen_phone(sbuf *b, const struct store *st, int ent, int64_t i);
void gen_email(sbuf *b, const struct store *st, int ent, int64_t i);
int64_t gen_amount(const struct store *st, int ent, int64_t i);   /* cents */
const char *gen_pick(const struct store *st, int ent, int64_t i, uint64_t salt,
                     const char *const *list, size_t n);

#endif
