"""Python binding of libintegrations (ctypes, standard library only).

Connect a host application's tenants to the business systems they already
use (ERP, CRM, accounting, e-commerce, email)::

    import integrations

    key = integrations.generate_master_key()
    with integrations.Context({"store": "sqlite:app.db", "master_key": key}) as ctx:
        with ctx.session("tenant-1", "alice", roles=["admin"]) as s:
            hubspot = s.create_integration(
                "hubspot-crm",
                name="HubSpot Production",
                credentials={"api_key": "..."},
                config={"sync_interval": 3600},
            )
            print(s.integrations())

Structured values are dicts and lists (JSON at the C boundary). Failures
raise a subclass of :class:`IntegrationsError` (see :mod:`integrations.errors`).
The shared library is found through ``INTEG_LIBRARY``, next to this package,
in the source tree's ``build/`` directory, or system-wide.
"""

from __future__ import annotations

from ._client import (
    Context,
    EventCallback,
    Headers,
    PermissionCallback,
    ProgressCallback,
    Session,
    WebhookResponse,
    generate_master_key,
    strerror,
    verify_webhook,
    version,
)
from ._native import library_path
from .errors import (
    AlreadyExists,
    AuthError,
    Canceled,
    ConflictError,
    CryptoError,
    ErrorCode,
    IntegrationsError,
    InternalError,
    InvalidArgument,
    MappingError,
    NetworkError,
    NotFound,
    OutOfMemory,
    PermissionDenied,
    RateLimited,
    RemoteError,
    ReplayError,
    SignatureError,
    StoreError,
    Unsupported,
)

#: The version of this binding (the C library's is :func:`version`).
__version__ = "0.4.0"

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
    "library_path",
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
]
