"""The host's permission callback."""

from __future__ import annotations

import copy
import gc
import warnings
from typing import List, Tuple

import pytest

import integrations
from helpers import HUBSPOT_EXAMPLE, VISMA_EXAMPLE


def test_callback_decides(ctx: integrations.Context) -> None:
    calls: List[Tuple[str, str, str, str]] = []

    def allow_admins_of_acme(tenant: str, user: str, resource: str, action: str) -> bool:
        calls.append((tenant, user, resource, action))
        return tenant == "acme" and user.startswith("admin-")

    ctx.set_permission_callback(allow_admins_of_acme)
    assert ctx.permission_callback is allow_admins_of_acme
    # Roles no longer matter: the callback replaces them.
    with ctx.session("acme", "admin-1") as yes, ctx.session("acme", "joe", roles=["admin"]) as no:
        created = yes.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
        with pytest.raises(integrations.PermissionDenied):
            no.update_integration(created["id"], name="nope")
        assert no.integration(created["id"])["id"] == created["id"]  # reads are not checked
    assert calls == [
        ("acme", "admin-1", "integration", "admin"),
        ("acme", "joe", "integration", "admin"),
    ]

    # Cleared: the roles decide again.
    ctx.set_permission_callback(None)
    assert ctx.permission_callback is None
    with ctx.session("acme", "joe", roles=["admin"]) as s:
        s.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    assert len(calls) == 2


@pytest.mark.parametrize("value", [1, "yes", None, 0, [], object()], ids=["1", "yes", "None", "0", "list", "object"])
def test_only_a_bool_decides(admin: integrations.Session, ctx: integrations.Context, value: object) -> None:
    # Not truthiness: anything but True/False denies and is reported like an exception.
    ctx.set_permission_callback(lambda *a: value)
    with pytest.raises(TypeError, match=f"must return True or False, got {type(value).__name__}"):
        admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    assert admin.integrations() == []  # denied: nothing was created
    ctx.set_permission_callback(lambda *a: True)
    admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    ctx.set_permission_callback(lambda *a: False)
    with pytest.raises(integrations.PermissionDenied):
        admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    assert len(admin.integrations()) == 1


def test_async_callback_denies(admin: integrations.Session, ctx: integrations.Context) -> None:
    # An async policy returns a coroutine, which is truthy: it must not allow.
    async def policy(tenant: str, user: str, resource: str, action: str) -> bool:
        return False

    ctx.set_permission_callback(policy)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed: no "never awaited" warning
        with pytest.raises(TypeError, match="got coroutine .*async"):
            admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
        gc.collect()
    assert admin.integrations() == []


class HostPolicyError(RuntimeError):
    pass


def test_raising_callback_reraises_its_exception(admin: integrations.Session, ctx: integrations.Context) -> None:
    created = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))

    def broken(tenant: str, user: str, resource: str, action: str) -> bool:
        raise HostPolicyError(f"policy service down for {user}")

    ctx.set_permission_callback(broken)
    with pytest.raises(HostPolicyError, match="policy service down for alice"):
        admin.update_integration(created["id"], name="x")
    with pytest.raises(HostPolicyError):
        admin.delete_integration(created["id"])
    # The call was denied: nothing changed, and the next read is unaffected.
    assert admin.integration(created["id"])["name"] == "HubSpot Production"
    assert [e["action"] for e in admin.audit()] == ["integration.create"]

    # The stored exception does not leak into later calls.
    ctx.set_permission_callback(lambda *a: False)
    with pytest.raises(integrations.PermissionDenied):
        admin.delete_integration(created["id"])


def test_replacing_callback_keeps_working(admin: integrations.Session, ctx: integrations.Context) -> None:
    for i in range(20):
        ctx.set_permission_callback(lambda *a, _i=i: _i % 2 == 0)
        if i % 2 == 0:
            admin.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
        else:
            with pytest.raises(integrations.PermissionDenied):
                admin.create_integration("visma-erp")
    assert len(admin.integrations()) == 10


def test_bad_callback_type(ctx: integrations.Context) -> None:
    with pytest.raises(TypeError):
        ctx.set_permission_callback("admin")  # type: ignore[arg-type]
