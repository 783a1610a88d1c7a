"""Tenant integrations: create, read, list, update, credentials, delete."""

from __future__ import annotations

import copy
import json
import time

import pytest

import integrations
from helpers import HUBSPOT_EXAMPLE, VISMA_EXAMPLE

PUBLIC_FIELDS = {
    "id", "tenant_id", "integration_definition_id", "name", "category", "config",
    "status", "last_sync_at", "created_at", "updated_at", "has_credentials",
}  # fmt: skip


def _no_secret(secret: str, *values: object) -> None:
    for v in values:
        assert secret not in json.dumps(v), f"secret leaked in {v!r}"


def test_seed_hubspot_example_verbatim(admin: integrations.Session) -> None:
    request = copy.deepcopy(HUBSPOT_EXAMPLE)
    created = admin.create_integration(request)
    assert request == HUBSPOT_EXAMPLE  # the caller's dict is not modified
    assert PUBLIC_FIELDS <= created.keys()
    assert created["tenant_id"] == "tenant-a"
    assert created["name"] == "HubSpot Production"
    assert created["category"] == "crm"
    assert created["status"] == "active"
    assert created["has_credentials"] is True
    # The given config, plus the schema's defaults for what it left out.
    assert {k: created["config"][k] for k in HUBSPOT_EXAMPLE["config"]} == HUBSPOT_EXAMPLE["config"]
    assert created["config"]["conflict_strategy"] == "last_write_wins"
    assert created["config"]["delete_remote"] is False
    assert created["last_sync_at"] is None
    assert "credentials" not in created

    got = admin.integration(created["id"])
    assert got == created
    # The API key "..." appears in no returned JSON.
    listed = admin.integrations()
    trail = admin.audit()
    for v in (created, got, listed, trail):
        assert '"..."' not in json.dumps(v)


def test_seed_visma_example_verbatim(admin: integrations.Session) -> None:
    created = admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    assert created["category"] == "erp" and created["has_credentials"] is True
    assert created["config"]["sync_interval"] == 3600
    assert '"..."' not in json.dumps([created, admin.integrations(), admin.audit()])


def test_keyword_form_and_defaults(admin: integrations.Session) -> None:
    secret = "pat-na1-0b6c1e0e-secret"
    created = admin.create_integration(
        "hubspot-crm", name="HubSpot Sandbox", credentials={"api_key": secret}, config={"sync_interval": 600}
    )
    assert created["name"] == "HubSpot Sandbox"
    assert created["auth_type"] == "api_key"  # inferred from the credentials
    assert created["config"]["sync_interval"] == 600
    assert created["config"]["auto_sync"] is False  # schema default applied
    _no_secret(secret, created, admin.integrations(), admin.audit())


def test_keywords_override_request_dict(admin: integrations.Session) -> None:
    created = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE), name="Renamed", status="paused")
    assert created["name"] == "Renamed" and created["status"] == "paused"


def test_without_credentials_needs_reauth(admin: integrations.Session) -> None:
    created = admin.create_integration("hubspot-crm")
    assert created["status"] == "needs_reauth" and created["has_credentials"] is False


def test_list_filters_and_order(admin: integrations.Session) -> None:
    # A few ms apart: see test_newest_first_within_one_millisecond for the
    # same-millisecond case.
    hub = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    time.sleep(0.003)
    visma = admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    time.sleep(0.003)
    paused = admin.create_integration("hubspot-crm", name="Paused", credentials={"api_key": "k"}, status="paused")
    ids = [i["id"] for i in admin.integrations()]
    assert ids == [paused["id"], visma["id"], hub["id"]]  # newest first
    assert [i["id"] for i in admin.integrations(category="erp")] == [visma["id"]]
    assert [i["id"] for i in admin.integrations(definition="hubspot-crm")] == [paused["id"], hub["id"]]
    assert [i["id"] for i in admin.integrations(status="paused")] == [paused["id"]]
    assert [i["id"] for i in admin.integrations(status="active", category="crm")] == [hub["id"]]
    assert [i["id"] for i in admin.integrations(limit=1, offset=1)] == [visma["id"]]
    assert admin.integrations(category="email") == []


def test_newest_first_within_one_millisecond(admin: integrations.Session) -> None:
    """List order is newest first even for objects made in the same millisecond.

    The contract (integrations.h, store.h): ids are time-ordered UUIDv7 and
    lists are "id" descending, newest first. Calls here take well under a
    millisecond, so this needs ids that are monotonic within one.
    """
    created = [
        admin.create_integration("visma-erp", name=f"n{i}", credentials={"client_id": "a", "client_secret": "b"})["id"]
        for i in range(20)
    ]
    assert [i["id"] for i in admin.integrations()] == created[::-1]
    assert [e["object_id"] for e in admin.audit()] == created[::-1]


def test_update_sends_only_given_fields(admin: integrations.Session) -> None:
    created = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    renamed = admin.update_integration(created["id"], name="HubSpot EU")
    assert renamed["name"] == "HubSpot EU"
    assert renamed["config"] == created["config"] and renamed["status"] == "active"
    merged = admin.update_integration(created["id"], config={"sync_interval": 7200})
    assert merged["config"] == {**created["config"], "sync_interval": 7200}
    assert merged["name"] == "HubSpot EU"
    paused = admin.update_integration(created["id"], status="paused")
    assert paused["status"] == "paused"
    assert admin.integration(created["id"]) == paused
    # A key set to None is removed from the config (merge patch).
    dropped = admin.update_integration(created["id"], config={"entities": None})
    assert "entities" not in dropped["config"]


def test_set_credentials(admin: integrations.Session) -> None:
    created = admin.create_integration("hubspot-crm")
    assert created["status"] == "needs_reauth"
    token = "oauth-access-token-4f1d"
    admin.set_credentials(created["id"], {"access_token": token, "refresh_token": "rt-99"})
    got = admin.integration(created["id"])
    assert got["has_credentials"] is True and got["status"] == "active"
    assert got["auth_type"] == "oauth2"
    _no_secret(token, got, admin.integrations(), admin.audit())
    _no_secret("rt-99", got, admin.audit())


def test_set_credentials_validates(admin: integrations.Session) -> None:
    created = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    with pytest.raises(integrations.InvalidArgument, match="credentials"):
        admin.set_credentials(created["id"], {"api_key": ""})


def test_delete(admin: integrations.Session) -> None:
    a = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    b = admin.create_integration(copy.deepcopy(VISMA_EXAMPLE))
    assert admin.delete_integration(a["id"]) is None
    assert [i["id"] for i in admin.integrations()] == [b["id"]]
    with pytest.raises(integrations.NotFound):
        admin.integration(a["id"])
    with pytest.raises(integrations.NotFound):
        admin.delete_integration(a["id"])


# -- error mapping -------------------------------------------------------------


def test_other_tenants_id_is_not_found(admin: integrations.Session, other_admin: integrations.Session) -> None:
    mine = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    for call in (
        lambda: other_admin.integration(mine["id"]),
        lambda: other_admin.update_integration(mine["id"], name="stolen"),
        lambda: other_admin.set_credentials(mine["id"], {"api_key": "x"}),
        lambda: other_admin.delete_integration(mine["id"]),
    ):
        with pytest.raises(integrations.NotFound) as ei:
            call()
        assert ei.value.code == -2 and mine["id"] in str(ei.value)
    assert other_admin.integrations() == []
    assert admin.integration(mine["id"])["name"] == "HubSpot Production"


def test_non_admin_cannot_write(admin: integrations.Session, reader: integrations.Session) -> None:
    mine = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    assert reader.integration(mine["id"])["id"] == mine["id"]  # reads are fine
    for call in (
        lambda: reader.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE)),
        lambda: reader.update_integration(mine["id"], name="x"),
        lambda: reader.set_credentials(mine["id"], {"api_key": "x"}),
        lambda: reader.delete_integration(mine["id"]),
    ):
        with pytest.raises(integrations.PermissionDenied) as ei:
            call()
        assert ei.value.code == -4 and "bob" in str(ei.value)
    assert len(admin.integrations()) == 1


def test_integration_admin_permission_string(ctx: integrations.Context) -> None:
    with ctx.session("tenant-a", "dora", roles=["integration:admin"]) as s:
        assert s.create_integration(copy.deepcopy(VISMA_EXAMPLE))["tenant_id"] == "tenant-a"


@pytest.mark.parametrize(
    "request_,field",
    [
        ({"integration_definition_id": "hubspot-crm", "config": [1]}, "config"),
        ({"integration_definition_id": "hubspot-crm", "credentials": "k"}, "credentials"),
        ({"integration_definition_id": "hubspot-crm", "name": ""}, "name"),
        ({"integration_definition_id": "hubspot-crm", "status": "error"}, "status"),
        ({"integration_definition_id": "hubspot-crm", "colour": "red"}, "colour"),
        ({"name": "no definition"}, "integration_definition_id"),
        ({"integration_definition_id": "hubspot-crm", "config": {"sync_interval": "hourly"}}, "config.sync_interval"),
        ({"integration_definition_id": "hubspot-crm", "config": {"sync_interval": 5}}, "config.sync_interval"),
        ({"integration_definition_id": "hubspot-crm", "config": {"entities": ["tickets"]}}, "config.entities"),
        ({"integration_definition_id": "hubspot-crm", "config": {"color": 1}}, "color"),
        ({"integration_definition_id": "hubspot-crm", "credentials": {"api_key": 7}}, "credentials"),
    ],
)
def test_invalid_requests_name_the_field(admin: integrations.Session, request_: dict, field: str) -> None:
    with pytest.raises(integrations.InvalidArgument) as ei:
        admin.create_integration(request_)
    assert ei.value.code == -1
    assert field in str(ei.value), str(ei.value)
    assert admin.integrations() == []


def test_unknown_definition_on_create(admin: integrations.Session) -> None:
    with pytest.raises(integrations.NotFound, match="integration_definition_id"):
        admin.create_integration("nosuch-crm")


def test_invalid_patch_and_filters(admin: integrations.Session) -> None:
    mine = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    with pytest.raises(integrations.InvalidArgument, match="config"):
        admin.update_integration(mine["id"], config="fast")  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="config.sync_interval"):
        admin.update_integration(mine["id"], config={"sync_interval": -1})
    with pytest.raises(integrations.InvalidArgument, match="status"):
        admin.update_integration(mine["id"], status="deleted")
    with pytest.raises(integrations.InvalidArgument, match="status"):
        admin.integrations(status="sleeping")
    with pytest.raises(integrations.InvalidArgument, match="limit"):
        admin.integrations(limit=-1)
    after = admin.integration(mine["id"])["config"]
    assert {k: after[k] for k in HUBSPOT_EXAMPLE["config"]} == HUBSPOT_EXAMPLE["config"]


def test_python_side_argument_checks(admin: integrations.Session, ctx: integrations.Context) -> None:
    with pytest.raises(TypeError):
        admin.create_integration(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        admin.integration(None)  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        admin.integration("abc\0def")
    with pytest.raises(TypeError):
        ctx.session("tenant-a", "alice", roles="admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        admin.create_integration("hubspot-crm", config={"sync_interval": float("nan")})


def test_invalid_session_ids(ctx: integrations.Context) -> None:
    with pytest.raises(integrations.InvalidArgument, match="tenant_id"):
        ctx.session("tenant with spaces", "alice")
    with pytest.raises(integrations.InvalidArgument, match="user_id"):
        ctx.session("tenant-a", "")
    with pytest.raises(integrations.InvalidArgument, match="roles"):
        ctx.session("tenant-a", "alice", roles=[1])  # type: ignore[list-item]


def test_unicode_round_trip(admin: integrations.Session) -> None:
    name = "Kundenbuch Ærø – 東京 ✓"
    created = admin.create_integration("visma-erp", name=name, credentials={"client_id": "a", "client_secret": "b"})
    assert created["name"] == name
    assert admin.integration(created["id"])["name"] == name
