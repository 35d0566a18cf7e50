"""Issue 11, defects 1 to 5, as people meet them: through the plugin on errbot's Test
backend, on SQLite and on PostgreSQL. Each of these failed on the commit before the fix."""

from __future__ import annotations

import unicodedata
from multiprocessing.pool import ThreadPool
from pathlib import Path

import pytest
import time_machine

from ..support import at, truncate_postgres
from .chat import Chat

pytest_plugins = ["errbot.backends.test"]
REPO = Path(__file__).resolve().parents[2]
INTERNAL = "Something went wrong on my side"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch):
    monkeypatch.setenv("IWANT_POLL_SECONDS", "3600")
    monkeypatch.delenv("IWANT_PLUGINS_CFG", raising=False)
    if request.param == "sqlite":
        monkeypatch.delenv("IWANT_DATABASE_URL", raising=False)  # errbot's data dir
    else:
        url = request.getfixturevalue("pg_database")
        truncate_postgres(url)
        monkeypatch.setenv("IWANT_DATABASE_URL", url)
    return request.param


@pytest.fixture
def strategy_cfg(request, tmp_path, monkeypatch):
    """plugins.cfg of the repository with another default strategy."""
    name, settings = getattr(request, "param", ("overlap", ""))
    text = (REPO / "plugins.cfg").read_text().replace("strategy = overlap", f"strategy = {name}")
    cfg = tmp_path / "plugins.cfg"
    cfg.write_text(text + (f"\n[strategy:{name}]\n{settings}\n" if settings else ""))
    monkeypatch.setenv("IWANT_PLUGINS_CFG", str(cfg))
    return name


@pytest.fixture
def chat(database, strategy_cfg, testbot) -> Chat:
    testbot.bot.thread_pool = ThreadPool(1)
    return Chat(testbot)


def hidden(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c != "\n"]


@pytest.mark.parametrize(
    "strategy_cfg",
    [("overlap", ""), ("fresh-faces", ""), ("quorum", "min_size = 3")],
    indirect=True,
)
def test_a_waiting_min_3_wish_never_keeps_a_fitting_group_apart(chat, strategy_cfg):
    with time_machine.travel(at(9, 0), tick=False):
        if strategy_cfg == "quorum":  # a group needs 3 here; carol wants at least 4
            assert chat.say("carol", "!iwant coffee 10:00 min 4")[0].startswith("Waiting")
            assert chat.say("dave", "!iwant coffee 10:05")[0].startswith("Waiting")
        else:
            assert chat.say("carol", "!iwant coffee 10:00 min 3")[0].startswith("Waiting")
        assert chat.say("alice", "!iwant coffee 10:05")[0].startswith("Waiting")
        reply, notes = chat.say("bob", "!iwant coffee 9:30-11:00")
    expected = "dave and alice" if strategy_cfg == "quorum" else "alice"
    assert reply.startswith(f"Matched! You meet {expected} for coffee at 10:05–10:20"), reply
    assert "carol" not in reply and "carol" not in notes
    assert "bob" in notes["alice"].split(" join")[0], notes


def test_unicode_digits_get_a_clear_line_not_an_internal_error(chat):
    with time_machine.travel(at(9, 0), tick=False):
        reply, _ = chat.say("alice", "!iwant coffee 10:00 max ²")
        assert reply == "'max ²' needs a whole number, like !iwant lunch 12:00 max 4."
        assert chat.say("alice", "!iwant coffee 10:00 min ٣")[0].startswith("I don't understand")
        assert chat.say("alice", "!iwant coffee 10:00")[0].startswith("Waiting")
        for command in ("!iwant cancel ²", "!iwant cancel #²", "!iwant cancel ١"):
            reply, _ = chat.say("alice", command)
            assert INTERNAL not in reply and reply.startswith("You have no open"), reply
        assert chat.say("alice", "!iwant list")[0].startswith("Your open requests:\n1. coffee")


@pytest.mark.parametrize("request_id", ["#2147483648", "#9999999999", "#" + "9" * 23, "#0"])
def test_an_id_out_of_range_is_not_yours_not_an_internal_error(chat, request_id):
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("alice", "!iwant coffee 10:00")
        reply, _ = chat.say("alice", f"!iwant cancel {request_id}")
        assert reply == "That request is not yours, so I left it alone; see !iwant list."
        reply, _ = chat.say("alice", "!iwant cancel 99999999999999999999999")
        assert reply == "There is no request 99999…; you have 1. See !iwant list."


@pytest.mark.parametrize(
    "command",
    [
        "!iwant tz \x1b[2J\x1b[H",
        "!iwant tz Europe/\u202epraG",
        "!iwant cancel \u202e1",
        "!iwant cancel coffee\u200b\u200b",
        "!iwant cancel " + "x" * 300,
        "!iwant " + "\u202e" + "coffee 10:00",
        "!iwant coffee\u200b 10:00",
        "!iwant ignore @bob\x1b[2J",
    ],
)
def test_no_reply_echoes_a_control_or_format_character_or_long_input(chat, command):
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("alice", "!iwant coffee 10:00")
        reply, notes = chat.say("alice", command)
    assert reply and INTERNAL not in reply
    assert hidden(reply) == [], ascii(reply)
    assert len(reply) < 200, reply
    assert notes == {}


@pytest.mark.parametrize("target", ["@bob\x00", "@bob\u200b", "@\u202ebob", "@bob\u2066"])
def test_an_ignore_target_with_hidden_characters_is_refused_and_not_stored(chat, target):
    reply, _ = chat.say("alice", f"!iwant ignore {target}")
    assert reply.endswith("has invisible characters in it; try !iwant ignore @bob."), ascii(reply)
    assert hidden(reply) == []
    assert chat.say("alice", "!iwant ignored")[0].startswith("You ignore nobody")
    reply, _ = chat.say("alice", f"!iwant unignore {target}")
    assert reply.endswith("try !iwant unignore @bob."), ascii(reply)
    with time_machine.travel(at(9, 0), tick=False):
        chat.say("alice", "!iwant coffee 10:00")
        assert chat.say("bob", "!iwant coffee 10:00")[0].startswith("Matched! You meet alice")
