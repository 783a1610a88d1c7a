"""One Context shared by threads, each with its own Session."""

from __future__ import annotations

import threading
from typing import List

import integrations

THREADS = 4
PER_THREAD = 25


def test_threads_create_and_list(ctx: integrations.Context) -> None:
    errors: List[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(n: int) -> None:
        try:
            with ctx.session(f"tenant-{n}", f"user-{n}", roles=["admin"]) as own, \
                 ctx.session("shared", f"user-{n}", roles=["admin"]) as shared:  # fmt: skip
                barrier.wait()
                for i in range(PER_THREAD):
                    own.create_integration("hubspot-crm", name=f"t{n}-{i}", credentials={"api_key": f"k{n}{i}"})
                    shared.create_integration("visma-erp", name=f"s{n}-{i}",
                                              credentials={"client_id": "a", "client_secret": "b"})  # fmt: skip
                    assert len(own.integrations()) == i + 1
                    assert len(ctx.definitions(category="crm")) == 3
                names = {x["name"] for x in own.integrations()}
                assert names == {f"t{n}-{i}" for i in range(PER_THREAD)}
                assert len(own.audit()) == PER_THREAD
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with ctx.session("shared", "auditor") as s:
        assert len(s.integrations()) == THREADS * PER_THREAD
        assert len(s.audit(action="integration.create")) == THREADS * PER_THREAD
        assert len({x["id"] for x in s.integrations()}) == THREADS * PER_THREAD


def test_callback_errors_stay_on_their_thread(ctx: integrations.Context) -> None:
    """A callback raising on one thread must not surface on another."""

    class Boom(Exception):
        pass

    def policy(tenant: str, user: str, resource: str, action: str) -> bool:
        if user.startswith("bad"):
            raise Boom(user)
        return True

    ctx.set_permission_callback(policy)
    outcomes: dict = {}

    def work(user: str) -> None:
        got = []
        with ctx.session("t", user) as s:
            for _ in range(20):
                try:
                    s.create_integration("visma-erp", credentials={"client_id": "a", "client_secret": "b"})
                    got.append("ok")
                except Boom as e:
                    got.append(f"boom:{e}")
        outcomes[user] = got

    threads = [threading.Thread(target=work, args=(u,)) for u in ("good-1", "bad-1", "good-2", "bad-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outcomes["good-1"] == outcomes["good-2"] == ["ok"] * 20
    assert outcomes["bad-1"] == ["boom:bad-1"] * 20
    assert outcomes["bad-2"] == ["boom:bad-2"] * 20
