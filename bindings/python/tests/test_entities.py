"""Local entities (the built-in entity store): list, get, put, delete."""

from __future__ import annotations

import datetime
import time

import pytest

import integrations
from fake_hubspot import FakeHubSpot

UTC = datetime.timezone.utc


def test_put_get_replace_delete(admin: integrations.Session) -> None:
    data = {"email": "ann@example.com", "tags": ["a", "b"], "score": 1.5}
    created = admin.put_entity("contacts", data)
    assert data == {"email": "ann@example.com", "tags": ["a", "b"], "score": 1.5}  # not modified
    assert created["id"] and created["entity"] == "contacts"
    assert created["data"] == data
    assert created["version"] == 1 and created["deleted"] is False
    assert created["updated_at"].endswith("Z")

    got = admin.entity("contacts", created["id"])
    assert got["data"] == data and got["version"] == 1
    assert got["links"] == []  # not synced from anywhere

    replaced = admin.put_entity("contacts", {"email": "ann@new.example"}, id=created["id"])
    assert replaced["id"] == created["id"]
    assert replaced["data"] == {"email": "ann@new.example"}  # replaced, not merged
    assert replaced["version"] == 2

    admin.delete_entity("contacts", created["id"])
    gone = admin.entity("contacts", created["id"])
    assert gone["deleted"] is True
    assert gone["version"] == 3
    assert admin.entities("contacts") == []
    (listed,) = admin.entities("contacts", include_deleted=True)
    assert listed["id"] == created["id"] and listed["deleted"] is True


def test_put_with_an_id_replaces_only(admin: integrations.Session) -> None:
    # An id names an existing record of this tenant and entity: no upsert.
    with pytest.raises(integrations.NotFound, match="order-1"):
        admin.put_entity("orders", {"total": 10}, id="order-1")
    rec = admin.put_entity("orders", {"total": 10})
    with pytest.raises(integrations.NotFound):
        admin.put_entity("contacts", {"x": 1}, id=rec["id"])  # the id is an "orders" record
    with pytest.raises(integrations.InvalidArgument, match="record_json.id"):
        admin.put_entity("orders", {"total": 1}, id="has space")
    assert admin.entity("orders", rec["id"])["version"] == 1


def test_list_order_paging_and_filters(admin: integrations.Session) -> None:
    ids = []
    for i in range(5):
        ids.append(admin.put_entity("contacts", {"n": i})["id"])
        time.sleep(0.002)
    listed = admin.entities("contacts")
    assert [r["id"] for r in listed] == list(reversed(ids))  # most recently updated first
    assert [r["id"] for r in admin.entities("contacts", limit=2, offset=1)] == [ids[3], ids[2]]

    # Touching a record moves it to the front.
    admin.put_entity("contacts", {"n": 0, "touched": True}, id=ids[0])
    assert admin.entities("contacts", limit=1)[0]["id"] == ids[0]

    future = datetime.datetime.now(UTC) + datetime.timedelta(days=1)
    assert admin.entities("contacts", updated_since=future) == []
    past = datetime.datetime(2000, 1, 1)  # naive: UTC
    assert len(admin.entities("contacts", updated_since=past)) == 5
    assert len(admin.entities("contacts", updated_since="2000-01-01T00:00:00Z")) == 5
    assert len(admin.entities("contacts", updated_since=listed[2]["updated_at"])) >= 3
    assert admin.entities("companies") == []

    with pytest.raises(integrations.InvalidArgument, match="updated_since"):
        admin.entities("contacts", updated_since="not a time")
    with pytest.raises(TypeError, match="updated_since"):
        admin.entities("contacts", updated_since=0)  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="include_deleted"):
        admin.entities("contacts", include_deleted="yes")  # type: ignore[arg-type]


def test_entity_names_and_arguments(admin: integrations.Session) -> None:
    with pytest.raises(integrations.InvalidArgument, match="entity"):
        admin.put_entity("Bad Name", {"x": 1})
    with pytest.raises(integrations.InvalidArgument, match="entity"):
        admin.entities("1contacts")
    with pytest.raises(integrations.InvalidArgument, match="data"):
        admin.put_entity("contacts", ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(integrations.NotFound):
        admin.entity("contacts", "no-such-id")
    with pytest.raises(integrations.NotFound):
        admin.delete_entity("contacts", "no-such-id")
    with pytest.raises(TypeError, match="local_id"):
        admin.entity("contacts", None)  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        admin.entity("contacts", "a\0b")


def test_permissions(admin: integrations.Session, reader: integrations.Session) -> None:
    rec = admin.put_entity("contacts", {"email": "a@b.io"})
    with pytest.raises(integrations.PermissionDenied):
        reader.put_entity("contacts", {"email": "c@d.io"})
    with pytest.raises(integrations.PermissionDenied):
        reader.put_entity("contacts", {"email": "c@d.io"}, id=rec["id"])
    with pytest.raises(integrations.PermissionDenied):
        reader.delete_entity("contacts", rec["id"])
    # Reads are open to the tenant.
    assert reader.entity("contacts", rec["id"])["data"] == {"email": "a@b.io"}
    assert [r["id"] for r in reader.entities("contacts")] == [rec["id"]]
    assert admin.entity("contacts", rec["id"])["version"] == 1


def test_another_tenants_entity_is_not_found(
    admin: integrations.Session, other_admin: integrations.Session
) -> None:
    rec = admin.put_entity("contacts", {"email": "a@b.io"})
    with pytest.raises(integrations.NotFound):
        other_admin.entity("contacts", rec["id"])
    with pytest.raises(integrations.NotFound):
        other_admin.delete_entity("contacts", rec["id"])
    with pytest.raises(integrations.NotFound):
        other_admin.put_entity("contacts", {"email": "stolen"}, id=rec["id"])
    assert other_admin.entities("contacts") == []
    after = admin.entity("contacts", rec["id"])
    assert after["data"] == {"email": "a@b.io"} and after["version"] == 1 and not after["deleted"]


def test_synced_records_carry_links(
    hub_admin: integrations.Session, hub_other: integrations.Session, hub_id: str
) -> None:
    hub_admin.sync(hub_id, "contacts")
    newest = hub_admin.entities("contacts", limit=1)[0]
    full = hub_admin.entity("contacts", newest["id"])
    assert full["links"] == [
        {"integration_id": hub_id, "external_id": "25", "remote_updated_at": full["links"][0]["remote_updated_at"]}
    ]
    with pytest.raises(integrations.NotFound):
        hub_other.entity("contacts", newest["id"])
    # A local edit bumps the version; the link stays.
    edited = hub_admin.put_entity("contacts", {**full["data"], "email": "x@y.io"}, id=full["id"])
    assert edited["version"] == 2
    assert hub_admin.entity("contacts", full["id"])["links"][0]["external_id"] == "25"


def test_invalid_utf8_from_the_remote_is_replaced(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider sending Latin-1 (invalid UTF-8) must not make every read fail: U+FFFD, as in Node."""
    hubspot.edit(25, firstname="Bj@@rn")
    send = FakeHubSpot._send

    def latin1(h: object, status: int, doc: object) -> None:
        real_wfile = h.wfile  # type: ignore[attr-defined]

        class Swap:
            def write(self, data: bytes) -> None:
                real_wfile.write(data.replace(b"@@", b"\xf8\xf8"))  # same length

        h.wfile = Swap()  # type: ignore[attr-defined]
        try:
            send(h, status, doc)  # type: ignore[arg-type]
        finally:
            h.wfile = real_wfile  # type: ignore[attr-defined]

    monkeypatch.setattr(FakeHubSpot, "_send", staticmethod(latin1))
    assert hub_admin.sync(hub_id, "contacts")["status"] == "success"
    records = hub_admin.entities("contacts", limit=100)
    assert len(records) == 25
    bjorn = [r for r in records if r["data"].get("first_name", "").startswith("Bj")]
    assert [r["data"]["first_name"] for r in bjorn] == ["Bj\ufffd\ufffdrn"]
    assert hub_admin.entity("contacts", bjorn[0]["id"])["data"]["first_name"] == "Bj\ufffd\ufffdrn"
