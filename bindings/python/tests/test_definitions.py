"""The catalog: listing, filtering, getting, registering, app credentials."""

from __future__ import annotations

import copy
import json

import pytest

import integrations
from helpers import CATALOG_KEYS, REPO_ROOT


def test_catalog_has_the_fifteen_definitions(ctx: integrations.Context) -> None:
    defs = ctx.definitions()
    assert isinstance(defs, list) and len(defs) == 15
    assert {d["key"] for d in defs} == CATALOG_KEYS
    # Sorted by category, then key.
    order = [(d["category"], d["key"]) for d in defs]
    assert order == sorted(order)
    for d in defs:
        assert {"id", "key", "name", "category", "auth_type", "config_schema"} <= d.keys()
        assert d["key"].endswith("-" + d["category"])


@pytest.mark.parametrize(
    "category,keys",
    [
        ("crm", {"hubspot-crm", "salesforce-crm", "pipedrive-crm"}),
        ("erp", {"visma-erp", "sap-erp", "dynamics-erp"}),
        ("email", {"gmail-email", "outlook-email", "sendgrid-email"}),
        ("storage", set()),
    ],
)
def test_category_filter(ctx: integrations.Context, category: str, keys: set) -> None:
    defs = ctx.definitions(category=category)
    assert {d["key"] for d in defs} == keys
    assert all(d["category"] == category for d in defs)


def test_limit_and_offset(ctx: integrations.Context) -> None:
    everything = [d["key"] for d in ctx.definitions()]
    assert [d["key"] for d in ctx.definitions(limit=4)] == everything[:4]
    assert [d["key"] for d in ctx.definitions(limit=4, offset=4)] == everything[4:8]
    assert [d["key"] for d in ctx.definitions(offset=13)] == everything[13:]


def test_unknown_category_is_invalid(ctx: integrations.Context) -> None:
    with pytest.raises(integrations.InvalidArgument, match="category"):
        ctx.definitions(category="toasters")


def test_definition_by_key_and_by_id(ctx: integrations.Context) -> None:
    hub = ctx.definition("hubspot-crm")
    assert hub["key"] == "hubspot-crm" and hub["category"] == "crm"
    assert set(hub["config_schema"]["properties"]) >= {"sync_interval", "entities", "auto_sync"}
    assert ctx.definition(hub["id"]) == hub


def test_unknown_definition_is_not_found(ctx: integrations.Context) -> None:
    with pytest.raises(integrations.NotFound) as ei:
        ctx.definition("nosuch-crm")
    assert "nosuch-crm" in str(ei.value) and ei.value.code == -2


def _acme_manifest() -> dict:
    manifest = json.loads((REPO_ROOT / "adapters" / "hubspot-crm.json").read_text())
    manifest = copy.deepcopy(manifest)
    manifest["key"] = "acme-crm"
    manifest["name"] = "ACME CRM"
    return manifest


def test_register_definition_adds_and_replaces(ctx: integrations.Context) -> None:
    stored = ctx.register_definition(_acme_manifest())
    assert stored["key"] == "acme-crm" and stored["name"] == "ACME CRM"
    assert len(ctx.definitions()) == 16
    assert "acme-crm" in {d["key"] for d in ctx.definitions(category="crm")}
    again = _acme_manifest()
    again["name"] = "ACME CRM v2"
    replaced = ctx.register_definition(again)
    assert replaced["id"] == stored["id"] and replaced["name"] == "ACME CRM v2"
    assert len(ctx.definitions()) == 16


def test_register_bad_manifest_names_the_field(ctx: integrations.Context) -> None:
    bad = _acme_manifest()
    bad["category"] = 42
    with pytest.raises(integrations.InvalidArgument, match="category"):
        ctx.register_definition(bad)
    with pytest.raises(integrations.InvalidArgument):
        ctx.register_definition(["not", "an", "object"])  # type: ignore[arg-type]
    assert len(ctx.definitions()) == 15


def test_app_credentials_are_sealed(ctx: integrations.Context) -> None:
    secret = "app-secret-7f3a9c-never-shown"
    assert not ctx.definition("hubspot-crm").get("has_app_credentials")
    ctx.set_app_credentials("hubspot-crm", {"client_id": "cid-123", "client_secret": secret})
    hub = ctx.definition("hubspot-crm")
    assert hub["has_app_credentials"] is True
    assert secret not in json.dumps(ctx.definitions()) + json.dumps(hub)


def test_app_credentials_need_client_id(ctx: integrations.Context) -> None:
    with pytest.raises(integrations.InvalidArgument, match="client_id"):
        ctx.set_app_credentials("hubspot-crm", {"client_secret": "x"})
    with pytest.raises(integrations.NotFound):
        ctx.set_app_credentials("nosuch-crm", {"client_id": "a", "client_secret": "b"})
