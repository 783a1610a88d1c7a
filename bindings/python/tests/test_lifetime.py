"""Handle lifetime: close order, finalisers, interpreter shutdown."""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

import integrations
from helpers import HUBSPOT_EXAMPLE, subprocess_env


def test_context_closed_before_session(key: str) -> None:
    ctx = integrations.Context({"store": "sqlite::memory:", "master_key": key})
    s = ctx.session("tenant-a", "alice", roles=["admin"])
    ctx.set_permission_callback(lambda *a: True)
    ctx.close()
    assert ctx.closed and not s.closed
    # The existing session keeps working (and its callback with it) ...
    created = s.create_integration(copy.deepcopy(HUBSPOT_EXAMPLE))
    assert [i["id"] for i in s.integrations()] == [created["id"]]
    assert s.audit()[0]["action"] == "integration.create"
    # ... but the closed context refuses new work.
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        ctx.session("tenant-a", "bob")
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        ctx.definitions()
    ctx.close()  # idempotent
    s.close()  # the real C close happens here
    s.close()
    with pytest.raises(integrations.InvalidArgument, match="session is closed"):
        s.integrations()


def test_context_managers_close(key: str) -> None:
    with integrations.Context(store="sqlite::memory:", master_key=key) as ctx:
        with ctx.session("t", "u") as s:
            assert s.integrations() == []
        assert s.closed and not ctx.closed
    assert ctx.closed
    assert "closed" in repr(ctx) and "closed" in repr(s)


def test_session_keeps_its_context_alive(key: str) -> None:
    s = integrations.Context(store="sqlite::memory:", master_key=key).session("t", "u", roles=["admin"])
    ctx_ref = weakref.ref(s.context)
    gc.collect()
    assert ctx_ref() is not None
    assert s.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
    s.close()
    del s
    gc.collect()
    assert ctx_ref() is None


def test_garbage_collection_closes_handles(key: str) -> None:
    for _ in range(50):
        ctx = integrations.Context(store="sqlite::memory:", master_key=key)
        s = ctx.session("t", "u", roles=["admin"])
        ctx.set_permission_callback(lambda *a: True)
        s.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
        # Drop both in the "wrong" order; also through a reference cycle.
        s.cycle = s  # type: ignore[attr-defined]
        del ctx, s
    gc.collect()


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_finalisers_at_interpreter_shutdown(tmp_path: Path) -> None:
    r = _run(
        """
        import integrations, threading
        key = integrations.generate_master_key()
        ctx = integrations.Context(store="sqlite:" + "shutdown.db", master_key=key)
        ctx.set_permission_callback(lambda *a: True)
        sessions = [ctx.session("t", f"u{i}") for i in range(5)]
        for s in sessions:
            s.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
        closed_ctx = integrations.Context(store="sqlite::memory:", master_key=key)
        orphan = closed_ctx.session("t", "u")
        closed_ctx.close()
        cyc = integrations.Context(store="sqlite::memory:", master_key=key)
        cyc.me = cyc
        cyc.s = cyc.session("t", "u")
        print("done", len(sessions[0].integrations()))
        # exit without closing anything
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done 5"
    assert r.stderr == ""


def test_shutdown_with_exception_pending(tmp_path: Path) -> None:
    r = _run(
        """
        import integrations, sys
        ctx = integrations.Context(store="sqlite::memory:", master_key=integrations.generate_master_key())
        s = ctx.session("t", "u", roles=["admin"])
        def boom(*a):
            raise KeyboardInterrupt
        ctx.set_permission_callback(boom)
        try:
            s.create_integration("visma-erp")
        except KeyboardInterrupt:
            print("interrupted")
        sys.exit(3)
        """,
        tmp_path,
    )
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == "interrupted" and r.stderr == ""
