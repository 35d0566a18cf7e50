"""docs/writing-an-adapter.md runs as written: its FileChat backend and ``.plug``, saved where
the guide says, pass the adapter kit through the guide's driver and the guide's test, with the
report the guide shows; its other examples (the ``[pacing]`` override, the ``iwant.platforms``
entry point) hold against the contract, and the code it shows passes ``mypy --strict``."""

from __future__ import annotations

import configparser
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from iwant_platform import kit
from iwant_platform.contract import ChatPlatform, format_command

from iwant_engine import settings
from iwant_engine.pacing import Limit

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "writing-an-adapter.md"
MARKDOWN = GUIDE.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", MARKDOWN, re.S)


def the_one(found: list[str], marker: str) -> str:
    matching = [block for block in found if marker in block]
    assert len(matching) == 1, f"the guide shows one block with {marker!r}, not {len(matching)}"
    return matching[0]


PYTHON, INI, TEXT = blocks("python"), blocks("ini"), blocks("text")
BACKEND = the_one(PYTHON, "class FileChatBackend(")
DRIVER = the_one(PYTHON, "class FileChatDriver")
KIT_TEST = the_one(PYTHON, "def test_filechat_passes_the_adapter_kit")
ENTRY_POINT = the_one(PYTHON, "def adapter(")
PLUG = the_one(INI, "[Core]")
PACING = the_one(INI, "[pacing]")
LAYOUT = the_one(TEXT, "iwant-filechat/")
SHOWN_REPORT = the_one(TEXT, "adapter kit on filechat:")
#: Where the guide's layout puts each file, in the package folder ``iwant-filechat/``.
FILES = {
    "filechat/filechat.py": BACKEND,
    "filechat/FileChat.plug": PLUG,
    "tests/filechat_driver.py": DRIVER,
    "tests/test_filechat.py": KIT_TEST,
}


def load(name: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The file at ``path`` imported as the module ``name`` (for this test only)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """The guide's package, each block saved under the name the guide gives it."""
    root = tmp_path / "iwant-filechat"
    for name, source in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source, encoding="utf-8")
    return root


@pytest.fixture
def filechat(package: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The guide's backend and driver modules."""
    return SimpleNamespace(
        backend=load("filechat", package / "filechat" / "filechat.py", monkeypatch),
        driver=load("filechat_driver", package / "tests" / "filechat_driver.py", monkeypatch),
    )


def the_plugin() -> ModuleType:
    """iwant's errbot plugin module, for its ``budget_limits``."""
    path = REPO / "iwant_plugins" / "iwant" / "iwant.py"
    spec = importlib.util.spec_from_file_location("iwant_plugin_for_the_guide", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_shows_each_file_once_where_its_layout_says() -> None:
    assert sorted(PYTHON) == sorted([BACKEND, DRIVER, KIT_TEST, ENTRY_POINT])
    assert sorted(INI) == sorted([PLUG, PACING])
    for name in FILES:
        assert name in LAYOUT and f"`{name}`" in MARKDOWN, name
    plug = configparser.ConfigParser()
    plug.read_string(PLUG)
    assert plug["Core"]["Name"] == "FileChat" and plug["Core"]["Module"] == "filechat"
    assert "IWANT_BACKEND=FileChat" in MARKDOWN


def test_the_driver_declares_what_the_backend_does(filechat: SimpleNamespace) -> None:
    backend, driver = filechat.backend.FileChatBackend, filechat.driver.FileChatDriver
    assert issubclass(backend, ChatPlatform)
    assert driver.name == backend.platform and driver.capabilities == backend.capabilities
    assert driver.command == format_command(object.__new__(backend), "!")
    assert len(driver.people) >= 6 and driver.patience == 60


def test_the_pacing_example_overrides_a_filechat_budget(filechat: SimpleNamespace) -> None:
    backend = object.__new__(filechat.backend.FileChatBackend)
    limits = the_plugin().budget_limits(backend, settings.parse_cfg(PACING, environ={}).pacing)
    assert limits["chat"] == Limit.parse("1/s burst 2")
    assert limits["bot"] == Limit.parse("20/s burst 10"), "the other budget keeps its default"


def test_the_entry_point_example_adapts_irc_and_nothing_else() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(ENTRY_POINT, "iwant_irc/__init__.py", "exec"), namespace)
    adapter = namespace["adapter"]
    irc = adapter(SimpleNamespace(mode="irc", bot_config=SimpleNamespace(BOT_PREFIX="!")))
    assert isinstance(irc, ChatPlatform) and irc.platform == "irc"
    assert irc.capabilities.mentions and not irc.capabilities.buttons
    assert the_plugin().budget_limits(irc, {}) == {"bot": Limit.parse("1/s burst 4")}
    assert adapter(SimpleNamespace(mode="xmpp", bot_config=SimpleNamespace())) is None


def test_the_backend_and_the_driver_pass_mypy_strict(package: Path, tmp_path: Path) -> None:
    files = [package / "filechat" / "filechat.py", package / "tests" / "filechat_driver.py"]
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy")]
        + [str(f) for f in files],
        cwd=REPO,  # iwant's mypy settings: errbot has no types
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_filechat_passes_the_adapter_kit_as_the_guide_runs_it(
    package: Path, filechat: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide_test = load("test_filechat", package / "tests" / "test_filechat.py", monkeypatch)
    reports: list[kit.KitReport] = []

    def run_kit(platform: kit.Platform, only: tuple[str, ...] = ()) -> kit.KitReport:
        reports.append(kit.run_kit(platform, only))
        return reports[-1]

    monkeypatch.setattr(guide_test, "run_kit", run_kit)
    folder = tmp_path / "kit"
    folder.mkdir()
    guide_test.test_filechat_passes_the_adapter_kit(folder)
    (report,) = reports
    # FileChat can force everything the kit asks for: every scenario is covered.
    assert report.covered() == [s.__name__ for s in kit.SCENARIOS], report.text()
    assert report.text() == SHOWN_REPORT.strip(), "the guide shows the report as it comes"
