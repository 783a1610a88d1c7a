"""Shared fixtures: a fresh in-memory SQLite store per test, and sessions.

The tests import the package from this source tree (bindings/python) unless
it is installed. The library comes from INTEG_LIBRARY or the source tree's
build/ directory (see integrations/_native.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

BINDING_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BINDING_DIR))

import integrations  # noqa: E402


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
