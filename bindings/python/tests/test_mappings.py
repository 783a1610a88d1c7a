"""Mappings: put, list, apply (preview), delete, and their effect on a sync."""

from __future__ import annotations

import copy
from typing import Any, Dict

import pytest

import integrations
from fake_hubspot import FakeHubSpot, contact

MAPPING: Dict[str, Any] = {
    "source_entity": "contacts",
    "target_entity": "contacts",
    "field_map": {
        "email": "properties.email",
        "first_name": "properties.firstname",
        "last_name": "properties.lastname",
    },
    "transform_rules": [
        {"target": "email", "op": "trim"},
        {"target": "email", "op": "lowercase"},
    ],
    "required": ["email"],
}


def test_put_list_apply_delete(hub_admin: integrations.Session, hub_id: str) -> None:
    spec = copy.deepcopy(MAPPING)
    stored = hub_admin.put_mapping(hub_id, spec)
    assert spec == MAPPING  # the caller's dict is not modified
    assert stored["id"] and stored["integration_id"] == hub_id
    assert stored["field_map"] == MAPPING["field_map"]
    assert stored["transform_rules"] == MAPPING["transform_rules"]
    assert "tenant_id" not in stored
    assert hub_admin.mappings(hub_id) == [stored]

    pulled = hub_admin.apply_mapping(stored["id"], contact(1))
    assert pulled == {"email": "a1@x.io", "first_name": "A", "last_name": "1"}
    assert hub_admin.apply_mapping(stored["id"], contact(2), direction="pull")["email"] == "a2@x.io"
    pushed = hub_admin.apply_mapping(
        stored["id"], {"email": "a@b.io", "first_name": "Ann", "last_name": "B"}, direction="push"
    )
    assert pushed == {"properties": {"email": "a@b.io", "firstname": "Ann", "lastname": "B"}}

    # One mapping per source entity: a second put replaces it, keeping its id.
    spec["field_map"] = {"email": "properties.email"}
    replaced = hub_admin.put_mapping(hub_id, spec)
    assert replaced["id"] == stored["id"]
    assert replaced["created_at"] == stored["created_at"]
    assert hub_admin.mappings(hub_id) == [replaced]
    assert hub_admin.apply_mapping(stored["id"], contact(1)) == {"email": "a1@x.io"}

    hub_admin.delete_mapping(stored["id"])
    assert hub_admin.mappings(hub_id) == []
    with pytest.raises(integrations.NotFound):
        hub_admin.delete_mapping(stored["id"])
    with pytest.raises(integrations.NotFound):
        hub_admin.apply_mapping(stored["id"], contact(1))

    actions = [e["action"] for e in hub_admin.audit(object_id=stored["id"])]
    assert actions == ["mapping.delete", "mapping.put", "mapping.put"]


def test_unknown_rule_is_named(hub_admin: integrations.Session, hub_id: str) -> None:
    spec = copy.deepcopy(MAPPING)
    spec["transform_rules"] = [{"target": "email", "op": "trim"}, {"target": "email", "op": "lower"}]
    with pytest.raises(integrations.InvalidArgument, match="'lower'") as info:
        hub_admin.put_mapping(hub_id, spec)
    assert "transform_rules[1]" in str(info.value)
    assert hub_admin.mappings(hub_id) == []


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"field_map": {"email": "properties..email"}}, "properties..email"),
        ({"source_entity": "tickets"}, "tickets"),
        ({"target_entity": "Bad Name"}, "target_entity"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_mappings(
    hub_admin: integrations.Session, hub_id: str, change: Dict[str, Any], fragment: str
) -> None:
    spec = copy.deepcopy(MAPPING)
    spec.update(change)
    with pytest.raises(integrations.InvalidArgument) as info:
        hub_admin.put_mapping(hub_id, spec)
    assert fragment in str(info.value)


def test_apply_errors(hub_admin: integrations.Session, hub_id: str) -> None:
    stored = hub_admin.put_mapping(hub_id, copy.deepcopy(MAPPING))
    with pytest.raises(integrations.MappingError, match="email"):
        hub_admin.apply_mapping(stored["id"], {"properties": {"firstname": "no mail"}})
    with pytest.raises(integrations.InvalidArgument, match="direction"):
        hub_admin.apply_mapping(stored["id"], contact(1), direction="sideways")
    with pytest.raises(TypeError, match="direction"):
        hub_admin.apply_mapping(stored["id"], contact(1), direction=None)  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="record_json"):
        hub_admin.apply_mapping(stored["id"], ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hub_admin.apply_mapping(stored["id"], {"x": float("nan")})


def test_permissions_and_tenants(
    hub_admin: integrations.Session,
    hub_reader: integrations.Session,
    hub_other: integrations.Session,
    hub_id: str,
) -> None:
    with pytest.raises(integrations.PermissionDenied):
        hub_reader.put_mapping(hub_id, copy.deepcopy(MAPPING))
    stored = hub_admin.put_mapping(hub_id, copy.deepcopy(MAPPING))
    # Anyone of the tenant may read and preview.
    assert hub_reader.mappings(hub_id) == [stored]
    assert hub_reader.apply_mapping(stored["id"], contact(5))["email"] == "a5@x.io"
    with pytest.raises(integrations.PermissionDenied):
        hub_reader.delete_mapping(stored["id"])
    # Another tenant sees nothing.
    for call in (
        lambda: hub_other.mappings(hub_id),
        lambda: hub_other.put_mapping(hub_id, copy.deepcopy(MAPPING)),
        lambda: hub_other.apply_mapping(stored["id"], contact(1)),
        lambda: hub_other.delete_mapping(stored["id"]),
    ):
        with pytest.raises(integrations.NotFound):
            call()
    assert hub_admin.mappings(hub_id) == [stored]


def test_sync_uses_the_stored_mapping(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    spec = copy.deepcopy(MAPPING)
    spec["target_entity"] = "people"
    hub_admin.put_mapping(hub_id, spec)
    result = hub_admin.sync(hub_id, "contacts")
    assert result["records_created"] == 25
    assert result.get("local_entity", "people") == "people"
    people = hub_admin.entities("people", limit=100)
    assert len(people) == 25
    assert {p["data"]["email"] for p in people} == {f"a{i}@x.io" for i in range(1, 26)}
    assert hub_admin.entities("contacts") == []
