"""docs/writing-a-strategy.md runs as written: its strategy is the package, and every test
it shows passes against that package (checked with the kit, unit-tested, replayed)."""

import re
import sys
import types
from pathlib import Path

import pytest

from iwant_engine import plugins

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-strategy.md"
BLOCKS = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
PACKAGE = [block for block in BLOCKS if "def iwant_strategies" in block]
TESTS = [block for block in BLOCKS if block not in PACKAGE]


@pytest.fixture
def my_strategy(monkeypatch):
    """The guide's package, importable as ``my_strategy`` and registered with every engine,
    as if installed through its entry point."""
    (source,) = PACKAGE
    module = types.ModuleType("my_strategy")
    exec(compile(source, "my_strategy/__init__.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "my_strategy", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, "my_strategy"))
    return module


def test_the_guide_shows_its_package_and_its_tests():
    assert len(PACKAGE) == 1 and len(TESTS) >= 4


@pytest.mark.parametrize(
    "source", TESTS, ids=[re.search(r"def (test_\w+)", block)[1] for block in TESTS]
)
def test_a_test_shown_in_the_guide_passes(my_strategy, source):
    namespace: dict = {}
    exec(compile(source, str(GUIDE), "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_")]
    assert tests, "every Python block of the guide is the package or a test module"
    for test in tests:
        test()
