"""Loading libintegrations with ctypes and declaring its prototypes.

Internal module: the public API is in :mod:`integrations`. Every function
used gets ``argtypes`` and ``restype`` (the ctypes default ``int`` return
would truncate pointers). ``char *`` results owned by the caller are
declared as ``c_void_p`` so that they can be handed back to ``integ_free``
right after decoding; see :func:`take_string`.

The library is looked up, in order:

1. the path in the environment variable ``INTEG_LIBRARY``;
2. ``libintegrations.so*`` next to this file (a wheel or an installed copy);
3. the build directory of the source tree this package sits in: walking up
   from the package, the first directory whose ``meson.build`` declares the
   project, then ``build/lib/libintegrations.so`` (then other ``build*/``);
4. ``ctypes.util.find_library("integrations")`` (installed system-wide).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_int, c_int64, c_size_t, c_void_p
from pathlib import Path
from typing import List, Optional, Tuple

from .errors import IntegrationsError, error_for_code

__all__ = [
    "lib",
    "library_path",
    "PERMISSION_CB",
    "PROGRESS_CB",
    "EVENT_CB",
    "check",
    "error",
    "errmsg",
    "free_quietly",
    "strerror",
    "take_string",
]

_LIB_NAME = "libintegrations.so"

# int (*integ_permission_cb)(void *payload, const char *tenant_id,
#                            const char *user_id, const char *resource,
#                            const char *action)
PERMISSION_CB = CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p)

# int (*integ_progress_cb)(void *payload, const char *progress_json)
PROGRESS_CB = CFUNCTYPE(c_int, c_void_p, c_char_p)

# void (*integ_event_cb)(void *payload, const char *event_json)
EVENT_CB = CFUNCTYPE(None, c_void_p, c_char_p)

_ctx_p = c_void_p  # integ_ctx *
_session_p = c_void_p  # integ_session *
_out_str = POINTER(c_void_p)  # char ** (freed with integ_free)
_out_handle = POINTER(c_void_p)  # integ_ctx ** / integ_session **
_str_array = POINTER(c_char_p)  # const char *const * (header names/values)
# const unsigned char *body: passed as bytes (c_char_p points at the bytes
# object's buffer; embedded NULs are fine, the length travels separately).
_bytes_p = c_char_p

# name: (restype, argtypes). Keep in step with lib/integrations.map;
# scripts/check_parity.py checks that every exported symbol appears here
# (or is listed as C-only in doc/bindings.md).
_PROTOTYPES = {
    # library
    "integ_version": (c_char_p, []),
    "integ_strerror": (c_char_p, [c_int]),
    "integ_errmsg": (c_char_p, []),
    "integ_free": (None, [c_void_p]),
    "integ_generate_master_key": (c_int, [_out_str]),
    # context
    "integ_ctx_open": (c_int, [_out_handle, c_char_p]),
    "integ_ctx_close": (None, [_ctx_p]),
    "integ_ctx_set_permission_cb": (c_int, [_ctx_p, PERMISSION_CB, c_void_p]),
    "integ_ctx_rotate_master_key": (c_int, [_ctx_p, c_char_p]),
    # sessions
    "integ_session_open": (c_int, [_out_handle, _ctx_p, c_char_p, c_char_p, c_char_p]),
    "integ_session_close": (None, [_session_p]),
    # definitions
    "integ_definitions_list": (c_int, [_ctx_p, c_char_p, _out_str]),
    "integ_definition_get": (c_int, [_ctx_p, c_char_p, _out_str]),
    "integ_definition_register": (c_int, [_ctx_p, c_char_p, _out_str]),
    "integ_definition_set_app_credentials": (c_int, [_ctx_p, c_char_p, c_char_p]),
    # tenant integrations
    "integ_integration_create": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_integration_get": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_integrations_list": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_integration_update": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_integration_set_credentials": (c_int, [_session_p, c_char_p, c_char_p]),
    "integ_integration_delete": (c_int, [_session_p, c_char_p]),
    # audit
    "integ_audit_list": (c_int, [_session_p, c_char_p, _out_str]),
    # mappings (INTEGRATIONS_0.2)
    "integ_mapping_put": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_mappings_list": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_mapping_delete": (c_int, [_session_p, c_char_p]),
    "integ_mapping_apply": (c_int, [_session_p, c_char_p, c_char_p, c_char_p, _out_str]),
    # sync (INTEGRATIONS_0.2)
    "integ_sync": (c_int, [_session_p, c_char_p, c_char_p, PROGRESS_CB, c_void_p, _out_str]),
    "integ_sync_logs": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_integration_test": (c_int, [_session_p, c_char_p, _out_str]),
    # local entities (INTEGRATIONS_0.2; integ_ctx_set_entity_store is C-only)
    "integ_entities_list": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_entity_get": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_entity_put": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_entity_delete": (c_int, [_session_p, c_char_p, c_char_p]),
    # events, webhooks and OAuth (INTEGRATIONS_0.3)
    "integ_ctx_set_event_cb": (c_int, [_ctx_p, EVENT_CB, c_void_p]),
    "integ_webhook_endpoint_create": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_webhook_endpoints_list": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_webhook_endpoint_update": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_webhook_endpoint_rotate_secret": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_webhook_endpoint_delete": (c_int, [_session_p, c_char_p]),
    "integ_webhook_receive": (
        c_int,
        [_ctx_p, c_char_p, c_char_p, c_char_p, _str_array, _str_array, c_size_t,
         _bytes_p, c_size_t, POINTER(c_int), _out_str],
    ),  # fmt: skip
    "integ_webhook_process": (c_int, [_ctx_p, c_int, _out_str]),
    "integ_webhook_events_list": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_webhook_event_replay": (c_int, [_session_p, c_char_p]),
    "integ_webhook_verify": (
        c_int,
        [c_char_p, c_char_p, c_char_p, c_char_p, _str_array, _str_array, c_size_t,
         _bytes_p, c_size_t, c_int64, c_int],
    ),  # fmt: skip
    "integ_oauth_begin": (c_int, [_session_p, c_char_p, _out_str]),
    "integ_oauth_complete": (c_int, [_ctx_p, c_char_p, _out_str]),
    "integ_oauth_refresh": (c_int, [_session_p, c_char_p]),
    # schedules and conflicts (INTEGRATIONS_0.4)
    "integ_run_due": (c_int, [_ctx_p, c_int, _out_str]),
    "integ_conflicts_list": (c_int, [_session_p, c_char_p, c_char_p, _out_str]),
    "integ_conflict_resolve": (c_int, [_session_p, c_char_p, c_char_p]),
}


def _source_tree_candidates(start: Path) -> Tuple[Optional[Path], List[Path]]:
    """(the source tree root above ``start`` or None, its build-dir copies)."""
    for d in [start, *start.parents]:
        meson = d / "meson.build"
        try:
            text = meson.read_text(encoding="utf-8", errors="replace") if meson.is_file() else ""
        except OSError:
            text = ""
        if "project(" not in text:
            continue  # no meson.build, or a subdir() one such as bindings/
        first = d / "build" / "lib" / _LIB_NAME
        others = sorted(p for p in d.glob("build*/lib/" + _LIB_NAME) if p != first)
        return d, [first, *others]
    return None, []


def _load() -> Tuple[ctypes.CDLL, str]:
    """Find and load the library; ImportError listing every place tried."""
    tried: List[str] = []

    env = os.environ.get("INTEG_LIBRARY")
    if env:
        # An explicit choice: never fall back silently to another copy.
        try:
            return ctypes.CDLL(env), env
        except OSError as e:
            raise ImportError(
                f"integrations: cannot load INTEG_LIBRARY={env!r}: {e}"
            ) from e
    tried.append("$INTEG_LIBRARY: not set")

    here = Path(__file__).resolve().parent
    beside = sorted(here.glob(_LIB_NAME + "*"), key=lambda p: (len(p.name), p.name))
    if not beside:
        tried.append(f"{here / _LIB_NAME}*: none")
    root, built = _source_tree_candidates(here)
    if root is None:
        tried.append(f"source tree build dir: no top-level meson.build above {here}")

    for p in [*beside, *built]:
        if not p.exists():
            tried.append(f"{p}: missing")
            continue
        try:
            return ctypes.CDLL(str(p)), str(p)
        except OSError as e:
            tried.append(f"{p}: {e}")

    name = ctypes.util.find_library("integrations")
    if name:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            tried.append(f"ctypes.util.find_library('integrations') -> {name}: {e}")
    else:
        tried.append("ctypes.util.find_library('integrations'): nothing found")

    raise ImportError(
        "integrations: cannot find libintegrations. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nBuild it (`meson setup build && ninja -C build` in the source tree), "
        "install it, or set INTEG_LIBRARY to the path of libintegrations.so."
    )


def _declare(dll: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(dll, name)
        except AttributeError as e:
            raise ImportError(f"integrations: {dll._name} does not export {name}: too old?") from e
        fn.restype = restype
        fn.argtypes = argtypes


lib, library_path = _load()
_declare(lib)

# Bound once: finalisers and error paths must not depend on module globals,
# which may already be torn down at interpreter shutdown.
_errmsg = lib.integ_errmsg
_strerror = lib.integ_strerror
_free = lib.integ_free


def strerror(code: int) -> str:
    """The library's fixed English text for ``code``."""
    s = _strerror(code)
    return s.decode("utf-8", "replace") if s else ""


def errmsg() -> str:
    """The calling thread's ``integ_errmsg()`` ("" if none); read it at once.

    For calls that succeed yet report a reason, e.g. ``integ_webhook_receive``
    answering 401: the message is valid only until the thread's next library
    call.
    """
    raw = _errmsg()
    return raw.decode("utf-8", "replace") if raw else ""


def error(code: int) -> IntegrationsError:
    """The exception for a failed call; call right after it, on the same thread.

    ``integ_errmsg()`` is thread-local in C and valid until the thread's
    next library call, so nothing may call into the library in between.
    """
    raw = _errmsg()
    msg = raw.decode("utf-8", "replace") if raw else ""
    return error_for_code(code, msg or strerror(code))


def check(code: int) -> None:
    """Raise the matching :class:`IntegrationsError` unless ``code`` is 0."""
    if code != 0:
        raise error(code)


def take_string(p: c_void_p, errors: str = "replace") -> Optional[str]:
    """Decode a library-owned ``char *`` as UTF-8 and free it at once.

    ``errors`` is the codec's error handler. The default, ``"replace"``,
    turns bytes that are not UTF-8 into U+FFFD, as the Node binding does:
    the library's JSON carries remote data (a record a provider sent in
    Latin-1, a webhook handshake's token), which must not make every read
    of it fail.
    """
    if not p.value:
        return None
    try:
        return ctypes.string_at(p.value).decode("utf-8", errors)
    finally:
        _free(p)
        p.value = None


def free_quietly(p: c_void_p) -> None:
    """Free ``p`` if set (after a failed call that should not have set it)."""
    if p.value:
        _free(p)
        p.value = None
