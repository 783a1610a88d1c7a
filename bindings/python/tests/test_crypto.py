"""Master keys on a file store: rotation, and the wrong key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import integrations


def _open(db: Path, key: str) -> integrations.Context:
    return integrations.Context(store=f"sqlite:{db}", master_key=key)


def _seed(db: Path, key: str) -> str:
    with _open(db, key) as ctx, ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        created = s.create_integration("hubspot-crm", name="Sealed", credentials={"api_key": "pat-sealed-under-a"})
        ctx.set_app_credentials("hubspot-crm", {"client_id": "cid", "client_secret": "app-secret-a"})
        return created["id"]


def test_file_store_persists(tmp_path: Path) -> None:
    db = tmp_path / "persist.db"
    key = integrations.generate_master_key()
    iid = _seed(db, key)
    with _open(db, key) as ctx, ctx.session("tenant-a", "bob") as s:
        assert s.integration(iid)["name"] == "Sealed"
        assert ctx.definition("hubspot-crm")["has_app_credentials"] is True
    raw = db.read_bytes()
    assert b"pat-sealed-under-a" not in raw and b"app-secret-a" not in raw


def _wrong_key_error(db: Path, key: str, new_key: str, iid: str) -> integrations.CryptoError:
    """The CryptoError of using ``key`` on a store sealed under another key.

    The library keeps the key id in the store and refuses a wrong key at
    open; without that check the wrong key only shows when secrets are
    opened (reading never opens them), i.e. at rotation.
    """
    try:
        ctx = _open(db, key)
    except integrations.CryptoError as e:
        return e
    with ctx:
        with ctx.session("tenant-a", "bob") as s:
            assert s.integration(iid)["has_credentials"] is True
        with pytest.raises(integrations.CryptoError) as ei:
            ctx.rotate_master_key(new_key)
        return ei.value


def test_rotation_with_the_wrong_key_is_crypto_error(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    key_a, key_b, key_c = (integrations.generate_master_key() for _ in range(3))
    iid = _seed(db, key_a)

    err = _wrong_key_error(db, key_b, key_c, iid)
    assert err.code == -14 and str(err)

    # Nothing changed: the secrets still open with key A, and rotate A -> C.
    with _open(db, key_a) as ctx:
        ctx.rotate_master_key(key_c)
    with _open(db, key_c) as ctx:
        ctx.rotate_master_key(key_b)  # proves everything was re-sealed under C
        with ctx.session("tenant-a", "alice") as s:
            trail = s.audit()
        assert trail[0]["action"] == "integration.create"
    assert _wrong_key_error(db, key_a, key_c, iid).code == -14


def test_rotated_context_keeps_sealing(tmp_path: Path) -> None:
    db = tmp_path / "rot.db"
    key_a, key_b, key_c = (integrations.generate_master_key() for _ in range(3))
    iid = _seed(db, key_a)
    with _open(db, key_a) as ctx, ctx.session("tenant-a", "alice", roles=["admin"]) as s:
        ctx.rotate_master_key(key_b)
        s.set_credentials(iid, {"api_key": "sealed-after-rotation"})  # sealed under B now
    with _open(db, key_b) as ctx:
        ctx.rotate_master_key(key_c)


def test_rotate_to_a_malformed_key(ctx: integrations.Context) -> None:
    with pytest.raises(integrations.InvalidArgument, match="new_key"):
        ctx.rotate_master_key("short")
    with pytest.raises(TypeError):
        ctx.rotate_master_key(None)  # type: ignore[arg-type]
    assert json.dumps(ctx.definitions())  # the context still works
