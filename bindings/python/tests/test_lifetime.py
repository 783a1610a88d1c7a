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


def test_close_during_a_call_waits_for_it(tmp_path: Path) -> None:
    """close() from a callback, or from another thread, never frees the handle under the running call.

    In a child process: without the in-flight count this is a use-after-free (a crash).
    """
    r = _run(
        """
        import threading, integrations
        key = integrations.generate_master_key()
        VISMA = {"client_id": "a", "client_secret": "b"}

        # The event callback closes the context during run_due.
        ctx = integrations.Context({"store": "sqlite::memory:", "master_key": key,
            "base_url_overrides": {"hubspot-crm": "http://127.0.0.1:9"},
            "http": {"allow_private_networks": True, "max_retries": 0, "timeout_ms": 2000}})
        with ctx.session("t", "alice", roles=["admin"]) as s:
            s.create_integration("hubspot-crm", name="x", credentials={"api_key": "k"},
                                 config={"auto_sync": True, "entities": ["contacts"]})
        seen = []
        def on_event(event):
            seen.append(event["type"])
            ctx.close()
        ctx.set_event_callback(on_event)
        try:
            print("run_due", len(ctx.run_due(10)["syncs"]))
        except integrations.InvalidArgument as e:  # the library's closed error is fine too
            print("run_due", "closed" in str(e))
        print("events", seen, ctx.closed)
        try:
            ctx.definitions()
        except integrations.InvalidArgument as e:
            print("then:", e)

        # The permission callback closes its session and the context during create_integration.
        ctx = integrations.Context({"store": "sqlite::memory:", "master_key": key})
        s = ctx.session("t", "alice")
        def perm(*args):
            s.close()
            ctx.close()
            return True
        ctx.set_permission_callback(perm)
        created = s.create_integration("visma-erp", credentials=VISMA)
        print("created", bool(created["id"]), s.closed, ctx.closed)
        for call in (s.integrations, lambda: ctx.session("t", "bob")):
            try:
                call()
            except integrations.InvalidArgument as e:
                print("then:", e)

        # Another thread closes both while a call is inside C.
        ctx = integrations.Context({"store": "sqlite::memory:", "master_key": key})
        s = ctx.session("t", "alice")
        inside, go = threading.Event(), threading.Event()
        def slow(*args):
            inside.set()
            go.wait(30)
            return True
        ctx.set_permission_callback(slow)
        out = []
        t = threading.Thread(target=lambda: out.append(s.create_integration("visma-erp", credentials=VISMA)))
        t.start()
        inside.wait(30)
        s.close()
        ctx.close()
        go.set()
        t.join()
        print("thread", len(out), s.closed, ctx.closed)
        try:
            s.audit()
        except integrations.InvalidArgument as e:
            print("then:", e)
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "run_due 1",
        "events ['sync.failed'] True",
        "then: ctx: the context is closed",
        "created True True True",
        "then: session: the session is closed",
        "then: ctx: the context is closed",
        "thread 1 True True",
        "then: session: the session is closed",
    ]
    assert r.stderr == ""


def test_callbacks_can_be_cleared_after_close(key: str) -> None:
    """Open sessions keep calling the callbacks after ctx.close(): clearing them must work."""
    ctx = integrations.Context({"store": "sqlite::memory:", "master_key": key,
        "base_url_overrides": {"hubspot-crm": "http://127.0.0.1:9"},
        "http": {"allow_private_networks": True, "max_retries": 0, "timeout_ms": 2000}})  # fmt: skip
    s = ctx.session("tenant-a", "alice", roles=["admin"])
    hub = s.create_integration("hubspot-crm", name="x", credentials={"api_key": "k"})
    denied, events = [], []
    ctx.set_permission_callback(lambda *a: denied.append(a[3]) or a[3] != "admin")
    ctx.set_event_callback(events.append)
    with pytest.raises(integrations.PermissionDenied):
        s.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
    ctx.close()
    # Setting a new one is refused ...
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        ctx.set_permission_callback(lambda *a: True)
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        ctx.set_event_callback(print)
    # ... clearing is not: the open session used them until now.
    ctx.set_permission_callback(None)
    ctx.set_event_callback(None)
    assert ctx.permission_callback is None and ctx.event_callback is None
    # The session's roles decide again, and events go nowhere.
    s.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
    with pytest.raises(integrations.NetworkError):
        s.sync(hub["id"], "contacts")
    assert denied == ["admin"] and events == []
    s.close()  # the C context really closes here
    ctx.set_permission_callback(None)  # still fine: nothing left to call it
    ctx.set_event_callback(None)
    with pytest.raises(integrations.InvalidArgument, match="closed"):
        ctx.set_event_callback(print)
