"""Context and Session: the Python face of ``integ_ctx`` and ``integ_session``.

Structured values cross the C boundary as UTF-8 JSON text: arguments are
``json.dumps``-ed, results ``json.loads``-ed, so every method takes and
returns plain dicts and lists.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import inspect
import threading
import weakref
from ctypes import byref, c_char_p, c_int, c_void_p
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _native
from ._native import EVENT_CB, PERMISSION_CB, PROGRESS_CB, lib
from .errors import Canceled, InvalidArgument

__all__ = [
    "Context",
    "Session",
    "PermissionCallback",
    "ProgressCallback",
    "EventCallback",
    "Headers",
    "WebhookResponse",
    "generate_master_key",
    "strerror",
    "verify_webhook",
    "version",
]

#: ``fn(tenant_id, user_id, resource, action) -> bool``: True allows.
PermissionCallback = Callable[[str, str, str, str], bool]

#: ``fn(progress: dict) -> bool``: called once per committed page of a sync;
#: a truthy result cancels the run.
ProgressCallback = Callable[[Dict[str, Any]], Any]

#: ``fn(event: dict) -> None``: a notification such as ``{"type":
#: "webhook.dead", "at", "tenant_id", "integration_id", "event_id", ...}``.
EventCallback = Callable[[Dict[str, Any]], Any]

#: Request headers: ``(name, value)`` pairs (repeats allowed), a mapping, or
#: any object with an ``items()`` method (``http.client.HTTPMessage``, ...).
#: Names and values are ``str`` (sent as UTF-8) or ``bytes`` (sent as is).
Headers = Union[Mapping[Any, Any], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]]]

#: A raw request body.
Body = Union[bytes, bytearray, memoryview]

JSONObject = Dict[str, Any]

#: A timestamp argument: RFC 3339 text, or a datetime (naive means UTC).
Timestamp = Union[str, datetime.datetime]

# A NULL integ_permission_cb, to clear the callback.
_NULL_CB = PERMISSION_CB()
# A NULL integ_progress_cb (no progress reports).
_NULL_PROGRESS = PROGRESS_CB()
# A NULL integ_event_cb, to clear the callback.
_NULL_EVENT = EVENT_CB()


# ---------------------------------------------------------------------------
# Marshalling helpers
# ---------------------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    """A Python value as compact UTF-8 JSON (NaN and infinities refused)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf-8"
    )


def _cstr(value: str, name: str) -> bytes:
    """A ``str`` argument as NUL-terminated UTF-8; embedded NULs are refused."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    data = value.encode("utf-8")
    if b"\0" in data:
        # C would silently see a shorter string: refuse instead.
        raise InvalidArgument(f"{name}: must not contain a NUL character")
    return data


def _filter(**fields: Any) -> Optional[bytes]:
    """A filter/patch object of the given non-None fields, or NULL if none."""
    given = {k: v for k, v in fields.items() if v is not None}
    return _dumps(given) if given else None


def _timestamp(value: Timestamp, name: str) -> str:
    """A timestamp argument as RFC 3339 UTC text.

    A ``str`` is passed through (the library validates it); an aware
    ``datetime`` is converted to UTC; a naive one is taken as UTC already.
    Sub-millisecond digits are dropped (the library keeps milliseconds).
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{name}: expected str or datetime.datetime, got {type(value).__name__}")
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(datetime.timezone.utc)
    v = value
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    ms = v.microsecond // 1000
    return text + (f".{ms:03d}Z" if ms else "Z")


def _decode(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _header_part(value: Any, name: str) -> bytes:
    """A header name or value: ``str`` as UTF-8, ``bytes`` as is; no NULs."""
    if isinstance(value, str):
        return _cstr(value, name)
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        if b"\0" in data:
            raise InvalidArgument(f"{name}: must not contain a NUL character")
        return data
    raise TypeError(f"{name}: expected str or bytes, got {type(value).__name__}")


def _headers(headers: Optional[Headers]) -> Tuple[Any, Any, int]:
    """Headers as the C API's two parallel ``const char *`` arrays and their count.

    The ctypes arrays keep the encoded strings alive as long as they live.
    """
    if headers is None:
        return None, None, 0
    if isinstance(headers, (str, bytes, bytearray)):
        raise TypeError("headers: expected (name, value) pairs or a mapping, got a string")
    items = getattr(headers, "items", None)
    pairs = list(items()) if callable(items) else list(headers)  # type: ignore[arg-type]
    n = len(pairs)
    if n == 0:
        return None, None, 0
    names = (c_char_p * n)()
    values = (c_char_p * n)()
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"headers[{i}]: expected a (name, value) pair")
        names[i] = _header_part(pair[0], f"headers[{i}] name")
        values[i] = _header_part(pair[1], f"headers[{i}] value")
    return names, values, n


def _body(body: Optional[Body]) -> bytes:
    """A raw request body as bytes (byte for byte: ``str`` is refused)."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        f"body: expected bytes (the raw request body, byte for byte), got {type(body).__name__}"
    )


#: The range of a C ``int`` and of an ``int64_t``: ctypes would silently wrap
#: a Python int outside them (``2**32 - 1`` becoming -1).
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _unix_seconds(value: Union[int, float, datetime.datetime], name: str) -> int:
    """A point in time as unix seconds (a naive datetime is taken as UTC), in int64 range."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected unix seconds or a datetime, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{name}: must be a finite number of unix seconds, got {value!r}")
    seconds = int(value)
    if not _INT64_MIN <= seconds <= _INT64_MAX:
        raise InvalidArgument(
            f"{name}: {seconds} is out of range (a C int64_t: {_INT64_MIN}..{_INT64_MAX})"
        )
    return seconds


def _str_list(values: Iterable[str], name: str) -> List[str]:
    """A list-of-strings argument (a lone string is refused: it is iterable too)."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name}: expected a list of str, got a single {type(values).__name__}")
    return list(values)


def _int_arg(value: Any, name: str) -> int:
    """An ``int`` argument for a C ``int`` parameter: refused, not wrapped, out of range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {type(value).__name__}")
    if not _INT_MIN <= value <= _INT_MAX:
        raise InvalidArgument(f"{name}: {value} is out of range (a C int: {_INT_MIN}..{_INT_MAX})")
    return value


class _CallbackState(threading.local):
    """Per thread: an exception raised by a Python callback during a C call.

    Callbacks run synchronously on the thread that made the C call, so a
    thread-local slot pairs the exception with the call that triggered it
    even when many threads share one Context. A callback may itself call
    the library: each call saves the slot, runs with it cleared and puts
    it back, so the inner call neither sees nor wipes the outer call's
    pending exception. ``depth`` counts this thread's binding calls in
    flight: an event raised outside any (a library thread of its own) has
    no call to re-raise it and goes to ``sys.unraisablehook`` instead.
    """

    exc: Optional[BaseException] = None
    depth: int = 0


class _Lifetime:
    """A C handle (``integ_ctx *`` or ``integ_session *``) and who is using it.

    Each C call on the handle holds it for the call's duration (``_call``
    does it when the handle is its first argument), and each open Session
    holds its Context's. :meth:`close` marks it closed at once (new calls
    raise InvalidArgument) but the real C close waits for the last holder
    to let go, so a handle is never freed under running C code: a callback
    closing its own context or session, another thread closing during a
    call, the finaliser at interpreter exit while a daemon thread is in C.
    Finalisers call :meth:`close`, which uses nothing but this object.
    """

    __slots__ = ("_lock", "_handle", "_users", "_closed", "_close_fn", "_parent", "_closed_msg")

    def __init__(
        self,
        handle: c_void_p,
        close_fn: Callable[[c_void_p], None],
        closed_msg: str,
        parent: Optional["_Lifetime"] = None,
    ) -> None:
        self._lock = threading.Lock()
        self._handle: Optional[c_void_p] = handle
        self._users = 0
        self._closed = False
        self._close_fn = close_fn
        self._parent = parent  # held from open to the real close (a Session's Context)
        self._closed_msg = closed_msg

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self, closed_ok: bool = False) -> Optional[c_void_p]:
        """Hold the handle and return it; release it with :meth:`release`.

        Raises InvalidArgument once closed; with ``closed_ok``, a closed
        handle still alive (held by others) is returned, and None once the
        C object is really closed (nothing is then held).
        """
        with self._lock:
            if self._handle is None:
                if closed_ok:
                    return None
                raise InvalidArgument(self._closed_msg)
            if self._closed and not closed_ok:
                raise InvalidArgument(self._closed_msg)
            self._users += 1
            return self._handle

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            handle = self._take()
        if handle is not None:
            self._destroy(handle)

    def close(self) -> None:
        """Mark closed (idempotent); the real close now, or when the last holder lets go."""
        with self._lock:
            self._closed = True
            handle = self._take()
        if handle is not None:
            self._destroy(handle)

    def _take(self) -> Optional[c_void_p]:
        # Under the lock: the handle to close now, if it is time (once only).
        if self._closed and self._users == 0 and self._handle is not None:
            handle, self._handle = self._handle, None
            return handle
        return None

    def _destroy(self, handle: c_void_p) -> None:
        self._close_fn(handle)
        if self._parent is not None:
            self._parent.release()


def _call(state: _CallbackState, fn: Any, *args: Any) -> None:
    """Call a fallible C function; raise on failure.

    A first argument that is a :class:`_Lifetime` (the context or session
    the C function acts on; no other argument ever is one) stands for its C
    handle, held for the duration of the call (InvalidArgument if it is
    closed).

    If a Python callback raised during the call, that exception is raised
    instead of the library's error (which is usually the consequence of it,
    e.g. PermissionDenied after a callback that raised denied the call).
    """
    life = args[0] if args and type(args[0]) is _Lifetime else None
    if life is not None:
        args = (life.acquire(), *args[1:])  # raises if closed: nothing is then held
    outer = state.exc  # a call made from inside a callback: keep the outer call's
    state.exc = None
    state.depth += 1
    try:
        rc = fn(*args)
        # Read integ_errmsg() at once: it is thread-local and valid only until
        # this thread's next library call (before the release below, too).
        err = _native.error(rc) if rc != 0 else None
    finally:
        state.depth -= 1
        exc, state.exc = state.exc, outer
        if life is not None:
            life.release()  # the real close, if close() was called meanwhile
    if exc is not None:
        raise exc
    if err is not None:
        raise err


def _call_json(state: _CallbackState, fn: Any, *args: Any) -> Any:
    """Call a C function whose last argument is ``char **out_json``; parse it."""
    out = c_void_p()
    try:
        _call(state, fn, *args, byref(out))
    except BaseException:
        _native.free_quietly(out)  # NULL on failure by contract; be safe anyway
        raise
    text = _native.take_string(out)
    return None if text is None else json.loads(text)


# ---------------------------------------------------------------------------
# Library-level functions
# ---------------------------------------------------------------------------


def version() -> str:
    """The C library's version, ``"MAJOR.MINOR.PATCH"``."""
    return _decode(lib.integ_version())


def strerror(code: int) -> str:
    """The library's fixed English text for an ``INTEG_E*`` code."""
    return _native.strerror(_int_arg(int(code), "code"))


def generate_master_key() -> str:
    """A new master key: 32 random bytes as standard base64 (44 characters).

    Keep it where the host keeps secrets; pass it as ``master_key``.
    """
    out = c_void_p()
    _native.check(lib.integ_generate_master_key(byref(out)))
    key = _native.take_string(out)
    assert key is not None
    return key


def verify_webhook(
    scheme: str,
    secret: Union[str, Sequence[str]],
    *,
    method: str = "POST",
    url: str = "",
    headers: Optional[Headers] = None,
    body: Body = b"",
    now: Union[int, float, datetime.datetime] = 0,
    tolerance: int = 0,
) -> None:
    """Verify one webhook delivery's signature, statelessly (no Context needed).

    ``scheme``: ``"standard"``, ``"standard-ed25519"``, ``"github"``,
    ``"github-sha1"``, ``"slack"``, ``"stripe"``, ``"shopify"``,
    ``"woocommerce"``, ``"hubspot-v1"``, ``"hubspot-v2"``, ``"hubspot-v3"``,
    ``"sendgrid"``, ``"twilio"``, ``"basic"`` or ``"msgraph"``
    (doc/webhooks.md has each provider's rule). ``secret``: the endpoint's
    secret, or several (a list, or one string separated by single spaces)
    during a rotation: any one verifies (a list entry that is empty or
    holds a space or tab raises InvalidArgument). ``method`` and ``url``: the request
    line as received (some schemes sign them). ``headers``: ``(name,
    value)`` pairs or a mapping; names match case-insensitively. ``body``:
    the raw body as bytes, byte for byte. ``now``: unix seconds or a
    datetime (naive means UTC); 0 is the current time. ``tolerance``:
    seconds a signed timestamp may be off; 0 is the scheme's default (300),
    negative skips the check (replaying recorded deliveries). ``now``
    outside int64 and ``tolerance`` outside a C int raise InvalidArgument
    (never wrapped around).

    Returns None when the signature verifies. Raises SignatureError (wrong
    signature), ReplayError (stale timestamp) or InvalidArgument (a
    malformed or missing header, named in the message; an unknown scheme).
    Comparisons are constant time.
    """
    joined: Optional[bytes] = None  # a list of secrets, as C takes it
    if not isinstance(secret, str):
        if isinstance(secret, (bytes, bytearray)):
            raise TypeError("secret: expected str or a list of str, got bytes")
        parts: List[bytes] = []
        for i, x in enumerate(secret):
            one = _cstr(x, f"secret[{i}]")
            # C splits the joined string at spaces and tabs: an entry holding
            # one would silently become several candidate secrets.
            if not one or b" " in one or b"\t" in one:
                raise InvalidArgument(f"secret[{i}]: must be a non-empty secret without spaces")
            parts.append(one)
        joined = b" ".join(parts)
    names, values, n = _headers(headers)
    data = _body(body)
    rc = lib.integ_webhook_verify(
        _cstr(scheme, "scheme"),
        joined if joined is not None else _cstr(secret, "secret"),
        _cstr(method, "method"),
        _cstr(url, "url"),
        names,
        values,
        n,
        data,
        len(data),
        _unix_seconds(now, "now"),
        _int_arg(tolerance, "tolerance"),
    )
    _native.check(rc)


class _WebhookAnswer(NamedTuple):
    status: int
    body: str


class WebhookResponse(_WebhookAnswer):
    """What to answer one webhook delivery: :meth:`Context.receive_webhook`'s result.

    A ``(status, body)`` named tuple. ``status``: 202 accepted (queued
    durably); 200 duplicate, ignored or a handshake; 401 failed
    verification; 404 unknown or inactive endpoint; 413 body too large.
    ``body``: the text to send (JSON such as ``{"status":"accepted",
    "id":...}``, or plain text for a handshake echo such as Microsoft
    Graph's validationToken).

    ``reason`` (an attribute, not part of the tuple): for a 4xx answer the
    library's message saying why — for the host's logs only, never for the
    sender; otherwise "".
    """

    reason: str = ""

    def __new__(cls, status: int, body: str, reason: str = "") -> "WebhookResponse":
        self = super().__new__(cls, status, body)
        if reason:
            self.reason = reason
        return self

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON (a handshake echo may not be JSON)."""
        return json.loads(self.body)


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------


def _store_spec(store: Union[str, "os.PathLike[str]"]) -> str:
    if isinstance(store, os.PathLike):
        return "sqlite:" + os.fspath(store)
    if not isinstance(store, str):
        raise TypeError(f"store: expected str or os.PathLike, got {type(store).__name__}")
    return store


class Context:
    """A library context: one per store (``integ_ctx``).

    ``options`` is the options object of ``integ_ctx_open`` (see API.md):
    ``{"store": "sqlite:PATH" | "sqlite::memory:", "durability": "normal" |
    "full", "master_key": B64, "master_key_file": PATH, "adapters_dir": PATH,
    "http": {...}, "base_url_overrides": {...}, "webhook": {...}}``
    (``durability``: ``"full"`` makes every commit sync, so a committed write
    also survives an OS crash or power loss). The keyword arguments
    are shortcuts merged over it; ``store`` also accepts a path-like object,
    meaning ``"sqlite:<path>"``. Without a key option the key comes from the
    ``INTEG_MASTER_KEY`` environment variable.

    A Context may be shared by many threads. Use it as a context manager or
    call :meth:`close`; it is otherwise closed when garbage collected or at
    interpreter exit. Closing it while sessions are open is safe: they keep
    working, and the C context goes away with the last of them.
    """

    def __init__(
        self,
        options: Optional[Mapping[str, Any]] = None,
        *,
        store: Union[str, "os.PathLike[str]", None] = None,
        master_key: Optional[str] = None,
        master_key_file: Union[str, "os.PathLike[str]", None] = None,
        adapters_dir: Union[str, "os.PathLike[str]", None] = None,
    ) -> None:
        self._life: Optional[_Lifetime] = None
        opts: Dict[str, Any] = dict(options) if options is not None else {}
        if store is not None:
            opts["store"] = _store_spec(store)
        if master_key is not None:
            opts["master_key"] = master_key
        if master_key_file is not None:
            opts["master_key_file"] = os.fspath(master_key_file)
        if adapters_dir is not None:
            opts["adapters_dir"] = os.fspath(adapters_dir)

        self._cb_state = _CallbackState()
        # Every permission trampoline ever installed stays referenced for the
        # Context's lifetime: another thread may be inside a call that copied
        # the previous pointer when it is replaced.
        self._callbacks: List[Any] = []
        self._permission_fn: Optional[PermissionCallback] = None
        self._event_fn: Optional[EventCallback] = None

        handle = c_void_p()
        _call(self._cb_state, lib.integ_ctx_open, byref(handle), _dumps(opts) if opts else None)
        # Calls in flight and open sessions hold the handle: integ_ctx_close
        # waits for the last of them.
        self._life = _Lifetime(handle, lib.integ_ctx_close, "ctx: the context is closed")
        # The finaliser holds the lifetime (the C function and the handle),
        # never `self` nor module globals, so it is safe at interpreter shutdown.
        # (weakref.finalize keeps itself registered: nothing needs to hold it.)
        weakref.finalize(self, self._life.close)

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Close the context (idempotent). Open sessions keep working.

        Later calls on the context raise InvalidArgument. The C context is
        closed once nothing uses it any more: at once, or when the last
        open session is closed, or when a call still running on it (on
        another thread, or the one whose callback called close) returns.
        """
        life = self._life
        if life is not None:
            life.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        life = self._life
        return life is None or life.closed

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<integrations.Context {'closed' if self.closed else 'open'}>"

    # -- sessions ----------------------------------------------------------

    def session(
        self, tenant_id: str, user_id: str, roles: Optional[Iterable[str]] = None
    ) -> "Session":
        """Open a :class:`Session` for one user of one tenant.

        ``roles``: e.g. ``["admin"]`` (or ``["integration:admin"]``) may
        write; anyone may read their own tenant's objects. A permission
        callback, when set, overrides the roles.
        """
        return Session(self, tenant_id, user_id, roles)

    def set_permission_callback(self, fn: Optional[PermissionCallback]) -> None:
        """Set (or clear, with None) the host's permission check.

        ``fn(tenant_id, user_id, resource, action)`` returns True to allow
        ``action`` on ``resource`` (``"integration"``, ``"admin"`` for every
        write). It replaces the sessions' roles entirely. If ``fn`` raises,
        the call is denied and the exception propagates from the method that
        triggered the check. ``fn`` must return a ``bool``: anything else
        (such as the coroutine of an ``async def``) denies the call, and
        the method raises TypeError naming what ``fn`` returned.

        Clearing is allowed after :meth:`close` (open sessions would keep
        calling ``fn``); setting a function then raises InvalidArgument.
        """
        if fn is None:
            self._clear_callback(lib.integ_ctx_set_permission_cb, _NULL_CB)
            self._permission_fn = None
            return
        if not callable(fn):
            raise TypeError("fn: expected a callable or None")
        state = self._cb_state  # captured instead of self: no reference cycle

        def trampoline(
            _payload: Any, tenant: Optional[bytes], user: Optional[bytes],
            resource: Optional[bytes], action: Optional[bytes],
        ) -> int:
            try:
                allowed = fn(_decode(tenant), _decode(user), _decode(resource), _decode(action))
                if allowed is True:
                    return 1
                if allowed is False:
                    return 0
                # Only a real bool decides: a truthy coroutine of an async
                # policy returning False must not allow. Deny, and say why.
                if inspect.iscoroutine(allowed):
                    allowed.close()  # never awaited: no RuntimeWarning
                    hint = " (an async function? the callback must be synchronous)"
                else:
                    hint = ""
                raise TypeError(
                    "permission callback: must return True or False, "
                    f"got {type(allowed).__name__}{hint}"
                )
            except BaseException as exc:  # re-raised by _call on this thread
                if state.exc is None:  # the first one wins
                    state.exc = exc
                return 0

        cb = PERMISSION_CB(trampoline)
        self._callbacks.append(cb)
        _call(self._cb_state, lib.integ_ctx_set_permission_cb, self._life, cb, None)
        self._permission_fn = fn

    def _clear_callback(self, setter: Any, null_cb: Any) -> None:
        """Clear a callback in C; also on a closed context whose handle lives on."""
        assert self._life is not None
        h = self._life.acquire(closed_ok=True)
        if h is None:
            return  # really closed in C: nothing can call the callback any more
        try:
            _call(self._cb_state, setter, h, null_cb, None)
        finally:
            self._life.release()

    @property
    def permission_callback(self) -> Optional[PermissionCallback]:
        """The Python function last set with :meth:`set_permission_callback`."""
        return self._permission_fn

    def set_event_callback(self, fn: Optional[EventCallback]) -> None:
        """Set (or clear, with None) the notification callback.

        ``fn(event: dict)`` is called on the thread where the event happened,
        inside the call that caused it, with ``{"type", "at", "tenant_id",
        "integration_id", ...}``. Types: ``"webhook.dead"`` (``event_id``,
        ``endpoint_id``, ``delivery_id``, ``attempts``, ``last_error``; from
        :meth:`process_webhooks`), ``"integration.needs_reauth"``
        (``reason``; from a token refresh in a sync, :meth:`Session.refresh_oauth`,
        ...), ``"sync.completed"``/``"sync.failed"`` (after each sync run,
        from :meth:`Session.sync` or :meth:`run_due`: ``sync_log_id``,
        ``status``, ``trigger``, ``direction``, the counts) and
        ``"conflict.detected"`` (``conflict_id``, ``local_id``,
        ``external_id``, ``strategy``, ``outcome``: ``"held"`` for a
        ``"manual"`` one). Its return value is ignored.

        Events are notifications: the C call carries on and its effects
        stand whatever ``fn`` does. If ``fn`` raises, the first exception is
        kept (per thread) and raised from the Python call that triggered the
        event once the C call has returned, instead of that call's result
        (e.g. :meth:`process_webhooks`' summary is lost; list the events with
        :meth:`Session.webhook_events`). ``fn`` must not use the session
        whose call triggered the event.

        Clearing is allowed after :meth:`close` (open sessions would keep
        raising events); setting a function then raises InvalidArgument.
        """
        if fn is None:
            self._clear_callback(lib.integ_ctx_set_event_cb, _NULL_EVENT)
            self._event_fn = None
            return
        if not callable(fn):
            raise TypeError("fn: expected a callable or None")
        state = self._cb_state  # captured instead of self: no reference cycle

        def trampoline(_payload: Any, event: Optional[bytes]) -> None:
            try:
                fn(json.loads(_decode(event)) if event else {})
            except BaseException as exc:
                if state.depth <= 0:
                    # Not inside a binding call on this thread (a library
                    # thread of its own): nobody can re-raise it. Let it
                    # escape: ctypes reports it through sys.unraisablehook.
                    raise
                if state.exc is None:  # the first one wins; re-raised by _call
                    state.exc = exc

        cb = EVENT_CB(trampoline)
        self._callbacks.append(cb)  # kept for the Context's lifetime, like permission ones
        _call(self._cb_state, lib.integ_ctx_set_event_cb, self._life, cb, None)
        self._event_fn = fn

    @property
    def event_callback(self) -> Optional[EventCallback]:
        """The Python function last set with :meth:`set_event_callback`."""
        return self._event_fn

    # -- keys --------------------------------------------------------------

    def rotate_master_key(self, new_key: str) -> None:
        """Re-seal every stored secret under ``new_key`` (all or nothing).

        Raises CryptoError if a stored secret does not open with the current
        key. On success the context uses the new key.
        """
        _call(self._cb_state, lib.integ_ctx_rotate_master_key, self._life, _cstr(new_key, "new_key"))

    # -- definitions -------------------------------------------------------

    def definitions(
        self,
        category: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """The catalog of definitions, sorted by category then key.

        ``category``: one of erp, crm, accounting, ecommerce, email, storage,
        communication.
        """
        flt = _filter(category=category, limit=limit, offset=offset)
        return _call_json(self._cb_state, lib.integ_definitions_list, self._life, flt)

    def definition(self, key: str) -> JSONObject:
        """One definition by key (``"hubspot-crm"``) or id; NotFound if unknown."""
        return _call_json(self._cb_state, lib.integ_definition_get, self._life, _cstr(key, "key"))

    def register_definition(self, manifest: Mapping[str, Any]) -> JSONObject:
        """Add or replace a definition from a manifest (doc/manifest.md).

        A bad manifest raises InvalidArgument naming the JSON path of the
        offending field. Replacing keeps the definition's id. Returns the
        stored definition.
        """
        return _call_json(
            self._cb_state, lib.integ_definition_register, self._life, _dumps(manifest)
        )

    def set_app_credentials(self, key: str, creds: Mapping[str, Any]) -> None:
        """Set the platform's OAuth app credentials for a definition.

        ``creds``: ``{"client_id": ..., "client_secret": ...}`` (plus provider
        extras). Stored sealed; reads show only ``has_app_credentials``.
        """
        _call(
            self._cb_state,
            lib.integ_definition_set_app_credentials,
            self._life,
            _cstr(key, "key"),
            _dumps(creds),
        )

    # -- webhooks ----------------------------------------------------------

    def receive_webhook(
        self,
        endpoint_id: str,
        *,
        method: str = "POST",
        url: str = "",
        headers: Optional[Headers] = None,
        body: Body = b"",
    ) -> WebhookResponse:
        """Handle one HTTP delivery to a webhook endpoint; return what to answer.

        ``endpoint_id`` is the last path segment of the endpoint's URL.
        ``method`` and ``url``: the request line as received (path and query
        at least; some schemes sign them). ``headers``: ``(name, value)``
        pairs or a mapping. ``body``: the raw body as bytes, byte for byte.

        Returns a :class:`WebhookResponse` ``(status, body)`` for the host to
        send: 202 accepted (verified and durably queued before this
        returns); 200 duplicate, ignored (unsubscribed event type) or a
        handshake (WooCommerce ping, Graph validationToken echoed as
        text/plain, Slack challenge); 401 failed verification (never
        queued); 404 unknown or inactive endpoint (the same answer for
        both); 413 body over ``webhook.max_body_bytes``. For a 4xx answer
        ``.reason`` says why, for the host's logs. Raises only when no
        answer could be made (StoreError, ...). Queued events are applied
        by :meth:`process_webhooks`.
        """
        names, values, n = _headers(headers)
        data = _body(body)
        status = c_int(0)
        out = c_void_p()
        assert self._life is not None
        # Held by hand, not by _call: a real close on release could clobber
        # integ_errmsg() before it is read.
        h = self._life.acquire()
        try:
            _call(
                self._cb_state,
                lib.integ_webhook_receive,
                h,
                _cstr(endpoint_id, "endpoint_id"),
                _cstr(method, "method"),
                _cstr(url, "url"),
                names,
                values,
                n,
                data,
                len(data),
                byref(status),
                byref(out),
            )
            # Read at once: integ_errmsg() is valid until the next library call.
            reason = _native.errmsg() if status.value >= 400 else ""
        except BaseException:
            _native.free_quietly(out)
            raise
        finally:
            self._life.release()
        text = _native.take_string(out)
        return WebhookResponse(status.value, text or "", reason)

    def process_webhooks(self, max_events: int = 100) -> JSONObject:
        """Apply up to ``max_events`` (1..10000) due webhook events, of any tenant.

        Each event is leased (two workers never take the same one), applied
        through its integration's mapping into the local entity store (or
        the changed record is fetched from the API, per the manifest's
        webhook topics) and marked processed with a sync log entry (trigger
        ``"webhook"``). A failure is retried later with exponential backoff;
        after ``webhook.max_attempts`` (default 8) the event is dead and a
        ``"webhook.dead"`` event goes to the event callback. Blocks on the
        network for fetched records.

        Returns ``{"claimed", "processed", "failed", "dead", "lost", "gone",
        "errors", "events": [{id, endpoint_id, status (processed | retry |
        dead | lost | gone | error), result | error, code}]}``: ``lost``, an
        event another worker took over after this call's lease ran out
        (nothing of this call's applied); ``gone``, deleted meanwhile with its
        endpoint or integration; ``error``, the store failed to record the
        outcome (taken again when the lease expires). These never raise: one
        event's trouble does not stop the others (see doc/webhooks.md).
        """
        return _call_json(
            self._cb_state, lib.integ_webhook_process, self._life, _int_arg(max_events, "max_events")
        )

    # -- schedules ---------------------------------------------------------

    def run_due(self, max_jobs: int = 100) -> JSONObject:
        """Run what is due, of any tenant: call it from a worker loop or a timer.

        First the scheduled syncs: active integrations whose config has
        ``auto_sync`` (due at once when created or switched on, then every
        ``sync_interval`` seconds, give or take 10%) are claimed in a
        transaction — so several processes may call this at once — and
        each entity of their ``config["entities"]`` (else every listable
        one) is pulled with trigger ``"schedule"``, acting as user
        ``"scheduler"`` with the admin role. A sync of an integration that
        is already running is skipped. Then up to the remaining budget of
        queued webhook events is processed, as :meth:`process_webhooks`.
        ``max_jobs`` (1..10000): at most this many integrations are synced.
        Blocks on the network.

        Returns ``{"syncs": [{tenant_id, integration_id, entity, status
        (success | partial | skipped | error), sync_log_id,
        records_processed} or, for one that failed, {..., status, code,
        error}], "webhooks": {claimed, processed, failed, dead, lost, gone, errors, events}}``.
        A failed sync is reported in its entry, not raised; the event
        callback receives ``"sync.completed"``/``"sync.failed"`` (and
        ``"conflict.detected"``) on this thread, inside this call.
        """
        return _call_json(
            self._cb_state, lib.integ_run_due, self._life, _int_arg(max_jobs, "max_jobs")
        )

    # -- OAuth -------------------------------------------------------------

    def complete_oauth(self, callback: Mapping[str, Any]) -> JSONObject:
        """Finish an authorization-code flow from the redirect's query parameters.

        ``callback``: ``{"state", "code"}`` or ``{"state", "error",
        "error_description"}`` (e.g. ``dict(urllib.parse.parse_qsl(query))``).
        The state must exist and be unexpired, and is consumed (single use).
        The code is exchanged (with the PKCE verifier), the tokens are
        sealed, and the integration is created (or its credentials replaced)
        with status ``"active"``. Returns the integration, as
        :meth:`Session.integration` shows it.

        Raises NotFound for an unknown or already used state, AuthError for
        an expired state, a provider error (``access_denied``, ...) or a
        rejected code, NetworkError/RemoteError when the token endpoint
        cannot be reached.
        """
        return _call_json(self._cb_state, lib.integ_oauth_complete, self._life, _dumps(callback))


# ---------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------


class Session:
    """Who is acting: one user of one tenant, with roles (``integ_session``).

    Every tenant-scoped call goes through a session; another tenant's ids
    are NotFound. A session belongs to one thread at a time (open one per
    thread). It keeps its :class:`Context` alive, and keeps working after
    the context is closed. Use it as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        context: Context,
        tenant_id: str,
        user_id: str,
        roles: Optional[Iterable[str]] = None,
    ) -> None:
        self._life: Optional[_Lifetime] = None
        if not isinstance(context, Context):
            raise TypeError("context: expected an integrations.Context")
        if isinstance(roles, (str, bytes)):
            raise TypeError("roles: expected a list of role strings, e.g. ['admin']")
        self._ctx = context  # keeps the Context (and its callbacks) alive
        self._state = context._cb_state
        self._tenant_id = tenant_id
        self._user_id = user_id
        self._roles: Optional[List[str]] = list(roles) if roles is not None else None
        args = (
            _cstr(tenant_id, "tenant_id"),
            _cstr(user_id, "user_id"),
            _dumps(self._roles) if self._roles is not None else None,
        )
        handle = c_void_p()
        ctx_life = context._life
        assert ctx_life is not None
        # An open session holds its context's handle (released by its real
        # close): ctx.close() never frees it under the session's calls.
        ctx_h = ctx_life.acquire()
        try:
            _call(self._state, lib.integ_session_open, byref(handle), ctx_h, *args)
        except BaseException:
            ctx_life.release()
            raise
        # Calls in flight hold the handle: integ_session_close waits for them.
        self._life = _Lifetime(
            handle, lib.integ_session_close, "session: the session is closed", parent=ctx_life
        )
        weakref.finalize(self, self._life.close)

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Close the session (idempotent).

        Called during a call on the session (from a progress, permission or
        event callback, or on another thread), the session is closed at once
        for Python (later calls raise InvalidArgument) and in C as soon as
        the running call returns.
        """
        life = self._life
        if life is not None:
            life.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        life = self._life
        return life is None or life.closed

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<integrations.Session tenant={self._tenant_id!r} user={self._user_id!r} {state}>"

    @property
    def context(self) -> Context:
        """The Context this session was opened on."""
        return self._ctx

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def roles(self) -> List[str]:
        return list(self._roles or [])

    # -- tenant integrations -----------------------------------------------

    def create_integration(
        self,
        definition: Union[str, Mapping[str, Any]],
        name: Optional[str] = None,
        credentials: Optional[Mapping[str, Any]] = None,
        config: Optional[Mapping[str, Any]] = None,
        auth_type: Optional[str] = None,
        status: Optional[str] = None,
    ) -> JSONObject:
        """Create an integration for the session's tenant (needs integration:admin).

        ``definition`` is a definition key (``"hubspot-crm"``) or id, or a
        whole API.md request dict ``{"integration_definition_id": ...,
        "name", "credentials", "config", "auth_type", "status"}``; keyword
        arguments given explicitly override the dict's fields. ``config`` is
        validated against the definition's config_schema (defaults applied),
        ``credentials`` against the auth method's schema; ``auth_type`` is
        inferred from the credentials when omitted. Returns the integration
        (never its credentials: only ``has_credentials``).
        """
        if isinstance(definition, Mapping):
            request: Dict[str, Any] = dict(definition)
        elif isinstance(definition, str):
            request = {"integration_definition_id": definition}
        else:
            raise TypeError("definition: expected a definition key/id or a request dict")
        extra = {
            "name": name,
            "credentials": credentials,
            "config": config,
            "auth_type": auth_type,
            "status": status,
        }
        request.update({k: v for k, v in extra.items() if v is not None})
        return _call_json(self._state, lib.integ_integration_create, self._life, _dumps(request))

    def integration(self, integration_id: str) -> JSONObject:
        """One integration of the session's tenant; NotFound otherwise."""
        return _call_json(
            self._state, lib.integ_integration_get, self._life, _cstr(integration_id, "id")
        )

    def integrations(
        self,
        status: Optional[str] = None,
        category: Optional[str] = None,
        definition: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """The tenant's integrations, newest first, optionally filtered.

        ``status``: active, paused, error or needs_reauth; ``definition``: a
        definition key or id.
        """
        flt = _filter(
            status=status,
            category=category,
            integration_definition_id=definition,
            limit=limit,
            offset=offset,
        )
        return _call_json(self._state, lib.integ_integrations_list, self._life, flt)

    def update_integration(
        self,
        integration_id: str,
        name: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        status: Optional[str] = None,
    ) -> JSONObject:
        """Change name, config or status (needs integration:admin).

        Only the given fields are sent. ``config`` is merged onto the current
        config one level deep (a key set to None is removed), then
        validated. ``status``: ``"active"`` or ``"paused"``.
        """
        patch = {
            k: v for k, v in (("name", name), ("config", config), ("status", status)) if v is not None
        }
        return _call_json(
            self._state,
            lib.integ_integration_update,
            self._life,
            _cstr(integration_id, "id"),
            _dumps(patch),
        )

    def set_credentials(self, integration_id: str, creds: Mapping[str, Any]) -> None:
        """Replace the integration's credentials (validated, then sealed).

        Needs integration:admin.
        """
        _call(
            self._state,
            lib.integ_integration_set_credentials,
            self._life,
            _cstr(integration_id, "id"),
            _dumps(creds),
        )

    def delete_integration(self, integration_id: str) -> None:
        """Delete an integration and everything hanging off it (needs integration:admin)."""
        _call(self._state, lib.integ_integration_delete, self._life, _cstr(integration_id, "id"))

    # -- audit -------------------------------------------------------------

    def audit(
        self,
        action: Optional[str] = None,
        object_id: Optional[str] = None,
        user_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """The tenant's audit trail, newest first.

        Entries: ``{id, tenant_id, user_id, action, object_type, object_id,
        at, details}``; no secret is ever in them.
        """
        flt = _filter(action=action, object_id=object_id, user_id=user_id, limit=limit, offset=offset)
        return _call_json(self._state, lib.integ_audit_list, self._life, flt)

    # -- mappings ----------------------------------------------------------

    def put_mapping(self, integration_id: str, mapping: Mapping[str, Any]) -> JSONObject:
        """Create or replace the integration's mapping for one remote entity.

        ``mapping`` (doc/mapping.md): ``{"source_entity": "contacts" (an
        entity of the definition), "target_entity": "contacts" (a local
        entity), "field_map": {"<local path>": "<remote path>"},
        "transform_rules": [...], "required": [...], "reverse": {...}}``.
        There is one mapping per ``source_entity``: putting another replaces
        it and keeps its id. It is validated when saved (an unknown rule or a
        bad path raises InvalidArgument naming it). Needs integration:admin.
        Returns the stored mapping ``{id, integration_id, ..., created_at,
        updated_at}``.
        """
        return _call_json(
            self._state,
            lib.integ_mapping_put,
            self._life,
            _cstr(integration_id, "integration_id"),
            _dumps(mapping),
        )

    def mappings(self, integration_id: str) -> List[JSONObject]:
        """The integration's stored mappings (manifest defaults are not listed)."""
        return _call_json(
            self._state, lib.integ_mappings_list, self._life, _cstr(integration_id, "integration_id")
        )

    def delete_mapping(self, mapping_id: str) -> None:
        """Delete a mapping: the manifest's default mapping applies again.

        Needs integration:admin.
        """
        _call(self._state, lib.integ_mapping_delete, self._life, _cstr(mapping_id, "mapping_id"))

    def apply_mapping(
        self, mapping_id: str, record: Mapping[str, Any], direction: str = "pull"
    ) -> JSONObject:
        """Preview a stored mapping on one record, writing nothing.

        ``direction``: ``"pull"`` (a remote record -> local data) or
        ``"push"`` (local data -> a remote record). A record that fails the
        mapping raises MappingError naming the field.
        """
        return _call_json(
            self._state,
            lib.integ_mapping_apply,
            self._life,
            _cstr(mapping_id, "mapping_id"),
            _cstr(direction, "direction"),
            _dumps(record),
        )

    # -- sync --------------------------------------------------------------

    def sync(
        self,
        integration_id: str,
        entity: str,
        *,
        direction: str = "pull",
        full: bool = False,
        dry_run: bool = False,
        modified_since: Optional[Timestamp] = None,
        progress: Optional[ProgressCallback] = None,
        conflict_strategy: Optional[str] = None,
    ) -> JSONObject:
        """Run a sync of one entity now, on this thread (blocks on the network).

        Incremental by default, from the last completed run's high-water
        mark (when the definition supports it); ``full=True`` re-reads
        everything (unchanged records are still skipped). ``modified_since``
        (RFC 3339 text or a datetime; naive means UTC) overrides the
        watermark. ``dry_run=True`` maps and counts without writing. An
        interrupted run resumes from its checkpoint. Needs integration:admin;
        a second concurrent sync of the integration raises ConflictError.

        ``direction``: ``"pull"`` (remote -> local, the default), ``"push"``
        (local records changed since their last sync go out: updated when
        linked, created otherwise, in batches where the definition has
        them) or ``"bidirectional"`` (a pull, then a push). A record
        changed on both sides since the last sync is a conflict, settled by
        ``conflict_strategy``: ``"last_write_wins"``, ``"remote_wins"``,
        ``"local_wins"``, ``"merge_fields"`` (a three-way merge, per field,
        following the mapping's ``field_policies``) or ``"manual"`` (held
        until :meth:`resolve_conflict`; neither side moves). None: the
        integration's ``config["conflict_strategy"]``, else last write
        wins. Every conflict is listed by :meth:`conflicts`.

        ``progress(info: dict)`` is called once per committed page with
        ``{integration_id, entity, pages, records_processed,
        records_created, records_updated, records_skipped, records_failed,
        elapsed_ms, records_per_second}``. A truthy return cancels the run
        after that page: :class:`Canceled` is raised and its ``.result``
        holds the run's result (``status == "canceled"``; what was committed
        stays and the next run resumes from it). If ``progress`` raises, the
        run is canceled the same way and that exception is raised instead.

        Returns the run's result, as its sync log entry: ``{sync_log_id,
        integration_id, entity, sync_type, trigger, status (success |
        partial), records_processed, records_created, records_updated,
        records_skipped, records_failed, records_deleted, conflicts,
        conflict_strategy, direction, errors, started_at, completed_at,
        user_id, ...}``; for ``"push"`` and ``"bidirectional"`` also
        ``records_pushed`` and ``push: {processed, created, updated,
        deleted, adopted, skipped, failed}`` (a record the remote refused is
        counted in ``records_failed`` and listed in ``errors``: status
        ``"partial"``). A run that fails raises (AuthError, NetworkError,
        ...); its log entry is in :meth:`sync_logs`.
        """
        request: Dict[str, Any] = {"entity": entity, "direction": direction}
        if conflict_strategy is not None:
            request["conflict_strategy"] = conflict_strategy
        if full is not False:
            request["full"] = full
        if dry_run is not False:
            request["dry_run"] = dry_run
        if modified_since is not None:
            request["filter"] = {"modified_since": _timestamp(modified_since, "modified_since")}
        iid = _cstr(integration_id, "integration_id")
        body = _dumps(request)

        # The callback's exception, per call: the trampoline runs on this
        # thread, inside integ_sync.
        raised: List[BaseException] = []
        cb = _NULL_PROGRESS
        if progress is not None:
            if not callable(progress):
                raise TypeError("progress: expected a callable or None")

            def trampoline(_payload: Any, info: Optional[bytes]) -> int:
                if raised:
                    return 1  # already failed: keep canceling
                try:
                    return 1 if progress(json.loads(_decode(info)) if info else {}) else 0
                except BaseException as exc:  # re-raised after integ_sync returns
                    raised.append(exc)
                    return 1

            cb = PROGRESS_CB(trampoline)  # referenced until the call returns

        out = c_void_p()
        # _call holds the session (close() from a callback: the real close
        # waits) and raises a permission or event callback's exception before
        # the library's error. Kept, not raised from here: the progress
        # callback's exception comes first.
        error: Optional[BaseException] = None
        try:
            _call(self._state, lib.integ_sync, self._life, iid, body, cb, None, byref(out))
        except BaseException as exc:
            error = exc
        text = _native.take_string(out)  # also set on cancel
        if raised:
            raise raised[0]
        if error is not None:
            if isinstance(error, Canceled) and text is not None:
                error.result = json.loads(text)
            raise error
        return None if text is None else json.loads(text)

    def sync_logs(
        self,
        integration_id: str,
        entity: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """The integration's sync log entries, newest first.

        ``status``: running, success, partial, error or canceled. Entries
        have the fields of :meth:`sync`'s result.
        """
        flt = _filter(entity=entity, status=status, limit=limit, offset=offset)
        return _call_json(
            self._state, lib.integ_sync_logs, self._life, _cstr(integration_id, "integration_id"), flt
        )

    def conflicts(
        self,
        integration_id: str,
        status: Optional[str] = None,
        entity: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """The integration's sync conflicts, newest first.

        ``status``: ``"open"`` (held by the ``"manual"`` strategy, waiting
        for :meth:`resolve_conflict`) or ``"resolved"`` (by a person, or by
        a strategy: ``resolved_by == "strategy"``); ``entity``: a remote
        entity (``"contacts"``). Conflicts read ``{id, integration_id,
        entity, local_entity, local_id, external_id, local, remote, base,
        fields, strategy, status, resolution, resolved_by, created_at,
        resolved_at}``: ``local`` and ``remote`` are both local-shaped data
        (the remote record through the mapping), ``base`` what the two
        sides last agreed on. Another tenant's integration is NotFound.
        """
        flt = _filter(status=status, entity=entity, limit=limit, offset=offset)
        return _call_json(
            self._state,
            lib.integ_conflicts_list,
            self._life,
            _cstr(integration_id, "integration_id"),
            flt,
        )

    def resolve_conflict(
        self,
        conflict_id: str,
        *,
        choose: Optional[str] = None,
        data: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Resolve an open conflict: give exactly one of ``choose`` or ``data``.

        ``choose="local"`` or ``"remote"`` keeps that side's version;
        ``data={...}`` is a version merged by hand (local-shaped, replacing
        the record's data as a whole). The result is written to both sides
        — the local record, and the remote one through the entity's update
        request unless ``choose="remote"`` (it already has it; this blocks
        on the network) — and the record syncs normally again. Needs
        integration:admin.

        Raises InvalidArgument for neither or both, NotFound for an
        unknown id (or another tenant's), ConflictError if it is already
        resolved; a remote that refuses the update raises its error
        (RemoteError, AuthError, ...) and the conflict stays open.
        """
        if (choose is None) == (data is None):
            raise InvalidArgument(
                "resolve_conflict: give exactly one of choose='local'|'remote' or data={...}"
            )
        resolution: Dict[str, Any]
        if choose is not None:
            if not isinstance(choose, str):
                raise TypeError(f"choose: expected str, got {type(choose).__name__}")
            resolution = {"choose": choose}
        else:
            if not isinstance(data, Mapping):
                raise TypeError(f"data: expected a dict, got {type(data).__name__}")
            resolution = {"data": dict(data)}
        _call(
            self._state,
            lib.integ_conflict_resolve,
            self._life,
            _cstr(conflict_id, "conflict_id"),
            _dumps(resolution),
        )

    def test_integration(self, integration_id: str) -> JSONObject:
        """Make the definition's cheap authenticated call with the stored credentials.

        Returns ``{"success": bool, "message": str, "code": int,
        "http_status": int}`` (``http_status`` when a response came back):
        a rejected key is ``success: False`` with the real reason in
        ``message``, not an exception. Raises only when the call could not be
        attempted (NotFound for an unknown id, ...).
        """
        return _call_json(
            self._state, lib.integ_integration_test, self._life, _cstr(integration_id, "id")
        )

    # -- local entities ----------------------------------------------------

    def entities(
        self,
        entity: str,
        updated_since: Optional[Timestamp] = None,
        include_deleted: bool = False,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """Records of a local entity (``"contacts"``, ...), most recently updated first.

        A record reads ``{id, entity, data, updated_at, deleted, version}``.
        ``updated_since``: RFC 3339 text or a datetime (naive means UTC).
        Soft-deleted records are left out unless ``include_deleted``.
        """
        flt = _filter(
            updated_since=None if updated_since is None else _timestamp(updated_since, "updated_since"),
            include_deleted=None if include_deleted is False else include_deleted,
            limit=limit,
            offset=offset,
        )
        return _call_json(self._state, lib.integ_entities_list, self._life, _cstr(entity, "entity"), flt)

    def entity(self, entity: str, local_id: str) -> JSONObject:
        """One local record with its links ``[{integration_id, external_id, remote_updated_at}]``.

        Another tenant's id is NotFound.
        """
        return _call_json(
            self._state,
            lib.integ_entity_get,
            self._life,
            _cstr(entity, "entity"),
            _cstr(local_id, "local_id"),
        )

    def put_entity(
        self, entity: str, data: Mapping[str, Any], id: Optional[str] = None  # noqa: A002
    ) -> JSONObject:
        """Create (no ``id``) or replace (``id=LOCAL_ID``) a local record.

        ``data`` replaces the record's data as a whole (no merge). With
        ``id`` the record must exist for this tenant and entity (NotFound
        otherwise): ids of new records are chosen by the library. The record
        is marked changed for the next push; each write increments its
        ``version``. Needs integration:admin. Returns the stored record
        (``links`` is always empty here: read :meth:`entity` for them).
        """
        record: Dict[str, Any] = {"data": data}
        if id is not None:
            record["id"] = id
        return _call_json(
            self._state, lib.integ_entity_put, self._life, _cstr(entity, "entity"), _dumps(record)
        )

    def delete_entity(self, entity: str, local_id: str) -> None:
        """Soft-delete a local record (it reads back with ``deleted: True``).

        Needs integration:admin.
        """
        _call(
            self._state,
            lib.integ_entity_delete,
            self._life,
            _cstr(entity, "entity"),
            _cstr(local_id, "local_id"),
        )

    # -- webhooks ----------------------------------------------------------

    def create_webhook_endpoint(
        self,
        integration_id: str,
        scheme: Optional[str] = None,
        events: Optional[Iterable[str]] = None,
        secret: Optional[str] = None,
        active: Optional[bool] = None,
        description: Optional[str] = None,
    ) -> JSONObject:
        """Create a webhook endpoint for an integration (needs integration:admin).

        ``scheme`` overrides the definition's signature scheme (see
        :func:`verify_webhook`); ``events``: the event types to queue, exact
        or ``"prefix*"`` patterns (none: all); ``secret`` when the provider
        dictates it (Shopify's app secret, SendGrid's public key, ...),
        otherwise one is generated (``"whsec_..."``) or taken from the
        definition's app credentials (HubSpot: the client secret);
        ``active`` (default True); ``description``. Only the given fields are
        sent.

        Returns ``{id, integration_id, url (webhook.base_url/<id>, or None),
        scheme, secret_source, events, active, description, secret, ...}``.
        ``secret`` is shown here and by :meth:`rotate_webhook_secret` only;
        it is stored sealed. The id carries 128 random bits: it is the last
        path segment the provider posts to (see
        :meth:`Context.receive_webhook`).
        """
        request = {
            k: v
            for k, v in (
                ("scheme", scheme),
                ("events", None if events is None else _str_list(events, "events")),
                ("secret", secret),
                ("active", active),
                ("description", description),
            )
            if v is not None
        }
        return _call_json(
            self._state,
            lib.integ_webhook_endpoint_create,
            self._life,
            _cstr(integration_id, "integration_id"),
            _dumps(request) if request else None,
        )

    def webhook_endpoints(self, integration_id: str) -> List[JSONObject]:
        """The integration's webhook endpoints (never their secrets)."""
        return _call_json(
            self._state,
            lib.integ_webhook_endpoints_list,
            self._life,
            _cstr(integration_id, "integration_id"),
        )

    def update_webhook_endpoint(self, endpoint_id: str, **fields: Any) -> JSONObject:
        """Change an endpoint's ``events``, ``active``, ``description`` or ``scheme``.

        Or set a provider-dictated ``secret`` (the old one keeps verifying
        for the grace period, option ``webhook.rotation_grace_s``, default
        24 h). Every keyword given is sent as is (``description=None``
        clears it); an unknown one raises InvalidArgument naming it. A new
        ``scheme`` without a ``secret`` keeps the current secret if it suits
        the scheme, else generates one (returned once, as ``secret``) or
        raises InvalidArgument naming ``secret``; an endpoint verified with
        the app's secret takes no ``secret`` (set the app credentials
        instead). Needs integration:admin. Returns the endpoint (its secret
        only when one was generated).
        """
        if "events" in fields and fields["events"] is not None:
            fields["events"] = _str_list(fields["events"], "events")
        return _call_json(
            self._state,
            lib.integ_webhook_endpoint_update,
            self._life,
            _cstr(endpoint_id, "endpoint_id"),
            _dumps(fields),
        )

    def rotate_webhook_secret(self, endpoint_id: str) -> JSONObject:
        """Generate a new secret for the endpoint (needs integration:admin).

        Returns the endpoint with the new ``secret``, shown this once; the
        old secret keeps verifying for the grace period. Only a secret of
        the endpoint's own making rotates here (generated, a Graph
        clientState, basic-auth credentials); otherwise InvalidArgument:
        a secret the provider dictates (source ``"given"``) is replaced with
        :meth:`update_webhook_endpoint` ``(secret=...)``, and an endpoint
        verified with the app's client secret (source ``"app_secret"``,
        e.g. HubSpot) follows the definition's app credentials: change them
        with :meth:`Context.set_app_credentials`.
        """
        return _call_json(
            self._state,
            lib.integ_webhook_endpoint_rotate_secret,
            self._life,
            _cstr(endpoint_id, "endpoint_id"),
        )

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint and its queued events (needs integration:admin)."""
        _call(
            self._state,
            lib.integ_webhook_endpoint_delete,
            self._life,
            _cstr(endpoint_id, "endpoint_id"),
        )

    def webhook_events(
        self,
        endpoint_id: Optional[str] = None,
        integration_id: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[JSONObject]:
        """The tenant's webhook events, newest first, optionally filtered.

        ``status``: queued, processing, retry, processed or dead. Events
        read ``{id, endpoint_id, integration_id, event_id (the provider's
        delivery id), event_type, status, attempts, received_at,
        processed_at, last_error, result, next_attempt_at}``.
        """
        flt = _filter(
            endpoint_id=endpoint_id,
            integration_id=integration_id,
            status=status,
            limit=limit,
            offset=offset,
        )
        return _call_json(self._state, lib.integ_webhook_events_list, self._life, flt)

    def replay_webhook_event(self, event_id: str) -> None:
        """Queue a dead (or processed) event again (needs integration:admin).

        ``event_id`` is the event's ``id`` (not the provider's delivery id).
        Its attempts start again from 0; the next :meth:`Context.process_webhooks`
        takes it. Another status raises ConflictError.
        """
        _call(self._state, lib.integ_webhook_event_replay, self._life, _cstr(event_id, "event_id"))

    # -- OAuth -------------------------------------------------------------

    def begin_oauth(
        self,
        definition: str,
        redirect_uri: str,
        name: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        scopes: Optional[Iterable[str]] = None,
        integration_id: Optional[str] = None,
    ) -> JSONObject:
        """Start an OAuth 2.0 authorization-code flow ("Connect"; needs integration:admin).

        ``definition``: a definition key (``"hubspot-crm"``) whose app
        credentials are set (:meth:`Context.set_app_credentials`).
        ``redirect_uri``: where the provider sends the user back, with
        ``code`` and ``state``. ``name`` and ``config``: of the integration
        to create; ``scopes``: extra to the manifest's; ``integration_id``:
        re-authorise that existing integration instead.

        Returns ``{"authorize_url", "state", "expires_at"}``: send the user
        to ``authorize_url`` (it carries the state and the PKCE challenge),
        then pass the redirect's query to :meth:`Context.complete_oauth`.
        """
        request: Dict[str, Any] = {
            "integration_definition_id": definition,
            "redirect_uri": redirect_uri,
        }
        extra = {
            "name": name,
            "config": config,
            "scopes": None if scopes is None else _str_list(scopes, "scopes"),
            "integration_id": integration_id,
        }
        request.update({k: v for k, v in extra.items() if v is not None})
        return _call_json(self._state, lib.integ_oauth_begin, self._life, _dumps(request))

    def refresh_oauth(self, integration_id: str) -> None:
        """Force a token refresh now (single-flight across threads and processes).

        A refresh the provider rejects raises AuthError; the integration is
        then marked ``needs_reauth`` and ``"integration.needs_reauth"`` goes
        to the event callback.
        """
        _call(
            self._state,
            lib.integ_oauth_refresh,
            self._life,
            _cstr(integration_id, "integration_id"),
        )
