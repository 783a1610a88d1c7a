"""Webhooks: endpoints, receiving, the queue, verification and the event callback.

WooCommerce deliveries are signed here with hmac/hashlib/base64 the way
WooCommerce does it (base64 HMAC-SHA256 of the body, keyed with the
endpoint's secret, in X-WC-Webhook-Signature); their customer.* payloads
map into the local "contacts" entity without any network call. HubSpot
deliveries (hubspot-v3: base64 HMAC-SHA256 of method + URL + body +
timestamp in ms, keyed with the app's client secret) ask for the record to
be fetched; the API base URL points at 127.0.0.1:9, where nothing listens,
so such an event can never succeed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import integrations

WOO = "woocommerce-ecommerce"
WOO_CONFIG = {"site_url": "https://shop.example.com"}
WOO_CREDS = {"consumer_key": "ck_x", "consumer_secret": "cs_x"}
HOOK_BASE = "https://hooks.example.com/wh"
HUBSPOT_APP_SECRET = "hs-app-secret-0123456789"

ENDPOINT_FIELDS = {
    "id", "integration_id", "url", "scheme", "secret_source", "events", "active", "description",
    "created_at", "updated_at", "secret_rotated_at", "has_previous_secret",
}  # fmt: skip

EVENT_FIELDS = {
    "id", "endpoint_id", "integration_id", "event_id", "event_type", "status", "attempts",
    "received_at", "processed_at", "last_error", "result",
}  # fmt: skip


# -- signing, as the providers do ----------------------------------------------


def customer(i: int = 42, email: str = "jane@example.com") -> bytes:
    """A WooCommerce customer.* payload (the REST API's customer object)."""
    return json.dumps(
        {
            "id": i,
            "email": email,
            "first_name": "Jane",
            "last_name": "Doe",
            "billing": {"phone": "+47 12 34 56 78", "company": "Acme AS"},
            "date_modified_gmt": "2025-01-23T10:00:00",
        }
    ).encode("utf-8")


def woo_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def woo_headers(
    secret: str, body: bytes, delivery: str = "1001", topic: str = "customer.updated"
) -> List[Tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("X-WC-Webhook-Source", "https://shop.example.com/"),
        ("X-WC-Webhook-Topic", topic),
        ("X-WC-Webhook-Resource", topic.split(".")[0]),
        ("X-WC-Webhook-Event", topic.split(".")[1]),
        ("X-WC-Webhook-Signature", woo_signature(secret, body)),
        ("X-WC-Webhook-ID", "7"),
        ("X-WC-Webhook-Delivery-ID", delivery),
    ]


def standard_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with the decoded key."""
    key = base64.b64decode(secret[len("whsec_"):])
    content = f"{msg_id}.{timestamp}.".encode("ascii") + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def hubspot_v3_headers(secret: str, method: str, url: str, body: bytes, ts_ms: Optional[int] = None) -> Dict[str, str]:
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    signed = method.encode() + url.encode() + body + ts.encode()
    sig = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode("ascii")
    return {"Content-Type": "application/json", "X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts}


def hubspot_change(event_id: int = 101, object_id: int = 555) -> bytes:
    return json.dumps(
        [{
            "eventId": event_id, "subscriptionId": 1, "portalId": 7, "appId": 3,
            "occurredAt": 1737626400000, "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0, "objectId": object_id, "propertyName": "email",
            "propertyValue": "x@example.com", "changeSource": "CRM",
        }]
    ).encode("utf-8")  # fmt: skip


# -- fixtures --------------------------------------------------------------------


@pytest.fixture
def wctx(key: str) -> Iterator[integrations.Context]:
    """A context whose endpoint URLs live under HOOK_BASE."""
    with integrations.Context({"store": "sqlite::memory:", "master_key": key, "webhook": {"base_url": HOOK_BASE}}) as c:
        yield c


@pytest.fixture
def wadmin(wctx: integrations.Context) -> Iterator[integrations.Session]:
    with wctx.session("tenant-a", "alice", roles=["admin"]) as s:
        yield s


@pytest.fixture
def wreader(wctx: integrations.Context) -> Iterator[integrations.Session]:
    with wctx.session("tenant-a", "bob") as s:
        yield s


@pytest.fixture
def wother(wctx: integrations.Context) -> Iterator[integrations.Session]:
    with wctx.session("tenant-b", "carol", roles=["admin"]) as s:
        yield s


@pytest.fixture
def woo_id(wadmin: integrations.Session) -> str:
    return wadmin.create_integration(WOO, name="Shop", config=WOO_CONFIG, credentials=WOO_CREDS)["id"]


@pytest.fixture
def endpoint(wadmin: integrations.Session, woo_id: str) -> Dict[str, Any]:
    return wadmin.create_webhook_endpoint(woo_id, description="shop hooks")


@pytest.fixture
def dead_ctx(key: str) -> Iterator[integrations.Context]:
    """HubSpot's API at 127.0.0.1:9 (nothing listens), one attempt per event."""
    opts = {
        "store": "sqlite::memory:",
        "master_key": key,
        "base_url_overrides": {"hubspot-crm": "http://127.0.0.1:9"},
        "http": {"allow_private_networks": True, "max_retries": 0, "timeout_ms": 5000},
        "webhook": {"max_attempts": 1, "base_url": HOOK_BASE},
    }
    with integrations.Context(opts) as c:
        c.set_app_credentials("hubspot-crm", {"client_id": "c", "client_secret": HUBSPOT_APP_SECRET})
        yield c


def deliver_woo(
    ctx: integrations.Context, ep: Dict[str, Any], body: bytes, delivery: str = "1001", secret: Optional[str] = None
) -> integrations.WebhookResponse:
    return ctx.receive_webhook(
        ep["id"], url="/wh/" + ep["id"], headers=woo_headers(secret or ep["secret"], body, delivery), body=body
    )


def deliver_hubspot(ctx: integrations.Context, ep: Dict[str, Any], body: bytes) -> integrations.WebhookResponse:
    url = f"{HOOK_BASE}/{ep['id']}"
    return ctx.receive_webhook(
        ep["id"], method="POST", url=url, headers=hubspot_v3_headers(HUBSPOT_APP_SECRET, "POST", url, body), body=body
    )


# -- endpoints ------------------------------------------------------------------------


def test_endpoint_crud(wadmin: integrations.Session, woo_id: str) -> None:
    ep = wadmin.create_webhook_endpoint(woo_id, events=["customer.*", "order.created"], description="shop hooks")
    assert ENDPOINT_FIELDS <= set(ep)
    assert ep["integration_id"] == woo_id and ep["scheme"] == "woocommerce"
    assert ep["secret_source"] == "generated" and ep["secret"].startswith("whsec_")
    assert len(base64.b64decode(ep["secret"][len("whsec_"):])) == 32
    assert ep["events"] == ["customer.*", "order.created"] and ep["active"] is True
    assert ep["url"] == f"{HOOK_BASE}/{ep['id']}"
    assert len(ep["id"]) == 32 and int(ep["id"], 16) >= 0  # 128 random bits, hex

    # The secret is shown once: never by a read.
    listed = wadmin.webhook_endpoints(woo_id)
    assert [e["id"] for e in listed] == [ep["id"]]
    assert "secret" not in listed[0] and not any("sealed" in k for k in listed[0])
    assert {k: v for k, v in ep.items() if k != "secret"} == listed[0]

    up = wadmin.update_webhook_endpoint(ep["id"], active=False, events=["customer.*"], description=None)
    assert up["active"] is False and up["events"] == ["customer.*"] and up["description"] is None
    assert "secret" not in up

    rotated = wadmin.rotate_webhook_secret(ep["id"])
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != ep["secret"]
    assert rotated["has_previous_secret"] is True and rotated["secret_rotated_at"]
    assert "secret" not in wadmin.webhook_endpoints(woo_id)[0]

    second = wadmin.create_webhook_endpoint(woo_id, scheme="standard", active=False)
    assert second["scheme"] == "standard" and second["active"] is False
    assert {e["id"] for e in wadmin.webhook_endpoints(woo_id)} == {ep["id"], second["id"]}

    wadmin.delete_webhook_endpoint(ep["id"])
    assert [e["id"] for e in wadmin.webhook_endpoints(woo_id)] == [second["id"]]
    with pytest.raises(integrations.NotFound, match=ep["id"]):
        wadmin.delete_webhook_endpoint(ep["id"])
    with pytest.raises(integrations.NotFound):
        wadmin.rotate_webhook_secret(ep["id"])

    actions = [e["action"] for e in wadmin.audit(object_id=ep["id"])]
    assert actions == [
        "webhook_endpoint.delete", "webhook_endpoint.rotate_secret",
        "webhook_endpoint.update", "webhook_endpoint.create",
    ]  # fmt: skip
    # No secret in the audit trail.
    assert ep["secret"] not in json.dumps(wadmin.audit()) and rotated["secret"] not in json.dumps(wadmin.audit())


def test_endpoint_argument_errors(wadmin: integrations.Session, woo_id: str, endpoint: Dict[str, Any]) -> None:
    with pytest.raises(integrations.InvalidArgument, match="scheme"):
        wadmin.create_webhook_endpoint(woo_id, scheme="carrier-pigeon")
    with pytest.raises(integrations.InvalidArgument, match=r"events\[0\]"):
        wadmin.create_webhook_endpoint(woo_id, events=[""])
    with pytest.raises(integrations.InvalidArgument, match="colour"):
        wadmin.update_webhook_endpoint(endpoint["id"], colour="blue")
    with pytest.raises(integrations.InvalidArgument, match="active"):
        wadmin.update_webhook_endpoint(endpoint["id"], active="yes")
    with pytest.raises(integrations.NotFound):
        wadmin.create_webhook_endpoint("no-such-integration")
    with pytest.raises(integrations.NotFound):
        wadmin.webhook_endpoints("no-such-integration")
    with pytest.raises(TypeError, match="events"):
        wadmin.create_webhook_endpoint(woo_id, events="customer.*")  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        wadmin.delete_webhook_endpoint("a\0b")


def test_provider_dictated_secret(wadmin: integrations.Session, woo_id: str) -> None:
    ep = wadmin.create_webhook_endpoint(woo_id, secret="given-by-the-shop")
    assert ep["secret"] == "given-by-the-shop" and ep["secret_source"] == "given"
    # A dictated secret is not rotated here: it is set when the provider changes it.
    with pytest.raises(integrations.InvalidArgument, match="dictated"):
        wadmin.rotate_webhook_secret(ep["id"])
    up = wadmin.update_webhook_endpoint(ep["id"], secret="changed-at-the-shop")
    assert up["has_previous_secret"] is True and "secret" not in up


# -- receiving --------------------------------------------------------------------------


def test_receive_answers(wctx: integrations.Context, endpoint: Dict[str, Any]) -> None:
    body = customer()
    first = deliver_woo(wctx, endpoint, body)
    assert isinstance(first, integrations.WebhookResponse) and isinstance(first, tuple)
    status, text = first  # a plain (status, body) pair
    assert status == 202 and first.ok and first.reason == ""
    accepted = first.json()
    assert accepted["status"] == "accepted" and accepted["id"]

    again = deliver_woo(wctx, endpoint, body)  # the provider retries the same delivery
    assert again == (200, '{"status":"duplicate"}')

    bad = wctx.receive_webhook(
        endpoint["id"], url="/wh/x", headers=woo_headers("whsec_wrong", body, "1002"), body=body
    )
    assert bad.status == 401 and not bad.ok and bad.json() == {"status": "unauthorized"}
    assert "X-WC-Webhook-Signature" in bad.reason  # why, for the host's logs

    tampered = wctx.receive_webhook(
        endpoint["id"], headers=woo_headers(endpoint["secret"], body, "1003"), body=body + b" "
    )
    assert tampered.status == 401

    unknown = deliver_woo(wctx, {"id": "0" * 32, "secret": endpoint["secret"]}, body, "1004")
    assert unknown.status == 404 and unknown.json() == {"status": "not_found"}
    assert "unknown or inactive" in unknown.reason
    assert wctx.receive_webhook("../../etc/passwd", body=body).status == 404

    # WooCommerce's creation ping: unsigned, form-encoded, answered 200 and never queued.
    ping = wctx.receive_webhook(
        endpoint["id"], headers={"Content-Type": "application/x-www-form-urlencoded"}, body=b"webhook_id=1"
    )
    assert ping.status == 200 and ping.json()["status"] == "ping"
    # Not a ping once there is more to it.
    assert wctx.receive_webhook(endpoint["id"], body=b"webhook_id=1&x=2").status == 401


def test_receive_header_forms(wctx: integrations.Context, endpoint: Dict[str, Any]) -> None:
    """Pairs, dicts, bytes and any-case names all reach C the same way."""
    body = customer()
    pairs = woo_headers(endpoint["secret"], body, "2001")
    as_dict = {k.lower(): v for k, v in woo_headers(endpoint["secret"], body, "2002")}
    as_bytes = [(k.encode(), v.encode()) for k, v in woo_headers(endpoint["secret"], body, "2003")]
    assert wctx.receive_webhook(endpoint["id"], headers=pairs, body=body).status == 202
    assert wctx.receive_webhook(endpoint["id"], headers=as_dict, body=body).status == 202
    assert wctx.receive_webhook(endpoint["id"], headers=as_bytes, body=bytearray(body)).status == 202
    assert wctx.receive_webhook(endpoint["id"], headers=tuple(pairs), body=memoryview(body)).status == 200


def test_receive_argument_errors(wctx: integrations.Context, endpoint: Dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="body"):
        wctx.receive_webhook(endpoint["id"], body=customer().decode())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers"):
        wctx.receive_webhook(endpoint["id"], headers="X-A: b", body=b"{}")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"headers\[0\]"):
        wctx.receive_webhook(endpoint["id"], headers=[("X-A",)], body=b"{}")  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"headers\[0\] value"):
        wctx.receive_webhook(endpoint["id"], headers=[("X-A", 1)], body=b"{}")  # type: ignore[list-item]
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        wctx.receive_webhook(endpoint["id"], headers=[("X-A", "a\0b")], body=b"{}")


def test_inactive_endpoint_and_unsubscribed_events(
    wctx: integrations.Context, wadmin: integrations.Session, woo_id: str
) -> None:
    ep = wadmin.create_webhook_endpoint(woo_id, events=["order.*"])
    body = customer()
    ignored = deliver_woo(wctx, ep, body)  # customer.updated is not subscribed
    assert ignored.status == 200 and ignored.json()["status"] == "ignored"
    wadmin.update_webhook_endpoint(ep["id"], active=False)
    assert deliver_woo(wctx, ep, body, "1005").status == 404  # same answer as unknown
    assert wadmin.webhook_events() == []


def test_body_limit(key: str) -> None:
    opts = {"store": "sqlite::memory:", "master_key": key, "webhook": {"max_body_bytes": 64}}
    with integrations.Context(opts) as ctx, ctx.session("t", "u", roles=["admin"]) as s:
        iid = s.create_integration(WOO, config=WOO_CONFIG, credentials=WOO_CREDS)["id"]
        ep = s.create_webhook_endpoint(iid)
        big = deliver_woo(ctx, ep, customer())
        assert big.status == 413 and "limit" in big.reason


def test_rotation_grace(wctx: integrations.Context, wadmin: integrations.Session, endpoint: Dict[str, Any]) -> None:
    old = endpoint["secret"]
    new = wadmin.rotate_webhook_secret(endpoint["id"])["secret"]
    assert deliver_woo(wctx, endpoint, customer(1), "3001", secret=new).status == 202
    assert deliver_woo(wctx, endpoint, customer(2), "3002", secret=old).status == 202  # grace period


def test_process_into_contacts(wctx: integrations.Context, wadmin: integrations.Session, woo_id: str,
                               endpoint: Dict[str, Any]) -> None:  # fmt: skip
    assert deliver_woo(wctx, endpoint, customer(42), "4001").status == 202
    queued = wadmin.webhook_events()
    assert len(queued) == 1 and EVENT_FIELDS <= set(queued[0])
    ev = queued[0]
    assert ev["status"] == "queued" and ev["attempts"] == 0 and ev["processed_at"] is None
    assert ev["endpoint_id"] == endpoint["id"] and ev["integration_id"] == woo_id
    assert ev["event_id"] == "4001" and ev["event_type"] == "customer.updated"

    summary = wctx.process_webhooks()
    assert (summary["claimed"], summary["processed"], summary["failed"], summary["dead"]) == (1, 1, 0, 0)
    assert summary["events"][0]["id"] == ev["id"] and summary["events"][0]["status"] == "processed"
    assert summary["events"][0]["result"]["records_created"] == 1

    # The default mapping of the manifest's customers entity, into local contacts.
    contacts = wadmin.entities("contacts")
    assert len(contacts) == 1
    data = contacts[0]["data"]
    assert data["email"] == "jane@example.com" and data["first_name"] == "Jane" and data["last_name"] == "Doe"
    assert data["phone"] == "+47 12 34 56 78" and data["company_name"] == "Acme AS"
    links = wadmin.entity("contacts", contacts[0]["id"])["links"]
    assert [(link["integration_id"], link["external_id"]) for link in links] == [(woo_id, "42")]

    done = wadmin.webhook_events(status="processed")
    assert [e["id"] for e in done] == [ev["id"]]
    assert done[0]["attempts"] == 1 and done[0]["processed_at"] and done[0]["result"]["records_created"] == 1
    assert wadmin.webhook_events(status="queued") == []
    assert wctx.process_webhooks() == {"claimed": 0, "processed": 0, "failed": 0, "dead": 0, "lost": 0, "gone": 0,
                                       "errors": 0, "events": []}

    # An update of the same customer updates the same local record.
    assert deliver_woo(wctx, endpoint, customer(42, "jane@new.example.com"), "4002").status == 202
    assert wctx.process_webhooks(max_events=1)["processed"] == 1
    contacts = wadmin.entities("contacts")
    assert len(contacts) == 1 and contacts[0]["data"]["email"] == "jane@new.example.com"
    assert contacts[0]["version"] == 2

    # A sync log entry with trigger "webhook".
    logs = wadmin.sync_logs(woo_id)
    assert logs and all(entry["trigger"] == "webhook" for entry in logs)


def test_events_filters(wctx: integrations.Context, wadmin: integrations.Session, woo_id: str,
                        endpoint: Dict[str, Any]) -> None:  # fmt: skip
    for i in range(3):
        assert deliver_woo(wctx, endpoint, customer(i), f"500{i}").status == 202
    assert len(wadmin.webhook_events(endpoint_id=endpoint["id"])) == 3
    assert len(wadmin.webhook_events(integration_id=woo_id, limit=2)) == 2
    assert len(wadmin.webhook_events(limit=2, offset=2)) == 1
    assert wadmin.webhook_events(endpoint_id="0" * 32) == []
    with pytest.raises(integrations.InvalidArgument, match="status"):
        wadmin.webhook_events(status="sleeping")
    # Deleting the endpoint deletes its queued events.
    wadmin.delete_webhook_endpoint(endpoint["id"])
    assert wadmin.webhook_events() == []


def test_process_arguments(wctx: integrations.Context) -> None:
    with pytest.raises(integrations.InvalidArgument, match="max_events"):
        wctx.process_webhooks(0)
    # Out of a C int's range: refused, not wrapped (2**32 + 5 would run with 5).
    for big in (2**32 + 5, 2**31, -(2**31) - 1):
        with pytest.raises(integrations.InvalidArgument, match=f"max_events: {big} is out of range"):
            wctx.process_webhooks(big)
    with pytest.raises(TypeError):
        wctx.process_webhooks("10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        wctx.process_webhooks(True)


# -- tenants and permissions ---------------------------------------------------------------


def test_tenant_isolation(wctx: integrations.Context, wadmin: integrations.Session, wother: integrations.Session,
                          woo_id: str, endpoint: Dict[str, Any]) -> None:  # fmt: skip
    assert deliver_woo(wctx, endpoint, customer()).status == 202
    ev = wadmin.webhook_events()[0]
    with pytest.raises(integrations.NotFound):
        wother.webhook_endpoints(woo_id)
    with pytest.raises(integrations.NotFound):
        wother.create_webhook_endpoint(woo_id)
    with pytest.raises(integrations.NotFound):
        wother.update_webhook_endpoint(endpoint["id"], active=False)
    with pytest.raises(integrations.NotFound):
        wother.rotate_webhook_secret(endpoint["id"])
    with pytest.raises(integrations.NotFound):
        wother.delete_webhook_endpoint(endpoint["id"])
    with pytest.raises(integrations.NotFound):
        wother.replay_webhook_event(ev["id"])
    assert wother.webhook_events() == []
    assert wother.webhook_events(endpoint_id=endpoint["id"]) == []
    # Nothing changed for the owner.
    assert wadmin.webhook_endpoints(woo_id)[0]["active"] is True
    assert wadmin.webhook_events()[0]["id"] == ev["id"]
    # process_webhooks is context-level: it serves every tenant, into the owner's store.
    assert wctx.process_webhooks()["processed"] == 1
    assert len(wadmin.entities("contacts")) == 1 and wother.entities("contacts") == []


def test_permissions(wctx: integrations.Context, wreader: integrations.Session, wadmin: integrations.Session,
                     woo_id: str, endpoint: Dict[str, Any]) -> None:  # fmt: skip
    assert deliver_woo(wctx, endpoint, customer()).status == 202
    wctx.process_webhooks()
    ev = wadmin.webhook_events()[0]
    # Reads are allowed ...
    assert [e["id"] for e in wreader.webhook_endpoints(woo_id)] == [endpoint["id"]]
    assert [e["id"] for e in wreader.webhook_events()] == [ev["id"]]
    # ... writes need integration:admin.
    with pytest.raises(integrations.PermissionDenied):
        wreader.create_webhook_endpoint(woo_id)
    with pytest.raises(integrations.PermissionDenied):
        wreader.update_webhook_endpoint(endpoint["id"], active=False)
    with pytest.raises(integrations.PermissionDenied):
        wreader.rotate_webhook_secret(endpoint["id"])
    with pytest.raises(integrations.PermissionDenied):
        wreader.delete_webhook_endpoint(endpoint["id"])
    with pytest.raises(integrations.PermissionDenied):
        wreader.replay_webhook_event(ev["id"])
    assert wadmin.webhook_endpoints(woo_id)[0]["active"] is True


def test_permission_callback_decides(wctx: integrations.Context, woo_id: str) -> None:
    asked: List[Tuple[str, str, str, str]] = []

    def policy(tenant: str, user: str, resource: str, action: str) -> bool:
        asked.append((tenant, user, resource, action))
        return user == "ops"

    wctx.set_permission_callback(policy)
    with wctx.session("tenant-a", "ops") as ops, wctx.session("tenant-a", "eve", roles=["admin"]) as eve:
        ep = ops.create_webhook_endpoint(woo_id)
        with pytest.raises(integrations.PermissionDenied):
            eve.rotate_webhook_secret(ep["id"])
    assert asked == [("tenant-a", "ops", "integration", "admin"), ("tenant-a", "eve", "integration", "admin")]


# -- verify_webhook (stateless) ----------------------------------------------------------------


def _std_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode("ascii")


def _std_headers(secret: str, body: bytes, msg_id: str = "msg_2Lk4", ts: Optional[int] = None) -> Dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": standard_sign(secret, msg_id, ts, body)}


def test_verify_standard() -> None:
    secret = _std_secret()
    body = b'{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}'
    headers = _std_headers(secret, body)
    assert integrations.verify_webhook("standard", secret, headers=headers, body=body) is None
    # As pairs, names in any case.
    pairs = [(k.upper(), v) for k, v in headers.items()]
    assert integrations.verify_webhook("standard", secret, headers=pairs, body=body) is None
    # Several signatures in the header: any one matching is enough.
    multi = dict(headers, **{"webhook-signature": "v1,AAAA " + headers["webhook-signature"]})
    integrations.verify_webhook("standard", secret, headers=multi, body=body)
    # During a rotation: a list of secrets, or one space-separated string.
    integrations.verify_webhook("standard", [_std_secret(), secret], headers=headers, body=body)
    integrations.verify_webhook("standard", _std_secret() + " " + secret, headers=headers, body=body)


def test_verify_standard_failures() -> None:
    secret = _std_secret()
    body = b'{"type":"invoice.paid"}'
    headers = _std_headers(secret, body)

    with pytest.raises(integrations.SignatureError, match="webhook-signature") as e:
        integrations.verify_webhook("standard", secret, headers=headers, body=body + b" ")
    assert e.value.code == integrations.ErrorCode.ESIGNATURE
    with pytest.raises(integrations.SignatureError):
        integrations.verify_webhook("standard", _std_secret(), headers=headers, body=body)
    with pytest.raises(integrations.SignatureError):
        forged = dict(headers, **{"webhook-id": "msg_other"})
        integrations.verify_webhook("standard", secret, headers=forged, body=body)

    old = int(time.time()) - 3600
    stale = _std_headers(secret, body, ts=old)
    with pytest.raises(integrations.ReplayError, match="webhook-timestamp"):
        integrations.verify_webhook("standard", secret, headers=stale, body=body)
    # A recorded delivery checked at its own time, or with the check skipped, or a wider window.
    integrations.verify_webhook("standard", secret, headers=stale, body=body, now=old + 10)
    when = datetime.datetime.fromtimestamp(old + 10, tz=datetime.timezone.utc)
    integrations.verify_webhook("standard", secret, headers=stale, body=body, now=when)
    integrations.verify_webhook("standard", secret, headers=stale, body=body, tolerance=-1)
    integrations.verify_webhook("standard", secret, headers=stale, body=body, tolerance=7200)
    with pytest.raises(integrations.ReplayError):  # from the future
        integrations.verify_webhook("standard", secret, headers=stale, body=body, now=old - 3600)

    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in headers.items() if k != missing}
        with pytest.raises(integrations.InvalidArgument, match=missing):
            integrations.verify_webhook("standard", secret, headers=partial, body=body)
    with pytest.raises(integrations.InvalidArgument):
        integrations.verify_webhook("standard", secret, body=body)  # no headers at all
    with pytest.raises(integrations.InvalidArgument, match="timestamp"):
        integrations.verify_webhook("standard", secret, headers=dict(headers, **{"webhook-timestamp": "soon"}), body=body)
    with pytest.raises(integrations.InvalidArgument, match="scheme"):
        integrations.verify_webhook("carrier-pigeon", secret, headers=headers, body=body)


def test_verify_other_schemes() -> None:
    body = customer()
    secret = "whsec_shop"
    integrations.verify_webhook("woocommerce", secret, headers=woo_headers(secret, body), body=body)
    with pytest.raises(integrations.SignatureError):
        integrations.verify_webhook("woocommerce", "whsec_other", headers=woo_headers(secret, body), body=body)
    # The unsigned creation ping is a handshake: it verifies.
    integrations.verify_webhook("woocommerce", secret, body=b"webhook_id=12")

    url = "https://hooks.example.com/wh/abc?x=1"
    hs = hubspot_change()
    headers = hubspot_v3_headers("app-secret", "POST", url, hs)
    integrations.verify_webhook("hubspot-v3", "app-secret", method="POST", url=url, headers=headers, body=hs)
    with pytest.raises(integrations.SignatureError):
        integrations.verify_webhook("hubspot-v3", "app-secret", method="PUT", url=url, headers=headers, body=hs)
    with pytest.raises(integrations.InvalidArgument, match="url"):
        integrations.verify_webhook("hubspot-v3", "app-secret", headers=headers, body=hs)  # url="" is missing
    old = hubspot_v3_headers("app-secret", "POST", url, hs, ts_ms=int(time.time() * 1000) - 10 * 60 * 1000)
    with pytest.raises(integrations.ReplayError):
        integrations.verify_webhook("hubspot-v3", "app-secret", method="POST", url=url, headers=old, body=hs)


def test_verify_argument_types() -> None:
    secret = _std_secret()
    body = b"{}"
    headers = _std_headers(secret, body)
    with pytest.raises(TypeError, match="body"):
        integrations.verify_webhook("standard", secret, headers=headers, body="{}")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="secret"):
        integrations.verify_webhook("standard", secret.encode(), headers=headers, body=body)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now"):
        integrations.verify_webhook("standard", secret, headers=headers, body=body, now="now")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tolerance"):
        integrations.verify_webhook("standard", secret, headers=headers, body=body, tolerance=1.5)  # type: ignore[arg-type]
    with pytest.raises(integrations.InvalidArgument, match="NUL"):
        integrations.verify_webhook("standard", secret + "\0", headers=headers, body=body)
    # A body with NUL bytes is fine: its length travels separately.
    bin_body = b"\x00\x01{}\x00"
    integrations.verify_webhook("standard", secret, headers=_std_headers(secret, bin_body), body=bin_body)
    with pytest.raises(integrations.SignatureError):
        integrations.verify_webhook("standard", secret, headers=_std_headers(secret, bin_body), body=bin_body[:-1])


def test_verify_int_arguments_are_not_wrapped() -> None:
    """ctypes would wrap 2**32 - 1 into -1, which skips the timestamp check."""
    secret = _std_secret()
    body = b'{"a":1}'
    stale = _std_headers(secret, body, ts=int(time.time()) - 10**6)
    with pytest.raises(integrations.ReplayError):
        integrations.verify_webhook("standard", secret, headers=stale, body=body, tolerance=300)
    for tolerance in (2**32 - 1, 2**32 + 300, 2**31, -(2**31) - 1):
        with pytest.raises(integrations.InvalidArgument, match=f"tolerance: {tolerance} is out of range"):
            integrations.verify_webhook("standard", secret, headers=stale, body=body, tolerance=tolerance)
    # The C int's own bounds still pass through.
    integrations.verify_webhook("standard", secret, headers=stale, body=body, tolerance=-(2**31))
    integrations.verify_webhook("standard", secret, headers=stale, body=body, tolerance=2**31 - 1)
    for now in (2**63, -(2**63) - 1, 2**64 + 5):
        with pytest.raises(integrations.InvalidArgument, match="now: .* out of range"):
            integrations.verify_webhook("standard", secret, headers=stale, body=body, now=now)
    for now in (float("inf"), float("nan")):
        with pytest.raises(integrations.InvalidArgument, match="now: must be a finite"):
            integrations.verify_webhook("standard", secret, headers=stale, body=body, now=now)
    with pytest.raises(integrations.InvalidArgument, match="code"):
        integrations.strerror(2**32 - 1)


def test_verify_secret_list_entries_without_spaces() -> None:
    """A list entry holding a space would become several candidate secrets in C."""
    secret = _std_secret()
    body = b'{"a":1}'
    headers = _std_headers(secret, body)
    for entry in (secret + " " + _std_secret(), _std_secret() + "\t" + secret, ""):
        with pytest.raises(integrations.InvalidArgument,
                           match=r"secret\[1\]: must be a non-empty secret without spaces"):  # fmt: skip
            integrations.verify_webhook("standard", [_std_secret(), entry], headers=headers, body=body)
    with pytest.raises(TypeError, match=r"secret\[0\]"):
        integrations.verify_webhook("standard", [b"whsec_x"], headers=headers, body=body)  # type: ignore[list-item]
    # One string stays the space-separated form C takes.
    integrations.verify_webhook("standard", _std_secret() + " " + secret, headers=headers, body=body)
    integrations.verify_webhook("standard", [_std_secret(), secret], headers=headers, body=body)


def test_verify_threads() -> None:
    """verify_webhook needs no context; messages stay per thread."""
    secret = _std_secret()
    body = b'{"ok":true}'
    good = _std_headers(secret, body)
    errors: List[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(50):
                if i % 2:
                    integrations.verify_webhook("standard", secret, headers=good, body=body)
                else:
                    with pytest.raises(integrations.SignatureError, match="webhook-signature"):
                        integrations.verify_webhook("standard", secret, headers=good, body=body + b"!")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- the event callback, dead letters and replay ---------------------------------------------------


def test_dead_event_and_replay(dead_ctx: integrations.Context) -> None:
    events: List[Dict[str, Any]] = []
    dead_ctx.set_event_callback(events.append)
    assert dead_ctx.event_callback is not None
    with dead_ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        hub = s.create_integration("hubspot-crm", credentials={"api_key": "tok"})
        ep = s.create_webhook_endpoint(hub["id"])
        # HubSpot signs with the app's client secret: the endpoint takes it from the definition.
        assert ep["scheme"] == "hubspot-v3" and ep["secret_source"] == "app_secret"

        assert deliver_hubspot(dead_ctx, ep, hubspot_change()).status == 202
        summary = dead_ctx.process_webhooks()
        assert (summary["claimed"], summary["processed"], summary["failed"], summary["dead"]) == (1, 0, 1, 1)
        assert summary["events"][0]["status"] == "dead" and "127.0.0.1:9" in summary["events"][0]["error"]

        [dead] = s.webhook_events(status="dead")
        assert dead["attempts"] == 1 and dead["event_id"] == "101"
        assert dead["event_type"] == "contact.propertyChange" and dead["last_error"]
        assert len(events) == 1
        ev = events[0]
        assert ev["type"] == "webhook.dead" and ev["at"]
        assert ev["tenant_id"] == "tenant-a" and ev["integration_id"] == hub["id"]
        assert ev["endpoint_id"] == ep["id"] and ev["event_id"] == dead["id"]
        assert ev["attempts"] == 1 and "127.0.0.1:9" in ev["last_error"]

        # Replay: queued again with its attempts reset; it dies again (nothing listens).
        s.replay_webhook_event(dead["id"])
        [queued] = s.webhook_events()
        assert queued["id"] == dead["id"] and queued["status"] == "queued" and queued["attempts"] == 0
        with pytest.raises(integrations.ConflictError, match="queued"):
            s.replay_webhook_event(dead["id"])  # only dead or processed events
        assert dead_ctx.process_webhooks()["dead"] == 1
        assert [e["type"] for e in events] == ["webhook.dead", "webhook.dead"]
        assert s.webhook_events(status="dead")[0]["id"] == dead["id"]
        assert s.audit(action="webhook_event.replay")[0]["object_id"] == dead["id"]
        with pytest.raises(integrations.NotFound):
            s.replay_webhook_event("01900000-0000-7000-8000-000000000000")

        # Cleared: no more events.
        dead_ctx.set_event_callback(None)
        assert dead_ctx.event_callback is None
        s.replay_webhook_event(dead["id"])
        assert dead_ctx.process_webhooks()["dead"] == 1
        assert len(events) == 2


class PagerDown(RuntimeError):
    pass


def test_raising_event_callback(dead_ctx: integrations.Context) -> None:
    seen: List[str] = []

    def page_ops(event: Dict[str, Any]) -> None:
        seen.append(event["event_id"])
        raise PagerDown(f"cannot page about {event['type']}")

    dead_ctx.set_event_callback(page_ops)
    with dead_ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        hub = s.create_integration("hubspot-crm", credentials={"api_key": "tok"})
        ep = s.create_webhook_endpoint(hub["id"])
        assert deliver_hubspot(dead_ctx, ep, hubspot_change(201)).status == 202
        assert deliver_hubspot(dead_ctx, ep, hubspot_change(202)).status == 202
        # Re-raised by the call that triggered the events (the first one wins) ...
        with pytest.raises(PagerDown, match="cannot page about webhook.dead"):
            dead_ctx.process_webhooks()
        # ... after the C call finished: both events were settled and both were reported.
        assert len(seen) == 2
        assert len(s.webhook_events(status="dead")) == 2
        # Nothing leaks into the next call.
        assert dead_ctx.process_webhooks()["claimed"] == 0
        assert len(s.webhook_endpoints(hub["id"])) == 1


def test_event_callback_type(ctx: integrations.Context) -> None:
    with pytest.raises(TypeError):
        ctx.set_event_callback("webhook.dead")  # type: ignore[arg-type]
    ctx.set_event_callback(None)  # clearing when none is set is fine


def test_events_per_thread(dead_ctx: integrations.Context) -> None:
    """Two threads processing at once each see their own callback exception."""
    with dead_ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        hub = s.create_integration("hubspot-crm", credentials={"api_key": "tok"})
        ep = s.create_webhook_endpoint(hub["id"])
        for i in range(6):
            assert deliver_hubspot(dead_ctx, ep, hubspot_change(300 + i)).status == 202

    def per_thread(event: Dict[str, Any]) -> None:
        raise PagerDown(threading.current_thread().name)

    dead_ctx.set_event_callback(per_thread)
    raised: Dict[str, str] = {}
    errors: List[BaseException] = []

    def worker() -> None:
        name = threading.current_thread().name
        try:
            while True:
                try:
                    if dead_ctx.process_webhooks(1)["claimed"] == 0:
                        return
                except PagerDown as e:
                    raised.setdefault(name, str(e))
                    assert str(e) == name  # never another thread's
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert raised and all(k == v for k, v in raised.items())


def test_event_outside_a_call_is_unraisable(ctx: integrations.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event on a thread with no binding call in flight has no caller to raise to."""
    got: List[Any] = []
    monkeypatch.setattr("sys.unraisablehook", got.append)

    def broken(event: Dict[str, Any]) -> None:
        raise PagerDown(event["type"])

    ctx.set_event_callback(broken)
    trampoline = ctx._callbacks[-1]  # the installed C function pointer
    trampoline(None, b'{"type":"sync.completed"}')  # as the library would call it
    assert len(got) == 1 and isinstance(got[0].exc_value, PagerDown)
    # Nothing was left pending for the thread's next call.
    assert ctx.definition("hubspot-crm")["key"] == "hubspot-crm"


def test_closed_context(key: str) -> None:
    ctx = integrations.Context({"store": "sqlite::memory:", "master_key": key})
    s = ctx.session("tenant-a", "alice", roles=["admin"])
    iid = s.create_integration(WOO, config=WOO_CONFIG, credentials=WOO_CREDS)["id"]
    ep = s.create_webhook_endpoint(iid)
    ctx.close()
    for call in (
        lambda: ctx.receive_webhook(ep["id"], body=b"{}"),
        lambda: ctx.process_webhooks(),
        lambda: ctx.complete_oauth({"state": "x"}),
        lambda: ctx.set_event_callback(lambda event: None),
    ):
        with pytest.raises(integrations.InvalidArgument, match="closed"):
            call()
    ctx.set_event_callback(None)  # clearing is allowed (test_lifetime.py)
    # Sessions keep working after the context is closed.
    assert [e["id"] for e in s.webhook_endpoints(iid)] == [ep["id"]]
    s.close()


def test_response_value() -> None:
    import pickle

    r = integrations.WebhookResponse(401, '{"status":"unauthorized"}', "X-Sig: no match")
    assert r == (401, '{"status":"unauthorized"}') and r.reason == "X-Sig: no match" and not r.ok
    assert repr(r).startswith("WebhookResponse(status=401")
    back = pickle.loads(pickle.dumps(r))
    assert back == r and back.reason == r.reason and type(back) is integrations.WebhookResponse
    plain = integrations.WebhookResponse(202, "{}")
    assert plain.reason == "" and plain.ok and plain._replace(status=200).reason == ""


def test_receive_file_store_inbox(key: str, tmp_path: Any) -> None:
    """On a SQLite file (durability "normal") a 202'd event waits in DB-inbox until the next
    transaction, of this context or another on the file, moves it; duplicates stay exact."""
    db = tmp_path / "hooks.db"
    inbox = tmp_path / "hooks.db-inbox"
    opts = {"store": f"sqlite:{db}", "master_key": key, "webhook": {"base_url": HOOK_BASE}}
    with integrations.Context(opts) as a, integrations.Context(opts) as b:
        with a.session("tenant-a", "alice", roles=["admin"]) as s:
            ep = s.create_webhook_endpoint(s.create_integration(WOO, config=WOO_CONFIG, credentials=WOO_CREDS)["id"])
        assert deliver_woo(a, ep, customer(1), "inbox-1").status == 202
        assert inbox.stat().st_size > 0  # accepted: appended, not yet in the queue table
        assert deliver_woo(a, ep, customer(1), "inbox-1").status == 200  # still waiting: a duplicate
        assert deliver_woo(b, ep, customer(1), "inbox-1").status == 200  # the other context too
        assert deliver_woo(b, ep, customer(2), "inbox-2").status == 202
        with a.session("tenant-a", "bob") as reader:
            got = reader.webhook_events()
        assert sorted(e["event_id"] for e in got) == ["inbox-1", "inbox-2"]
        assert all(e["status"] == "queued" for e in got)
        assert inbox.stat().st_size == 0  # moved by the read's transaction
    assert not inbox.exists()  # an empty inbox goes when the stores close
