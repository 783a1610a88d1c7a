"""Exceptions raised by the binding: one class per ``INTEG_E*`` code.

Every failed library call raises a subclass of :class:`IntegrationsError`.
The exception's text is the library's one-line message for the failure
(``integ_errmsg()``), which names the field, header or step that failed, for
example ``request_json.config.sync_interval: must be an integer``; its
:attr:`~IntegrationsError.code` is the negative ``INTEG_E*`` number.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional, Type

__all__ = [
    "ErrorCode",
    "IntegrationsError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "AuthError",
    "RateLimited",
    "NetworkError",
    "RemoteError",
    "SignatureError",
    "ReplayError",
    "ConflictError",
    "MappingError",
    "StoreError",
    "CryptoError",
    "OutOfMemory",
    "Canceled",
    "Unsupported",
    "InternalError",
    "error_for_code",
]


class ErrorCode(enum.IntEnum):
    """The library's result codes (``enum integ_error_code``)."""

    OK = 0
    EINVAL = -1
    ENOTFOUND = -2
    EEXISTS = -3
    EPERM = -4
    EAUTH = -5
    ERATELIMIT = -6
    ENETWORK = -7
    EREMOTE = -8
    ESIGNATURE = -9
    EREPLAY = -10
    ECONFLICT = -11
    EMAPPING = -12
    ESTORE = -13
    ECRYPTO = -14
    ENOMEM = -15
    ECANCELED = -16
    EUNSUPPORTED = -17
    EINTERNAL = -99


class IntegrationsError(Exception):
    """Base class of every error reported by libintegrations.

    Attributes:
        code: the negative ``INTEG_E*`` code (see :class:`ErrorCode`).
        message: the library's one-line message (also ``str(exc)``).
    """

    #: The code this class stands for; the base class has none of its own.
    code: int = 0

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message: str = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code})"

    def __reduce__(self):  # keep .code through pickling (multiprocessing)
        return (type(self), (self.message, self.code))


class InvalidArgument(IntegrationsError):
    """``INTEG_EINVAL``: bad argument, malformed JSON or schema violation."""

    code = ErrorCode.EINVAL


class NotFound(IntegrationsError):
    """``INTEG_ENOTFOUND``: no such object for this tenant (also another tenant's)."""

    code = ErrorCode.ENOTFOUND


class AlreadyExists(IntegrationsError):
    """``INTEG_EEXISTS``: the object already exists."""

    code = ErrorCode.EEXISTS


class PermissionDenied(IntegrationsError):
    """``INTEG_EPERM``: the session lacks the permission (writes need integration:admin)."""

    code = ErrorCode.EPERM


class AuthError(IntegrationsError):
    """``INTEG_EAUTH``: the remote system rejected the credentials; re-auth needed."""

    code = ErrorCode.EAUTH


class RateLimited(IntegrationsError):
    """``INTEG_ERATELIMIT``: retries exhausted on rate limits."""

    code = ErrorCode.ERATELIMIT


class NetworkError(IntegrationsError):
    """``INTEG_ENETWORK``: transport failure or timeout."""

    code = ErrorCode.ENETWORK


class RemoteError(IntegrationsError):
    """``INTEG_EREMOTE``: any other error reported by the remote system."""

    code = ErrorCode.EREMOTE


class SignatureError(IntegrationsError):
    """``INTEG_ESIGNATURE``: a webhook signature is invalid."""

    code = ErrorCode.ESIGNATURE


class ReplayError(IntegrationsError):
    """``INTEG_EREPLAY``: stale timestamp or duplicate delivery."""

    code = ErrorCode.EREPLAY


class ConflictError(IntegrationsError):
    """``INTEG_ECONFLICT``: sync already running, unresolved conflict, concurrent change."""

    code = ErrorCode.ECONFLICT


class MappingError(IntegrationsError):
    """``INTEG_EMAPPING``: a data mapping failed."""

    code = ErrorCode.EMAPPING


class StoreError(IntegrationsError):
    """``INTEG_ESTORE``: the store failed."""

    code = ErrorCode.ESTORE


class CryptoError(IntegrationsError):
    """``INTEG_ECRYPTO``: wrong master key or tampered ciphertext."""

    code = ErrorCode.ECRYPTO


class OutOfMemory(IntegrationsError):
    """``INTEG_ENOMEM``: the library ran out of memory."""

    code = ErrorCode.ENOMEM


class Canceled(IntegrationsError):
    """``INTEG_ECANCELED``: canceled by a callback.

    Attributes:
        result: for a sync canceled by its progress callback
            (:meth:`Session.sync <integrations.Session.sync>`), the run's
            result dict (``status == "canceled"``, the counts of what was
            committed before the cancel); otherwise None.
    """

    code = ErrorCode.ECANCELED

    def __init__(
        self, message: str = "", code: Optional[int] = None, result: Optional[Dict[str, Any]] = None
    ) -> None:
        super().__init__(message, code)
        self.result: Optional[Dict[str, Any]] = result

    def __reduce__(self):  # keep .code and .result through pickling
        return (type(self), (self.message, self.code, self.result))


class Unsupported(IntegrationsError):
    """``INTEG_EUNSUPPORTED``: not supported by this adapter or store."""

    code = ErrorCode.EUNSUPPORTED


class InternalError(IntegrationsError):
    """``INTEG_EINTERNAL``: a bug in the library; please report it."""

    code = ErrorCode.EINTERNAL


_BY_CODE: Dict[int, Type[IntegrationsError]] = {
    int(cls.code): cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        AuthError,
        RateLimited,
        NetworkError,
        RemoteError,
        SignatureError,
        ReplayError,
        ConflictError,
        MappingError,
        StoreError,
        CryptoError,
        OutOfMemory,
        Canceled,
        Unsupported,
        InternalError,
    )
}


def error_for_code(code: int, message: str) -> IntegrationsError:
    """Build the exception for ``code``; unknown codes give a plain IntegrationsError."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return IntegrationsError(message, code)
    return cls(message)
