/* Records, overrides and ordered queries over them.
 *
 * Record i's updated-at is T0 + i minutes + a seeded jitter below a minute,
 * so it grows strictly with i: a time range maps to an index range in O(1)
 * and "generated records in time order" is simply index order.  The few
 * overridden records are merged in from arrays sorted by index and by
 * (updated, index).  A page therefore costs O(page + log overrides), even
 * with a million records. */
#include "sandbox.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const SYSTEM_NAMES[SYS_COUNT] = {"hubspot", "shopify", "pipedrive", "dynamics"};

const struct entity_def ENTITIES[E_COUNT] = {
    [E_HS_CONTACTS] = {SYS_HUBSPOT, "contacts", 1001},
    [E_HS_COMPANIES] = {SYS_HUBSPOT, "companies", 20000001},
    [E_HS_DEALS] = {SYS_HUBSPOT, "deals", 30000001},
    [E_SH_CUSTOMERS] = {SYS_SHOPIFY, "customers", 7001000000001LL},
    [E_SH_PRODUCTS] = {SYS_SHOPIFY, "products", 8001000000001LL},
    [E_SH_ORDERS] = {SYS_SHOPIFY, "orders", 5501000000001LL},
    [E_PD_PERSONS] = {SYS_PIPEDRIVE, "persons", 1},
    [E_PD_ORGANIZATIONS] = {SYS_PIPEDRIVE, "organizations", 1},
    [E_PD_DEALS] = {SYS_PIPEDRIVE, "deals", 1},
    [E_DY_ACCOUNTS] = {SYS_DYNAMICS, "accounts", 0},
    [E_DY_CONTACTS] = {SYS_DYNAMICS, "contacts", 0},
    [E_DY_SALESORDERS] = {SYS_DYNAMICS, "salesorders", 0},
};

int sys_by_name(const char *name)
{
    for (int s = 0; s < SYS_COUNT; s++)
        if (name && strcmp(name, SYSTEM_NAMES[s]) == 0)
            return s;
    return -1;
}

int ent_by_name(enum sys sys, const char *name)
{
    for (int e = 0; e < E_COUNT; e++)
        if (ENTITIES[e].sys == sys && name && strcmp(name, ENTITIES[e].name) == 0)
            return e;
    return -1;
}

/* ---- generation ---------------------------------------------------------- */

#define T0_MS 1704067200000LL   /* 2024-01-01T00:00:00Z */
#define STEP_MS 60000LL
#define CREATED_T0_MS (T0_MS - 90LL * 86400 * 1000)
#define CREATED_STEP_MS 30000LL

uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: cheap and well mixed. */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t rec_hash(const struct store *st, int ent, int64_t index, uint64_t salt)
{
    return mix64(st->seed * 0x100000001b3ULL ^ mix64((uint64_t)ent << 56 ^ (uint64_t)index)
                 ^ salt * 0x9e3779b97f4a7c15ULL);
}

ms_t base_updated(const struct store *st, int ent, int64_t index)
{
    return T0_MS + index * STEP_MS + (ms_t)(rec_hash(st, ent, index, 1) % 60) * 1000;
}

ms_t base_created(const struct store *st, int ent, int64_t index)
{
    return CREATED_T0_MS + index * CREATED_STEP_MS
           + (ms_t)(rec_hash(st, ent, index, 2) % 30) * 1000;
}

/* Smallest generated index whose updated-at is >= t, in [0, count]. */
static int64_t first_ge(const struct store *st, int ent, ms_t t)
{
    int64_t n = st->e[ent].count;
    if (t <= T0_MS)
        return 0;
    if (t > T0_MS + (n + 1) * STEP_MS)
        return n;
    int64_t c = (t - T0_MS) / STEP_MS;
    if (c < n && base_updated(st, ent, c) < t)
        c++;
    return c < n ? c : n;
}

#define MASK48 0xffffffffffffULL
/* The GUID's last group is a bijection of the index (odd multiplier mod
 * 2^48, then a per-entity mask), so a GUID maps back to its record without
 * a table while neighbouring records still get unrelated-looking ids. */
#define GUID_MUL 0x9e3779b97f4bULL

static uint64_t guid_mask(int ent)
{
    return mix64((uint64_t)ent + 77) & MASK48;
}

static uint64_t guid_mul_inverse(void)
{
    uint64_t x = GUID_MUL; /* Newton: each step doubles the correct bits */
    for (int i = 0; i < 6; i++)
        x *= 2 - GUID_MUL * x;
    return x & MASK48;
}

void guid_fmt(sbuf *b, int ent, int64_t index)
{
    uint64_t h = mix64(0x5eedULL ^ (uint64_t)ent << 56 ^ (uint64_t)index);
    uint64_t g = mix64(h);
    uint64_t tail = (((uint64_t)index * GUID_MUL) & MASK48) ^ guid_mask(ent);
    sb_printf(b, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h >> 32), (unsigned)(h >> 16) & 0xffff,
              0x4000u | ((unsigned)h & 0x0fff), 0x8000u | ((unsigned)(g >> 48) & 0x3fff),
              (unsigned long long)tail);
}

int guid_parse(int ent, const char *s, int64_t *index)
{
    if (!s || strlen(s) != 36 || strspn(s + 24, "0123456789abcdefABCDEF") != 12)
        return -1;
    unsigned long long tail = strtoull(s + 24, NULL, 16);
    int64_t idx = (int64_t)((((uint64_t)tail ^ guid_mask(ent)) * guid_mul_inverse()) & MASK48);
    sbuf b;
    sb_init(&b);
    guid_fmt(&b, ent, idx);
    int ok = strcasecmp(b.p, s) == 0;
    sb_free(&b);
    if (!ok)
        return -1;
    *index = idx;
    return 0;
}

/* ---- overrides ----------------------------------------------------------- */

void store_init(struct store *st, uint64_t seed)
{
    memset(st, 0, sizeof *st);
    pthread_rwlock_init(&st->lock, NULL);
    st->seed = seed;
}

static void ov_free(struct override *ov)
{
    for (size_t i = 0; i < ov->nfields; i++) {
        free(ov->fields[i].name);
        free(ov->fields[i].json);
    }
    free(ov->fields);
    free(ov);
}

void store_clear_overrides(struct store *st)
{
    for (int e = 0; e < E_COUNT; e++) {
        struct entity_state *es = &st->e[e];
        for (size_t i = 0; i < es->n; i++)
            ov_free(es->by_index[i]);
        free(es->by_index);
        free(es->by_time);
        es->by_index = es->by_time = NULL;
        es->n = es->cap = 0;
        es->created_n = 0;
    }
}

void store_destroy(struct store *st)
{
    store_clear_overrides(st);
    pthread_rwlock_destroy(&st->lock);
}

/* First position in by_index whose index is >= idx. */
static size_t lower_index(const struct entity_state *es, int64_t idx)
{
    size_t lo = 0, hi = es->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (es->by_index[mid]->index < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct override *store_find(const struct store *st, int ent, int64_t index)
{
    const struct entity_state *es = &st->e[ent];
    size_t pos = lower_index(es, index);
    return pos < es->n && es->by_index[pos]->index == index ? es->by_index[pos] : NULL;
}

static int cmp_time(const void *a, const void *b)
{
    const struct override *x = *(struct override *const *)a, *y = *(struct override *const *)b;
    if (x->updated != y->updated)
        return x->updated < y->updated ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

void store_resort(struct store *st, int ent)
{
    struct entity_state *es = &st->e[ent];
    if (es->n)
        qsort(es->by_time, es->n, sizeof *es->by_time, cmp_time);
}

struct override *store_touch(struct store *st, int ent, int64_t index)
{
    struct entity_state *es = &st->e[ent];
    size_t pos = lower_index(es, index);
    if (pos < es->n && es->by_index[pos]->index == index)
        return es->by_index[pos];
    if (es->n == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 16;
        struct override **a = realloc(es->by_index, cap * sizeof *a);
        if (!a)
            return NULL;
        es->by_index = a;
        struct override **t = realloc(es->by_time, cap * sizeof *t);
        if (!t)
            return NULL;
        es->by_time = t;
        es->cap = cap;
    }
    struct override *ov = calloc(1, sizeof *ov);
    if (!ov)
        return NULL;
    ov->index = index;
    ov->updated = index < es->count ? base_updated(st, ent, index) : now_ms();
    memmove(es->by_index + pos + 1, es->by_index + pos, (es->n - pos) * sizeof *es->by_index);
    es->by_index[pos] = ov;
    es->by_time[es->n++] = ov;
    store_resort(st, ent);
    return ov;
}

void store_set_count(struct store *st, int ent, int64_t count)
{
    struct entity_state *es = &st->e[ent];
    es->count = count;
    size_t w = 0;
    for (size_t i = 0; i < es->n; i++) {
        struct override *ov = es->by_index[i];
        if (!ov->created && ov->index >= count)
            ov_free(ov);
        else
            es->by_index[w++] = ov;
    }
    es->n = w;
    if (w)
        memcpy(es->by_time, es->by_index, w * sizeof *es->by_time);
    store_resort(st, ent);
}

struct override *store_create(struct store *st, int ent)
{
    struct entity_state *es = &st->e[ent];
    ms_t now = store_bump(0);
    struct override *ov = store_touch(st, ent, CREATED_BASE + es->created_n);
    if (!ov)
        return NULL;
    es->created_n++;
    ov->created = 1;
    ov->created_at = ov->updated = now;
    store_resort(st, ent);
    return ov;
}

ms_t store_bump(ms_t current)
{
    ms_t t = now_ms() / 1000 * 1000;
    return t > current ? t : current / 1000 * 1000 + 1000;
}

void ov_written(struct store *st, int ent, struct override *ov)
{
    if (!(ov->created && ov->version == 0))
        ov->updated = store_bump(ov->updated);
    ov->version++;
    store_resort(st, ent);
}

int list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    if (!list || !n)
        return 0;
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int ov_set_json(struct override *ov, struct json_object *obj, const char *skip)
{
    int rc = 0;
    json_object_object_foreach(obj, k, v) {
        if (list_has(skip, k))
            continue;
        if (ov_set_field(ov, k, json_object_to_json_string_ext(v, JSON_FLAGS)))
            rc = -1;
    }
    return rc;
}

const char *ov_field(const struct override *ov, const char *name)
{
    if (!ov)
        return NULL;
    for (size_t i = 0; i < ov->nfields; i++)
        if (strcmp(ov->fields[i].name, name) == 0)
            return ov->fields[i].json;
    return NULL;
}

int ov_set_field(struct override *ov, const char *name, const char *json)
{
    for (size_t i = 0; i < ov->nfields; i++) {
        if (strcmp(ov->fields[i].name, name) == 0) {
            char *j = strdup(json);
            if (!j)
                return -1;
            free(ov->fields[i].json);
            ov->fields[i].json = j;
            return 0;
        }
    }
    if (ov->nfields >= MAX_OV_FIELDS)
        return -1;
    struct field_ov *f = realloc(ov->fields, (ov->nfields + 1) * sizeof *f);
    if (!f)
        return -1;
    ov->fields = f;
    f[ov->nfields].name = strdup(name);
    f[ov->nfields].json = strdup(json);
    if (!f[ov->nfields].name || !f[ov->nfields].json) {
        free(f[ov->nfields].name);
        free(f[ov->nfields].json);
        return -1;
    }
    ov->nfields++;
    return 0;
}

static void fill(const struct store *st, int ent, int64_t index, const struct override *ov,
                 struct rec *r)
{
    r->ent = ent;
    r->index = index;
    r->ov = ov;
    if (ov && ov->created) {
        r->created = ov->created_at;
    } else {
        r->created = base_created(st, ent, index);
    }
    r->updated = ov ? ov->updated : base_updated(st, ent, index);
    r->archived = ov ? ov->archived : 0;
    r->version = ov ? ov->version : 0;
}

int rec_get(const struct store *st, int ent, int64_t index, struct rec *out)
{
    if (index < 0)
        return 0;
    const struct override *ov = store_find(st, ent, index);
    if (index >= st->e[ent].count && !(ov && ov->created))
        return 0;
    fill(st, ent, index, ov, out);
    return 1;
}

/* ---- queries ------------------------------------------------------------- */

void query_init(struct query *q, int ent)
{
    memset(q, 0, sizeof *q);
    q->ent = ent;
    q->order = ORD_INDEX;
    q->lo = MS_MIN;
    q->hi = MS_MAX;
}

/* Three-way compare of a record's key with the query's "after" key. */
static int key_cmp(const struct query *q, ms_t t, int64_t i)
{
    if (q->order == ORD_TIME && t != q->after_t)
        return t < q->after_t ? -1 : 1;
    return (i > q->after_i) - (i < q->after_i);
}

static int ov_matches(const struct iter *it, const struct override *ov)
{
    const struct query *q = it->q;
    if (!!ov->archived != !!q->archived || ov->updated < q->lo || ov->updated > q->hi)
        return 0;
    if (!ov->created && ov->index >= it->st->e[q->ent].count)
        return 0;
    return 1;
}

void iter_init(struct iter *it, const struct store *st, const struct query *q)
{
    memset(it, 0, sizeof *it);
    it->st = st;
    it->q = q;
    const struct entity_state *es = &st->e[q->ent];
    int64_t n = es->count;

    /* Stream A: generated records (never archived) in [a, b). */
    int64_t a = 0, b = 0;
    if (!q->archived) {
        a = q->lo == MS_MIN ? 0 : first_ge(st, q->ent, q->lo);
        b = q->hi == MS_MAX ? n : first_ge(st, q->ent, q->hi + 1);
    }
    if (q->has_after) {
        if (!q->desc) {
            int64_t s;
            if (q->order == ORD_INDEX) {
                s = q->after_i + 1;
            } else {
                s = first_ge(st, q->ent, q->after_t);
                if (s < n && base_updated(st, q->ent, s) == q->after_t && s <= q->after_i)
                    s++;
            }
            if (s > a)
                a = s;
        } else {
            int64_t e;
            if (q->order == ORD_INDEX) {
                e = q->after_i;
            } else {
                e = first_ge(st, q->ent, q->after_t);
                if (e < n && base_updated(st, q->ent, e) == q->after_t && e < q->after_i)
                    e++;
            }
            if (e < b)
                b = e;
        }
    }
    if (b < a)
        b = a;
    if (!q->desc) {
        it->a_next = a;
        it->a_end = b;
        it->skip_pos = lower_index(es, a);
    } else {
        it->a_next = b - 1;
        it->a_end = a;
        it->skip_pos = lower_index(es, b);
    }

    /* Stream B: overrides, positioned after the key by binary search. */
    struct override **arr = q->order == ORD_INDEX ? es->by_index : es->by_time;
    size_t lo = 0, hi = es->n;
    if (q->has_after) {
        /* asc: first element with key > after; desc: count of keys < after. */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = key_cmp(q, arr[mid]->updated, arr[mid]->index);
            if (q->desc ? c < 0 : c <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        it->b_pos = lo;
    } else {
        it->b_pos = q->desc ? es->n : 0;
    }
}

static int peek_a(struct iter *it)
{
    const struct query *q = it->q;
    const struct entity_state *es = &it->st->e[q->ent];
    if (!q->desc) {
        while (it->a_next < it->a_end) {
            int64_t idx = it->a_next++;
            while (it->skip_pos < es->n && es->by_index[it->skip_pos]->index < idx)
                it->skip_pos++;
            if (it->skip_pos < es->n && es->by_index[it->skip_pos]->index == idx)
                continue;
            fill(it->st, q->ent, idx, NULL, &it->ra);
            if (q->pred && !q->pred(it->st, &it->ra, q->pred_arg))
                continue;
            return 1;
        }
    } else {
        while (it->a_next >= it->a_end) {
            int64_t idx = it->a_next--;
            while (it->skip_pos > 0 && es->by_index[it->skip_pos - 1]->index > idx)
                it->skip_pos--;
            if (it->skip_pos > 0 && es->by_index[it->skip_pos - 1]->index == idx)
                continue;
            fill(it->st, q->ent, idx, NULL, &it->ra);
            if (q->pred && !q->pred(it->st, &it->ra, q->pred_arg))
                continue;
            return 1;
        }
    }
    return 0;
}

static int peek_b(struct iter *it)
{
    const struct query *q = it->q;
    const struct entity_state *es = &it->st->e[q->ent];
    struct override **arr = q->order == ORD_INDEX ? es->by_index : es->by_time;
    for (;;) {
        const struct override *ov;
        if (!q->desc) {
            if (it->b_pos >= es->n)
                return 0;
            ov = arr[it->b_pos++];
        } else {
            if (it->b_pos == 0)
                return 0;
            ov = arr[--it->b_pos];
        }
        if (!ov_matches(it, ov))
            continue;
        fill(it->st, q->ent, ov->index, ov, &it->rb);
        if (q->pred && !q->pred(it->st, &it->rb, q->pred_arg))
            continue;
        return 1;
    }
}

int iter_next(struct iter *it, struct rec *out)
{
    if (!it->has_a)
        it->has_a = peek_a(it) ? 1 : -1;
    if (!it->has_b)
        it->has_b = peek_b(it) ? 1 : -1;
    if (it->has_a < 0 && it->has_b < 0)
        return 0;
    int take_a;
    if (it->has_a < 0)
        take_a = 0;
    else if (it->has_b < 0)
        take_a = 1;
    else {
        int c;
        if (it->q->order == ORD_TIME && it->ra.updated != it->rb.updated)
            c = it->ra.updated < it->rb.updated ? -1 : 1;
        else
            c = it->ra.index < it->rb.index ? -1 : 1;
        take_a = it->q->desc ? c > 0 : c < 0;
    }
    if (take_a) {
        *out = it->ra;
        it->has_a = 0;
    } else {
        *out = it->rb;
        it->has_b = 0;
    }
    return 1;
}

int64_t query_count(const struct store *st, const struct query *q0)
{
    struct query q = *q0;
    q.has_after = 0;
    q.desc = 0;
    struct iter it;
    iter_init(&it, st, &q);
    if (q.pred) {
        /* Not arithmetic: walk it (linear, still no allocation). */
        int64_t n = 0;
        struct rec r;
        while (iter_next(&it, &r))
            n++;
        return n;
    }
    const struct entity_state *es = &st->e[q.ent];
    int64_t n = it.a_end - it.a_next;
    n -= (int64_t)(lower_index(es, it.a_end) - lower_index(es, it.a_next));
    for (size_t i = 0; i < es->n; i++)
        if (ov_matches(&it, es->by_index[i]))
            n++;
    return n;
}

void ent_id_fmt(sbuf *b, int ent, int64_t index)
{
    if (ENTITIES[ent].sys == SYS_DYNAMICS)
        guid_fmt(b, ent, index);
    else
        sb_int(b, ENTITIES[ent].id_base + index);
}

int ent_id_parse(int ent, const char *id, int64_t *index)
{
    if (!id || !*id)
        return -1;
    if (ENTITIES[ent].sys == SYS_DYNAMICS)
        return guid_parse(ent, id, index);
    if (strspn(id, "0123456789") != strlen(id) || strlen(id) > 18)
        return -1;
    int64_t v = strtoll(id, NULL, 10) - ENTITIES[ent].id_base;
    if (v < 0)
        return -1;
    *index = v;
    return 0;
}
