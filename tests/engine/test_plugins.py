"""The engine's pluggy use: every hook documented, called through ``pm.hook`` and traced."""

from __future__ import annotations

import inspect
import logging

import pytest

from iwant_engine import FixedClock, hookspecs
from iwant_engine.__main__ import main
from iwant_engine.plugins import BUILTINS, make_plugin_manager

from ..support import ALICE, BOB, MEMORY, START, make_engine

HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs) if name.startswith("iwant_"))


def test_there_are_hooks_to_check():
    assert HOOKS == [
        "iwant_calendars",
        "iwant_observe",
        "iwant_storages",
        "iwant_strategies",
        "iwant_suggestions",
    ]


@pytest.mark.parametrize("name", HOOKS)
def test_every_hookspec_says_when_it_is_called_and_what_it_returns(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called" in doc, f"{name}: say when the hook is called"
    assert "Returns" in doc, f"{name}: say what an implementation returns"
    assert "first" in doc or "every implementation" in doc, f"{name}: say who wins"


def test_every_hookspec_is_called_when_an_engine_starts_and_works(monkeypatch):
    called: list[str] = []
    real = make_plugin_manager

    def monitored(extra=()):
        pm = real(extra)
        pm.add_hookcall_monitoring(lambda name, impls, kw: called.append(name), lambda *a: None)
        return pm

    monkeypatch.setattr("iwant_engine.engine.make_plugin_manager", monitored)
    engine = make_engine(MEMORY, FixedClock(START))
    try:
        engine.submit(ALICE, "coffee 10:00")
        assert engine.submit(BOB, "coffee for 2h").body.startswith("Matched!")
    finally:
        engine.close()
    assert sorted(set(called)) == sorted(set(HOOKS))


def test_trace_hooks_logs_each_hook_call(monkeypatch, caplog):
    monkeypatch.setenv("IWANT_TRACE_HOOKS", "1")
    with caplog.at_level(logging.INFO, logger="iwant_engine.plugins"):
        engine = make_engine(MEMORY, FixedClock(START))
        engine.submit(ALICE, "coffee 10:00")  # waits: near misses are looked for
        engine.submit(BOB, "coffee for 2h")  # matched: observed
        engine.close()
    traced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hook: ")]
    for name in set(HOOKS):
        assert any(name in line for line in traced), f"{name} was not traced: {traced}"


def test_builtins_are_registered_once_by_module_name():
    pm = make_plugin_manager()
    names = [name for name, _ in pm.list_name_plugin()]
    assert [n for n in names if n in BUILTINS] == list(BUILTINS)
    assert len(names) == len({id(p) for _, p in pm.list_name_plugin()})


def test_plugins_command_lists_versions_hooks_and_active_ones(capsys, tmp_path):
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[engine]\nstorage = memory\nstrategy = overlap\n[strategies]\nlunch = quorum\n")
    assert main(["plugins", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "  iwant_engine.storage.memory 0.1.0: iwant_storages\n" in out
    assert "  memory from iwant_engine.storage.memory  (active)\n" in out
    assert "  sql from iwant_engine.storage.sql\n" in out
    assert "  quorum from iwant_engine.strategies.quorum  (active)\n" in out


def test_the_memory_storage_runs_a_bot_engine_from_plugins_cfg(tmp_path):
    from iwant_engine import Engine

    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[engine]\nstorage = memory\n[activities]\ncoffee = 15, 6\n")
    engine = Engine.from_environment(cfg, data_dir=str(tmp_path), clock=FixedClock(START))
    try:
        assert type(engine.storage).__name__ == "MemoryStorage"
        engine.submit(ALICE, "coffee 10:00")
        assert engine.submit(BOB, "coffee 10:00").body.startswith("Matched! You meet Alice")
    finally:
        engine.close()
    assert not list(tmp_path.glob("*.db")), "nothing is written to disk"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("[engine]\nstrategy = nosuch\n", "unknown strategy 'nosuch'; installed:"),
        ("[strategy:quorum]\nmin_size = 1\n[strategies]\nlunch = quorum\n", "min_size = '1'"),
        ("[strategy:quorom]\nmin_size = 3\n", "[strategy:quorom]: no active strategy"),
    ],
)
def test_plugins_check_fails_with_one_line_on_a_bad_configuration(tmp_path, capsys, extra, says):
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text("[activities]\ncoffee = 15, 6\nlunch = 45, 8\n" + extra)
    assert main(["plugins", "--check", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_plugins_check_lists_who_serves_what(tmp_path, capsys):
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text(
        "[activities]\nlunch = 45, 8\n[strategies]\nlunch = quorum\n"
        "[strategy:quorum]\nmin_size = 4\n"
    )
    assert main(["plugins", "--check", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "strategy overlap for (default)" in out and "strategy quorum for lunch" in out
