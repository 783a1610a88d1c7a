"""A tiny loopback stand-in for HubSpot's CRM v3 contacts API (standard library only).

Serves, on 127.0.0.1 (an ephemeral port), what the built-in ``hubspot-crm``
manifest asks for:

- ``GET /crm/v3/objects/contacts?limit=N&after=C``: the list, cursor-paginated
  (``paging.next.after``), at most ``page_size`` records a page, whatever the
  ``limit`` asked (the manifest asks 100). ``archived=true`` lists nothing.
  The connection test is the same call with ``limit=1``.
- ``POST /crm/v3/objects/contacts/search``: the incremental query, a
  ``filterGroups`` body with ``lastmodifieddate GTE value``, the cursor as
  ``after`` in the body; answers ``{"total", "results", "paging"}``.

Every call must carry ``Authorization: Bearer <token>``; otherwise 401 with
a HubSpot-like error body. Every request is recorded in :attr:`requests`.
"""

from __future__ import annotations

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = CONTACTS + "/search"
BASE_TIME = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    """RFC 3339 (with Z or an offset, optional fraction) as an aware datetime."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(text)


def contact(i: int, minutes: Optional[int] = None) -> Dict[str, Any]:
    """Contact ``i``: id "i", email " Ai@X.IO ", updated at 00:<minutes>:00Z (default i)."""
    updated = rfc3339(BASE_TIME + datetime.timedelta(minutes=i if minutes is None else minutes))
    return {
        "id": str(i),
        "properties": {
            "email": f" A{i}@X.IO ",
            "firstname": "A",
            "lastname": str(i),
            "lastmodifieddate": updated,
        },
        "createdAt": rfc3339(BASE_TIME),
        "updatedAt": updated,
        "archived": False,
    }


class FakeHubSpot:
    """The server; use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self, count: int = 25, page_size: int = 10, token: str = "tok") -> None:
        self.token = token
        self.page_size = page_size
        self.lock = threading.Lock()
        self.contacts: List[Dict[str, Any]] = [contact(i) for i in range(1, count + 1)]
        self.requests: List[Dict[str, Any]] = []
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifetime ------------------------------------------------------------

    def start(self) -> "FakeHubSpot":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "FakeHubSpot":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- data ----------------------------------------------------------------

    def touch(self, i: int, minutes: int) -> None:
        """Change contact ``i``'s last name and move its update time to 00:<minutes>:00Z."""
        with self.lock:
            for k, c in enumerate(self.contacts):
                if c["id"] == str(i):
                    new = contact(i, minutes)
                    new["properties"]["lastname"] = f"{i}-changed"
                    self.contacts[k] = new
                    return
        raise KeyError(i)

    def add(self, i: int, minutes: Optional[int] = None) -> None:
        with self.lock:
            self.contacts.append(contact(i, minutes))

    def calls(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Dict[str, Any]]:
        with self.lock:
            return [
                r for r in self.requests
                if (method is None or r["method"] == method) and (path is None or r["path"] == path)
            ]  # fmt: skip

    # -- HTTP ----------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if 0 < length <= 1 << 20 else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.requests.append(
                {"method": method, "path": parts.path, "query": query, "body": body,
                 "authorization": h.headers.get("Authorization")}
            )  # fmt: skip
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(h, 401, {
                "status": "error",
                "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION",
            })  # fmt: skip
            return
        if method == "GET" and parts.path == CONTACTS:
            self._send(h, 200, self._list(query))
        elif method == "POST" and parts.path == SEARCH:
            self._send(h, 200, self._search(body if isinstance(body, dict) else {}))
        else:
            self._send(h, 404, {"status": "error", "message": f"no route {method} {parts.path}"})

    def _page(self, rows: List[Dict[str, Any]], limit: Any, after: Any) -> Dict[str, Any]:
        try:
            n = max(1, min(int(limit), self.page_size))
        except (TypeError, ValueError):
            n = self.page_size
        try:
            start = max(0, int(after))
        except (TypeError, ValueError):
            start = 0
        page: Dict[str, Any] = {"results": rows[start : start + n]}
        if start + n < len(rows):
            page["paging"] = {"next": {"after": str(start + n)}}
        return page

    def _list(self, query: Dict[str, str]) -> Dict[str, Any]:
        with self.lock:
            rows = [] if query.get("archived") == "true" else list(self.contacts)
        return self._page(rows, query.get("limit", "10"), query.get("after"))

    def _search(self, body: Dict[str, Any]) -> Dict[str, Any]:
        since: Optional[datetime.datetime] = None
        for group in body.get("filterGroups") or []:
            for f in group.get("filters") or []:
                if f.get("propertyName") == "lastmodifieddate" and f.get("operator") == "GTE":
                    since = parse_time(str(f.get("value")))
        with self.lock:
            rows = [
                c for c in self.contacts
                if since is None or parse_time(c["properties"]["lastmodifieddate"]) >= since
            ]  # fmt: skip
        rows.sort(key=lambda c: (c["properties"]["lastmodifieddate"], int(c["id"])))
        page = self._page(rows, body.get("limit", 10), body.get("after"))
        page["total"] = len(rows)
        return page

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode("utf-8")
        h.send_response(status)
        h.send_header("Content-Type", "application/json;charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
