/* Internal: json-c helpers used across modules. */
#ifndef IG_JSON_H
#define IG_JSON_H

#include <json-c/json.h>
#include <stdint.h>

/* Parse `text` as JSON. NULL text gives an empty object when allow_null.
 * `what` names the argument in the error ("request_json").
 * Errors: INTEG_EINVAL "request_json: malformed JSON at offset N: ...". */
int ig_json_parse(const char *text, const char *what, int allow_null, json_object **out);

/* Like ig_json_parse but the value must be an object. */
int ig_json_parse_object(const char *text, const char *what, int allow_null, json_object **out);

/* Serialise compactly into a malloc'd string (freed with integ_free/free). */
int ig_json_to_string(json_object *obj, char **out);

/* The same for JSON that holds a secret (credentials): the buffer's earlier
 * blocks are zeroed as it grows. Free the text with ig_free_secret. */
int ig_json_to_secret_string(json_object *obj, char **out);

/* The records of `rows` as the API shows them, pub(row) each (a new
 * object), as one JSON array text in *out (ig_json_to_string). */
int ig_json_public_list(json_object *rows, json_object *(*pub)(json_object *rec), char **out);

/* Field accessors: NULL / default when absent or of another type. */
const char *ig_json_str(json_object *obj, const char *key);
int64_t ig_json_int(json_object *obj, const char *key, int64_t dflt);
int ig_json_bool(json_object *obj, const char *key, int dflt);
json_object *ig_json_get(json_object *obj, const char *key);

/* Read {"limit", "offset"} from a filter: limit must be 0..10000 (0 = default 100),
 * offset >= 0. Errors name the field. */
int ig_json_limit_offset(json_object *filter, const char *what, int64_t *limit, int64_t *offset);

/* json_object_object_foreach that does nothing for NULL or a non-object
 * (json-c's own dereferences it). Same declarations as json-c's. */
#define ig_json_foreach(obj, key, val)                                                              \
    char *key = NULL;                                                                            \
    struct json_object *val __attribute__((__unused__)) = NULL;                                  \
    for (struct lh_entry *entry##key = json_object_get_object(obj) ? json_object_get_object(obj)->head : NULL, \
                         *entry_next##key = NULL;                                                \
         entry##key ? (key = (char *)lh_entry_k(entry##key),                                     \
                       val = (struct json_object *)lh_entry_v(entry##key),                       \
                       entry_next##key = entry##key->next, 1)                                    \
                    : 0;                                                                         \
         entry##key = entry_next##key)

/* Length of an array; 0 for NULL or a non-array (json-c asserts instead). */
size_t ig_json_len(json_object *arr);

/* A list call's filter_json of string equalities into a store query q:
 * each key but limit/offset must be one of `fields` with a string value
 * (INTEG_EINVAL "filter_json.<key>: unknown filter or not a string (use
 * <fields>)"); a "status" must be one of `statuses` when given (its error
 * says `status_rule`, e.g. "must be \"open\" or \"resolved\""). Adds the
 * equalities, limit and offset (ig_json_limit_offset) to q. */
int ig_json_filter_query(json_object *filter, const char *const *fields, const char *const *statuses,
                         const char *status_rule, json_object *q);

/* INTEG_EINVAL "<what>.<key>: unknown <noun>" ("field", "option") for the
 * first key of obj that is not in `known` (NULL-terminated); a typo must not
 * pass silently. INTEG_OK for NULL or a non-object. */
int ig_json_check_keys(json_object *obj, const char *const *known, const char *what, const char *noun);

/* Deep copy. */
json_object *ig_json_copy(json_object *obj);

/* A growing text buffer for ig_json_write. Start it as {stack, 0,
 * sizeof stack, 0, 0} (or all zero) and release with ig_jbuf_free. */
typedef struct ig_jbuf {
    char *p;
    size_t n, cap;
    int heap;         /* p was malloc'd here; IG_JBUF_SECRET: and holds a
                       * secret, zeroed when it grows or is freed */
    int escape_slash; /* set: '/' written as "\/", json-c's PLAIN form
                       * without NOSLASHESCAPE (record hashes use it) */
} ig_jbuf;

#define IG_JBUF_SECRET 2

void ig_jbuf_free(ig_jbuf *b);

/* Append obj's compact text to b, NUL-terminated: the same bytes as
 * json_object_to_json_string_ext(obj, PLAIN | NOSLASHESCAPE) (the store's
 * form; tests/unit/test_json_write.c holds them equal), several times
 * faster, and without caching text in the objects, so it may run on a
 * tree another thread also serialises (parsed doubles and ig_json_raw
 * values print their own text; only a double built without text is
 * formatted, and cached, by json-c). -1 when out of memory. */
int ig_json_write(json_object *obj, ig_jbuf *b);

/* Append n bytes, or a string as ig_json_write writes one (quoted and
 * escaped): for records written without building their objects. -1 when
 * out of memory. */
int ig_jbuf_put(ig_jbuf *b, const char *s, size_t n);
int ig_json_write_string(ig_jbuf *b, const char *s, size_t len);

/* An object that serialises as obj's text at the time of the call (PLAIN,
 * no slash escapes: the store's form) without serialising obj again: for a
 * value written inside several records. Only for serialising: it has no
 * members. NULL when out of memory. */
json_object *ig_json_raw(json_object *obj);

/* Parse `len` bytes of JSON we (or a host callback) wrote; NULL when they do
 * not hold a value. Sets no error: the caller knows what the text was. */
json_object *ig_json_parse_len(const char *text, size_t len);

/* Like ig_json_parse_len (NULL when not exactly one valid value), for text
 * that holds secrets (decrypted credentials, token responses): the
 * tokener's buffer is zeroed before it is freed. ig_json_parse does the
 * same for every API argument. */
json_object *ig_json_parse_secret(const char *text, size_t len);

/* The reply callback of the adapter and entity-store interfaces: parses the
 * reply into *(json_object **)payload, dropping what was there; INTEG_EINVAL
 * when the reply is not JSON. */
int ig_json_reply_into(void *payload, const char *json, size_t len);

/* Zero every string inside `obj` (recursively) and the cached serialisation
 * (print buffer) of `obj` and of every value inside it, then drop the
 * reference: for JSON that held secrets. Values inside that are still
 * referenced elsewhere are zeroed all the same. NULL is fine. */
void ig_json_wipe_put(json_object *obj);
#endif
