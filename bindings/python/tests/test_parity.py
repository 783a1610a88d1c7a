"""scripts/check_parity.py: every version node of the map, and Python's coverage."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "check_parity.py"

pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="not in the source tree")


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_parity", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    "text, expected",
    [
        ("V_0.1 { global: integ_a; integ_b; local: *; };\nV_0.2 { global: integ_c; } V_0.1;\n",
         ["integ_a", "integ_b", "integ_c"]),
        # No "global:" label: ld's default scope is global.
        ("V_1 { global: integ_a; local: *; };\nV_2 { integ_b; integ_c; } V_1;", ["integ_a", "integ_b", "integ_c"]),
        # Anonymous node; local names and wildcards are not exports.
        ("{ global: integ_x; local: integ_hidden; *; };", ["integ_x"]),
        # Comments, odd spacing and extern blocks.
        ('/* integ_no; */ V_1 { global: integ_a; extern "C++" { ns::*; }; # integ_no2;\n local: *; };\n'
         "V_2 {\n global :\n  integ_b ;\n} V_1 ;", ["integ_a", "integ_b"]),
    ],
)  # fmt: skip
def test_parses_every_version_node(tmp_path: Path, text: str, expected: list) -> None:
    mod = _load()
    f = tmp_path / "integrations.map"
    f.write_text(text, encoding="utf-8")
    assert mod.exported_symbols(f) == expected


def test_real_map_has_the_0_2_node() -> None:
    mod = _load()
    map_file = REPO_ROOT / "lib" / "integrations.map"
    symbols = mod.exported_symbols(map_file)
    assert {"integ_version", "integ_sync", "integ_sync_logs", "integ_entity_put", "integ_mapping_apply"} <= set(symbols)
    assert mod.version_nodes(map_file)[:2] == ["INTEGRATIONS_0.1", "INTEGRATIONS_0.2"]
    assert "integ_ctx_set_entity_store" in mod.c_only(REPO_ROOT / "doc" / "bindings.md")


def test_python_wraps_every_symbol() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "python"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all wrapped by python" in done.stdout


def test_real_map_has_the_0_3_node() -> None:
    mod = _load()
    map_file = REPO_ROOT / "lib" / "integrations.map"
    symbols = set(mod.exported_symbols(map_file))
    assert {"integ_ctx_set_event_cb", "integ_webhook_receive", "integ_webhook_verify", "integ_oauth_complete"} <= symbols
    assert mod.version_nodes(map_file)[:3] == ["INTEGRATIONS_0.1", "INTEGRATIONS_0.2", "INTEGRATIONS_0.3"]
