"""Library-level functions, the error classes and the library loader."""

from __future__ import annotations

import base64
import pickle
import re
import subprocess
import sys

import pytest

import integrations
from integrations import errors
from helpers import BINDING_DIR, subprocess_env


def test_version_is_semver() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", integrations.version())


def test_generate_master_key() -> None:
    a, b = integrations.generate_master_key(), integrations.generate_master_key()
    assert len(a) == 44 and a != b
    assert len(base64.b64decode(a, validate=True)) == 32


def test_strerror() -> None:
    assert integrations.strerror(0) == "success"
    assert integrations.strerror(-2) == "not found"
    assert integrations.strerror(errors.ErrorCode.EPERM) == "permission denied"
    assert integrations.strerror(12345) == "unknown error code"


EXPECTED_CLASSES = {
    -1: "InvalidArgument", -2: "NotFound", -3: "AlreadyExists", -4: "PermissionDenied",
    -5: "AuthError", -6: "RateLimited", -7: "NetworkError", -8: "RemoteError",
    -9: "SignatureError", -10: "ReplayError", -11: "ConflictError", -12: "MappingError",
    -13: "StoreError", -14: "CryptoError", -15: "OutOfMemory", -16: "Canceled",
    -17: "Unsupported", -99: "InternalError",
}  # fmt: skip


@pytest.mark.parametrize("code,name", sorted(EXPECTED_CLASSES.items()))
def test_one_exception_class_per_code(code: int, name: str) -> None:
    cls = getattr(integrations, name)
    assert issubclass(cls, integrations.IntegrationsError)
    assert cls.code == code
    exc = errors.error_for_code(code, "field.x: broken")
    assert type(exc) is cls and exc.code == code and str(exc) == "field.x: broken"
    # Every code has a C-side text, i.e. the binding and the library agree.
    assert integrations.strerror(code) != "unknown error code"


def test_unknown_code_and_pickling() -> None:
    exc = errors.error_for_code(-1000, "new code")
    assert type(exc) is integrations.IntegrationsError and exc.code == -1000
    back = pickle.loads(pickle.dumps(exc))
    assert back.code == -1000 and str(back) == "new code"
    nf = pickle.loads(pickle.dumps(integrations.NotFound("gone")))
    assert isinstance(nf, integrations.NotFound) and nf.code == -2 and nf.message == "gone"


def test_library_path_is_loaded_file() -> None:
    assert "libintegrations" in integrations.library_path


def _import_in_child(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import integrations"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_bad_integ_library_is_a_clear_import_error() -> None:
    env = subprocess_env()
    env["INTEG_LIBRARY"] = "/nonexistent/libintegrations.so"
    r = _import_in_child(env)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "INTEG_LIBRARY='/nonexistent/libintegrations.so'" in r.stderr


def test_missing_library_lists_what_was_tried(tmp_path) -> None:
    # A copy of the package outside any source tree, without a library.
    import shutil

    shutil.copytree(BINDING_DIR / "integrations", tmp_path / "integrations",
                    ignore=shutil.ignore_patterns("*.so*", "__pycache__"))  # fmt: skip
    env = subprocess_env()
    env.pop("INTEG_LIBRARY")
    env["PYTHONPATH"] = str(tmp_path)
    env["LD_LIBRARY_PATH"] = ""
    r = _import_in_child(env)
    if r.returncode == 0:
        pytest.skip("libintegrations is installed system-wide")
    assert "cannot find libintegrations" in r.stderr
    assert "$INTEG_LIBRARY: not set" in r.stderr
    assert str(tmp_path / "integrations" / "libintegrations.so") in r.stderr
    assert "find_library" in r.stderr


def test_library_next_to_package_is_found(tmp_path) -> None:
    import shutil

    shutil.copytree(BINDING_DIR / "integrations", tmp_path / "integrations",
                    ignore=shutil.ignore_patterns("*.so*", "__pycache__"))  # fmt: skip
    shutil.copy(integrations.library_path, tmp_path / "integrations" / "libintegrations.so.0")
    env = subprocess_env()
    env.pop("INTEG_LIBRARY")
    env["PYTHONPATH"] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", "import integrations; print(integrations.library_path)"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "integrations" / "libintegrations.so.0")


def test_context_without_key_is_invalid_argument(monkeypatch) -> None:
    monkeypatch.delenv("INTEG_MASTER_KEY", raising=False)
    with pytest.raises(integrations.InvalidArgument) as ei:
        integrations.Context({"store": "sqlite::memory:"})
    assert "master key" in str(ei.value) and ei.value.code == -1


def test_context_key_from_environment(monkeypatch, key: str) -> None:
    monkeypatch.setenv("INTEG_MASTER_KEY", key)
    with integrations.Context(store="sqlite::memory:") as ctx:
        assert len(ctx.definitions()) == 15


def test_context_unknown_option_names_it(key: str) -> None:
    with pytest.raises(integrations.InvalidArgument, match=r"options\.bogus"):
        integrations.Context({"store": "sqlite::memory:", "master_key": key, "bogus": 1})
    with pytest.raises(integrations.InvalidArgument, match=r"options\.http\.timeout_ms"):
        integrations.Context(
            {"http": {"timeout_ms": -5}}, store="sqlite::memory:", master_key=key
        )


def test_context_durability_option(tmp_path, key: str) -> None:
    # "full": every commit syncs; what was written reads back the same.
    db = tmp_path / "full.db"
    with integrations.Context({"durability": "full"}, store=db, master_key=key) as c:
        with c.session("t1", "u1", ["admin"]) as s:
            created = s.create_integration(
                {"integration_definition_id": "hubspot-crm", "credentials": {"api_key": "k"}}
            )
    with integrations.Context(store=db, master_key=key) as c:
        with c.session("t1", "u2") as s:
            assert [i["id"] for i in s.integrations()] == [created["id"]]
    for bad in ("paranoid", 2):
        with pytest.raises(integrations.InvalidArgument, match=r"options\.durability"):
            integrations.Context({"durability": bad}, store="sqlite::memory:", master_key=key)


def test_context_bad_key_is_an_error() -> None:
    with pytest.raises(integrations.IntegrationsError):
        integrations.Context(store="sqlite::memory:", master_key="not base64!")


def test_keyword_arguments_merge_over_options(tmp_path, key: str) -> None:
    # store= as a path-like means "sqlite:<path>", and wins over options.
    db = tmp_path / "kw.db"
    with integrations.Context({"store": "sqlite:/nonexistent/dir/x.db"}, store=db, master_key=key) as c:
        assert c.definition("visma-erp")["key"] == "visma-erp"
    assert db.exists()


def test_library_in_source_tree_build_dir_is_found(tmp_path) -> None:
    import shutil

    root = tmp_path / "src"
    (root / "build" / "lib").mkdir(parents=True)
    (root / "meson.build").write_text("project('libintegrations', 'c')\n")
    (root / "bindings").mkdir()
    (root / "bindings" / "meson.build").write_text("# a subdir() file, not the top\n")
    shutil.copytree(BINDING_DIR / "integrations", root / "bindings" / "python" / "integrations",
                    ignore=shutil.ignore_patterns("*.so*", "__pycache__"))  # fmt: skip
    shutil.copy(integrations.library_path, root / "build" / "lib" / "libintegrations.so")
    env = subprocess_env()
    env.pop("INTEG_LIBRARY")
    env["PYTHONPATH"] = str(root / "bindings" / "python")
    r = subprocess.run(
        [sys.executable, "-c", "import integrations; print(integrations.library_path)"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(root / "build" / "lib" / "libintegrations.so")
