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
- ``GET /crm/v3/objects/contacts/{id}``: one record (404 when unknown).
- Writes (push): ``PATCH /crm/v3/objects/contacts/{id}`` merges the body's
  ``properties`` into the record; ``POST /crm/v3/objects/contacts`` creates
  one with the next numeric id (201); ``POST .../contacts/batch/create`` and
  ``.../batch/update`` take ``{"inputs": [...]}`` (update inputs carry
  ``id``) and answer ``{"status": "COMPLETE", "results": [...]}``;
  ``POST .../contacts/batch/read`` with ``idProperty: "email"`` (the
  manifest's lookup) answers the matches (207 with ``errors`` for misses).
  Every write moves the record's ``updatedAt``/``lastmodifieddate`` one
  minute past the newest stored one (see :meth:`FakeHubSpot.edit`), so the
  next incremental search sees it. ``fail_writes`` (an HTTP status) makes
  every write answer that status instead.

Every call must carry ``Authorization: Bearer <token>``; otherwise 401 with
a HubSpot-like error body. Every request is recorded in :attr:`requests`.
"""

from __future__ import annotations

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = CONTACTS + "/search"
BATCH_CREATE = CONTACTS + "/batch/create"
BATCH_UPDATE = CONTACTS + "/batch/update"
BATCH_READ = CONTACTS + "/batch/read"
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
        #: When set (e.g. 500), every write (PATCH, create, batch) answers it.
        self.fail_writes: Optional[int] = None
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

            def do_PATCH(self) -> None:  # noqa: N802
                fake._handle(self, "PATCH")

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

    def _next_time(self) -> str:
        """One minute past the newest stored update time (call with the lock held)."""
        newest = max((parse_time(c["updatedAt"]) for c in self.contacts), default=BASE_TIME)
        return rfc3339(newest + datetime.timedelta(minutes=1))

    def _write(self, c: Dict[str, Any], properties: Any) -> None:
        """Merge ``properties`` into contact ``c`` and move its update time on (lock held)."""
        if isinstance(properties, dict):
            for k, v in properties.items():
                c["properties"][k] = v
        at = self._next_time()
        c["updatedAt"] = at
        c["properties"]["lastmodifieddate"] = at

    def edit(self, i: int, **properties: Any) -> Dict[str, Any]:
        """A remote change: set contact ``i``'s properties, updated one minute past the newest."""
        with self.lock:
            for c in self.contacts:
                if c["id"] == str(i):
                    self._write(c, properties)
                    return json.loads(json.dumps(c))
        raise KeyError(i)

    def get(self, i: Any) -> Dict[str, Any]:
        """A copy of contact ``i`` as stored."""
        with self.lock:
            for c in self.contacts:
                if c["id"] == str(i):
                    return json.loads(json.dumps(c))
        raise KeyError(i)

    def _create(self, properties: Any) -> Dict[str, Any]:
        """A new contact with the next numeric id (lock held)."""
        new_id = max((int(c["id"]) for c in self.contacts), default=0) + 1
        c: Dict[str, Any] = {
            "id": str(new_id),
            "properties": {},
            "createdAt": self._next_time(),
            "updatedAt": "",
            "archived": False,
        }
        self._write(c, properties)
        self.contacts.append(c)
        return c

    def _find(self, ext_id: Any) -> Optional[Dict[str, Any]]:
        for c in self.contacts:
            if c["id"] == str(ext_id):
                return c
        return None

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
        path = parts.path
        one = path[len(CONTACTS) + 1 :] if path.startswith(CONTACTS + "/") else ""
        doc = body if isinstance(body, dict) else {}
        writes = (method == "PATCH" and one) or (method == "POST" and path in (CONTACTS, BATCH_CREATE, BATCH_UPDATE))
        if writes and self.fail_writes:
            self._send(h, self.fail_writes, {"status": "error", "message": "write refused (fail_writes)",
                                             "category": "VALIDATION_ERROR"})  # fmt: skip
        elif method == "GET" and path == CONTACTS:
            self._send(h, 200, self._list(query))
        elif method == "POST" and path == SEARCH:
            self._send(h, 200, self._search(doc))
        elif method == "POST" and path == BATCH_READ:
            self._send(h, *self._batch_read(doc))
        elif method == "POST" and path == BATCH_CREATE:
            with self.lock:
                inputs = [i for i in doc.get("inputs") or [] if isinstance(i, dict)]
                results = [json.loads(json.dumps(self._create(i.get("properties")))) for i in inputs]
            self._send(h, 201, {"status": "COMPLETE", "results": results})
        elif method == "POST" and path == BATCH_UPDATE:
            self._send(h, *self._batch_update(doc))
        elif method == "POST" and path == CONTACTS:
            with self.lock:
                created = json.loads(json.dumps(self._create(doc.get("properties"))))
            self._send(h, 201, created)
        elif method in ("GET", "PATCH") and one and "/" not in one:
            with self.lock:
                c = self._find(one)
                if c is not None and method == "PATCH":
                    self._write(c, doc.get("properties"))
                found = json.loads(json.dumps(c)) if c is not None else None
            if found is None:
                self._send(h, 404, {"status": "error", "message": "resource not found",
                                    "category": "OBJECT_NOT_FOUND"})  # fmt: skip
            else:
                self._send(h, 200, found)
        else:
            self._send(h, 404, {"status": "error", "message": f"no route {method} {path}"})

    def _batch_update(self, doc: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        results, errors = [], []
        with self.lock:
            for item in doc.get("inputs") or []:
                c = self._find(item.get("id")) if isinstance(item, dict) else None
                if c is None:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "message": "not found", "context": {"ids": [str(item.get("id"))]}})  # fmt: skip
                    continue
                self._write(c, item.get("properties"))
                results.append(json.loads(json.dumps(c)))
        answer: Dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer["errors"] = errors
        return (207 if errors else 200), answer

    def _batch_read(self, doc: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        prop = doc.get("idProperty") or "hs_object_id"
        results, missing = [], []
        with self.lock:
            for item in doc.get("inputs") or []:
                want = str(item.get("id")) if isinstance(item, dict) else ""
                hit = next(
                    (c for c in self.contacts
                     if (c["id"] if prop == "hs_object_id" else str(c["properties"].get(prop, ""))).lower() == want.lower()),
                    None,
                )  # fmt: skip
                if hit is None:
                    missing.append(want)
                else:
                    results.append(json.loads(json.dumps(hit)))
        answer: Dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            answer["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "not found",
                                 "context": {"ids": missing}}]  # fmt: skip
        return (207 if missing else 200), answer

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
