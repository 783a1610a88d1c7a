"""The audit trail: order, content, filters, tenant scope, no secrets."""

from __future__ import annotations

import copy
import json
import re
import time

import pytest

import integrations
from helpers import HUBSPOT_EXAMPLE

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def test_trail_order_and_content(admin: integrations.Session, other_admin: integrations.Session) -> None:
    secret = "pat-eu1-audit-secret"
    # A few ms apart (same-millisecond order: test_integrations.py,
    # test_newest_first_within_one_millisecond).
    created = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    iid = created["id"]
    time.sleep(0.003)
    admin.update_integration(iid, name="HubSpot EU", status="paused")
    time.sleep(0.003)
    admin.set_credentials(iid, {"api_key": secret})
    time.sleep(0.003)
    admin.delete_integration(iid)
    other_admin.create_integration("hubspot-crm", credentials={"api_key": "other"})

    trail = admin.audit()
    assert [e["action"] for e in trail] == [
        "integration.delete",
        "integration.set_credentials",
        "integration.update",
        "integration.create",
    ]  # newest first, this tenant only
    ids = [e["id"] for e in trail]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    for e in trail:
        assert {"id", "tenant_id", "user_id", "action", "object_type", "object_id", "at", "details"} <= e.keys()
        assert e["tenant_id"] == "tenant-a" and e["user_id"] == "alice"
        assert e["object_type"] == "integration" and e["object_id"] == iid
        assert RFC3339.fullmatch(e["at"])
        assert "at_ms" not in e
    create = trail[-1]["details"]
    assert create["definition"] == "hubspot-crm" and create["name"] == "HubSpot Production"
    assert create["has_credentials"] is True
    update = trail[-2]["details"]
    assert set(update["changed"]) == {"name", "status"} and update["status"] == "paused"
    assert trail[0]["details"]["name"] == "HubSpot EU"
    text = json.dumps(trail)
    assert secret not in text and '"..."' not in text


def test_filters(admin: integrations.Session, ctx: integrations.Context) -> None:
    a = admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    b = admin.create_integration("hubspot-crm", credentials={"api_key": "k2"})
    with ctx.session("tenant-a", "erin", roles=["admin"]) as erin:
        erin.update_integration(a["id"], name="by erin")
    assert [e["object_id"] for e in admin.audit(object_id=b["id"])] == [b["id"]]
    assert [e["action"] for e in admin.audit(action="integration.update")] == ["integration.update"]
    assert [e["user_id"] for e in admin.audit(user_id="erin")] == ["erin"]
    everything = admin.audit()
    assert admin.audit(limit=2) == everything[:2]
    assert admin.audit(limit=2, offset=1) == everything[1:3]
    assert admin.audit(action="integration.delete") == []


def test_reader_sees_trail_and_bad_filter(admin: integrations.Session, reader: integrations.Session) -> None:
    admin.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    assert len(reader.audit()) == 1
    with pytest.raises(integrations.InvalidArgument, match="limit"):
        reader.audit(limit=-3)
