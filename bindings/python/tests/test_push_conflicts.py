"""Push and bidirectional sync, conflicts, and scheduled runs, against the fake HubSpot.

The fake (fake_hubspot.py) serves 25 contacts and accepts the manifest's
writes: ``PATCH .../contacts/{id}``, ``POST .../contacts`` and the batch
create/update requests; each write moves the record's ``updatedAt`` one
minute past the newest, as :meth:`FakeHubSpot.edit` does for a change made
"remotely", so the next incremental pull sees it.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

import integrations
from fake_hubspot import BATCH_CREATE, BATCH_UPDATE, CONTACTS, FakeHubSpot

DEFAULT_FIELD_MAP = {
    "email": "properties.email",
    "first_name": "properties.firstname",
    "last_name": "properties.lastname",
    "phone": "properties.phone",
    "company_name": "properties.company",
    "external_updated_at": "updatedAt",
}

CONFLICT_FIELDS = {
    "id", "integration_id", "entity", "local_entity", "local_id", "external_id", "local", "remote",
    "base", "fields", "strategy", "status", "resolution", "resolved_by", "created_at", "resolved_at",
}  # fmt: skip


def _pulled(s: integrations.Session, iid: str) -> Dict[str, Dict[str, Any]]:
    """Pull everything, then the local records keyed by their external id."""
    assert s.sync(iid, "contacts")["records_created"] == 25
    out: Dict[str, Dict[str, Any]] = {}
    for rec in s.entities("contacts", limit=1000):
        full = s.entity("contacts", rec["id"])
        out[full["links"][0]["external_id"]] = full
    assert len(out) == 25
    return out


def _edit_local(s: integrations.Session, rec: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
    """Replace a local record's data with some fields changed (a local edit)."""
    data = dict(s.entity("contacts", rec["id"])["data"])
    data.update(fields)
    return s.put_entity("contacts", data, id=rec["id"])


def _patches(fake: FakeHubSpot, ext_id: str) -> List[Dict[str, Any]]:
    return fake.calls("PATCH", f"{CONTACTS}/{ext_id}")


def _open_conflict(
    s: integrations.Session, iid: str, fake: FakeHubSpot, rec: Dict[str, Any], ext_id: str
) -> Dict[str, Any]:
    """A local and a remote edit of one record, then a manual bidirectional sync: its open conflict."""
    _edit_local(s, rec, first_name=f"Local{ext_id}")
    fake.edit(int(ext_id), lastname=f"{ext_id}-remote")
    result = s.sync(iid, "contacts", direction="bidirectional", conflict_strategy="manual")
    assert result["status"] == "success"
    # At least this one (an open conflict whose remote record is read again
    # is counted again; its row is updated, not duplicated).
    assert result["conflicts"] >= 1
    assert result["conflict_strategy"] == "manual"
    # Held: nothing went out for it.
    assert result["records_pushed"] == 0
    assert _patches(fake, ext_id) == []
    found = [c for c in s.conflicts(iid, status="open") if c["external_id"] == ext_id]
    assert len(found) == 1
    return found[0]


# -- the request ----------------------------------------------------------------


def test_pull_result_is_unchanged(hub_admin: integrations.Session, hub_id: str) -> None:
    # Backwards compatible: the old call, no push fields in a pull's result.
    result = hub_admin.sync(hub_id, "contacts")
    assert result["direction"] == "pull"
    assert "records_pushed" not in result and "push" not in result
    assert result["conflict_strategy"] == "last_write_wins"


def test_sync_request_errors(hub_admin: integrations.Session, hub_id: str) -> None:
    with pytest.raises(integrations.InvalidArgument, match="conflict_strategy"):
        hub_admin.sync(hub_id, "contacts", conflict_strategy="coin_toss")
    with pytest.raises(integrations.InvalidArgument, match="direction"):
        hub_admin.sync(hub_id, "contacts", direction="sideways")
    assert hub_admin.sync_logs(hub_id) == []


# -- push -----------------------------------------------------------------------


def test_push_sends_a_local_edit(hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot) -> None:
    local = _pulled(hub_admin, hub_id)
    edited = _edit_local(hub_admin, local["3"], first_name="Zed")
    assert edited["version"] == 2

    result = hub_admin.sync(hub_id, "contacts", direction="push")
    assert result["status"] == "success" and result["direction"] == "push"
    assert result["records_pushed"] == 1
    assert result["push"]["updated"] == 1 and result["push"]["created"] == 0
    assert result["push"]["failed"] == 0
    patches = _patches(hubspot, "3")
    assert len(patches) == 1
    assert patches[0]["body"]["properties"]["firstname"] == "Zed"
    assert patches[0]["authorization"] == "Bearer tok"
    assert hubspot.get(3)["properties"]["firstname"] == "Zed"
    # Only the edited record went out, and a second push has nothing to send.
    assert len(hubspot.calls("PATCH")) == 1
    again = hub_admin.sync(hub_id, "contacts", direction="push")
    assert again["records_pushed"] == 0
    assert len(hubspot.calls("PATCH")) == 1


def test_push_creates_one_then_batches(hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot) -> None:
    local = _pulled(hub_admin, hub_id)
    one = hub_admin.put_entity("contacts", {"email": "new1@x.io", "first_name": "N", "last_name": "1"})
    result = hub_admin.sync(hub_id, "contacts", direction="push")
    assert result["push"]["created"] == 1 and result["records_pushed"] == 1
    posts = hubspot.calls("POST", CONTACTS)
    assert len(posts) == 1 and posts[0]["body"]["properties"]["email"] == "new1@x.io"
    links = hub_admin.entity("contacts", one["id"])["links"]
    assert [link["external_id"] for link in links] == ["26"]
    assert hubspot.get(26)["properties"]["email"] == "new1@x.io"

    # Two creates and two updates in one run: the batch requests.
    two = hub_admin.put_entity("contacts", {"email": "new2@x.io", "first_name": "N", "last_name": "2"})
    three = hub_admin.put_entity("contacts", {"email": "new3@x.io", "first_name": "N", "last_name": "3"})
    _edit_local(hub_admin, local["7"], first_name="B7")
    _edit_local(hub_admin, local["8"], first_name="B8")
    result = hub_admin.sync(hub_id, "contacts", direction="push")
    assert result["status"] == "success", result["errors"]
    assert result["push"]["created"] == 2 and result["push"]["updated"] == 2
    assert result["records_pushed"] == 4
    (create,) = hubspot.calls("POST", BATCH_CREATE)
    assert sorted(i["properties"]["email"] for i in create["body"]["inputs"]) == ["new2@x.io", "new3@x.io"]
    (update,) = hubspot.calls("POST", BATCH_UPDATE)
    assert sorted((i["id"], i["properties"]["firstname"]) for i in update["body"]["inputs"]) == [
        ("7", "B7"),
        ("8", "B8"),
    ]
    assert len(hubspot.calls("POST", CONTACTS)) == 1  # no single create this time
    ext = {hub_admin.entity("contacts", r["id"])["links"][0]["external_id"] for r in (two, three)}
    assert ext == {"27", "28"}
    assert {hubspot.get(i)["properties"]["email"] for i in (27, 28)} == {"new2@x.io", "new3@x.io"}


def test_push_respects_field_policies(hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot) -> None:
    hub_admin.put_mapping(
        hub_id,
        {
            "source_entity": "contacts",
            "target_entity": "contacts",
            "field_map": DEFAULT_FIELD_MAP,
            "field_policies": {"first_name": "dont_sync"},
        },
    )
    local = _pulled(hub_admin, hub_id)
    _edit_local(hub_admin, local["4"], first_name="Secret", last_name="Public")
    result = hub_admin.sync(hub_id, "contacts", direction="push")
    assert result["records_pushed"] == 1
    (patch,) = _patches(hubspot, "4")
    assert patch["body"]["properties"]["lastname"] == "Public"
    assert "firstname" not in patch["body"]["properties"]
    assert hubspot.get(4)["properties"]["firstname"] == "A"


def test_push_failure_is_partial(hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot) -> None:
    local = _pulled(hub_admin, hub_id)
    _edit_local(hub_admin, local["5"], first_name="Refused")
    hubspot.fail_writes = 400
    result = hub_admin.sync(hub_id, "contacts", direction="push")
    assert result["status"] == "partial"
    assert result["push"]["failed"] == 1 and result["records_pushed"] == 0
    assert result["records_failed"] == 1
    assert result["errors"] and "400" in result["errors"][0]["message"]
    # Still changed: the next push sends it.
    hubspot.fail_writes = None
    again = hub_admin.sync(hub_id, "contacts", direction="push")
    assert again["status"] == "success" and again["records_pushed"] == 1
    assert hubspot.get(5)["properties"]["firstname"] == "Refused"


# -- conflicts --------------------------------------------------------------------


def test_manual_conflicts_resolved_remote_then_local(
    hub_ctx: integrations.Context, hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    events: List[Dict[str, Any]] = []
    hub_ctx.set_event_callback(events.append)
    local = _pulled(hub_admin, hub_id)

    first = _open_conflict(hub_admin, hub_id, hubspot, local["3"], "3")
    assert set(first) == CONFLICT_FIELDS
    assert first["status"] == "open" and first["strategy"] == "manual"
    assert first["resolution"] is None and first["resolved_by"] is None
    assert first["local_id"] == local["3"]["id"] and first["entity"] == "contacts"
    assert first["local"]["first_name"] == "Local3" and first["local"]["last_name"] == "3"
    assert first["remote"]["first_name"] == "A" and first["remote"]["last_name"] == "3-remote"
    assert first["base"]["first_name"] == "A" and first["base"]["last_name"] == "3"
    detected = [e for e in events if e["type"] == "conflict.detected"]
    assert len(detected) == 1 and detected[0]["conflict_id"] == first["id"]
    assert detected[0]["outcome"] == "held"
    # Held: the local edit is still there.
    assert hub_admin.entity("contacts", local["3"]["id"])["data"]["first_name"] == "Local3"

    assert hub_admin.resolve_conflict(first["id"], choose="remote") is None
    assert hub_admin.entity("contacts", local["3"]["id"])["data"] == first["remote"]
    assert _patches(hubspot, "3") == []  # the remote already has it
    assert hub_admin.conflicts(hub_id, status="open") == []
    (done,) = hub_admin.conflicts(hub_id, status="resolved")
    assert done["id"] == first["id"] and done["resolution"] == "remote"
    assert done["resolved_by"] == "alice" and done["resolved_at"]
    with pytest.raises(integrations.ConflictError):
        hub_admin.resolve_conflict(first["id"], choose="local")

    second = _open_conflict(hub_admin, hub_id, hubspot, local["4"], "4")
    assert second["id"] != first["id"]
    hub_admin.resolve_conflict(second["id"], choose="local")
    (patch,) = _patches(hubspot, "4")
    assert patch["body"]["properties"]["firstname"] == "Local4"
    assert patch["body"]["properties"]["lastname"] == "4"
    assert hubspot.get(4)["properties"]["firstname"] == "Local4"
    assert hub_admin.entity("contacts", local["4"]["id"])["data"] == second["local"]
    resolved = hub_admin.conflicts(hub_id, status="resolved")
    assert [c["id"] for c in resolved] == [second["id"], first["id"]]  # newest first
    assert resolved[0]["resolution"] == "local"
    assert any(a["action"] == "conflict.resolve" and a["object_id"] == second["id"] for a in hub_admin.audit())

    # Both records sync normally again: no new conflict, nothing to push.
    after = hub_admin.sync(hub_id, "contacts", direction="bidirectional", conflict_strategy="manual")
    assert after["conflicts"] == 0 and after["records_pushed"] == 0
    assert len(hubspot.calls("PATCH")) == 1
    assert hub_admin.entity("contacts", local["4"]["id"])["data"]["first_name"] == "Local4"
    assert hub_admin.conflicts(hub_id, status="open") == []


def test_resolve_with_merged_data(hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot) -> None:
    local = _pulled(hub_admin, hub_id)
    conflict = _open_conflict(hub_admin, hub_id, hubspot, local["6"], "6")
    merged = dict(conflict["local"], last_name=conflict["remote"]["last_name"])
    hub_admin.resolve_conflict(conflict["id"], data=merged)
    assert hub_admin.entity("contacts", local["6"]["id"])["data"] == merged
    (patch,) = _patches(hubspot, "6")
    assert patch["body"]["properties"]["firstname"] == "Local6"
    assert patch["body"]["properties"]["lastname"] == "6-remote"
    (done,) = hub_admin.conflicts(hub_id, status="resolved")
    assert done["resolution"] == "data"


def test_resolve_refused_by_the_remote_keeps_the_conflict_open(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    local = _pulled(hub_admin, hub_id)
    conflict = _open_conflict(hub_admin, hub_id, hubspot, local["9"], "9")
    hubspot.fail_writes = 400
    with pytest.raises(integrations.RemoteError, match="400"):
        hub_admin.resolve_conflict(conflict["id"], choose="local")
    hubspot.fail_writes = None
    assert [c["id"] for c in hub_admin.conflicts(hub_id, status="open")] == [conflict["id"]]
    hub_admin.resolve_conflict(conflict["id"], choose="local")
    assert hubspot.get(9)["properties"]["firstname"] == "Local9"
    assert hub_admin.conflicts(hub_id, status="open") == []


@pytest.mark.parametrize(
    "strategy, first_name, last_name, pushed",
    [
        ("remote_wins", "A", "10-remote", 0),  # the remote version everywhere
        ("local_wins", "Local10", "10", 1),  # the local version, pushed
        ("merge_fields", "Local10", "10-remote", 1),  # each side's change kept, pushed
    ],
)
def test_strategies_resolve_without_a_person(
    hub_admin: integrations.Session,
    hub_id: str,
    hubspot: FakeHubSpot,
    strategy: str,
    first_name: str,
    last_name: str,
    pushed: int,
) -> None:
    local = _pulled(hub_admin, hub_id)
    _edit_local(hub_admin, local["10"], first_name="Local10")
    hubspot.edit(10, lastname="10-remote")
    result = hub_admin.sync(hub_id, "contacts", direction="bidirectional", conflict_strategy=strategy)
    assert result["conflicts"] == 1 and result["conflict_strategy"] == strategy
    assert result["records_pushed"] == pushed
    data = hub_admin.entity("contacts", local["10"]["id"])["data"]
    assert (data["first_name"], data["last_name"]) == (first_name, last_name)
    remote = hubspot.get(10)["properties"]
    assert (remote["firstname"], remote["lastname"]) == (first_name, last_name)
    assert hub_admin.conflicts(hub_id, status="open") == []
    (done,) = hub_admin.conflicts(hub_id, status="resolved")
    assert done["resolved_by"] == "strategy" and done["strategy"] == strategy


def test_resolve_conflict_argument_errors(
    hub_admin: integrations.Session,
    hub_reader: integrations.Session,
    hub_other: integrations.Session,
    hub_id: str,
    hubspot: FakeHubSpot,
) -> None:
    local = _pulled(hub_admin, hub_id)
    conflict = _open_conflict(hub_admin, hub_id, hubspot, local["11"], "11")
    cid = conflict["id"]
    with pytest.raises(integrations.InvalidArgument, match="exactly one"):
        hub_admin.resolve_conflict(cid)
    with pytest.raises(integrations.InvalidArgument, match="exactly one"):
        hub_admin.resolve_conflict(cid, choose="local", data={"first_name": "x"})
    with pytest.raises(integrations.InvalidArgument, match="choose"):
        hub_admin.resolve_conflict(cid, choose="both")
    with pytest.raises(TypeError):
        hub_admin.resolve_conflict(cid, choose=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hub_admin.resolve_conflict(cid, data=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hub_admin.resolve_conflict(cid, "local")  # type: ignore[misc]  # keyword-only
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        hub_admin.resolve_conflict(cid + "\0", choose="local")
    # Another tenant's conflict is not found (even for its admin); a reader may not resolve.
    with pytest.raises(integrations.NotFound):
        hub_other.resolve_conflict(cid, choose="remote")
    with pytest.raises(integrations.NotFound):
        hub_admin.resolve_conflict("01900000-0000-7000-8000-000000000000", choose="remote")
    with pytest.raises(integrations.PermissionDenied):
        hub_reader.resolve_conflict(cid, choose="remote")
    # None of that moved anything.
    assert [c["id"] for c in hub_admin.conflicts(hub_id, status="open")] == [cid]
    assert hub_admin.entity("contacts", local["11"]["id"])["data"]["first_name"] == "Local11"
    assert hubspot.calls("PATCH") == []


def test_conflicts_filters_and_tenants(
    hub_admin: integrations.Session,
    hub_reader: integrations.Session,
    hub_other: integrations.Session,
    hub_id: str,
    hubspot: FakeHubSpot,
) -> None:
    assert hub_admin.conflicts(hub_id) == []
    local = _pulled(hub_admin, hub_id)
    a = _open_conflict(hub_admin, hub_id, hubspot, local["12"], "12")
    b = _open_conflict(hub_admin, hub_id, hubspot, local["13"], "13")
    assert [c["id"] for c in hub_admin.conflicts(hub_id)] == [b["id"], a["id"]]
    assert [c["id"] for c in hub_admin.conflicts(hub_id, limit=1)] == [b["id"]]
    assert [c["id"] for c in hub_admin.conflicts(hub_id, limit=1, offset=1)] == [a["id"]]
    assert len(hub_admin.conflicts(hub_id, entity="contacts")) == 2
    assert hub_admin.conflicts(hub_id, entity="deals") == []
    assert hub_admin.conflicts(hub_id, status="resolved") == []
    assert len(hub_reader.conflicts(hub_id)) == 2  # anyone of the tenant may read
    with pytest.raises(integrations.InvalidArgument, match="status"):
        hub_admin.conflicts(hub_id, status="pending")
    with pytest.raises(integrations.NotFound):
        hub_other.conflicts(hub_id)
    with pytest.raises(integrations.NotFound):
        hub_admin.conflicts("01900000-0000-7000-8000-000000000000")
    with pytest.raises(TypeError):
        hub_admin.conflicts(None)  # type: ignore[arg-type]


# -- scheduled runs ------------------------------------------------------------------


def test_run_due_syncs_auto_sync_integrations(
    hub_ctx: integrations.Context, hub_admin: integrations.Session, hub_other: integrations.Session
) -> None:
    events: List[Dict[str, Any]] = []
    hub_ctx.set_event_callback(events.append)
    auto = hub_admin.create_integration(
        "hubspot-crm",
        name="Auto",
        credentials={"api_key": "tok"},
        config={"auto_sync": True, "entities": ["contacts"]},
    )
    manual = hub_other.create_integration("hubspot-crm", name="Manual", credentials={"api_key": "tok"})

    summary = hub_ctx.run_due()
    assert set(summary) == {"syncs", "webhooks"}
    (run,) = summary["syncs"]
    assert run["integration_id"] == auto["id"] and run["tenant_id"] == "tenant-a"
    assert run["entity"] == "contacts" and run["status"] == "success"
    assert run["records_processed"] == 25
    (log,) = hub_admin.sync_logs(auto["id"])
    assert log["sync_log_id"] == run["sync_log_id"]
    assert log["trigger"] == "schedule" and log["user_id"] == "scheduler"
    assert len(hub_admin.entities("contacts", limit=100)) == 25
    assert hub_other.sync_logs(manual["id"]) == []
    assert summary["webhooks"]["claimed"] == 0
    completed = [e for e in events if e["type"] == "sync.completed"]
    assert [e["sync_log_id"] for e in completed] == [run["sync_log_id"]]

    # Not due again until its interval has passed.
    assert hub_ctx.run_due(max_jobs=10)["syncs"] == []


def test_run_due_arguments(hub_ctx: integrations.Context) -> None:
    for bad in (0, -1, 10001, 2**32 + 1, -(2**32) + 1):  # the last two wrap to 1 in a C int
        with pytest.raises(integrations.InvalidArgument, match="max_jobs"):
            hub_ctx.run_due(bad)
    for wrong in ("5", 2.0, True, None):
        with pytest.raises(TypeError):
            hub_ctx.run_due(wrong)  # type: ignore[arg-type]
    assert hub_ctx.run_due(1) == {
        "syncs": [],
        "webhooks": {"claimed": 0, "processed": 0, "failed": 0, "dead": 0, "lost": 0, "gone": 0, "errors": 0,
                     "events": []},
    }
    hub_ctx.close()
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        hub_ctx.run_due()


def test_nested_call_keeps_the_pending_callback_exception(
    hub_ctx: integrations.Context, hub_admin: integrations.Session, hub_other: integrations.Session
) -> None:
    """A callback's exception is raised by the method, even if a later callback calls the library."""
    for s in (hub_admin, hub_other):
        s.create_integration("hubspot-crm", name="Auto", credentials={"api_key": "tok"},
                             config={"auto_sync": True, "entities": ["contacts"]})  # fmt: skip
    seen: List[str] = []

    class PagerDown(RuntimeError):
        pass

    def on_event(event: Dict[str, Any]) -> None:
        seen.append(event["type"])
        if len(seen) == 1:
            raise PagerDown("first event")
        # A library call from the next event: it must not wipe the pending exception.
        assert hub_ctx.definition("hubspot-crm")["key"] == "hubspot-crm"
        with pytest.raises(integrations.NotFound):
            hub_ctx.definition("no-such-definition")

    hub_ctx.set_event_callback(on_event)
    with pytest.raises(PagerDown, match="first event"):
        hub_ctx.run_due()
    assert seen == ["sync.completed", "sync.completed"]
    # Nothing is left pending for the next call.
    hub_ctx.set_event_callback(None)
    assert hub_ctx.run_due()["syncs"] == []
