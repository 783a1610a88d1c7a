"""Sync, sync logs and the connection test, against a loopback fake of HubSpot.

The fake (fake_hubspot.py) serves 25 contacts, 10 a page (so a sync is three
pages), checks "Authorization: Bearer tok", and answers the manifest's
incremental search (POST .../contacts/search) as well as the plain list.
"""

from __future__ import annotations

import datetime
import pickle
import threading
from typing import Any, Dict, List

import pytest

import integrations
from fake_hubspot import CONTACTS, SEARCH, FakeHubSpot

UTC = datetime.timezone.utc

RESULT_FIELDS = {
    "sync_log_id", "integration_id", "entity", "sync_type", "trigger", "status",
    "records_processed", "records_created", "records_updated", "records_skipped",
    "records_failed", "conflicts", "errors", "started_at", "completed_at", "user_id",
}  # fmt: skip

PROGRESS_FIELDS = {
    "integration_id", "entity", "pages", "records_processed", "records_created",
    "records_updated", "records_skipped", "records_failed", "elapsed_ms", "records_per_second",
}  # fmt: skip


def _by_external_id(s: integrations.Session, entity: str = "contacts") -> Dict[str, Dict[str, Any]]:
    """Local records keyed by their link's external id (one integration)."""
    out: Dict[str, Dict[str, Any]] = {}
    for rec in s.entities(entity, limit=1000):
        full = s.entity(entity, rec["id"])
        assert len(full["links"]) == 1
        out[full["links"][0]["external_id"]] = full
    return out


def _list_calls(fake: FakeHubSpot) -> List[Dict[str, Any]]:
    """The list pages read (not the manifest's ``archived=true`` read of remote deletions)."""
    return [c for c in fake.calls("GET", CONTACTS) if c["query"].get("archived") != "true"]


# -- pulling ------------------------------------------------------------------


def test_first_sync_pulls_everything_with_the_default_mapping(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    result = hub_admin.sync(hub_id, "contacts")
    assert RESULT_FIELDS <= result.keys()
    assert result["status"] == "success"
    assert result["integration_id"] == hub_id and result["entity"] == "contacts"
    assert result["sync_type"] == "full"  # no watermark yet
    assert result["user_id"] == "alice"
    assert result["records_processed"] == 25
    assert result["records_created"] == 25
    assert result["records_updated"] == 0 and result["records_failed"] == 0
    assert result["errors"] == []

    # The list was paged with the cursor; every call carried the token.
    lists = _list_calls(hubspot)
    assert [c["query"].get("after") for c in lists] == [None, "10", "20"]
    assert all(c["query"].get("archived") == "false" for c in lists)
    assert all(c["authorization"] == "Bearer tok" for c in lists)
    assert hubspot.calls("POST", SEARCH) == []

    # The manifest's default mapping: email/first_name/last_name (no trim).
    local = _by_external_id(hub_admin)
    assert sorted(local, key=int) == [str(i) for i in range(1, 26)]
    one = local["1"]
    assert one["entity"] == "contacts" and one["deleted"] is False and one["version"] == 1
    assert one["data"]["email"] == " A1@X.IO "
    assert one["data"]["first_name"] == "A"
    assert one["data"]["last_name"] == "1"
    assert one["data"]["external_updated_at"] == "2024-01-01T00:01:00Z"
    assert one["links"][0]["integration_id"] == hub_id
    assert one["links"][0]["remote_updated_at"].startswith("2024-01-01T00:01:00")

    assert hub_admin.integration(hub_id)["last_sync_at"] is not None


def test_second_sync_is_incremental_and_skips_everything(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    first = hub_admin.sync(hub_id, "contacts")
    assert first["records_created"] == 25
    assert hubspot.calls("POST", SEARCH) == []

    second = hub_admin.sync(hub_id, "contacts")
    assert second["status"] == "success"
    assert second["sync_type"] == "incremental"
    assert second["records_created"] == 0
    assert second["records_updated"] == 0
    assert second["records_skipped"] == second["records_processed"]

    # The incremental run used the search endpoint, from the watermark.
    searches = hubspot.calls("POST", SEARCH)
    assert len(searches) == 1
    (flt,) = searches[0]["body"]["filterGroups"][0]["filters"]
    assert flt["propertyName"] == "lastmodifieddate" and flt["operator"] == "GTE"
    assert flt["value"] == "2024-01-01T00:25:00Z"  # the newest updatedAt of the first run
    assert len(hub_admin.entities("contacts", limit=1000)) == 25


def test_incremental_sync_picks_up_changes(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    hub_admin.sync(hub_id, "contacts")
    hubspot.touch(3, minutes=40)
    hubspot.add(26, minutes=41)
    third = hub_admin.sync(hub_id, "contacts")
    assert third["sync_type"] == "incremental"
    assert (third["records_created"], third["records_updated"]) == (1, 1)
    local = _by_external_id(hub_admin)
    assert len(local) == 26
    assert local["3"]["data"]["last_name"] == "3-changed"
    assert local["3"]["version"] == 2
    assert local["26"]["data"]["email"] == " A26@X.IO "
    # The next search starts from the new watermark.
    hub_admin.sync(hub_id, "contacts")
    last = hubspot.calls("POST", SEARCH)[-1]
    assert last["body"]["filterGroups"][0]["filters"][0]["value"] == "2024-01-01T00:41:00Z"


def test_full_sync_rereads_but_skips_unchanged(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    hub_admin.sync(hub_id, "contacts")
    before = len(_list_calls(hubspot))
    again = hub_admin.sync(hub_id, "contacts", full=True)
    assert again["sync_type"] == "full"
    assert again["records_processed"] == 25 and again["records_skipped"] == 25
    assert again["records_created"] == 0
    assert len(_list_calls(hubspot)) == before + 3


@pytest.mark.parametrize(
    "since",
    [
        "2024-01-01T00:20:00Z",
        datetime.datetime(2024, 1, 1, 0, 20, tzinfo=UTC),
        datetime.datetime(2024, 1, 1, 1, 20, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
        datetime.datetime(2024, 1, 1, 0, 20),  # naive: UTC
    ],
)
def test_modified_since(
    hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot, since: Any
) -> None:
    result = hub_admin.sync(hub_id, "contacts", modified_since=since)
    assert result["sync_type"] == "incremental"
    assert result["records_created"] == 6  # contacts 20..25
    (search,) = hubspot.calls("POST", SEARCH)
    assert search["body"]["filterGroups"][0]["filters"][0]["value"] == "2024-01-01T00:20:00Z"


def test_modified_since_bad_values(hub_admin: integrations.Session, hub_id: str) -> None:
    with pytest.raises(integrations.InvalidArgument, match="modified_since"):
        hub_admin.sync(hub_id, "contacts", modified_since="yesterday")
    with pytest.raises(TypeError, match="modified_since"):
        hub_admin.sync(hub_id, "contacts", modified_since=1700000000)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="modified_since"):
        hub_admin.sync(hub_id, "contacts", modified_since=datetime.date(2024, 1, 1))  # type: ignore[arg-type]


def test_dry_run_writes_nothing(hub_admin: integrations.Session, hub_id: str) -> None:
    result = hub_admin.sync(hub_id, "contacts", dry_run=True)
    assert result["status"] == "success" and result["dry_run"] is True
    assert result["records_created"] == 25
    assert hub_admin.entities("contacts") == []
    assert hub_admin.sync_logs(hub_id) == []
    # Nothing was committed: the real run still creates everything.
    assert hub_admin.sync(hub_id, "contacts")["records_created"] == 25


def test_request_errors(hub_admin: integrations.Session, hub_id: str) -> None:
    with pytest.raises(integrations.InvalidArgument, match="nope"):
        hub_admin.sync(hub_id, "nope")
    with pytest.raises(integrations.InvalidArgument, match="conflict_strategy"):
        hub_admin.sync(hub_id, "contacts", direction="push", conflict_strategy="nope")
    with pytest.raises(integrations.InvalidArgument, match="direction"):
        hub_admin.sync(hub_id, "contacts", direction="sideways")
    with pytest.raises(integrations.InvalidArgument, match="full"):
        hub_admin.sync(hub_id, "contacts", full="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hub_admin.sync(hub_id, "contacts", True)  # type: ignore[misc]  # keyword-only options
    with pytest.raises(TypeError, match="integration_id"):
        hub_admin.sync(None, "contacts")  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        hub_admin.sync(hub_id + "\0x", "contacts")
    with pytest.raises(TypeError, match="progress"):
        hub_admin.sync(hub_id, "contacts", progress=42)  # type: ignore[arg-type]


# -- progress and cancel --------------------------------------------------------


def test_progress_called_per_page_with_dicts(hub_admin: integrations.Session, hub_id: str) -> None:
    seen: List[Dict[str, Any]] = []
    result = hub_admin.sync(hub_id, "contacts", progress=seen.append)  # returns None: go on
    assert result["status"] == "success"
    assert [p["pages"] for p in seen] == [1, 2, 3]
    assert [p["records_processed"] for p in seen] == [10, 20, 25]
    assert [p["records_created"] for p in seen] == [10, 20, 25]
    for p in seen:
        assert isinstance(p, dict) and PROGRESS_FIELDS <= p.keys()
        assert p["integration_id"] == hub_id and p["entity"] == "contacts"


def test_progress_returning_true_cancels(hub_admin: integrations.Session, hub_id: str) -> None:
    calls: List[int] = []

    def stop_after_first_page(p: Dict[str, Any]) -> bool:
        calls.append(p["pages"])
        return True

    with pytest.raises(integrations.Canceled) as info:
        hub_admin.sync(hub_id, "contacts", progress=stop_after_first_page)
    exc = info.value
    assert calls == [1]
    assert exc.code == integrations.ErrorCode.ECANCELED
    assert "canceled" in str(exc)
    assert exc.result is not None
    assert exc.result["status"] == "canceled"
    assert exc.result["records_created"] == 10
    assert exc.result["integration_id"] == hub_id
    # The canceled run is logged, and what it committed stays.
    logs = hub_admin.sync_logs(hub_id)
    assert logs[0]["sync_log_id"] == exc.result["sync_log_id"]
    assert logs[0]["status"] == "canceled"
    assert len(hub_admin.entities("contacts", limit=100)) == 10
    # The next run resumes from the checkpoint.
    rest = hub_admin.sync(hub_id, "contacts")
    assert rest["status"] == "success" and rest["records_created"] == 15
    assert len(hub_admin.entities("contacts", limit=100)) == 25


@pytest.mark.parametrize("truthy", [1, "yes", [0]])
def test_progress_truthy_cancels(hub_admin: integrations.Session, hub_id: str, truthy: Any) -> None:
    with pytest.raises(integrations.Canceled) as info:
        hub_admin.sync(hub_id, "contacts", progress=lambda p: truthy)
    assert info.value.result is not None and info.value.result["status"] == "canceled"


def test_progress_raising_is_reraised(hub_admin: integrations.Session, hub_id: str) -> None:
    calls: List[int] = []

    def broken(p: Dict[str, Any]) -> bool:
        calls.append(p["pages"])
        raise ValueError(f"host bug at page {p['pages']}")

    with pytest.raises(ValueError, match="host bug at page 1"):
        hub_admin.sync(hub_id, "contacts", progress=broken)
    assert calls == [1]  # returning 1 canceled the run at once
    (log,) = hub_admin.sync_logs(hub_id)
    assert log["status"] == "canceled"
    # Nothing stale leaks into the next calls.
    assert hub_admin.sync(hub_id, "contacts")["records_created"] == 15
    assert hub_admin.integration(hub_id)["id"] == hub_id


def test_progress_keyboard_interrupt_is_reraised(hub_admin: integrations.Session, hub_id: str) -> None:
    def interrupt(p: Dict[str, Any]) -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hub_admin.sync(hub_id, "contacts", progress=interrupt)


def test_progress_may_call_the_library(
    hub_ctx: integrations.Context, hub_admin: integrations.Session, hub_id: str
) -> None:
    outcomes: List[str] = []

    def second_sync(p: Dict[str, Any]) -> bool:
        # Another session (same thread) while the run holds the lease.
        with hub_ctx.session("tenant-a", "dave", roles=["admin"]) as s2:
            try:
                s2.sync(hub_id, "contacts")
                outcomes.append("ran")
            except integrations.ConflictError as e:
                outcomes.append(f"conflict: {e}")
            outcomes.append(s2.sync_logs(hub_id, limit=1)[0]["status"])
        return False

    result = hub_admin.sync(hub_id, "contacts", progress=second_sync)
    assert result["status"] == "success" and result["records_created"] == 25
    assert len(outcomes) == 6
    assert all(o.startswith("conflict: ") and "already running" in o for o in outcomes[0::2])
    assert outcomes[1::2] == ["running"] * 3


def test_canceled_pickles_with_result() -> None:
    exc = integrations.Canceled("canceled by the progress callback", result={"status": "canceled"})
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is integrations.Canceled
    assert back.code == integrations.ErrorCode.ECANCELED
    assert str(back) == "canceled by the progress callback"
    assert back.result == {"status": "canceled"}
    assert integrations.Canceled("x").result is None


def test_progress_exceptions_stay_with_their_thread(
    hub_ctx: integrations.Context, hub_admin: integrations.Session, hubspot: FakeHubSpot
) -> None:
    ids = [
        hub_admin.create_integration("hubspot-crm", name=f"hub {i}", credentials={"api_key": "tok"})["id"]
        for i in range(4)
    ]
    outcomes: Dict[int, Any] = {}
    barrier = threading.Barrier(len(ids), timeout=30)

    def worker(n: int) -> None:
        def progress(p: Dict[str, Any]) -> bool:
            if n % 2:
                raise LookupError(f"thread {n}")
            return False

        try:
            with hub_ctx.session("tenant-a", f"worker-{n}", roles=["admin"]) as s:
                barrier.wait()
                outcomes[n] = s.sync(ids[n], "contacts", progress=progress)["records_created"]
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            outcomes[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for n in range(len(ids)):
        if n % 2:
            assert isinstance(outcomes[n], LookupError) and str(outcomes[n]) == f"thread {n}"
        else:
            assert outcomes[n] == 25


# -- failures, permissions, tenants ----------------------------------------------


def test_wrong_key(hub_admin: integrations.Session, hubspot: FakeHubSpot) -> None:
    bad = hub_admin.create_integration("hubspot-crm", credentials={"api_key": "wrong"})["id"]
    with pytest.raises(integrations.AuthError, match="401") as info:
        hub_admin.sync(bad, "contacts")
    assert info.value.code == integrations.ErrorCode.EAUTH
    assert hubspot.calls("GET", CONTACTS)[-1]["authorization"] == "Bearer wrong"
    # The failed run is logged with its reason; the integration needs re-auth.
    (log,) = hub_admin.sync_logs(bad)
    assert log["status"] == "error"
    assert any("401" in e["message"] for e in log["errors"])
    assert hub_admin.integration(bad)["status"] == "needs_reauth"
    # Fixed credentials: it works again.
    hub_admin.set_credentials(bad, {"api_key": "tok"})
    assert hub_admin.sync(bad, "contacts")["records_created"] == 25
    assert hub_admin.integration(bad)["status"] == "active"


def test_server_down_is_network_error(key: str) -> None:
    with FakeHubSpot() as server:
        url = server.url
    # Stopped: nothing listens on that port any more.
    options = {
        "store": "sqlite::memory:",
        "master_key": key,
        "http": {"allow_private_networks": True, "max_retries": 1, "timeout_ms": 5000},
        "base_url_overrides": {"hubspot-crm": url},
    }
    with integrations.Context(options) as ctx, ctx.session("t", "u", roles=["admin"]) as s:
        hid = s.create_integration("hubspot-crm", credentials={"api_key": "tok"})["id"]
        with pytest.raises(integrations.NetworkError):
            s.sync(hid, "contacts")
        test = s.test_integration(hid)
        assert test["success"] is False and test["code"] == integrations.ErrorCode.ENETWORK


def test_private_networks_are_refused_by_default(key: str, hubspot: FakeHubSpot) -> None:
    options = {
        "store": "sqlite::memory:",
        "master_key": key,
        "http": {"max_retries": 1},
        "base_url_overrides": {"hubspot-crm": hubspot.url},
    }
    with integrations.Context(options) as ctx, ctx.session("t", "u", roles=["admin"]) as s:
        hid = s.create_integration("hubspot-crm", credentials={"api_key": "tok"})["id"]
        with pytest.raises(integrations.IntegrationsError):
            s.sync(hid, "contacts")
        assert s.test_integration(hid)["success"] is False
    assert hubspot.requests == []


def test_non_admin_cannot_sync(
    hub_reader: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    with pytest.raises(integrations.PermissionDenied, match="bob"):
        hub_reader.sync(hub_id, "contacts")
    assert hubspot.requests == []
    # Reads are fine.
    assert hub_reader.sync_logs(hub_id) == []
    assert hub_reader.test_integration(hub_id)["success"] is True


def test_permission_callback_exception_wins(
    hub_ctx: integrations.Context, hub_admin: integrations.Session, hub_id: str
) -> None:
    def broken(*args: str) -> bool:
        raise RuntimeError("policy service down")

    hub_ctx.set_permission_callback(broken)
    with pytest.raises(RuntimeError, match="policy service down"):
        hub_admin.sync(hub_id, "contacts", progress=lambda p: False)
    hub_ctx.set_permission_callback(None)
    assert hub_admin.sync(hub_id, "contacts")["status"] == "success"


def test_another_tenants_integration_is_not_found(
    hub_admin: integrations.Session, hub_other: integrations.Session, hub_id: str, hubspot: FakeHubSpot
) -> None:
    hub_admin.sync(hub_id, "contacts")
    calls = len(hubspot.requests)
    with pytest.raises(integrations.NotFound):
        hub_other.sync(hub_id, "contacts")
    with pytest.raises(integrations.NotFound):
        hub_other.sync_logs(hub_id)
    with pytest.raises(integrations.NotFound):
        hub_other.test_integration(hub_id)
    assert len(hubspot.requests) == calls  # nothing was sent for tenant-b
    with pytest.raises(integrations.NotFound):
        hub_admin.sync("01900000-0000-7000-8000-000000000000", "contacts")


# -- sync logs -------------------------------------------------------------------


def test_sync_logs_newest_first_and_filters(
    hub_admin: integrations.Session, hub_id: str
) -> None:
    results = [hub_admin.sync(hub_id, "contacts") for _ in range(3)]
    with pytest.raises(integrations.Canceled) as info:
        hub_admin.sync(hub_id, "contacts", full=True, progress=lambda p: True)
    assert info.value.result is not None
    results.append(info.value.result)

    logs = hub_admin.sync_logs(hub_id)
    assert [log["sync_log_id"] for log in logs] == [r["sync_log_id"] for r in reversed(results)]
    assert [log["status"] for log in logs] == ["canceled", "success", "success", "success"]
    assert logs[-1]["records_created"] == 25 and logs[-1]["sync_type"] == "full"
    for log in logs:
        assert RESULT_FIELDS <= log.keys()
        assert "tenant_id" not in log
    # The stored entry is the returned result.
    assert logs[1] == results[2]

    assert [log["status"] for log in hub_admin.sync_logs(hub_id, status="canceled")] == ["canceled"]
    assert len(hub_admin.sync_logs(hub_id, status="success")) == 3
    assert len(hub_admin.sync_logs(hub_id, entity="contacts")) == 4
    assert hub_admin.sync_logs(hub_id, entity="deals") == []
    page = hub_admin.sync_logs(hub_id, limit=2, offset=1)
    assert [log["sync_log_id"] for log in page] == [logs[1]["sync_log_id"], logs[2]["sync_log_id"]]
    with pytest.raises(integrations.InvalidArgument):
        hub_admin.sync_logs(hub_id, limit=-1)


def test_sync_run_is_audited(hub_admin: integrations.Session, hub_id: str) -> None:
    result = hub_admin.sync(hub_id, "contacts")
    (entry,) = hub_admin.audit(action="sync.run")
    assert entry["object_id"] == hub_id and entry["user_id"] == "alice"
    assert entry["details"]["sync_log_id"] == result["sync_log_id"]


# -- connection test ----------------------------------------------------------------


def test_connection_test(hub_admin: integrations.Session, hub_id: str, hubspot: FakeHubSpot) -> None:
    result = hub_admin.test_integration(hub_id)
    assert result["success"] is True
    assert isinstance(result["message"], str)
    assert result.get("http_status") == 200
    (call,) = hubspot.requests
    assert (call["method"], call["path"], call["query"]) == ("GET", CONTACTS, {"limit": "1"})
    assert call["authorization"] == "Bearer tok"


def test_connection_test_wrong_key(hub_admin: integrations.Session, hubspot: FakeHubSpot) -> None:
    bad = hub_admin.create_integration("hubspot-crm", credentials={"api_key": "wrong"})["id"]
    result = hub_admin.test_integration(bad)  # a rejected key is a result, not an exception
    assert result["success"] is False
    assert "401" in result["message"]
    assert result["code"] == integrations.ErrorCode.EAUTH
    assert result.get("http_status") == 401
    assert "wrong" not in result["message"]  # the key never shows


def test_connection_test_unknown_id(hub_admin: integrations.Session) -> None:
    with pytest.raises(integrations.NotFound):
        hub_admin.test_integration("01900000-0000-7000-8000-000000000000")
    with pytest.raises(TypeError):
        hub_admin.test_integration(7)  # type: ignore[arg-type]


def test_timestamp_arguments() -> None:
    from integrations._client import _timestamp

    assert _timestamp("2024-01-01T00:00:00+02:00", "t") == "2024-01-01T00:00:00+02:00"  # as given
    assert _timestamp(datetime.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), "t") == "2024-01-01T00:00:00.123Z"
    assert _timestamp(datetime.datetime(2024, 3, 1, 1, 30), "t") == "2024-03-01T01:30:00Z"  # naive: UTC
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert _timestamp(datetime.datetime(2024, 3, 1, 1, 30, tzinfo=plus2), "t") == "2024-02-29T23:30:00Z"
    assert _timestamp(datetime.datetime(999, 1, 2, 3, 4, 5), "t") == "0999-01-02T03:04:05Z"
    with pytest.raises(TypeError, match="when"):
        _timestamp(1.5, "when")  # type: ignore[arg-type]


def test_closing_the_session_from_progress_is_deferred(
    hub_ctx: integrations.Context, hub_id: str
) -> None:
    s = hub_ctx.session("tenant-a", "alice", roles=["admin"])
    pages: List[int] = []

    def close_it(p: Dict[str, Any]) -> bool:
        pages.append(p["pages"])
        s.close()
        assert s.closed
        with pytest.raises(integrations.InvalidArgument, match="closed"):
            s.sync_logs(hub_id)
        return False

    result = s.sync(hub_id, "contacts", progress=close_it)
    assert result["status"] == "success" and result["records_created"] == 25
    assert pages == [1, 2, 3]
    assert s.closed
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        s.sync(hub_id, "contacts")
    s.close()  # idempotent
    with hub_ctx.session("tenant-a", "bob") as reader:
        assert reader.sync_logs(hub_id)[0]["sync_log_id"] == result["sync_log_id"]
