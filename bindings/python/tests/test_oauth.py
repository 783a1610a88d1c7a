"""OAuth 2.0: begin (state + PKCE), complete, refresh, against a loopback token endpoint.

``FakeTokenEndpoint`` answers HubSpot's token URL on 127.0.0.1: the
authorization_code grant (checking client_id/client_secret, the
redirect_uri and the PKCE verifier against the challenge the authorize URL
carried) and the refresh_token grant (or a 400 invalid_grant when told to
reject). The hubspot-crm definition is pointed at it, and its API at the
fake HubSpot of fake_hubspot.py, with ``base_url_overrides``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

import integrations
from fake_hubspot import FakeHubSpot

REDIRECT = "https://app.example.com/oauth/callback"
CLIENT_ID = "client-123"
CLIENT_SECRET = "secret-456"


class FakeTokenEndpoint:
    """POST /oauth/v1/token (form-encoded), recording every request."""

    def __init__(self) -> None:
        self.challenges: Dict[str, str] = {}  # code -> expected S256 challenge
        self.requests: List[Dict[str, str]] = []
        self.reject_refresh = False
        self.issued = 0
        self.lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    def __enter__(self) -> "FakeTokenEndpoint":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                n = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(n).decode("utf-8")))
                with fake.lock:
                    fake.requests.append(form)
                status, answer = fake.answer(self.path, form)
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/oauth/v1/token"

    def tokens(self) -> Dict[str, Any]:
        with self.lock:
            self.issued += 1
            n = self.issued
        return {"access_token": f"at{n}", "refresh_token": f"rt{n}", "expires_in": 1800, "token_type": "bearer"}

    def answer(self, path: str, form: Dict[str, str]) -> Any:
        if path != "/oauth/v1/token":
            return 404, {"status": "error", "message": "not found"}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client", "error_description": "bad client"}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            want = self.challenges.get(form.get("code", ""))
            verifier = form.get("code_verifier", "")
            got = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if want is None or got != want or form.get("redirect_uri") != REDIRECT:
                return 400, {"error": "invalid_grant", "error_description": "code, verifier or redirect_uri"}
            return 200, self.tokens()
        if grant == "refresh_token":
            if self.reject_refresh:
                return 400, {"error": "invalid_grant", "error_description": "refresh token revoked"}
            return 200, self.tokens()
        return 400, {"error": "unsupported_grant_type"}


@pytest.fixture
def tokens() -> Iterator[FakeTokenEndpoint]:
    with FakeTokenEndpoint() as t:
        yield t


@pytest.fixture
def octx(key: str, tokens: FakeTokenEndpoint, hubspot: FakeHubSpot) -> Iterator[integrations.Context]:
    opts = {
        "store": "sqlite::memory:",
        "master_key": key,
        "http": {"allow_private_networks": True, "max_retries": 0, "timeout_ms": 10000},
        "base_url_overrides": {"hubspot-crm": {"api": hubspot.url, "token_url": tokens.url}},
    }
    with integrations.Context(opts) as c:
        c.set_app_credentials("hubspot-crm", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        yield c


@pytest.fixture
def oadmin(octx: integrations.Context) -> Iterator[integrations.Session]:
    with octx.session("tenant-a", "alice", roles=["admin"]) as s:
        yield s


def _query(url: str) -> Dict[str, str]:
    q = parse_qs(urlsplit(url).query)
    assert all(len(v) == 1 for v in q.values()), q
    return {k: v[0] for k, v in q.items()}


def _connect(ctx: integrations.Context, s: integrations.Session, tokens: FakeTokenEndpoint,
             code: str = "code-1", **kw: Any) -> Dict[str, Any]:  # fmt: skip
    """begin_oauth, then the provider's redirect with a code, then complete_oauth."""
    begun = s.begin_oauth("hubspot-crm", REDIRECT, **kw)
    tokens.challenges[code] = _query(begun["authorize_url"])["code_challenge"]
    return ctx.complete_oauth({"state": begun["state"], "code": code})


def test_begin(octx: integrations.Context, oadmin: integrations.Session) -> None:
    begun = oadmin.begin_oauth("hubspot-crm", REDIRECT, name="HubSpot (OAuth)", scopes=["crm.objects.contacts.write"])
    assert set(begun) == {"authorize_url", "state", "expires_at"}
    url = urlsplit(begun["authorize_url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "app.hubspot.com", "/oauth/authorize")
    q = _query(begun["authorize_url"])
    assert q["state"] == begun["state"] and len(begun["state"]) >= 32
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID and q["redirect_uri"] == REDIRECT
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert "crm.objects.contacts.read" in q["scope"].split() and "crm.objects.contacts.write" in q["scope"].split()
    assert CLIENT_SECRET not in begun["authorize_url"]
    # Every flow gets its own state and verifier.
    other = oadmin.begin_oauth("hubspot-crm", REDIRECT)
    assert other["state"] != begun["state"]
    assert _query(other["authorize_url"])["code_challenge"] != q["code_challenge"]


def test_begin_errors(key: str, octx: integrations.Context, oadmin: integrations.Session) -> None:
    with pytest.raises(integrations.InvalidArgument, match="redirect_uri"):
        oadmin.begin_oauth("hubspot-crm", "not a url")
    with pytest.raises(integrations.NotFound):
        oadmin.begin_oauth("no-such-system", REDIRECT)
    with pytest.raises(TypeError, match="scopes"):
        oadmin.begin_oauth("hubspot-crm", REDIRECT, scopes="crm.objects.contacts.write")  # type: ignore[arg-type]
    # Without app credentials on the definition there is no client to authorise.
    with integrations.Context({"store": "sqlite::memory:", "master_key": key}) as bare:
        with bare.session("tenant-a", "alice", roles=["admin"]) as s:
            with pytest.raises(integrations.InvalidArgument, match="app credentials|integ_definition_set_app_credentials"):
                s.begin_oauth("hubspot-crm", REDIRECT)


def test_complete_unknown_state_and_provider_error(octx: integrations.Context, oadmin: integrations.Session) -> None:
    with pytest.raises(integrations.NotFound, match="state"):
        octx.complete_oauth({"state": "never-issued", "code": "x"})
    with pytest.raises(integrations.InvalidArgument, match="state"):
        octx.complete_oauth({"code": "x"})

    begun = oadmin.begin_oauth("hubspot-crm", REDIRECT)
    with pytest.raises(integrations.AuthError, match="access_denied: The user declined") as e:
        octx.complete_oauth(
            {"state": begun["state"], "error": "access_denied", "error_description": "The user declined"}
        )
    assert e.value.code == integrations.ErrorCode.EAUTH
    # The state was consumed: single use.
    with pytest.raises(integrations.NotFound):
        octx.complete_oauth({"state": begun["state"], "code": "x"})
    assert oadmin.integrations() == []
    assert [a["action"] for a in oadmin.audit(action="oauth.failed")] == ["oauth.failed"]


def test_complete_creates_integration_and_syncs(
    octx: integrations.Context, oadmin: integrations.Session, tokens: FakeTokenEndpoint, hubspot: FakeHubSpot
) -> None:
    created = _connect(octx, oadmin, tokens, name="HubSpot (OAuth)")
    assert created["name"] == "HubSpot (OAuth)" and created["auth_type"] == "oauth2"
    assert created["status"] == "active" and created["has_credentials"] is True
    assert created["tenant_id"] == "tenant-a" and created["integration_definition_key"] == "hubspot-crm"
    assert "at1" not in json.dumps(created) and "rt1" not in json.dumps(created)
    assert oadmin.integration(created["id"]) == created
    exchange = tokens.requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code"] == "code-1"

    # The access token is used for API calls.
    hubspot.token = "at1"
    assert oadmin.sync(created["id"], "contacts")["records_created"] == 25

    # Forced refresh: a new token from the refresh grant, used from then on.
    oadmin.refresh_oauth(created["id"])
    assert tokens.requests[-1]["grant_type"] == "refresh_token" and tokens.requests[-1]["refresh_token"] == "rt1"
    hubspot.token = "at2"
    assert oadmin.test_integration(created["id"])["success"] is True

    # The same state cannot complete twice.
    begun = oadmin.begin_oauth("hubspot-crm", REDIRECT, integration_id=created["id"])
    tokens.challenges["code-2"] = _query(begun["authorize_url"])["code_challenge"]
    again = octx.complete_oauth({"state": begun["state"], "code": "code-2"})
    assert again["id"] == created["id"]  # re-authorised in place
    with pytest.raises(integrations.NotFound):
        octx.complete_oauth({"state": begun["state"], "code": "code-2"})


def test_rejected_code(octx: integrations.Context, oadmin: integrations.Session) -> None:
    begun = oadmin.begin_oauth("hubspot-crm", REDIRECT)
    with pytest.raises(integrations.AuthError, match="invalid_grant"):
        octx.complete_oauth({"state": begun["state"], "code": "no-such-code"})
    assert oadmin.integrations() == []


def test_rejected_refresh_needs_reauth(
    octx: integrations.Context, oadmin: integrations.Session, tokens: FakeTokenEndpoint
) -> None:
    events: List[Dict[str, Any]] = []
    octx.set_event_callback(events.append)
    created = _connect(octx, oadmin, tokens)
    tokens.reject_refresh = True
    with pytest.raises(integrations.AuthError, match="invalid_grant"):
        oadmin.refresh_oauth(created["id"])
    assert oadmin.integration(created["id"])["status"] == "needs_reauth"
    reauth = [e for e in events if e["type"] == "integration.needs_reauth"]
    assert len(reauth) == 1
    assert reauth[0]["tenant_id"] == "tenant-a" and reauth[0]["integration_id"] == created["id"]
    assert "invalid_grant" in reauth[0]["reason"]


def test_raising_event_callback_in_refresh(
    octx: integrations.Context, oadmin: integrations.Session, tokens: FakeTokenEndpoint
) -> None:
    created = _connect(octx, oadmin, tokens)
    tokens.reject_refresh = True

    def broken(event: Dict[str, Any]) -> None:
        raise LookupError(event["type"])

    octx.set_event_callback(broken)
    # The callback's exception wins over the call's own AuthError.
    with pytest.raises(LookupError, match="integration.needs_reauth"):
        oadmin.refresh_oauth(created["id"])
    assert oadmin.integration(created["id"])["status"] == "needs_reauth"


def test_refresh_errors(octx: integrations.Context, oadmin: integrations.Session) -> None:
    api_key = oadmin.create_integration("hubspot-crm", credentials={"api_key": "tok"})
    with pytest.raises(integrations.Unsupported, match="api_key"):
        oadmin.refresh_oauth(api_key["id"])
    with pytest.raises(integrations.NotFound):
        oadmin.refresh_oauth("01900000-0000-7000-8000-000000000000")


def test_tenants_and_permissions(
    octx: integrations.Context, oadmin: integrations.Session, tokens: FakeTokenEndpoint
) -> None:
    created = _connect(octx, oadmin, tokens)
    with octx.session("tenant-a", "bob") as reader:
        with pytest.raises(integrations.PermissionDenied):
            reader.begin_oauth("hubspot-crm", REDIRECT)
        with pytest.raises(integrations.PermissionDenied):
            reader.refresh_oauth(created["id"])
    with octx.session("tenant-b", "carol", roles=["admin"]) as other:
        with pytest.raises(integrations.NotFound):
            other.refresh_oauth(created["id"])
        with pytest.raises(integrations.NotFound):
            other.begin_oauth("hubspot-crm", REDIRECT, integration_id=created["id"])
        # A flow begun by tenant-b creates tenant-b's integration.
        theirs = _connect(octx, other, tokens, code="code-b")
        assert theirs["tenant_id"] == "tenant-b"
        assert [i["id"] for i in other.integrations()] == [theirs["id"]]
    assert [i["id"] for i in oadmin.integrations()] == [created["id"]]
