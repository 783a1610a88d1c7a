/*
 * Node binding of libintegrations: an N-API addon in C.
 *
 * Design notes (the why):
 *  - No globals. Everything lives in per-environment instance data, so the
 *    addon loads in any number of worker threads, each with its own state.
 *  - integ_ctx and integ_session are wrapped with napi_wrap; a finaliser
 *    closes what an explicit close() did not. Finalisers run in any order:
 *    the C library defers a context's close until its last session closes,
 *    and each Session holds a strong reference to its Context object so the
 *    Context is normally collected last anyway.
 *  - JSON crosses the boundary as text: arguments go through JSON.stringify,
 *    results through JSON.parse (both captured at load time).
 *  - Errors are built by a JS factory that index.js registers, so the
 *    addon throws (and rejects with) the JS error classes directly.
 *  - Methods are table-driven: a method_spec names the C call, its argument
 *    kinds and whether it blocks. Blocking calls run as napi async work and
 *    return a Promise; the thread-local error message is copied on the
 *    worker thread, before anything else can overwrite it.
 *  - JS callbacks the library makes on a worker (the permission check in
 *    integ_sync and in the syncs integ_run_due runs, sync progress) go
 *    through the call's threadsafe function: the C callback queues the
 *    question and blocks until the JS thread has answered, so JS only ever
 *    runs on its own thread.
 *  - Events (integ_ctx_set_event_cb) return nothing, so nobody waits for
 *    them: the C callback copies the JSON and queues it, non-blocking, on
 *    the context's event threadsafe function, from whatever thread raised
 *    it. An async call during which events were queued settles its Promise
 *    through the same queue, behind them, so they reach JS first (see
 *    ev_sink).
 *  - Outputs that may hold secrets (a new webhook secret) are wiped from
 *    the library's buffer after parsing, like inputs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero */
#endif
#define NAPI_VERSION 8
#include <node_api.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integrations/integrations.h"

#define ERRMSG_MAX 1024
#define MAX_ARGS 4

/* ------------------------------------------------------------------------
 * State
 * ---------------------------------------------------------------------- */

typedef struct ctx_wrap ctx_wrap;
typedef struct session_wrap session_wrap;
typedef struct async_op async_op;
typedef struct ev_sink ev_sink;
typedef struct ev_fn ev_fn;

typedef struct addon {
    napi_ref ctx_ctor;
    napi_ref session_ctor;
    napi_ref json_parse;
    napi_ref json_stringify;
    napi_ref error_factory; /* (code, message) => Error, set by index.js */
    /* Constructor hand-off: a native caller parks a handle here, then
     * calls the constructor, which adopts it instead of opening anew. JS
     * cannot reach these, so `new Session()` from JS is refused. */
    integ_ctx *adopt_ctx;
    integ_session *adopt_session;
    ctx_wrap *adopt_cw;
    /* > 0 while the JS permission callback runs: the library is not
     * reentrant from inside its own callback (it would recurse into the
     * permission check or nest transactions on this thread). */
    int in_perm_cb;
    pthread_t thread; /* the environment's JS thread */
} addon;

struct ctx_wrap {
    napi_env env;
    addon *ad;
    integ_ctx *ctx;    /* NULL once really closed */
    bool closed;       /* close() was called (the real close may be pending) */
    unsigned busy;     /* async calls in flight that use ctx */
    napi_ref perm_fn;  /* the JS permission callback, or NULL */
    napi_ref perm_exc; /* the first exception it threw during the current call */
    ev_sink *sink;     /* event delivery; fixed for the wrapper's life */
    /* One for the JS object, one per Session wrapper and one per async
     * call: the C library may call the permission trampoline with this
     * struct as payload for as long as any session is alive, even after
     * the Context object itself was finalised. */
    unsigned refs;
};

struct session_wrap {
    ctx_wrap *cw;
    integ_session *s; /* NULL once really closed */
    bool closed;
    bool finalized; /* the JS object is gone; the last async completion frees */
    unsigned busy;  /* async calls in flight (a session is one thread's at a time) */
    napi_ref ctx_obj; /* strong: keeps the Context object alive */
};

/* Event delivery for one context. The library calls event_trampoline on
 * the thread that raised the event (a pool thread during async work, or a
 * helper thread the library runs for it, like a sync's page fetcher; the
 * JS thread during a synchronous method) with the ctx_wrap as payload; it
 * queues a copy on `cur`'s threadsafe function under `mu`, so that
 * setEventCallback (JS thread) can swap or drop the function at any time.
 * Each function set gets its own tsfn (bound to that JS function): events
 * already queued still reach the function that was set when they were
 * raised. The tsfn is unref'd (a callback does not keep the process
 * alive) except while Promise settle markers wait in its queue. */
struct ev_fn {
    ev_sink *sink;
    napi_threadsafe_function tsfn;
    unsigned markers; /* settle markers queued (JS thread only) */
};

struct ev_sink {
    pthread_mutex_t mu;
    ev_fn *cur;      /* the current callback's, or NULL (under mu) */
    uint64_t queued; /* events queued so far, by any thread (under mu) */
    unsigned refs;   /* JS thread only: 1 for the ctx_wrap + 1 per live ev_fn */
};

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

/* Inputs can carry credentials and keys: wipe them before freeing. */
static void free_secret(char *p)
{
    if (!p)
        return;
    explicit_bzero(p, strlen(p));
    free(p);
}

/* Likewise for a library result (a new webhook secret, OAuth state). */
static void free_out(char *p)
{
    if (!p)
        return;
    explicit_bzero(p, strlen(p));
    integ_free(p);
}

static addon *get_addon(napi_env env)
{
    void *data = NULL;
    if (napi_get_instance_data(env, &data) != napi_ok)
        return NULL;
    return data;
}

/* After a failed napi_* call: surface it unless an exception is already on
 * its way (the usual case: JS code we called threw). */
static void throw_napi_failure(napi_env env, const char *what)
{
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending)
        return;
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    char msg[512];
    snprintf(msg, sizeof msg, "%s failed: %s", what,
             info && info->error_message ? info->error_message : "unknown N-API error");
    napi_throw_error(env, NULL, msg);
}

#define NAPI_CALL(env, call)                                                                       \
    do {                                                                                           \
        if ((call) != napi_ok) {                                                                   \
            throw_napi_failure((env), #call);                                                      \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

/* Same, for helpers that return int (-1: an exception is pending). */
#define NAPI_CHECK(env, call)                                                                      \
    do {                                                                                           \
        if ((call) != napi_ok) {                                                                   \
            throw_napi_failure((env), #call);                                                      \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* Build the JS error for a library code: the registered factory makes the
 * IntegrationsError subclass; without one, a plain Error with .code. */
static napi_value make_error(napi_env env, int code, const char *message)
{
    if (!message || !*message)
        message = integ_strerror(code);
    addon *ad = get_addon(env);
    napi_value msg, jcode, err = NULL;
    if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
        napi_create_int32(env, code, &jcode) != napi_ok)
        return NULL;
    napi_value factory = NULL;
    if (ad && ad->error_factory && napi_get_reference_value(env, ad->error_factory, &factory) == napi_ok &&
        factory) {
        napi_value global, argv[2] = {jcode, msg};
        if (napi_get_global(env, &global) == napi_ok &&
            napi_call_function(env, global, factory, 2, argv, &err) == napi_ok)
            return err;
        return NULL; /* the factory threw: let that exception through */
    }
    if (napi_create_error(env, NULL, msg, &err) != napi_ok ||
        napi_set_named_property(env, err, "code", jcode) != napi_ok)
        return NULL;
    return err;
}

static void throw_code(napi_env env, int code, const char *message)
{
    napi_value err = make_error(env, code, message);
    if (err)
        napi_throw(env, err);
    else
        throw_napi_failure(env, "creating an error");
}

static void throw_inval(napi_env env, const char *fmt, const char *name)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, name);
    throw_code(env, INTEG_EINVAL, msg);
}

/* A required string argument, copied. Embedded NULs are refused rather
 * than silently truncating an id at the C boundary. */
static int arg_string(napi_env env, napi_value v, const char *name, char **out)
{
    *out = NULL;
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, v, &t));
    if (t != napi_string) {
        throw_inval(env, "%s: must be a string", name);
        return -1;
    }
    size_t len = 0;
    NAPI_CHECK(env, napi_get_value_string_utf8(env, v, NULL, 0, &len));
    char *buf = malloc(len + 1);
    if (!buf) {
        throw_code(env, INTEG_ENOMEM, "out of memory");
        return -1;
    }
    if (napi_get_value_string_utf8(env, v, buf, len + 1, &len) != napi_ok) {
        free(buf);
        throw_napi_failure(env, "napi_get_value_string_utf8");
        return -1;
    }
    if (strlen(buf) != len) {
        free(buf);
        throw_inval(env, "%s: must not contain NUL characters", name);
        return -1;
    }
    *out = buf;
    return 0;
}

/* A JSON argument: undefined/null pass NULL (the library's default or its
 * own "required" error); anything else goes through JSON.stringify. */
static int arg_json(napi_env env, napi_value v, const char *name, char **out)
{
    *out = NULL;
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, v, &t));
    if (t == napi_undefined || t == napi_null)
        return 0;
    addon *ad = get_addon(env);
    napi_value fn, json, global;
    NAPI_CHECK(env, napi_get_reference_value(env, ad->json_stringify, &fn));
    NAPI_CHECK(env, napi_get_global(env, &global));
    if (napi_call_function(env, global, fn, 1, &v, &json) != napi_ok) {
        /* Cycles and BigInts: report as an invalid argument, keeping the
         * engine's explanation. */
        napi_value exc, emsg = NULL;
        char text[512] = "cannot be converted to JSON";
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok &&
            napi_coerce_to_string(env, exc, &emsg) == napi_ok)
            napi_get_value_string_utf8(env, emsg, text, sizeof text, NULL);
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s", name, text);
        throw_code(env, INTEG_EINVAL, msg);
        return -1;
    }
    NAPI_CHECK(env, napi_typeof(env, json, &t));
    if (t != napi_string) {
        throw_inval(env, "%s: cannot be represented as JSON", name);
        return -1;
    }
    return arg_string(env, json, name, out);
}

static napi_value parse_json(napi_env env, const char *text)
{
    addon *ad = get_addon(env);
    napi_value fn, str, global, result;
    NAPI_CALL(env, napi_get_reference_value(env, ad->json_parse, &fn));
    NAPI_CALL(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &str));
    NAPI_CALL(env, napi_get_global(env, &global));
    NAPI_CALL(env, napi_call_function(env, global, fn, 1, &str, &result));
    return result;
}

static napi_value undefined(napi_env env)
{
    napi_value u = NULL;
    napi_get_undefined(env, &u);
    return u;
}

/* Refuse calls made from inside the permission callback (see addon). */
static int check_not_in_callback(napi_env env, addon *ad)
{
    if (ad && ad->in_perm_cb) {
        throw_code(env, INTEG_EINVAL,
                   "libintegrations cannot be called from inside the permission callback");
        return -1;
    }
    return 0;
}

/* Which native struct an object wraps. napi_unwrap hands back whatever
 * was wrapped, and accessors defined by napi_define_class get no receiver
 * check from V8 (methods do: "Illegal invocation"), so a getter borrowed
 * with Object.getOwnPropertyDescriptor and called on the other class's
 * object would read a ctx_wrap as a session_wrap. Each constructor tags
 * its object; everything that unwraps `this` checks the tag first. The
 * tags are constants (random 128-bit values), not state. */
static const napi_type_tag CTX_TAG = {0x6c9d1f0e4b7a4c21ULL, 0x9e3b5a7d2f814c06ULL};
static const napi_type_tag SESSION_TAG = {0x2a5e8c4f17d34b9eULL, 0xb41c7e9a05f2463dULL};

/* The struct behind `obj` if it is a live object of the tagged class;
 * otherwise NULL with a TypeError thrown. */
static void *unwrap_tagged(napi_env env, napi_value obj, const napi_type_tag *tag, const char *cls)
{
    napi_valuetype t = napi_undefined;
    bool tagged = false;
    void *w = NULL;
    if (obj && napi_typeof(env, obj, &t) == napi_ok && (t == napi_object || t == napi_function) &&
        napi_check_object_type_tag(env, obj, tag, &tagged) == napi_ok && tagged &&
        napi_unwrap(env, obj, &w) == napi_ok && w)
        return w;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) {
        char msg[96];
        snprintf(msg, sizeof msg, "Illegal invocation: `this` is not a %s object", cls);
        napi_throw_type_error(env, NULL, msg);
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Lifetimes
 * ---------------------------------------------------------------------- */

static void sink_unref(ev_sink *k)
{
    if (--k->refs > 0)
        return;
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* Stop delivering events through the current function (JS thread). Events
 * already queued are still delivered; the tsfn's finaliser drops its
 * reference to the sink once its queue is empty. */
static void sink_detach(ev_sink *k)
{
    pthread_mutex_lock(&k->mu);
    ev_fn *old = k->cur;
    k->cur = NULL;
    pthread_mutex_unlock(&k->mu);
    if (old)
        napi_release_threadsafe_function(old->tsfn, napi_tsfn_release);
}

static void cw_unref(napi_env env, ctx_wrap *cw)
{
    if (--cw->refs > 0)
        return;
    if (cw->perm_fn)
        napi_delete_reference(env, cw->perm_fn);
    if (cw->perm_exc)
        napi_delete_reference(env, cw->perm_exc);
    /* The C context is closed by now (sessions and calls hold refs), so
     * the library can no longer call event_trampoline with cw. */
    if (cw->sink) {
        sink_detach(cw->sink);
        sink_unref(cw->sink);
    }
    free(cw);
}

/* The real close, once nothing in flight uses the handle. */
static void cw_maybe_close(ctx_wrap *cw)
{
    if (cw->closed && cw->busy == 0 && cw->ctx) {
        integ_ctx_close(cw->ctx);
        cw->ctx = NULL;
    }
}

static void sw_maybe_close(session_wrap *sw)
{
    if (sw->closed && sw->busy == 0 && sw->s) {
        integ_session_close(sw->s);
        sw->s = NULL;
    }
}

static void ctx_finalize(napi_env env, void *data, void *hint)
{
    (void)hint;
    ctx_wrap *cw = data;
    cw->closed = true;
    cw_maybe_close(cw); /* if busy, the async completion closes it */
    cw_unref(env, cw);
}

static void session_finalize(napi_env env, void *data, void *hint)
{
    (void)hint;
    session_wrap *sw = data;
    sw->closed = true;
    sw_maybe_close(sw);
    if (sw->ctx_obj)
        napi_delete_reference(env, sw->ctx_obj);
    sw->ctx_obj = NULL;
    ctx_wrap *cw = sw->cw;
    /* An async call still in flight (only possible at environment
     * teardown: the call holds a reference to this object) frees sw when
     * it completes. */
    sw->finalized = true;
    if (!sw->busy)
        free(sw);
    cw_unref(env, cw);
}

/* ------------------------------------------------------------------------
 * Permission callback
 * ---------------------------------------------------------------------- */

/* Keep the first exception a JS callback threw during one library call in
 * *slot, for the method (or the Promise) to surface. References to
 * primitives need Node-API 10, and JS may throw anything: the exception
 * goes into a holder object {value}. Clears the pending exception. */
static void park_exception(napi_env env, napi_ref *slot)
{
    bool pending = false;
    napi_value exc, holder;
    if (napi_is_exception_pending(env, &pending) != napi_ok || !pending ||
        napi_get_and_clear_last_exception(env, &exc) != napi_ok || *slot)
        return;
    if (napi_create_object(env, &holder) == napi_ok &&
        napi_set_named_property(env, holder, "value", exc) == napi_ok)
        napi_create_reference(env, holder, 1, slot);
}

/* Run the JS permission callback; on the JS thread only. Returns 1 to
 * allow. An exception it throws denies and is parked in *exc_slot. */
static int perm_call_js(napi_env env, ctx_wrap *cw, const char *const texts[4], napi_ref *exc_slot)
{
    if (!cw->perm_fn) /* cleared while an async call was waiting for it */
        return 0;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok)
        return 0;
    int allow = 0;
    napi_value fn, global, argv[4], result;
    bool ok = napi_get_reference_value(env, cw->perm_fn, &fn) == napi_ok && fn &&
              napi_get_global(env, &global) == napi_ok;
    for (int i = 0; ok && i < 4; i++)
        ok = napi_create_string_utf8(env, texts[i] ? texts[i] : "", NAPI_AUTO_LENGTH, &argv[i]) ==
             napi_ok;
    if (ok) {
        cw->ad->in_perm_cb++;
        napi_status st = napi_call_function(env, global, fn, 4, argv, &result);
        cw->ad->in_perm_cb--;
        if (st == napi_ok) {
            /* Only a real `true` allows: a security check should not
             * open on truthy accidents like a returned Promise. */
            napi_valuetype t;
            bool b = false;
            if (napi_typeof(env, result, &t) == napi_ok && t == napi_boolean &&
                napi_get_value_bool(env, result, &b) == napi_ok && b)
                allow = 1;
        } else {
            park_exception(env, exc_slot);
        }
    }
    napi_close_handle_scope(env, scope);
    return allow;
}

static int worker_permission(ctx_wrap *cw, const char *const texts[4]);

/* The library calls this with the context's ctx_wrap as payload. Inside a
 * synchronous session call it runs on the JS thread, in the middle of one
 * of our methods: the JS function is called directly and an exception is
 * parked in cw->perm_exc, rethrown by the method. Inside an async call
 * (integ_sync checks on the worker) it asks the JS thread through the
 * call's threadsafe function and waits for the verdict; from any other
 * thread it cannot reach JS, so it denies. */
static int perm_trampoline(void *payload, const char *tenant_id, const char *user_id,
                           const char *resource, const char *action)
{
    ctx_wrap *cw = payload;
    if (!cw)
        return 0;
    const char *const texts[4] = {tenant_id, user_id, resource, action};
    if (!pthread_equal(pthread_self(), cw->ad->thread))
        return worker_permission(cw, texts);
    return perm_call_js(cw->env, cw, texts, &cw->perm_exc);
}

/* If the permission callback threw during the call just made, throw that
 * (it explains the denial better than EPERM does). Returns 1 if thrown. */
static int rethrow_perm_exception(napi_env env, ctx_wrap *cw)
{
    if (!cw || !cw->perm_exc)
        return 0;
    napi_value holder = NULL, exc = NULL;
    napi_get_reference_value(env, cw->perm_exc, &holder);
    napi_delete_reference(env, cw->perm_exc);
    cw->perm_exc = NULL;
    if (holder && napi_get_named_property(env, holder, "value", &exc) == napi_ok)
        napi_throw(env, exc);
    else
        throw_code(env, INTEG_EINTERNAL, "the permission callback threw, and it was lost");
    return 1;
}

/* ------------------------------------------------------------------------
 * Generic method dispatch and async work
 * ---------------------------------------------------------------------- */

/* One library call: `handle` is an integ_ctx * or integ_session *, `a`
 * the converted arguments, `out` the JSON result (when the spec has one). */
typedef int (*call_fn)(void *handle, char *const *a, char **out);

typedef struct method_spec {
    const char *name; /* JS name */
    /* One char per argument: 's' string, 'S' optional string (undefined or
     * null pass NULL), 'j' JSON, 'n' optional integer (undefined or null
     * pass NULL: the call's default; else its decimal text, in int range),
     * 'o' an options object of JS callbacks ({onProgress}; blocking
     * methods only, nothing in a[]). */
    const char *args;
    const char *const *arg_names; /* for messages */
    call_fn call;
    bool has_out;  /* resolves/returns the parsed JSON result */
    bool blocking; /* runs on the thread pool and returns a Promise */
} method_spec;

/* Builds the resolution value on the JS thread (NULL: exception pending). */
typedef napi_value (*done_fn)(napi_env env, async_op *op);

/* A question from the worker to the JS thread, answered by op_call_js. */
enum { CB_PERMISSION, CB_PROGRESS };
typedef struct cb_request {
    int kind;
    const char *texts[4]; /* permission: tenant, user, resource, action; progress: JSON */
    int verdict;          /* permission: 1 allows; progress: non-zero cancels */
    bool done;
} cb_request;

struct async_op {
    napi_async_work work;
    napi_deferred deferred;
    const method_spec *spec;
    void *handle;
    char *a[MAX_ARGS];
    ctx_wrap *cw;     /* pinned: its close waits for us */
    session_wrap *sw; /* likewise, may be NULL */
    napi_ref keep;    /* the JS object behind cw/sw */
    done_fn done;     /* NULL: resolve with the parsed JSON or undefined */
    /* Results, written on the worker thread. */
    int rc;
    char *out; /* also on failure when the library wrote one (a canceled sync) */
    integ_ctx *out_ctx; /* a context opened on the worker (Context.open) */
    char errmsg[ERRMSG_MAX];
    /* JS callbacks from the worker (calls on a Context or Session): the
     * permission callback and onProgress run on the JS thread through
     * `tsfn`; the worker blocks on `cv` until the answer is in. */
    napi_threadsafe_function tsfn;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool tsfn_gone;        /* finalised or closing: never call it again (under mu) */
    napi_ref progress_fn;  /* onProgress, or NULL */
    napi_ref cb_exc;       /* holder of the first exception a callback threw */
    unsigned refs;         /* 1 for the call + 1 while the tsfn exists (JS thread only) */
    /* The sink's `queued` when the call was queued: if events were queued
     * since, the Promise settles behind them. Not only the events the pool
     * thread raised: the library raises some on helper threads of its own
     * (a sync's page fetcher refreshing a token: integration.needs_reauth),
     * where tl_op cannot tell which call they belong to. */
    uint64_t ev_mark;
    napi_status status; /* the async work's completion status */
};

/* The async call running on this thread-pool thread, for the permission
 * trampoline (whose payload is the context, not the call) and progress.
 * Set around the library call only; a pool thread runs one call at a time,
 * whichever environment queued it, so this is not shared state. */
static _Thread_local async_op *tl_op;

static async_op *op_new(void)
{
    async_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    if (pthread_mutex_init(&op->mu, NULL) != 0) {
        free(op);
        return NULL;
    }
    if (pthread_cond_init(&op->cv, NULL) != 0) {
        pthread_mutex_destroy(&op->mu);
        free(op);
        return NULL;
    }
    op->refs = 1;
    return op;
}

static void op_unref(async_op *op)
{
    if (--op->refs > 0)
        return;
    pthread_cond_destroy(&op->cv);
    pthread_mutex_destroy(&op->mu);
    free(op);
}

static void op_free(napi_env env, async_op *op)
{
    for (int i = 0; i < MAX_ARGS; i++)
        free_secret(op->a[i]);
    memset(op->a, 0, sizeof op->a);
    free_out(op->out);
    op->out = NULL;
    integ_ctx_close(op->out_ctx); /* opened but never adopted */
    op->out_ctx = NULL;
    napi_ref refs[] = {op->keep, op->progress_fn, op->cb_exc};
    for (size_t i = 0; i < sizeof refs / sizeof *refs; i++)
        if (refs[i])
            napi_delete_reference(env, refs[i]);
    op->keep = op->progress_fn = op->cb_exc = NULL;
    if (op->work)
        napi_delete_async_work(env, op->work);
    op->work = NULL;
    /* The tsfn's finaliser drops the second reference. If it already ran
     * (environment teardown) or the worker was told it is closing, the
     * tsfn must not be touched again. */
    pthread_mutex_lock(&op->mu);
    napi_threadsafe_function tsfn = op->tsfn_gone ? NULL : op->tsfn;
    pthread_mutex_unlock(&op->mu);
    op_unref(op);
    if (tsfn)
        napi_release_threadsafe_function(tsfn, napi_tsfn_release);
}

static void op_tsfn_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    async_op *op = data;
    pthread_mutex_lock(&op->mu);
    op->tsfn_gone = true;
    pthread_mutex_unlock(&op->mu);
    op_unref(op);
}

/* onProgress(progress) on the JS thread. Only `true` cancels; so does a
 * throw (parked in op->cb_exc: the Promise rejects with it). */
static int progress_call_js(napi_env env, async_op *op, const char *json)
{
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok)
        return 1;
    int cancel = 1;
    napi_value fn = NULL, global, arg, result;
    if (op->progress_fn && napi_get_reference_value(env, op->progress_fn, &fn) == napi_ok && fn &&
        napi_get_global(env, &global) == napi_ok && (arg = parse_json(env, json)) != NULL &&
        napi_call_function(env, global, fn, 1, &arg, &result) == napi_ok) {
        napi_valuetype t;
        bool b = false;
        cancel = napi_typeof(env, result, &t) == napi_ok && t == napi_boolean &&
                 napi_get_value_bool(env, result, &b) == napi_ok && b;
    }
    park_exception(env, &op->cb_exc);
    napi_close_handle_scope(env, scope);
    return cancel;
}

/* The tsfn's call_js: answer one cb_request, then wake the worker. With
 * env NULL (the tsfn is being torn down) nothing can run: deny / cancel. */
static void op_call_js(napi_env env, napi_value js_cb, void *context, void *data)
{
    (void)js_cb;
    async_op *op = context;
    cb_request *req = data;
    int verdict = req->kind == CB_PROGRESS ? 1 : 0;
    if (env) {
        if (req->kind == CB_PERMISSION)
            verdict = perm_call_js(env, op->cw, req->texts, &op->cb_exc);
        else
            verdict = progress_call_js(env, op, req->texts[0]);
    }
    pthread_mutex_lock(&op->mu);
    req->verdict = verdict;
    req->done = true;
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
}

/* Worker thread: ask the JS thread and wait for its answer; `fallback`
 * (deny / cancel) when it cannot be asked. */
static int op_ask_js(async_op *op, cb_request *req, int fallback)
{
    pthread_mutex_lock(&op->mu);
    bool gone = op->tsfn_gone || !op->tsfn;
    pthread_mutex_unlock(&op->mu);
    if (gone)
        return fallback;
    if (napi_call_threadsafe_function(op->tsfn, req, napi_tsfn_blocking) != napi_ok) {
        pthread_mutex_lock(&op->mu);
        op->tsfn_gone = true; /* napi_closing: the tsfn is no longer ours to use */
        pthread_mutex_unlock(&op->mu);
        return fallback;
    }
    pthread_mutex_lock(&op->mu);
    while (!req->done)
        pthread_cond_wait(&op->cv, &op->mu);
    int verdict = req->verdict;
    pthread_mutex_unlock(&op->mu);
    return verdict;
}

static int worker_permission(ctx_wrap *cw, const char *const texts[4])
{
    async_op *op = tl_op;
    if (!op || op->cw != cw)
        return 0; /* not inside one of our async calls: no way to JS */
    cb_request req = {CB_PERMISSION, {texts[0], texts[1], texts[2], texts[3]}, 0, false};
    return op_ask_js(op, &req, 0) == 1;
}

/* integ_progress_cb for a call with onProgress; payload is the op. */
static int progress_trampoline(void *payload, const char *progress_json)
{
    cb_request req = {CB_PROGRESS, {progress_json, NULL, NULL, NULL}, 1, false};
    return op_ask_js(payload, &req, 1);
}

/* Worker thread: no N-API calls allowed here (except the tsfn's). */
static void op_execute(napi_env env, void *data)
{
    (void)env;
    async_op *op = data;
    tl_op = op;
    op->rc = op->spec->call(op->handle, op->a, op->spec->has_out ? &op->out : NULL);
    if (op->rc != INTEG_OK)
        snprintf(op->errmsg, sizeof op->errmsg, "%s", integ_errmsg());
    tl_op = NULL;
}

/* ------------------------------------------------------------------------
 * Events (integ_ctx_set_event_cb)
 * ---------------------------------------------------------------------- */

static void op_settle(napi_env env, async_op *op);

/* One queued item: an event's JSON, or (op set) a Promise to settle. */
typedef struct ev_item {
    async_op *op;
    char json[];
} ev_item;

/* The library's event callback; any thread. Never blocks on JS: the
 * event is copied and queued (an event that cannot be queued, out of
 * memory or during teardown, is dropped). */
static void event_trampoline(void *payload, const char *event_json)
{
    ctx_wrap *cw = payload;
    if (!cw || !cw->sink || !event_json)
        return;
    size_t n = strlen(event_json);
    ev_item *it = malloc(sizeof *it + n + 1);
    if (!it)
        return;
    it->op = NULL;
    memcpy(it->json, event_json, n + 1);
    ev_sink *k = cw->sink;
    pthread_mutex_lock(&k->mu);
    napi_status st = k->cur ? napi_call_threadsafe_function(k->cur->tsfn, it, napi_tsfn_nonblocking)
                            : napi_closing;
    if (st == napi_ok)
        k->queued++;
    pthread_mutex_unlock(&k->mu);
    if (st != napi_ok)
        free(it);
}

/* The event tsfn's call_js (JS thread; env NULL when the environment is
 * being torn down and nothing can run). An event calls the function the
 * tsfn was made for with the parsed event; what it throws is an uncaught
 * exception, as from an EventEmitter listener (it has no caller to throw
 * to). A settle marker settles its call's Promise. */
static void ev_call_js(napi_env env, napi_value js_cb, void *context, void *data)
{
    ev_fn *f = context;
    ev_item *it = data;
    if (it->op) {
        if (env) {
            if (--f->markers == 0)
                napi_unref_threadsafe_function(env, f->tsfn);
            op_settle(env, it->op);
        }
        /* Else the environment is going away with the Promise: the op
         * (a few hundred bytes) is leaked rather than touched without an
         * env. */
        free(it);
        return;
    }
    if (env && js_cb) {
        napi_value event = parse_json(env, it->json), global, result;
        if (event && napi_get_global(env, &global) == napi_ok)
            napi_call_function(env, global, js_cb, 1, &event, &result);
        bool pending = false;
        napi_value exc;
        if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
            napi_get_and_clear_last_exception(env, &exc) == napi_ok)
            napi_fatal_exception(env, exc);
    }
    free(it);
}

static void ev_fn_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    ev_fn *f = data;
    ev_sink *k = f->sink;
    pthread_mutex_lock(&k->mu);
    if (k->cur == f) /* torn down by the environment, not replaced */
        k->cur = NULL;
    pthread_mutex_unlock(&k->mu);
    sink_unref(k);
    free(f);
}

/* op_complete: if events were queued while the call ran (its own, or any
 * other of the context's: which thread raised what cannot always be told),
 * queue the settling behind them on the current callback's queue and
 * return 1. Events queued to a callback replaced meanwhile go through its
 * own queue, which this cannot order against. */
static int ev_queue_settle(napi_env env, async_op *op)
{
    if (!op->cw || !op->cw->sink)
        return 0;
    ev_sink *k = op->cw->sink;
    pthread_mutex_lock(&k->mu);
    bool raised = k->cur && k->queued != op->ev_mark;
    pthread_mutex_unlock(&k->mu);
    if (!raised)
        return 0;
    ev_item *it = malloc(sizeof *it + 1);
    if (!it)
        return 0;
    it->op = op;
    it->json[0] = '\0';
    int queued = 0;
    pthread_mutex_lock(&k->mu);
    ev_fn *f = k->cur;
    if (f && napi_call_threadsafe_function(f->tsfn, it, napi_tsfn_nonblocking) == napi_ok) {
        queued = 1;
        /* An unref'd tsfn would let the process exit with the Promise
         * pending: hold the loop until the marker is through. */
        if (f->markers++ == 0)
            napi_ref_threadsafe_function(env, f->tsfn);
    }
    pthread_mutex_unlock(&k->mu);
    if (!queued)
        free(it);
    return queued;
}


static void op_complete(napi_env env, napi_status status, void *data)
{
    async_op *op = data;
    op->status = status;
    if (op->sw) {
        op->sw->busy--;
        sw_maybe_close(op->sw);
        if (op->sw->finalized && op->sw->busy == 0)
            free(op->sw);
        op->sw = NULL;
    }
    if (op->cw) {
        op->cw->busy--;
        cw_maybe_close(op->cw);
    }
    /* Events the call raised are queued for the JS thread: settle behind
     * them, through the same queue, so the handler has seen them first. */
    if (ev_queue_settle(env, op))
        return;
    op_settle(env, op);
}

/* Resolve or reject the call's Promise, then free it (JS thread). */
static void op_settle(napi_env env, async_op *op)
{
    napi_value value = NULL, holder = NULL;
    bool ok = false;
    if (op->status == napi_cancelled) {
        value = make_error(env, INTEG_ECANCELED, "the call was canceled before it started");
    } else if (op->cb_exc) {
        /* A callback threw (which denied or canceled): reject with that. */
        if (napi_get_reference_value(env, op->cb_exc, &holder) != napi_ok || !holder ||
            napi_get_named_property(env, holder, "value", &value) != napi_ok)
            value = make_error(env, INTEG_EINTERNAL, "a callback threw, and it was lost");
    } else if (op->rc != INTEG_OK) {
        value = make_error(env, op->rc, op->errmsg);
        if (value && op->out) {
            /* The library reported a result with the failure (a canceled
             * sync says what it committed): hang it on the error. */
            napi_value result = parse_json(env, op->out);
            if (!result || napi_set_named_property(env, value, "result", result) != napi_ok)
                value = NULL;
        }
    } else if (op->done) {
        value = op->done(env, op);
        ok = value != NULL;
    } else if (op->out) {
        value = parse_json(env, op->out);
        ok = value != NULL;
    } else {
        value = undefined(env);
        ok = true;
    }
    if (!value) {
        /* Building the value threw: reject with that exception. */
        ok = false;
        if (napi_get_and_clear_last_exception(env, &value) != napi_ok || !value)
            value = undefined(env);
    }
    if (ok)
        napi_resolve_deferred(env, op->deferred, value);
    else
        napi_reject_deferred(env, op->deferred, value);
    if (op->cw)
        cw_unref(env, op->cw);
    op_free(env, op);
}

/* Queue `op` (handle, args and spec filled in) and return its Promise.
 * Takes ownership of op in every case. A call on a context or session gets
 * a threadsafe function, so that the library may call the permission
 * callback (and progress) from the worker: integ_sync checks it, and so
 * do the syncs integ_run_due runs as the tenant's "scheduler". */
static napi_value op_queue(napi_env env, async_op *op, napi_value keep_obj)
{
    napi_value promise = NULL, name;
    if (keep_obj && napi_create_reference(env, keep_obj, 1, &op->keep) != napi_ok)
        goto fail;
    if (napi_create_promise(env, &op->deferred, &promise) != napi_ok ||
        napi_create_string_utf8(env, op->spec->name, NAPI_AUTO_LENGTH, &name) != napi_ok)
        goto fail;
    if (op->cw) {
        if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, op, op_tsfn_finalize, op,
                                            op_call_js, &op->tsfn) != napi_ok)
            goto fail;
        op->refs++; /* dropped by op_tsfn_finalize */
    }
    if (napi_create_async_work(env, NULL, name, op_execute, op_complete, op, &op->work) != napi_ok)
        goto fail;
    if (op->cw && op->cw->sink) {
        pthread_mutex_lock(&op->cw->sink->mu);
        op->ev_mark = op->cw->sink->queued;
        pthread_mutex_unlock(&op->cw->sink->mu);
    }
    if (op->cw) {
        op->cw->refs++;
        op->cw->busy++;
    }
    if (op->sw)
        op->sw->busy++;
    if (napi_queue_async_work(env, op->work) != napi_ok) {
        if (op->cw) {
            op->cw->busy--;
            op->cw->refs--;
        }
        if (op->sw)
            op->sw->busy--;
        goto fail;
    }
    return promise;
fail:
    throw_napi_failure(env, "queueing async work");
    /* A created deferred cannot be dropped silently: settle it. */
    if (op->deferred) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
            napi_reject_deferred(env, op->deferred, exc);
            op_free(env, op);
            return promise;
        }
    }
    op_free(env, op);
    return NULL;
}

/* An options object of JS callbacks: undefined/null, or {onProgress}. */
static int arg_callbacks(napi_env env, napi_value v, const char *name, napi_value *on_progress)
{
    *on_progress = NULL;
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, v, &t));
    if (t == napi_undefined || t == napi_null)
        return 0;
    if (t != napi_object) {
        throw_inval(env, "%s: must be an object like {onProgress}", name);
        return -1;
    }
    napi_value keys, fn;
    uint32_t n = 0;
    NAPI_CHECK(env, napi_get_all_property_names(env, v, napi_key_own_only,
                                                napi_key_enumerable | napi_key_skip_symbols,
                                                napi_key_numbers_to_strings, &keys));
    NAPI_CHECK(env, napi_get_array_length(env, keys, &n));
    for (uint32_t i = 0; i < n; i++) {
        napi_value k;
        char key[128] = "";
        NAPI_CHECK(env, napi_get_element(env, keys, i, &k));
        NAPI_CHECK(env, napi_get_value_string_utf8(env, k, key, sizeof key, NULL));
        if (strcmp(key, "onProgress") != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s.%s: unknown option (use onProgress)", name, key);
            throw_code(env, INTEG_EINVAL, msg);
            return -1;
        }
    }
    NAPI_CHECK(env, napi_get_named_property(env, v, "onProgress", &fn));
    NAPI_CHECK(env, napi_typeof(env, fn, &t));
    if (t == napi_function) {
        *on_progress = fn;
    } else if (t != napi_undefined && t != napi_null) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s.onProgress: must be a function", name);
        throw_code(env, INTEG_EINVAL, msg);
        return -1;
    }
    return 0;
}

/* An optional integer in int range: NULL for undefined/null (the call's
 * default), else its decimal text. */
static int arg_int(napi_env env, napi_value v, const char *name, char **out)
{
    *out = NULL;
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, v, &t));
    if (t == napi_undefined || t == napi_null)
        return 0;
    double d = 0;
    /* The range test first: it also rejects NaN before the cast. */
    if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok ||
        !(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int)d) {
        throw_inval(env, "%s: must be an integer", name);
        return -1;
    }
    char buf[16];
    snprintf(buf, sizeof buf, "%d", (int)d);
    if (!(*out = strdup(buf))) {
        throw_code(env, INTEG_ENOMEM, "out of memory");
        return -1;
    }
    return 0;
}

/* Convert argv per spec into a[]; -1 with an exception pending on error.
 * An 'o' argument's onProgress goes to *on_progress (NULL: not wanted). */
static int convert_args(napi_env env, const method_spec *spec, napi_value *argv, char **a,
                        napi_value *on_progress)
{
    for (size_t i = 0; spec->args[i]; i++) {
        const char *name = spec->arg_names[i];
        napi_valuetype t = napi_undefined;
        int rc = 0;
        switch (spec->args[i]) {
        case 's':
            rc = arg_string(env, argv[i], name, &a[i]);
            break;
        case 'S':
            if (napi_typeof(env, argv[i], &t) != napi_ok) {
                throw_napi_failure(env, "napi_typeof");
                rc = -1;
            } else if (t != napi_undefined && t != napi_null) {
                rc = arg_string(env, argv[i], name, &a[i]);
            }
            break;
        case 'n':
            rc = arg_int(env, argv[i], name, &a[i]);
            break;
        case 'o': {
            napi_value fn = NULL;
            rc = arg_callbacks(env, argv[i], name, &fn);
            if (on_progress)
                *on_progress = fn;
            break;
        }
        default:
            rc = arg_json(env, argv[i], name, &a[i]);
            break;
        }
        if (rc) {
            for (size_t j = 0; j < i; j++) {
                free_secret(a[j]);
                a[j] = NULL;
            }
            return -1;
        }
    }
    return 0;
}

/* The shared body of every table-driven method, on a Context or Session:
 * resolve `this`, convert arguments (which may run user toJSON code, so
 * the open check comes after), then call now or queue as async work. */
static napi_value dispatch(napi_env env, napi_callback_info info, bool on_session)
{
    size_t argc = MAX_ARGS;
    napi_value argv[MAX_ARGS], self;
    void *data = NULL;
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, &data));
    const method_spec *spec = data;
    addon *ad = get_addon(env);
    if (check_not_in_callback(env, ad))
        return NULL;
    void *wrapped = on_session ? unwrap_tagged(env, self, &SESSION_TAG, "Session")
                               : unwrap_tagged(env, self, &CTX_TAG, "Context");
    if (!wrapped)
        return NULL;
    session_wrap *sw = on_session ? wrapped : NULL;
    ctx_wrap *cw = on_session ? sw->cw : wrapped;

    char *a[MAX_ARGS] = {0};
    napi_value on_progress = NULL;
    if (convert_args(env, spec, argv, a, &on_progress))
        return NULL;
    void *handle = on_session ? (void *)(sw->closed ? NULL : sw->s)
                              : (void *)(cw->closed ? NULL : cw->ctx);
    if (!handle || (sw && sw->busy)) {
        for (int i = 0; i < MAX_ARGS; i++)
            free_secret(a[i]);
        if (handle)
            throw_code(env, INTEG_ECONFLICT,
                       "session: an asynchronous call is still running on this session");
        else
            throw_code(env, INTEG_EINVAL,
                       on_session ? "session: the session is closed" : "ctx: the context is closed");
        return NULL;
    }

    if (spec->blocking) {
        async_op *op = op_new();
        if (!op) {
            for (int i = 0; i < MAX_ARGS; i++)
                free_secret(a[i]);
            throw_code(env, INTEG_ENOMEM, "out of memory");
            return NULL;
        }
        op->spec = spec;
        op->handle = handle;
        memcpy(op->a, a, sizeof a);
        op->cw = cw;
        op->sw = sw;
        if (on_progress && napi_create_reference(env, on_progress, 1, &op->progress_fn) != napi_ok) {
            throw_napi_failure(env, "napi_create_reference");
            op_free(env, op);
            return NULL;
        }
        return op_queue(env, op, self);
    }

    char *out = NULL;
    int rc = spec->call(handle, a, spec->has_out ? &out : NULL);
    /* Copy the message before anything else can run on this thread. */
    char errmsg[ERRMSG_MAX] = "";
    if (rc != INTEG_OK)
        snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
    for (int i = 0; i < MAX_ARGS; i++)
        free_secret(a[i]);
    if (rethrow_perm_exception(env, cw)) {
        free_out(out);
        return NULL;
    }
    if (rc != INTEG_OK) {
        free_out(out);
        throw_code(env, rc, errmsg);
        return NULL;
    }
    if (!out)
        return undefined(env);
    napi_value result = parse_json(env, out);
    free_out(out);
    return result;
}

/* A Promise-returning method reports every failure, argument errors
 * included, as a rejection: callers then need only one error path. */
static napi_value reject_pending(napi_env env)
{
    bool pending = false;
    napi_value exc, promise;
    napi_deferred deferred;
    /* Most N-API calls refuse to run while an exception is pending, so
     * take it first; if the promise cannot be made, throw it again. */
    if (napi_is_exception_pending(env, &pending) != napi_ok || !pending ||
        napi_get_and_clear_last_exception(env, &exc) != napi_ok)
        return NULL;
    if (napi_create_promise(env, &deferred, &promise) != napi_ok) {
        napi_throw(env, exc);
        return NULL;
    }
    napi_reject_deferred(env, deferred, exc);
    return promise;
}

static napi_value dispatch_outer(napi_env env, napi_callback_info info, bool on_session)
{
    void *data = NULL;
    size_t argc = 0;
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, NULL, NULL, &data));
    const method_spec *spec = data;
    napi_value r = dispatch(env, info, on_session);
    return r || !spec->blocking ? r : reject_pending(env);
}

static napi_value ctx_dispatch(napi_env env, napi_callback_info info)
{
    return dispatch_outer(env, info, false);
}

static napi_value session_dispatch(napi_env env, napi_callback_info info)
{
    return dispatch_outer(env, info, true);
}

/* ------------------------------------------------------------------------
 * HTTP requests (webhook deliveries) from JS
 * ---------------------------------------------------------------------- */

/* A delivery as the C calls take it. Header values can hold credentials
 * (the "basic" scheme): everything is wiped when freed. */
typedef struct http_req {
    char *method; /* NULL: the library's default ("POST") */
    char *url;    /* NULL: "" */
    char **names, **values;
    size_t n, cap;
    char *body; /* a copy; NULL when empty */
    size_t body_len;
} http_req;

static void req_free(http_req *r)
{
    free_secret(r->method);
    free_secret(r->url);
    for (size_t i = 0; i < r->n; i++) {
        free_secret(r->names[i]);
        free_secret(r->values[i]);
    }
    free(r->names);
    free(r->values);
    if (r->body) {
        explicit_bzero(r->body, r->body_len);
        free(r->body);
    }
    memset(r, 0, sizeof *r);
}

/* The own enumerable string keys of `obj` must all be in `allowed`. */
static int check_keys(napi_env env, napi_value obj, const char *name, const char *const *allowed,
                      const char *hint)
{
    napi_value keys;
    uint32_t n = 0;
    NAPI_CHECK(env, napi_get_all_property_names(env, obj, napi_key_own_only,
                                                napi_key_enumerable | napi_key_skip_symbols,
                                                napi_key_numbers_to_strings, &keys));
    NAPI_CHECK(env, napi_get_array_length(env, keys, &n));
    for (uint32_t i = 0; i < n; i++) {
        napi_value k;
        char key[128] = "";
        NAPI_CHECK(env, napi_get_element(env, keys, i, &k));
        NAPI_CHECK(env, napi_get_value_string_utf8(env, k, key, sizeof key, NULL));
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(key, *a) == 0;
        if (!known) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s.%s: unknown option (use %s)", name, key, hint);
            throw_code(env, INTEG_EINVAL, msg);
            return -1;
        }
    }
    return 0;
}

static int req_add_header(napi_env env, http_req *r, napi_value name, napi_value value,
                          const char *what)
{
    char nname[160], vname[160];
    snprintf(nname, sizeof nname, "%s: the name", what);
    snprintf(vname, sizeof vname, "%s: the value", what);
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char **nn = realloc(r->names, cap * sizeof *nn);
        if (nn)
            r->names = nn;
        char **nv = nn ? realloc(r->values, cap * sizeof *nv) : NULL;
        if (nv)
            r->values = nv;
        if (!nn || !nv) {
            throw_code(env, INTEG_ENOMEM, "out of memory");
            return -1;
        }
        r->cap = cap;
    }
    char *k = NULL, *v = NULL;
    if (arg_string(env, name, nname, &k))
        return -1;
    if (arg_string(env, value, vname, &v)) {
        free_secret(k);
        return -1;
    }
    r->names[r->n] = k;
    r->values[r->n] = v;
    r->n++;
    return 0;
}

/* headers: an array (or any iterable: Map, fetch's Headers) of [name,
 * value] pairs, or a plain object {name: value | [values] | undefined}
 * (Node's req.headers). undefined/null: none. */
static int req_headers(napi_env env, napi_value v, const char *name, http_req *r)
{
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, v, &t));
    if (t == napi_undefined || t == napi_null)
        return 0;
    if (t != napi_object) {
        throw_inval(env, "%s: must be an array of [name, value] pairs or an object", name);
        return -1;
    }
    bool is_array = false;
    NAPI_CHECK(env, napi_is_array(env, v, &is_array));
    if (!is_array) {
        /* An iterable (Map, Headers) becomes an array of its entries;
         * a plain object has no Symbol.iterator. */
        napi_value global, symbol, iter_key, iter, array_ctor, from;
        NAPI_CHECK(env, napi_get_global(env, &global));
        NAPI_CHECK(env, napi_get_named_property(env, global, "Symbol", &symbol));
        NAPI_CHECK(env, napi_get_named_property(env, symbol, "iterator", &iter_key));
        NAPI_CHECK(env, napi_get_property(env, v, iter_key, &iter));
        NAPI_CHECK(env, napi_typeof(env, iter, &t));
        if (t == napi_function) {
            NAPI_CHECK(env, napi_get_named_property(env, global, "Array", &array_ctor));
            NAPI_CHECK(env, napi_get_named_property(env, array_ctor, "from", &from));
            napi_value entries;
            NAPI_CHECK(env, napi_call_function(env, array_ctor, from, 1, &v, &entries));
            v = entries;
            is_array = true;
        }
    }
    char what[128];
    if (is_array) {
        uint32_t n = 0;
        NAPI_CHECK(env, napi_get_array_length(env, v, &n));
        for (uint32_t i = 0; i < n; i++) {
            napi_value pair, hn, hv;
            bool pair_is_array = false;
            uint32_t len = 0;
            snprintf(what, sizeof what, "%s[%u]", name, i);
            NAPI_CHECK(env, napi_get_element(env, v, i, &pair));
            NAPI_CHECK(env, napi_is_array(env, pair, &pair_is_array));
            if (pair_is_array)
                NAPI_CHECK(env, napi_get_array_length(env, pair, &len));
            if (!pair_is_array || len != 2) {
                throw_inval(env, "%s: must be a [name, value] pair", what);
                return -1;
            }
            NAPI_CHECK(env, napi_get_element(env, pair, 0, &hn));
            NAPI_CHECK(env, napi_get_element(env, pair, 1, &hv));
            if (req_add_header(env, r, hn, hv, what))
                return -1;
        }
        return 0;
    }
    napi_value keys;
    uint32_t n = 0;
    NAPI_CHECK(env, napi_get_all_property_names(env, v, napi_key_own_only,
                                                napi_key_enumerable | napi_key_skip_symbols,
                                                napi_key_numbers_to_strings, &keys));
    NAPI_CHECK(env, napi_get_array_length(env, keys, &n));
    for (uint32_t i = 0; i < n; i++) {
        napi_value k, val;
        char key[96] = "";
        bool val_is_array = false;
        NAPI_CHECK(env, napi_get_element(env, keys, i, &k));
        NAPI_CHECK(env, napi_get_value_string_utf8(env, k, key, sizeof key, NULL));
        snprintf(what, sizeof what, "%s.%s", name, key);
        NAPI_CHECK(env, napi_get_property(env, v, k, &val));
        NAPI_CHECK(env, napi_typeof(env, val, &t));
        if (t == napi_undefined)
            continue; /* IncomingHttpHeaders allows it: no such header */
        NAPI_CHECK(env, napi_is_array(env, val, &val_is_array));
        if (!val_is_array) {
            if (req_add_header(env, r, k, val, what))
                return -1;
            continue;
        }
        uint32_t m = 0; /* repeated header: one entry per value */
        NAPI_CHECK(env, napi_get_array_length(env, val, &m));
        for (uint32_t j = 0; j < m; j++) {
            napi_value e;
            NAPI_CHECK(env, napi_get_element(env, val, j, &e));
            if (req_add_header(env, r, k, e, what))
                return -1;
        }
    }
    return 0;
}

/* body: the raw bytes: a Buffer or any TypedArray/DataView/ArrayBuffer,
 * or a string (sent as UTF-8). undefined/null: empty. Copied. */
static int req_body(napi_env env, napi_value v, const char *name, http_req *r)
{
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, v, &t));
    if (t == napi_undefined || t == napi_null)
        return 0;
    const void *data = NULL;
    size_t len = 0;
    if (t == napi_string) {
        NAPI_CHECK(env, napi_get_value_string_utf8(env, v, NULL, 0, &len));
        if (!(r->body = malloc(len + 1))) {
            throw_code(env, INTEG_ENOMEM, "out of memory");
            return -1;
        }
        NAPI_CHECK(env, napi_get_value_string_utf8(env, v, r->body, len + 1, &len));
        r->body_len = len; /* NUL characters are body bytes like any other */
        return 0;
    }
    bool is_ta = false, is_dv = false, is_ab = false;
    if (t == napi_object) {
        NAPI_CHECK(env, napi_is_typedarray(env, v, &is_ta));
        NAPI_CHECK(env, napi_is_dataview(env, v, &is_dv));
        NAPI_CHECK(env, napi_is_arraybuffer(env, v, &is_ab));
    }
    if (is_ta) {
        napi_typedarray_type type;
        size_t count = 0;
        void *p = NULL;
        NAPI_CHECK(env, napi_get_typedarray_info(env, v, &type, &count, &p, NULL, NULL));
        size_t size = 1;
        switch (type) {
        case napi_int16_array:
        case napi_uint16_array:
            size = 2;
            break;
        case napi_int32_array:
        case napi_uint32_array:
        case napi_float32_array:
            size = 4;
            break;
        case napi_float64_array:
        case napi_bigint64_array:
        case napi_biguint64_array:
            size = 8;
            break;
        default:
            break;
        }
        data = p; /* already at the view's byte offset */
        len = count * size;
    } else if (is_dv) {
        void *p = NULL;
        NAPI_CHECK(env, napi_get_dataview_info(env, v, &len, &p, NULL, NULL));
        data = p;
    } else if (is_ab) {
        void *p = NULL;
        NAPI_CHECK(env, napi_get_arraybuffer_info(env, v, &p, &len));
        data = p;
    } else {
        throw_inval(env, "%s: must be a Buffer, a typed array, an ArrayBuffer or a string", name);
        return -1;
    }
    if (!len)
        return 0;
    if (!(r->body = malloc(len))) {
        throw_code(env, INTEG_ENOMEM, "out of memory");
        return -1;
    }
    memcpy(r->body, data, len);
    r->body_len = len;
    return 0;
}

/* The request fields {method, url, headers, body} of options object `obj`
 * (named `name` in messages), after checking it holds only `keys`. */
static int req_convert(napi_env env, napi_value obj, const char *name, const char *const *keys,
                       const char *hint, http_req *r)
{
    napi_valuetype t;
    NAPI_CHECK(env, napi_typeof(env, obj, &t));
    if (t != napi_object) {
        char fmt[300];
        snprintf(fmt, sizeof fmt, "%%s: must be an object like {%s}", hint);
        throw_inval(env, fmt, name);
        return -1;
    }
    if (check_keys(env, obj, name, keys, hint))
        return -1;
    static const char *const fields[] = {"method", "url", "headers", "body"};
    napi_value v[4];
    for (int i = 0; i < 4; i++)
        NAPI_CHECK(env, napi_get_named_property(env, obj, fields[i], &v[i]));
    char what[4][64];
    for (int i = 0; i < 4; i++)
        snprintf(what[i], sizeof what[i], "%s.%s", name, fields[i]);
    int rc = 0;
    char **strs[2] = {&r->method, &r->url};
    for (int i = 0; i < 2 && !rc; i++) {
        if (napi_typeof(env, v[i], &t) != napi_ok) {
            throw_napi_failure(env, "napi_typeof");
            rc = -1;
        } else if (t != napi_undefined && t != napi_null) {
            rc = arg_string(env, v[i], what[i], strs[i]);
        }
    }
    if (!rc)
        rc = req_headers(env, v[2], what[2], r);
    if (!rc)
        rc = req_body(env, v[3], what[3], r);
    if (rc)
        req_free(r);
    return rc;
}

/* ------------------------------------------------------------------------
 * The method tables: adding a library call is a call_fn plus one row.
 * ---------------------------------------------------------------------- */

static int c_definitions_list(void *h, char *const *a, char **out)
{
    return integ_definitions_list(h, a[0], out);
}
static int c_definition_get(void *h, char *const *a, char **out)
{
    return integ_definition_get(h, a[0], out);
}
static int c_definition_register(void *h, char *const *a, char **out)
{
    return integ_definition_register(h, a[0], out);
}
static int c_set_app_credentials(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_definition_set_app_credentials(h, a[0], a[1]);
}
static int c_rotate_master_key(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_ctx_rotate_master_key(h, a[0]);
}

static int c_integration_create(void *h, char *const *a, char **out)
{
    return integ_integration_create(h, a[0], out);
}
static int c_integration_get(void *h, char *const *a, char **out)
{
    return integ_integration_get(h, a[0], out);
}
static int c_integrations_list(void *h, char *const *a, char **out)
{
    return integ_integrations_list(h, a[0], out);
}
static int c_integration_update(void *h, char *const *a, char **out)
{
    return integ_integration_update(h, a[0], a[1], out);
}
static int c_integration_set_credentials(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_integration_set_credentials(h, a[0], a[1]);
}
static int c_integration_delete(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_integration_delete(h, a[0]);
}
static int c_audit_list(void *h, char *const *a, char **out)
{
    return integ_audit_list(h, a[0], out);
}

static int c_mapping_put(void *h, char *const *a, char **out)
{
    return integ_mapping_put(h, a[0], a[1], out);
}
static int c_mappings_list(void *h, char *const *a, char **out)
{
    return integ_mappings_list(h, a[0], out);
}
static int c_mapping_delete(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_mapping_delete(h, a[0]);
}
static int c_mapping_apply(void *h, char *const *a, char **out)
{
    return integ_mapping_apply(h, a[0], a[2] ? a[2] : "pull", a[1], out);
}
/* On the worker; the op (for onProgress) is the one this thread runs. */
static int c_sync(void *h, char *const *a, char **out)
{
    async_op *op = tl_op;
    bool progress = op && op->progress_fn;
    return integ_sync(h, a[0], a[1], progress ? progress_trampoline : NULL, progress ? op : NULL,
                      out);
}
static int c_conflicts_list(void *h, char *const *a, char **out)
{
    return integ_conflicts_list(h, a[0], a[1], out);
}
/* On the worker: the chosen data is written to the remote (an update). */
static int c_conflict_resolve(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_conflict_resolve(h, a[0], a[1]);
}
static int c_sync_logs(void *h, char *const *a, char **out)
{
    return integ_sync_logs(h, a[0], a[1], out);
}
static int c_integration_test(void *h, char *const *a, char **out)
{
    return integ_integration_test(h, a[0], out);
}

static int c_entities_list(void *h, char *const *a, char **out)
{
    return integ_entities_list(h, a[0], a[1], out);
}
static int c_entity_get(void *h, char *const *a, char **out)
{
    return integ_entity_get(h, a[0], a[1], out);
}
static int c_entity_put(void *h, char *const *a, char **out)
{
    return integ_entity_put(h, a[0], a[1], out);
}
static int c_entity_delete(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_entity_delete(h, a[0], a[1]);
}

static int c_webhook_endpoint_create(void *h, char *const *a, char **out)
{
    return integ_webhook_endpoint_create(h, a[0], a[1], out);
}
static int c_webhook_endpoints_list(void *h, char *const *a, char **out)
{
    return integ_webhook_endpoints_list(h, a[0], out);
}
static int c_webhook_endpoint_update(void *h, char *const *a, char **out)
{
    return integ_webhook_endpoint_update(h, a[0], a[1], out);
}
static int c_webhook_endpoint_rotate_secret(void *h, char *const *a, char **out)
{
    return integ_webhook_endpoint_rotate_secret(h, a[0], out);
}
static int c_webhook_endpoint_delete(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_webhook_endpoint_delete(h, a[0]);
}
static int c_webhook_events_list(void *h, char *const *a, char **out)
{
    return integ_webhook_events_list(h, a[0], out);
}
static int c_webhook_event_replay(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_webhook_event_replay(h, a[0]);
}
/* On the worker: leases and applies due events of every tenant. */
static int c_webhook_process(void *h, char *const *a, char **out)
{
    return integ_webhook_process(h, a[0] ? atoi(a[0]) : 100, out);
}

/* On the worker: runs the due syncs (network) of every tenant, then
 * webhook events, with the remaining budget. */
static int c_run_due(void *h, char *const *a, char **out)
{
    return integ_run_due(h, a[0] ? atoi(a[0]) : 100, out);
}

static int c_oauth_begin(void *h, char *const *a, char **out)
{
    return integ_oauth_begin(h, a[0], out);
}
/* On the worker: the code exchange is a network call. */
static int c_oauth_complete(void *h, char *const *a, char **out)
{
    return integ_oauth_complete(h, a[0], out);
}
static int c_oauth_refresh(void *h, char *const *a, char **out)
{
    (void)out;
    return integ_oauth_refresh(h, a[0]);
}

static const char *const N_FILTER[] = {"filter"};
static const char *const N_KEY[] = {"key"};
static const char *const N_MANIFEST[] = {"manifest"};
static const char *const N_KEY_CREDS[] = {"key", "credentials"};
static const char *const N_NEW_KEY[] = {"newKey"};
static const char *const N_REQUEST[] = {"request"};
static const char *const N_ID[] = {"id"};
static const char *const N_ID_PATCH[] = {"id", "patch"};
static const char *const N_ID_CREDS[] = {"id", "credentials"};
static const char *const N_INTEG[] = {"integrationId"};
static const char *const N_INTEG_MAPPING[] = {"integrationId", "mapping"};
static const char *const N_INTEG_FILTER[] = {"integrationId", "filter"};
static const char *const N_SYNC[] = {"integrationId", "request", "options"};
static const char *const N_MAPPING_ID[] = {"mappingId"};
static const char *const N_APPLY[] = {"mappingId", "record", "direction"};
static const char *const N_ENTITY_FILTER[] = {"entity", "filter"};
static const char *const N_ENTITY_ID[] = {"entity", "localId"};
static const char *const N_ENTITY_RECORD[] = {"entity", "record"};
static const char *const N_INTEG_REQUEST[] = {"integrationId", "request"};
static const char *const N_ENDPOINT[] = {"endpointId"};
static const char *const N_ENDPOINT_PATCH[] = {"endpointId", "patch"};
static const char *const N_EVENT[] = {"eventId"};
static const char *const N_MAX_EVENTS[] = {"maxEvents"};
static const char *const N_CALLBACK[] = {"callback"};
static const char *const N_MAX_JOBS[] = {"maxJobs"};
static const char *const N_CONFLICT_RESOLUTION[] = {"conflictId", "resolution"};

static const method_spec CTX_METHODS[] = {
    {"definitions", "j", N_FILTER, c_definitions_list, true, false},
    {"definition", "s", N_KEY, c_definition_get, true, false},
    {"registerDefinition", "j", N_MANIFEST, c_definition_register, true, false},
    {"setAppCredentials", "sj", N_KEY_CREDS, c_set_app_credentials, false, false},
    {"rotateMasterKey", "s", N_NEW_KEY, c_rotate_master_key, false, true},
    {"processWebhooks", "n", N_MAX_EVENTS, c_webhook_process, true, true},
    {"completeOAuth", "j", N_CALLBACK, c_oauth_complete, true, true},
    {"runDue", "n", N_MAX_JOBS, c_run_due, true, true},
};

static const method_spec SESSION_METHODS[] = {
    {"createIntegration", "j", N_REQUEST, c_integration_create, true, false},
    {"integration", "s", N_ID, c_integration_get, true, false},
    {"integrations", "j", N_FILTER, c_integrations_list, true, false},
    {"updateIntegration", "sj", N_ID_PATCH, c_integration_update, true, false},
    {"setCredentials", "sj", N_ID_CREDS, c_integration_set_credentials, false, false},
    {"deleteIntegration", "s", N_ID, c_integration_delete, false, false},
    {"audit", "j", N_FILTER, c_audit_list, true, false},
    {"putMapping", "sj", N_INTEG_MAPPING, c_mapping_put, true, false},
    {"mappings", "s", N_INTEG, c_mappings_list, true, false},
    {"deleteMapping", "s", N_MAPPING_ID, c_mapping_delete, false, false},
    {"applyMapping", "sjS", N_APPLY, c_mapping_apply, true, false},
    {"sync", "sjo", N_SYNC, c_sync, true, true},
    {"syncLogs", "sj", N_INTEG_FILTER, c_sync_logs, true, false},
    {"conflicts", "sj", N_INTEG_FILTER, c_conflicts_list, true, false},
    {"resolveConflict", "sj", N_CONFLICT_RESOLUTION, c_conflict_resolve, false, true},
    {"testIntegration", "s", N_ID, c_integration_test, true, true},
    {"entities", "sj", N_ENTITY_FILTER, c_entities_list, true, false},
    {"entity", "ss", N_ENTITY_ID, c_entity_get, true, false},
    {"putEntity", "sj", N_ENTITY_RECORD, c_entity_put, true, false},
    {"deleteEntity", "ss", N_ENTITY_ID, c_entity_delete, false, false},
    {"createWebhookEndpoint", "sj", N_INTEG_REQUEST, c_webhook_endpoint_create, true, false},
    {"webhookEndpoints", "s", N_INTEG, c_webhook_endpoints_list, true, false},
    {"updateWebhookEndpoint", "sj", N_ENDPOINT_PATCH, c_webhook_endpoint_update, true, false},
    {"rotateWebhookSecret", "s", N_ENDPOINT, c_webhook_endpoint_rotate_secret, true, false},
    {"deleteWebhookEndpoint", "s", N_ENDPOINT, c_webhook_endpoint_delete, false, false},
    {"webhookEvents", "j", N_FILTER, c_webhook_events_list, true, false},
    {"replayWebhookEvent", "s", N_EVENT, c_webhook_event_replay, false, false},
    {"beginOAuth", "j", N_REQUEST, c_oauth_begin, true, false},
    {"refreshOAuth", "s", N_INTEG, c_oauth_refresh, false, true},
};

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* ------------------------------------------------------------------------
 * Context
 * ---------------------------------------------------------------------- */

static napi_value ctx_constructor(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], self, target;
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
    NAPI_CALL(env, napi_get_new_target(env, info, &target));
    if (!target) {
        napi_throw_type_error(env, NULL, "Class constructor Context cannot be invoked without 'new'");
        return NULL;
    }
    addon *ad = get_addon(env);
    integ_ctx *ctx = ad->adopt_ctx; /* from Context.open */
    ad->adopt_ctx = NULL;
    if (!ctx) {
        if (check_not_in_callback(env, ad))
            return NULL;
        char *options = NULL;
        if (arg_json(env, argv[0], "options", &options))
            return NULL;
        int rc = integ_ctx_open(&ctx, options);
        char errmsg[ERRMSG_MAX];
        snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
        free_secret(options);
        if (rc != INTEG_OK) {
            throw_code(env, rc, errmsg);
            return NULL;
        }
    }
    ctx_wrap *cw = calloc(1, sizeof *cw);
    ev_sink *k = calloc(1, sizeof *k);
    if (!cw || !k || pthread_mutex_init(&k->mu, NULL) != 0) {
        free(k);
        free(cw);
        integ_ctx_close(ctx);
        throw_code(env, INTEG_ENOMEM, "out of memory");
        return NULL;
    }
    k->refs = 1;
    cw->sink = k;
    cw->env = env;
    cw->ad = ad;
    cw->ctx = ctx;
    cw->refs = 1;
    /* Tagged first: an object tagged but not wrapped still unwraps to
     * nothing (a TypeError), never to the wrong struct. */
    if (napi_type_tag_object(env, self, &CTX_TAG) != napi_ok ||
        napi_wrap(env, self, cw, ctx_finalize, NULL, NULL) != napi_ok) {
        integ_ctx_close(ctx);
        pthread_mutex_destroy(&k->mu);
        free(k);
        free(cw);
        throw_napi_failure(env, "napi_type_tag_object/napi_wrap");
        return NULL;
    }
    return self;
}

static ctx_wrap *ctx_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                          napi_value *self)
{
    napi_value me;
    if (napi_get_cb_info(env, info, argc, argv, &me, NULL) != napi_ok) {
        throw_napi_failure(env, "napi_get_cb_info");
        return NULL;
    }
    if (self)
        *self = me;
    return unwrap_tagged(env, me, &CTX_TAG, "Context");
}

static napi_value ctx_close(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    ctx_wrap *cw = ctx_this(env, info, &argc, NULL, NULL);
    if (!cw || check_not_in_callback(env, cw->ad))
        return NULL;
    cw->closed = true;
    cw_maybe_close(cw); /* sessions keep the C context alive as needed */
    return undefined(env);
}

static napi_value ctx_closed_getter(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    ctx_wrap *cw = ctx_this(env, info, &argc, NULL, NULL);
    if (!cw)
        return NULL;
    napi_value b;
    NAPI_CALL(env, napi_get_boolean(env, cw->closed, &b));
    return b;
}

static napi_value ctx_set_permission_callback(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    ctx_wrap *cw = ctx_this(env, info, &argc, argv, NULL);
    if (!cw || check_not_in_callback(env, cw->ad))
        return NULL;
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[0], &t));
    if (t != napi_function && t != napi_null && t != napi_undefined) {
        throw_inval(env, "%s: must be a function or null", "fn");
        return NULL;
    }
    if (cw->closed || !cw->ctx) {
        throw_code(env, INTEG_EINVAL, "ctx: the context is closed");
        return NULL;
    }
    napi_ref ref = NULL;
    if (t == napi_function)
        NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &ref));
    int rc = ref ? integ_ctx_set_permission_cb(cw->ctx, perm_trampoline, cw)
                 : integ_ctx_set_permission_cb(cw->ctx, NULL, NULL);
    if (rc != INTEG_OK) {
        char errmsg[ERRMSG_MAX];
        snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
        if (ref)
            napi_delete_reference(env, ref);
        throw_code(env, rc, errmsg);
        return NULL;
    }
    if (cw->perm_fn)
        napi_delete_reference(env, cw->perm_fn);
    cw->perm_fn = ref;
    return undefined(env);
}

/* setEventCallback(fn | null): a new threadsafe function bound to fn
 * replaces the previous one (whose queued events still reach it). */
static napi_value ctx_set_event_callback(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    ctx_wrap *cw = ctx_this(env, info, &argc, argv, NULL);
    if (!cw || check_not_in_callback(env, cw->ad))
        return NULL;
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[0], &t));
    if (t != napi_function && t != napi_null && t != napi_undefined) {
        throw_inval(env, "%s: must be a function or null", "fn");
        return NULL;
    }
    /* Clearing is allowed after close(): the function is held strongly,
     * and one that refers to its context keeps it reachable until then. */
    if (t == napi_function && (cw->closed || !cw->ctx)) {
        throw_code(env, INTEG_EINVAL, "ctx: the context is closed");
        return NULL;
    }
    ev_sink *k = cw->sink;
    ev_fn *f = NULL;
    if (t == napi_function) {
        napi_value name;
        if (!(f = calloc(1, sizeof *f))) {
            throw_code(env, INTEG_ENOMEM, "out of memory");
            return NULL;
        }
        f->sink = k;
        if (napi_create_string_utf8(env, "integrations event", NAPI_AUTO_LENGTH, &name) != napi_ok ||
            napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, f, ev_fn_finalize, f, ev_call_js,
                                            &f->tsfn) != napi_ok) {
            free(f);
            throw_napi_failure(env, "napi_create_threadsafe_function");
            return NULL;
        }
        k->refs++; /* dropped by ev_fn_finalize */
        napi_unref_threadsafe_function(env, f->tsfn);
    }
    int rc = f ? integ_ctx_set_event_cb(cw->ctx, event_trampoline, cw)
         : cw->ctx ? integ_ctx_set_event_cb(cw->ctx, NULL, NULL)
                   : INTEG_OK;
    if (rc != INTEG_OK) {
        char errmsg[ERRMSG_MAX];
        snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
        if (f)
            napi_release_threadsafe_function(f->tsfn, napi_tsfn_release);
        throw_code(env, rc, errmsg);
        return NULL;
    }
    pthread_mutex_lock(&k->mu);
    ev_fn *old = k->cur;
    k->cur = f;
    pthread_mutex_unlock(&k->mu);
    if (old)
        napi_release_threadsafe_function(old->tsfn, napi_tsfn_release);
    return undefined(env);
}

/* ctx.receiveWebhook(endpointId, {method, url, headers, body}): the
 * library verifies and commits to disk before answering, which is quick:
 * synchronous, like the host's request handler wants it. */
static napi_value ctx_receive_webhook(napi_env env, napi_callback_info info)
{
    static const char *const keys[] = {"method", "url", "headers", "body", NULL};
    size_t argc = 2;
    napi_value argv[2];
    ctx_wrap *cw = ctx_this(env, info, &argc, argv, NULL);
    if (!cw || check_not_in_callback(env, cw->ad))
        return NULL;
    char *id = NULL;
    http_req r = {0};
    if (arg_string(env, argv[0], "endpointId", &id))
        return NULL;
    if (req_convert(env, argv[1], "request", keys, "method, url, headers, body", &r)) {
        free(id);
        return NULL;
    }
    if (cw->closed || !cw->ctx) {
        free(id);
        req_free(&r);
        throw_code(env, INTEG_EINVAL, "ctx: the context is closed");
        return NULL;
    }
    int status = 0;
    char *body = NULL;
    int rc = integ_webhook_receive(cw->ctx, id, r.method, r.url, (const char *const *)r.names,
                                   (const char *const *)r.values, r.n, (const unsigned char *)r.body,
                                   r.body_len, &status, &body);
    /* After a 4xx answer the message is the reason, for the host's logs. */
    char errmsg[ERRMSG_MAX];
    snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
    free(id);
    req_free(&r);
    if (rethrow_perm_exception(env, cw)) {
        integ_free(body);
        return NULL;
    }
    if (rc != INTEG_OK) {
        integ_free(body);
        throw_code(env, rc, errmsg);
        return NULL;
    }
    napi_value obj, v;
    napi_status st = napi_create_object(env, &obj);
    if (st == napi_ok)
        st = napi_create_int32(env, status, &v);
    if (st == napi_ok)
        st = napi_set_named_property(env, obj, "status", v);
    if (st == napi_ok)
        st = napi_create_string_utf8(env, body ? body : "", NAPI_AUTO_LENGTH, &v);
    if (st == napi_ok)
        st = napi_set_named_property(env, obj, "body", v);
    if (st == napi_ok && status >= 400 && errmsg[0]) {
        st = napi_create_string_utf8(env, errmsg, NAPI_AUTO_LENGTH, &v);
        if (st == napi_ok)
            st = napi_set_named_property(env, obj, "reason", v);
    }
    integ_free(body);
    NAPI_CALL(env, st);
    return obj;
}

static napi_value ctx_session(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3], self;
    ctx_wrap *cw = ctx_this(env, info, &argc, argv, &self);
    if (!cw || check_not_in_callback(env, cw->ad))
        return NULL;
    static const char *const names[] = {"tenantId", "userId", "roles"};
    static const method_spec spec = {"session", "ssj", names, NULL, false, false};
    char *a[MAX_ARGS] = {0};
    if (convert_args(env, &spec, argv, a, NULL))
        return NULL;
    int rc = INTEG_EINVAL;
    char errmsg[ERRMSG_MAX] = "ctx: the context is closed";
    integ_session *s = NULL;
    if (!cw->closed && cw->ctx) {
        rc = integ_session_open(&s, cw->ctx, a[0], a[1], a[2]);
        if (rc != INTEG_OK)
            snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
    }
    for (int i = 0; i < MAX_ARGS; i++)
        free_secret(a[i]);
    if (rc != INTEG_OK) {
        throw_code(env, rc, errmsg);
        return NULL;
    }
    addon *ad = cw->ad;
    napi_value ctor, obj;
    if (napi_get_reference_value(env, ad->session_ctor, &ctor) != napi_ok) {
        integ_session_close(s);
        throw_napi_failure(env, "napi_get_reference_value");
        return NULL;
    }
    ad->adopt_session = s;
    ad->adopt_cw = cw;
    napi_status st = napi_new_instance(env, ctor, 0, NULL, &obj);
    if (ad->adopt_session) { /* the constructor never took it */
        integ_session_close(ad->adopt_session);
        ad->adopt_session = NULL;
        ad->adopt_cw = NULL;
    }
    if (st != napi_ok) {
        throw_napi_failure(env, "napi_new_instance");
        return NULL;
    }
    session_wrap *sw = NULL;
    NAPI_CALL(env, napi_unwrap(env, obj, (void **)&sw));
    NAPI_CALL(env, napi_create_reference(env, self, 1, &sw->ctx_obj));
    napi_property_descriptor props[] = {
        {"tenantId", NULL, NULL, NULL, NULL, argv[0], napi_enumerable, NULL},
        {"userId", NULL, NULL, NULL, NULL, argv[1], napi_enumerable, NULL},
    };
    NAPI_CALL(env, napi_define_properties(env, obj, COUNT(props), props));
    return obj;
}

/* Context.open(options): open on the thread pool (store migration and the
 * catalog load touch the disk), resolve with a Context. */
static int c_ctx_open(void *h, char *const *a, char **out)
{
    (void)out;
    async_op *op = h;
    return integ_ctx_open(&op->out_ctx, a[0]);
}

static napi_value open_done(napi_env env, async_op *op)
{
    addon *ad = get_addon(env);
    integ_ctx *ctx = op->out_ctx;
    op->out_ctx = NULL;
    napi_value ctor, obj;
    if (napi_get_reference_value(env, ad->ctx_ctor, &ctor) != napi_ok) {
        integ_ctx_close(ctx);
        throw_napi_failure(env, "napi_get_reference_value");
        return NULL;
    }
    ad->adopt_ctx = ctx;
    napi_status st = napi_new_instance(env, ctor, 0, NULL, &obj);
    if (ad->adopt_ctx) {
        integ_ctx_close(ad->adopt_ctx);
        ad->adopt_ctx = NULL;
    }
    if (st != napi_ok) {
        throw_napi_failure(env, "napi_new_instance");
        return NULL;
    }
    return obj;
}

static napi_value ctx_open_inner(napi_env env, napi_callback_info info)
{
    static const char *const names[] = {"options"};
    static const method_spec spec = {"Context.open", "j", names, c_ctx_open, false, true};
    size_t argc = 1;
    napi_value argv[1];
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (check_not_in_callback(env, get_addon(env)))
        return NULL;
    async_op *op = op_new();
    if (!op) {
        throw_code(env, INTEG_ENOMEM, "out of memory");
        return NULL;
    }
    if (convert_args(env, &spec, argv, op->a, NULL)) {
        op_unref(op);
        return NULL;
    }
    op->spec = &spec;
    op->handle = op;
    op->done = open_done;
    return op_queue(env, op, NULL);
}

static napi_value ctx_open_async(napi_env env, napi_callback_info info)
{
    napi_value r = ctx_open_inner(env, info);
    return r ? r : reject_pending(env);
}

/* ------------------------------------------------------------------------
 * Session
 * ---------------------------------------------------------------------- */

static napi_value session_constructor(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    napi_value self;
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, NULL, &self, NULL));
    addon *ad = get_addon(env);
    integ_session *s = ad->adopt_session;
    ctx_wrap *cw = ad->adopt_cw;
    ad->adopt_session = NULL;
    ad->adopt_cw = NULL;
    if (!s) {
        throw_code(env, INTEG_EINVAL,
                   "Session: not constructible; use ctx.session(tenantId, userId, roles)");
        return NULL;
    }
    session_wrap *sw = calloc(1, sizeof *sw);
    if (!sw) {
        integ_session_close(s);
        throw_code(env, INTEG_ENOMEM, "out of memory");
        return NULL;
    }
    sw->cw = cw;
    sw->s = s;
    cw->refs++;
    if (napi_type_tag_object(env, self, &SESSION_TAG) != napi_ok ||
        napi_wrap(env, self, sw, session_finalize, NULL, NULL) != napi_ok) {
        integ_session_close(s);
        cw->refs--;
        free(sw);
        throw_napi_failure(env, "napi_type_tag_object/napi_wrap");
        return NULL;
    }
    return self;
}

static session_wrap *session_this(napi_env env, napi_callback_info info)
{
    size_t argc = 0;
    napi_value me;
    if (napi_get_cb_info(env, info, &argc, NULL, &me, NULL) != napi_ok) {
        throw_napi_failure(env, "napi_get_cb_info");
        return NULL;
    }
    return unwrap_tagged(env, me, &SESSION_TAG, "Session");
}

static napi_value session_close(napi_env env, napi_callback_info info)
{
    session_wrap *sw = session_this(env, info);
    if (!sw || check_not_in_callback(env, sw->cw->ad))
        return NULL;
    sw->closed = true;
    sw_maybe_close(sw);
    return undefined(env);
}

static napi_value session_closed_getter(napi_env env, napi_callback_info info)
{
    session_wrap *sw = session_this(env, info);
    if (!sw)
        return NULL;
    napi_value b;
    NAPI_CALL(env, napi_get_boolean(env, sw->closed, &b));
    return b;
}

static napi_value session_context_getter(napi_env env, napi_callback_info info)
{
    session_wrap *sw = session_this(env, info);
    if (!sw)
        return NULL;
    napi_value v = NULL;
    if (sw->ctx_obj)
        NAPI_CALL(env, napi_get_reference_value(env, sw->ctx_obj, &v));
    return v ? v : undefined(env);
}

/* ------------------------------------------------------------------------
 * Module functions
 * ---------------------------------------------------------------------- */

static napi_value fn_version(napi_env env, napi_callback_info info)
{
    (void)info;
    napi_value v;
    NAPI_CALL(env, napi_create_string_utf8(env, integ_version(), NAPI_AUTO_LENGTH, &v));
    return v;
}

static napi_value fn_strerror(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], v;
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    int32_t code = 0;
    if (napi_get_value_int32(env, argv[0], &code) != napi_ok) {
        throw_inval(env, "%s: must be a number", "code");
        return NULL;
    }
    NAPI_CALL(env, napi_create_string_utf8(env, integ_strerror(code), NAPI_AUTO_LENGTH, &v));
    return v;
}

static napi_value fn_generate_master_key(napi_env env, napi_callback_info info)
{
    (void)info;
    char *key = NULL;
    int rc = integ_generate_master_key(&key);
    if (rc != INTEG_OK) {
        char errmsg[ERRMSG_MAX];
        snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
        throw_code(env, rc, errmsg);
        return NULL;
    }
    napi_value v = NULL;
    napi_status st = napi_create_string_utf8(env, key, NAPI_AUTO_LENGTH, &v);
    explicit_bzero(key, strlen(key));
    integ_free(key);
    NAPI_CALL(env, st);
    return v;
}

/* verifyWebhook({scheme, secret, method, url, headers, body, now,
 * tolerance}): stateless, no context; undefined or throws. */
static napi_value fn_verify_webhook(napi_env env, napi_callback_info info)
{
    static const char *const keys[] = {"scheme", "secret", "method", "url", "headers",
                                       "body", "now", "tolerance", NULL};
    static const char hint[] = "scheme, secret, method, url, headers, body, now, tolerance";
    size_t argc = 1;
    napi_value argv[1];
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (check_not_in_callback(env, get_addon(env)))
        return NULL;
    http_req r = {0};
    if (req_convert(env, argv[0], "options", keys, hint, &r))
        return NULL;
    char *scheme = NULL, *secret = NULL, *tol_text = NULL;
    int64_t now = 0;
    napi_value v;
    napi_valuetype t;
    int fail = 0;
    /* scheme: a string; secret: a string, or several (a rotation) as an
     * array, passed space-separated. */
    if (napi_get_named_property(env, argv[0], "scheme", &v) != napi_ok ||
        arg_string(env, v, "options.scheme", &scheme))
        fail = 1;
    bool is_array = false;
    if (!fail && (napi_get_named_property(env, argv[0], "secret", &v) != napi_ok ||
                  napi_is_array(env, v, &is_array) != napi_ok))
        fail = 1;
    if (!fail && !is_array) {
        fail = arg_string(env, v, "options.secret", &secret) != 0;
    } else if (!fail) {
        uint32_t n = 0;
        size_t len = 0;
        napi_get_array_length(env, v, &n);
        for (uint32_t i = 0; i < n && !fail; i++) {
            napi_value e;
            char *one = NULL, what[48];
            snprintf(what, sizeof what, "options.secret[%u]", i);
            if (napi_get_element(env, v, i, &e) != napi_ok || arg_string(env, e, what, &one)) {
                fail = 1;
                break;
            }
            if (!*one || strchr(one, ' ')) {
                free_secret(one);
                throw_inval(env, "%s: must be a non-empty secret without spaces", what);
                fail = 1;
                break;
            }
            size_t l = strlen(one);
            char *grown = realloc(secret, len + l + 2);
            if (!grown) {
                free_secret(one);
                throw_code(env, INTEG_ENOMEM, "out of memory");
                fail = 1;
                break;
            }
            secret = grown;
            if (len)
                secret[len++] = ' ';
            memcpy(secret + len, one, l + 1);
            len += l;
            free_secret(one);
        }
        if (!fail && !secret) {
            throw_inval(env, "%s: must hold at least one secret", "options.secret");
            fail = 1;
        }
    }
    /* now: unix seconds (a number, or a Date); undefined: the clock. */
    if (!fail && (napi_get_named_property(env, argv[0], "now", &v) != napi_ok ||
                  napi_typeof(env, v, &t) != napi_ok))
        fail = 1;
    if (!fail && t != napi_undefined && t != napi_null) {
        bool is_date = false;
        double d = 0;
        napi_is_date(env, v, &is_date);
        if (is_date && napi_get_date_value(env, v, &d) == napi_ok)
            d /= 1000.0;
        else if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok)
            d = -1;
        if (!(d >= 0 && d < 9.2e15)) {
            throw_inval(env, "%s: must be unix seconds (a non-negative number) or a Date",
                        "options.now");
            fail = 1;
        } else {
            now = (int64_t)d;
        }
    }
    if (!fail && (napi_get_named_property(env, argv[0], "tolerance", &v) != napi_ok ||
                  arg_int(env, v, "options.tolerance", &tol_text)))
        fail = 1;
    int tolerance = tol_text ? atoi(tol_text) : 0;
    free(tol_text);
    if (fail) {
        free(scheme);
        free_secret(secret);
        req_free(&r);
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (!pending)
            throw_napi_failure(env, "reading options");
        return NULL;
    }
    int rc = integ_webhook_verify(scheme, secret, r.method ? r.method : "POST", r.url ? r.url : "",
                                  (const char *const *)r.names, (const char *const *)r.values, r.n,
                                  (const unsigned char *)r.body, r.body_len, now, tolerance);
    char errmsg[ERRMSG_MAX] = "";
    if (rc != INTEG_OK)
        snprintf(errmsg, sizeof errmsg, "%s", integ_errmsg());
    free(scheme);
    free_secret(secret);
    req_free(&r);
    if (rc != INTEG_OK) {
        throw_code(env, rc, errmsg);
        return NULL;
    }
    return undefined(env);
}

static napi_value fn_set_error_factory(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[0], &t));
    if (t != napi_function) {
        napi_throw_type_error(env, NULL, "setErrorFactory: expects a function");
        return NULL;
    }
    addon *ad = get_addon(env);
    if (ad->error_factory)
        napi_delete_reference(env, ad->error_factory);
    ad->error_factory = NULL;
    NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &ad->error_factory));
    return undefined(env);
}

/* ------------------------------------------------------------------------
 * Module init
 * ---------------------------------------------------------------------- */

static void addon_finalize(napi_env env, void *data, void *hint)
{
    (void)hint;
    addon *ad = data;
    napi_ref refs[] = {ad->ctx_ctor, ad->session_ctor, ad->json_parse, ad->json_stringify,
                       ad->error_factory};
    for (size_t i = 0; i < COUNT(refs); i++)
        if (refs[i])
            napi_delete_reference(env, refs[i]);
    free(ad);
}

static napi_value define_class(napi_env env, const char *name, napi_callback ctor,
                               const method_spec *methods, size_t n_methods, napi_callback dispatcher,
                               const napi_property_descriptor *extra, size_t n_extra)
{
    size_t n = n_methods + n_extra;
    napi_property_descriptor *props = calloc(n ? n : 1, sizeof *props);
    if (!props) {
        napi_throw_error(env, NULL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n_methods; i++) {
        props[i].utf8name = methods[i].name;
        props[i].method = dispatcher;
        props[i].attributes = napi_default_method;
        props[i].data = (void *)&methods[i];
    }
    memcpy(props + n_methods, extra, n_extra * sizeof *props);
    napi_value cls = NULL;
    napi_status st = napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, NULL, n, props, &cls);
    free(props);
    NAPI_CALL(env, st);
    return cls;
}

NAPI_MODULE_INIT()
{
    addon *ad = calloc(1, sizeof *ad);
    if (!ad) {
        napi_throw_error(env, NULL, "out of memory");
        return NULL;
    }
    ad->thread = pthread_self();
    if (napi_set_instance_data(env, ad, addon_finalize, NULL) != napi_ok) {
        free(ad);
        throw_napi_failure(env, "napi_set_instance_data");
        return NULL;
    }

    napi_value global, json, parse, stringify;
    NAPI_CALL(env, napi_get_global(env, &global));
    NAPI_CALL(env, napi_get_named_property(env, global, "JSON", &json));
    NAPI_CALL(env, napi_get_named_property(env, json, "parse", &parse));
    NAPI_CALL(env, napi_get_named_property(env, json, "stringify", &stringify));
    NAPI_CALL(env, napi_create_reference(env, parse, 1, &ad->json_parse));
    NAPI_CALL(env, napi_create_reference(env, stringify, 1, &ad->json_stringify));

    const napi_property_descriptor ctx_extra[] = {
        {"setPermissionCallback", NULL, ctx_set_permission_callback, NULL, NULL, NULL,
         napi_default_method, NULL},
        {"setEventCallback", NULL, ctx_set_event_callback, NULL, NULL, NULL, napi_default_method,
         NULL},
        {"receiveWebhook", NULL, ctx_receive_webhook, NULL, NULL, NULL, napi_default_method, NULL},
        {"session", NULL, ctx_session, NULL, NULL, NULL, napi_default_method, NULL},
        {"close", NULL, ctx_close, NULL, NULL, NULL, napi_default_method, NULL},
        {"closed", NULL, NULL, ctx_closed_getter, NULL, NULL, napi_configurable, NULL},
        {"open", NULL, ctx_open_async, NULL, NULL, NULL,
         (napi_property_attributes)(napi_default_method | napi_static), NULL},
    };
    napi_value ctx_cls = define_class(env, "Context", ctx_constructor, CTX_METHODS,
                                      COUNT(CTX_METHODS), ctx_dispatch, ctx_extra, COUNT(ctx_extra));
    if (!ctx_cls)
        return NULL;

    const napi_property_descriptor session_extra[] = {
        {"close", NULL, session_close, NULL, NULL, NULL, napi_default_method, NULL},
        {"closed", NULL, NULL, session_closed_getter, NULL, NULL, napi_configurable, NULL},
        {"context", NULL, NULL, session_context_getter, NULL, NULL, napi_configurable, NULL},
    };
    napi_value session_cls =
        define_class(env, "Session", session_constructor, SESSION_METHODS, COUNT(SESSION_METHODS),
                     session_dispatch, session_extra, COUNT(session_extra));
    if (!session_cls)
        return NULL;
    NAPI_CALL(env, napi_create_reference(env, ctx_cls, 1, &ad->ctx_ctor));
    NAPI_CALL(env, napi_create_reference(env, session_cls, 1, &ad->session_ctor));

    const napi_property_descriptor exports_props[] = {
        {"version", NULL, fn_version, NULL, NULL, NULL, napi_enumerable, NULL},
        {"strerror", NULL, fn_strerror, NULL, NULL, NULL, napi_enumerable, NULL},
        {"generateMasterKey", NULL, fn_generate_master_key, NULL, NULL, NULL, napi_enumerable, NULL},
        {"setErrorFactory", NULL, fn_set_error_factory, NULL, NULL, NULL, napi_enumerable, NULL},
        {"verifyWebhook", NULL, fn_verify_webhook, NULL, NULL, NULL, napi_enumerable, NULL},
        {"Context", NULL, NULL, NULL, NULL, ctx_cls, napi_enumerable, NULL},
        {"Session", NULL, NULL, NULL, NULL, session_cls, napi_enumerable, NULL},
    };
    NAPI_CALL(env, napi_define_properties(env, exports, COUNT(exports_props), exports_props));
    return exports;
}
