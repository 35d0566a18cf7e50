"""The plugin's place in the layers (it is a file errbot loads, not a package, so
import-linter does not see it): it imports errbot, the adapter contract and the engine's
public modules; never an adapter, a chat library or a storage."""

from __future__ import annotations

import ast
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[2] / "iwant_plugins" / "iwant" / "iwant.py"
FORBIDDEN = (
    "iwant_slack",
    "iwant_telegram",
    "iwant_xmpp",
    "iwant_matrix",
    "slack_sdk",
    "telegram",
    "nio",
    "slixmpp",
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_plugin_imports_the_contract_and_the_engine_only() -> None:
    found = imported(PLUGIN)
    assert {"iwant_platform.contract", "iwant_platform.errbot_backends"} <= found
    assert any(n == "iwant_engine" or n.startswith("iwant_engine.") for n in found)
    reached = sorted(n for n in found if n.split(".")[0] in FORBIDDEN)
    assert reached == [], "the plugin reaches a platform directly"
    storage = sorted(n for n in found if n.startswith("iwant_engine.storage"))
    assert storage == [], "the plugin reaches a storage"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom iwant_slack.backend import X\nfrom . import y\n")
    assert imported(bad) == {"os", "iwant_slack.backend"}
