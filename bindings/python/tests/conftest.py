"""Shared fixtures: a fresh in-memory SQLite store per test, and sessions.

For sync tests: ``hubspot`` (a loopback fake of HubSpot's contacts API, see
fake_hubspot.py), ``hub_ctx`` (a context whose hubspot-crm base URL points
at it), ``hub_admin``/``hub_reader``/``hub_other`` sessions on it, and
``hub_id`` (a hubspot-crm integration of tenant-a with the right token).

The tests import the package from this source tree (bindings/python) unless
it is installed. The library comes from INTEG_LIBRARY or the source tree's
build/ directory (see integrations/_native.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

BINDING_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BINDING_DIR))

import integrations  # noqa: E402
from fake_hubspot import FakeHubSpot  # noqa: E402


@pytest.fixture
def key() -> str:
    return integrations.generate_master_key()


@pytest.fixture
def ctx(key: str) -> Iterator[integrations.Context]:
    with integrations.Context({"store": "sqlite::memory:", "master_key": key}) as c:
        yield c


@pytest.fixture
def admin(ctx: integrations.Context) -> Iterator[integrations.Session]:
    with ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        yield s


@pytest.fixture
def reader(ctx: integrations.Context) -> Iterator[integrations.Session]:
    with ctx.session("tenant-a", "bob") as s:
        yield s


@pytest.fixture
def other_admin(ctx: integrations.Context) -> Iterator[integrations.Session]:
    with ctx.session("tenant-b", "carol", roles=["admin"]) as s:
        yield s


# -- sync against the fake HubSpot ------------------------------------------


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(count=25, page_size=10, token="tok") as server:
        yield server


def hub_options(key: str, url: str) -> Dict[str, Any]:
    """Context options for a store whose hubspot-crm calls go to ``url``."""
    return {
        "store": "sqlite::memory:",
        "master_key": key,
        "http": {"allow_private_networks": True, "max_retries": 1, "timeout_ms": 10000},
        "base_url_overrides": {"hubspot-crm": url},
    }


@pytest.fixture
def hub_ctx(key: str, hubspot: FakeHubSpot) -> Iterator[integrations.Context]:
    with integrations.Context(hub_options(key, hubspot.url)) as c:
        yield c


@pytest.fixture
def hub_admin(hub_ctx: integrations.Context) -> Iterator[integrations.Session]:
    with hub_ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        yield s


@pytest.fixture
def hub_reader(hub_ctx: integrations.Context) -> Iterator[integrations.Session]:
    with hub_ctx.session("tenant-a", "bob") as s:
        yield s


@pytest.fixture
def hub_other(hub_ctx: integrations.Context) -> Iterator[integrations.Session]:
    with hub_ctx.session("tenant-b", "carol", roles=["admin"]) as s:
        yield s


@pytest.fixture
def hub_id(hub_admin: integrations.Session) -> str:
    created = hub_admin.create_integration("hubspot-crm", name="HubSpot", credentials={"api_key": "tok"})
    return created["id"]
